// Command table reads `go test -bench` output on stdin and prints it as a
// markdown table: ns/op, operations per second, B/op, allocs/op, the ratio
// to the native floor, and any custom metrics (b.ReportMetric).
//
// The floor of a row is the row named "native" in the same group (the name
// up to its last "/"), as in BenchmarkPolicy/read/native. A group without
// one is compared with the -floor row (BenchmarkCheck/native by default,
// host's freeware rule as plain Go); such ratios are marked with a †. The
// GOMAXPROCS suffix ("-2") is dropped from names. When a benchmark appears
// more than once (-count), the median of each column is shown.
//
// Usage:
//
//	go test -run '^$' -bench . -benchmem ./... | go run ./bench/table
//
// It uses only the standard library, so that it adds nothing to any
// module's dependencies. Lines that are not benchmark results are ignored,
// except "cpu:" and "FAIL" lines, which it echoes under the table.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	floor := flag.String("floor", "BenchmarkCheck/native", "floor row for groups without a native row")
	flag.Parse()
	rows, notes, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "table:", err)
		os.Exit(1)
	}
	write(os.Stdout, rows, *floor)
	for _, n := range notes {
		fmt.Println(n)
	}
	for _, n := range notes {
		if strings.HasPrefix(n, "FAIL") {
			os.Exit(1)
		}
	}
}

// row is one benchmark's results: every sample of every unit.
type row struct {
	name    string
	pkg     string
	samples map[string][]float64 // unit -> values
}

// median returns the median of the unit's samples and whether there are any.
func (r *row) median(unit string) (float64, bool) {
	v := slices.Clone(r.samples[unit])
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], true
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, true
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads benchmark lines in order of first appearance.
func parse(r io.Reader) ([]*row, []string, error) {
	var (
		rows  []*row
		byKey = map[string]*row{}
		notes []string
		pkg   string
		cpus  = map[string]bool{}
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(line, "pkg: ")
			continue
		case strings.HasPrefix(line, "cpu: "):
			if !cpus[line] {
				cpus[line] = true
				notes = append(notes, "\n"+strings.TrimSpace(line))
			}
			continue
		case strings.HasPrefix(line, "FAIL"), strings.HasPrefix(line, "--- FAIL"):
			notes = append(notes, line)
			continue
		case !strings.HasPrefix(line, "Benchmark"):
			continue
		}
		f := strings.Fields(line)
		// name iterations (value unit)...
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		key := pkg + " " + name
		rw := byKey[key]
		if rw == nil {
			rw = &row{name: name, pkg: pkg, samples: map[string][]float64{}}
			byKey[key] = rw
			rows = append(rows, rw)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			rw.samples[f[i+1]] = append(rw.samples[f[i+1]], v)
		}
	}
	return rows, notes, sc.Err()
}

// group is a row's name up to its last "/".
func group(name string) string {
	if i := strings.LastIndex(name, "/"); i >= 0 {
		return name[:i]
	}
	return name
}

var standard = map[string]bool{"ns/op": true, "B/op": true, "allocs/op": true, "MB/s": true}

func write(w io.Writer, rows []*row, floorName string) {
	floors := map[string]float64{}
	var global float64
	for _, r := range rows {
		ns, ok := r.median("ns/op")
		if !ok {
			continue
		}
		if strings.HasSuffix(r.name, "/native") {
			floors[group(r.name)] = ns
		}
		if r.name == floorName {
			global = ns
		}
	}
	fmt.Fprintln(w, "| benchmark | ns/op | ops/s | B/op | allocs/op | × native | other |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, r := range rows {
		ns, hasNS := r.median("ns/op")
		_, hasAllocs := r.median("allocs/op")
		cells := []string{r.name, "", "", "", "", "", ""}
		// A row of custom metrics only (a measurement, not a loop) has a
		// meaningless ns/op.
		if hasNS && (hasAllocs || len(r.samples) == 1) {
			cells[1] = num(ns)
			if ns > 0 {
				cells[2] = num(1e9 / ns)
			}
			if f, ok := floors[group(r.name)]; ok && f > 0 {
				cells[5] = ratio(ns / f)
			} else if global > 0 {
				cells[5] = ratio(ns/global) + " †"
			}
		}
		if v, ok := r.median("B/op"); ok {
			cells[3] = num(v)
		}
		if v, ok := r.median("allocs/op"); ok {
			cells[4] = num(v)
		}
		var other []string
		units := make([]string, 0, len(r.samples))
		for u := range r.samples {
			if !standard[u] {
				units = append(units, u)
			}
		}
		slices.Sort(units)
		for _, u := range units {
			v, _ := r.median(u)
			other = append(other, num(v)+" "+u)
		}
		cells[6] = strings.Join(other, ", ")
		fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
	}
	if global > 0 {
		fmt.Fprintf(w, "\n† ratio to %s (%s ns/op): the group has no native row.\n", floorName, num(global))
	}
}

// num formats v with three significant digits below 100 and as an integer
// with thousands separators above.
func num(v float64) string {
	if v < 100 {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ratio(x float64) string {
	switch {
	case x < 10:
		return strconv.FormatFloat(x, 'f', 2, 64) + "×"
	case x < 100:
		return strconv.FormatFloat(x, 'f', 1, 64) + "×"
	}
	return num(x) + "×"
}
