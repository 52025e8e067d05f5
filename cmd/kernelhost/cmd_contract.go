package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/kernel"
)

func newContractCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "contract",
		Short: "Deploy, validate and check access contracts",
		Long: `An access contract is a WebAssembly module implementing the kernelhost ABI
(abi/SPEC.md). It is stored as an artifact of type contract; its own metadata
is the configuration every request it judges carries ("config").`,
		Example: `  kernelhost contract validate --file pay_per_read.wasm
  kernelhost contract deploy alice/pay --file pay_per_read.wasm --as alice --meta price=10 --meta sponsor=sponsor --meta payee=alice
  kernelhost contract check --explain --as bob --action read --target report
  kernelhost contract test pay.fixtures.json --file pay_per_read.wasm`,
	}
	cmd.AddCommand(newContractDeployCmd(g), newContractValidateCmd(g), newContractCheckCmd(g),
		newContractTestCmd(g), newContractBenchCmd(g)) // contracttest.go
	return cmd
}

// readWasm reads a module for deploy and validate.
func readWasm(file string) ([]byte, error) {
	if file == "" {
		return nil, usagef("--file is required: the .wasm module")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read --file: %w", err)
	}
	return b, nil
}

// invalidModule formats a validation failure as one line that says what to fix.
func invalidModule(file string, err error) error {
	return fmt.Errorf("%s: %s is not a valid contract: %v", abi.ContractInvalid, file, err)
}

func newContractDeployCmd(g *globals) *cobra.Command {
	var as, file, governor, rid string
	var meta []string
	var maxCost int64
	cmd := &cobra.Command{
		Use:   "deploy ID --file X.wasm --as P [--contract GOV] [--meta k=v ...] [--max-cost N]",
		Short: "Deploy (or replace) a contract artifact",
		Long: `deploy validates the module, then writes it as artifact ID of type contract,
as principal P. --contract names the contract that governs the new contract
artifact itself (default genesis/freeware: anyone may read its code and
config, only its controller may change it). --meta sets the contract's
config, which it reads in every request. Deploying over an existing contract
replaces its code if its governor allows P to write; payers must then
consent again.`,
		Example: `  kernelhost contract deploy alice/pay --file pay_per_read.wasm --as alice \
      --meta price=10 --meta sponsor=sponsor --meta payee=alice
  kernelhost contract deploy alice/pay --file v2.wasm --as alice`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := parseMeta(meta)
			if err != nil {
				return err
			}
			wasm, err := readWasm(file)
			if err != nil {
				return err
			}
			return g.withBackend(cmd, lockExclusive, func(b backend) error {
				caller, err := b.actor(cmd.Context(), as)
				if err != nil {
					return err
				}
				if err := b.validate(cmd.Context(), wasm); err != nil {
					return invalidModule(file, err)
				}
				res, err := b.do(cmd.Context(), kernel.Action{
					Kind: kernel.KindWrite, Caller: caller, Target: args[0], Type: kernel.TypeContract,
					Contract: governor, Content: wasm, Metadata: m, MaxCost: maxCostOf(cmd, maxCost), RequestID: rid,
				})
				if err != nil {
					return err
				}
				sum := sha256.Sum256(wasm)
				return g.emitResult(res, func(out io.Writer) {
					fmt.Fprintf(out, "deployed contract %s (%d bytes, sha256 %s) as %s: revision %d\n",
						args[0], len(wasm), hex.EncodeToString(sum[:8]), caller, res.Revision)
					if len(m) > 0 {
						fmt.Fprintf(out, "config: %s\n", metaText(m))
					}
				})
			})
		},
	}
	addAs(cmd, &as)
	cmd.Flags().StringVar(&file, "file", "", "the .wasm module (required)")
	cmd.Flags().StringVar(&governor, "contract", "", "contract governing the new contract artifact (default "+genesis.DefaultContract+")")
	cmd.Flags().StringArrayVar(&meta, "meta", nil, "config key=value the contract reads (repeatable)")
	addMaxCost(cmd, &maxCost)
	return actionCmd(cmd, kernel.KindWrite, &rid)
}

