package fuel_test

import (
	"context"
	"fmt"
	"os"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/kernelhost/kernelhost/host/internal/fuel"
)

// ExampleInstrument instruments a module, sets its fuel, runs a loop that
// never ends and tells the out-of-fuel trap from others.
func ExampleInstrument() {
	ctx := context.Background()
	wasm, err := os.ReadFile("testdata/compute.wasm")
	if err != nil {
		panic(err)
	}
	metered, info, err := fuel.Instrument(wasm, fuel.Config{})
	if err != nil {
		panic(err)
	}
	fmt.Println("cost table version", info.CostTableVersion, "fuel global", info.FuelGlobal)

	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	mod, err := r.Instantiate(ctx, metered)
	if err != nil {
		panic(err)
	}
	g := mod.ExportedGlobal(fuel.ExportName).(api.MutableGlobal)

	g.Set(1000)
	res, err := mod.ExportedFunction("sum").Call(ctx, 10)
	fmt.Println("sum(10) =", res[0], "fuel used", 1000-int64(g.Get()), err)

	g.Set(1000)
	_, err = mod.ExportedFunction("spin").Call(ctx)
	fmt.Println("spin: trapped", err != nil, "out of fuel", err != nil && int64(g.Get()) < 0)
	// Output:
	// cost table version 2 fuel global 1
	// sum(10) = 45 fuel used 121 <nil>
	// spin: trapped true out of fuel true
}