func newContractValidateCmd(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "validate --file X.wasm",
		Short: "Check a module against the ABI without deploying it (needs no world)",
		Long: `validate runs the deploy-time checks of the host on a module: it compiles,
its imports are allowed, its exports have the right signatures, it reports
ABI version 1, it fits the size limits and initialises within the deadline.
Then it runs kh_check once on a probe request (a read of a made-up artifact
by a made-up caller) under 10,000,000 fuel: a kh_check that traps, runs out
of fuel or time, or answers a malformed decision is not a valid contract,
whatever it answers other requests. On failure it says what to fix; any
decision passes (test decisions with 'contract test').`,
		Example: `  kernelhost contract validate --file pay_per_read.wasm`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			wasm, err := readWasm(file)
			if err != nil {
				return err
			}
			h, err := host.New(cmd.Context(), host.DefaultConfig())
			if err != nil {
				return err
			}
			defer func() { _ = h.Close(cmd.Context()) }()
			pr, err := probeModule(cmd.Context(), h, file, wasm) // contracttest.go
			if err != nil {
				return err
			}
			sum := sha256.Sum256(wasm)
			v := map[string]any{"ok": true, "file": file, "size": len(wasm), "sha256": hex.EncodeToString(sum[:]), "abi_version": abi.Version, "probe": pr}
			return g.emit(v, func(out io.Writer) {
				fmt.Fprintf(out, "ok: %s is a valid kernelhost contract (ABI v%d, %d bytes, sha256 %s)\n", file, abi.Version, len(wasm), hex.EncodeToString(sum[:]))
				if pr.Ran {
					d := pr.Decision
					fmt.Fprintf(out, "probe: kh_check answered a read by a stranger with %s, fuel %d\n",
						decisionText(&abi.Decision{Allowed: d.Allowed, Cost: d.Cost, Payer: d.Payer, Payee: d.Payee, Reason: d.Reason}), pr.Fuel)
				} else {
					fmt.Fprintln(out, "probe: none (no kh_check: an executable, run by invoke)")
				}
			})
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "the .wasm module (required)")
	return cmd
}

func newContractCheckCmd(g *globals) *cobra.Command {
	var as, action, target, file, text, method, args string
	var meta []string
	var explain, fail bool
	var maxCost int64
	cmd := &cobra.Command{
		Use:   "check --as P --action A --target ID [--explain] [--max-cost N] [--fail]",
		Short: "Judge one action without side effects, and explain the decision",
		Long: `check asks the target's access contract about one action of P, exactly as a
real action would, but changes nothing: nothing is written, charged or
recorded, and no quota is used. It prints the decision (allowed, cost,
payer, payee, reason), what settlement would do (the charges, or why it
would fail), the fuel the contract used and the µs of P's cpu_rate the
check was charged for it. --explain also prints the full request the
contract saw.

What P may not read stays hidden: the target's metadata is shown only if P
passes the read check on the target, the contract's config only if P may
read the contract. Actions: read, write, edit, delete, set_contract, invoke.

With --fail the command exits 1 (after printing) when the action would
fail: denied by the contract (PERMISSION_DENIED, or a contract that failed
closed) or refused at settlement (PAYER_NOT_AUTHORIZED, INSUFFICIENT_FUNDS,
COST_LIMIT_EXCEEDED, QUOTA_EXCEEDED, ...), for scripts that gate on it.`,
		Example: `  kernelhost contract check --explain --as bob --action read --target report
  kernelhost contract check --as mallory --action write --target report --text "mine"
  kernelhost contract check --as alice --action set_contract --target report --contract genesis/private -o json
  kernelhost contract check --as bob --action read --target report --fail && echo allowed`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := parseMeta(meta)
			if err != nil {
				return err
			}
			content, err := readContent(cmd, file, text, cmd.Flags().Changed("text"))
			if err != nil {
				return err
			}
			contract, _ := cmd.Flags().GetString("contract")
			a := kernel.Action{Kind: kernel.Kind(action), Caller: as, Target: target, Content: content, Metadata: m, Contract: contract, Method: method, MaxCost: maxCostOf(cmd, maxCost)}
			if cmd.Flags().Changed("args") {
				a.Args = []byte(args)
			}
			// Explain charges cpu_rate: a write of the rate windows.
			return g.withBackend(cmd, lockExclusive, func(b backend) error {
				caller, err := b.actor(cmd.Context(), as)
				if err != nil {
					return err
				}
				a.Caller = caller
				v, err := b.explain(cmd.Context(), a)
				if err != nil {
					return err
				}
				if g.json() {
					if err := g.emit(v, nil); err != nil {
						return err
					}
				} else {
					writeExplanation(g.out, v, explain)
				}
				if fail && !v.Outcome.OK {
					return fmt.Errorf("%s: %s (--fail: the action would fail)", v.Outcome.ErrorCode, v.Outcome.Message)
				}
				return nil
			})
		},
	}
	addAs(cmd, &as)
	f := cmd.Flags()
	f.StringVar(&action, "action", "read", "action to judge: read, write, edit, delete, set_contract, invoke")
	f.StringVar(&target, "target", "", "artifact id (required)")
	f.StringVar(&file, "file", "", "content of a write or edit, from a file")
	f.StringVar(&text, "text", "", "content of a write or edit, as text")
	f.StringArrayVar(&meta, "meta", nil, "metadata of a write or edit, key=value (repeatable)")
	f.String("contract", "", "new contract of a set_contract")
	f.StringVar(&method, "method", "", "method of an invoke")
	f.StringVar(&args, "args", "", "arguments of an invoke, as text")
	f.BoolVar(&explain, "explain", false, "also print the full request the contract saw")
	f.BoolVar(&fail, "fail", false, "exit 1 when the action would fail (denied, or refused at settlement)")
	addMaxCost(cmd, &maxCost)
	_ = cmd.MarkFlagRequired("target")
	return cmd
}

// writeExplanation prints an explanation for people.
func writeExplanation(w io.Writer, v api.Explanation, full bool) {
	fmt.Fprintf(w, "check: %s %s %s\n", v.Caller, v.Kind, v.Target)
	if v.Contract != "" {
		fmt.Fprintf(w, "contract:   %s (sha256 %.16s…)\n", v.Contract, v.ContractSHA256)
	}
	if full && v.Request != nil {
		r := v.Request
		fmt.Fprintln(w, "request the contract saw:")
		fmt.Fprintf(w, "  action:          %s\n", r.Action)
		fmt.Fprintf(w, "  caller:          %s\n", r.Caller)
		fmt.Fprintf(w, "  target:          %s (type %s, %d bytes, revision %d)\n", r.TargetID, r.TargetType, r.Size, r.Revision)
		fmt.Fprintf(w, "  created_by:      %s\n", r.CreatedBy)
		fmt.Fprintf(w, "  access_contract: %s\n", r.AccessContract)
		fmt.Fprintf(w, "  time:            %s\n", r.Time.Format(time.RFC3339Nano))
		fmt.Fprintf(w, "  payload_size:    %d\n", r.PayloadSize)
		if r.Method != "" {
			fmt.Fprintf(w, "  method:          %s (%d bytes of args)\n", r.Method, len(r.Args))
		}
		fmt.Fprintf(w, "  metadata:        %s\n", redactedText(r.Metadata, contains(v.Redacted, "metadata")))
		fmt.Fprintf(w, "  config:          %s\n", redactedText(r.Config, contains(v.Redacted, "config")))
	}
	var d *abi.Decision
	if v.Decision != nil {
		d = &abi.Decision{Allowed: v.Decision.Allowed, Cost: v.Decision.Cost, Payer: v.Decision.Payer, Payee: v.Decision.Payee, Reason: v.Decision.Reason}
	}
	fmt.Fprintf(w, "decision:   %s\n", decisionText(d))
	if d != nil && d.Cost > 0 && (d.Payer == "" || d.Payer == v.Caller) {
		verdict := "within"
		if d.Cost > v.SpendingLimit {
			verdict = "ABOVE"
		}
		fmt.Fprintf(w, "price:      %d scrip, %s %s's limit of %d (--max-cost, or 'scrip limit')\n", d.Cost, verdict, v.Caller, v.SpendingLimit)
	}
	// A metering host reports fuel, not time (abi.Usage.CPU is 0): what the
	// caller pays is the fuel, converted to µs of cpu_rate. Only a host
	// without metering has a contract wall time to show.
	fmt.Fprintf(w, "fuel:       %d (deterministic; charged to cpu_rate at the kernel's fuel-per-µs rate)\n", v.ContractFuel)
	fmt.Fprintf(w, "charged:    %d µs of %s's cpu_rate for this check's contract runs (read checks included)\n", v.CPUCharged, v.Caller)
	if v.ContractSeconds > 0 {
		fmt.Fprintf(w, "time:       contract %s (wall; the host does not meter fuel)\n", secs(v.ContractSeconds))
	}
	o := v.Outcome
	if o.OK {
		fmt.Fprintf(w, "settlement: OK, would charge: %s\n", chargesText(o.Charges))
	} else {
		fmt.Fprintf(w, "settlement: would fail with %s: %s\n", o.ErrorCode, o.Message)
	}
	for _, n := range v.Notes {
		fmt.Fprintf(w, "note:       %s\n", n)
	}
}

func secs(s float64) string { return time.Duration(s * float64(time.Second)).String() }

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func redactedText(m map[string]string, redacted bool) string {
	if redacted {
		return "(withheld: the caller may not read it)"
	}
	return metaText(m)
}
