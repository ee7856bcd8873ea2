// Command dagbench runs dagnode's benchmarks (the `go test -bench` ones,
// unchanged) one after another and prints one Markdown table: each figure,
// the baseline it was measured against in the same run, their ratio and the
// goal. Run it from the module root:
//
//	go run ./cmd/dagbench           # everything, the 100k-block and 50-node cases included (about 20 min)
//	go run ./cmd/dagbench --quick   # the small cases only (a few minutes)
//
// Figures are measured, never asserted: a ratio past its goal is reported,
// not failed. What it must not do: change any benchmark or pass flags that
// change what a benchmark measures.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// bench is one `go test -bench` run and the figures it reports.
type bench struct {
	pkg, pattern, benchtime, timeout string
	quick                            bool // part of --quick
	rows                             []row
}

// row reads one figure of a benchmark's output: the benchmark's full name
// (without the -GOMAXPROCS suffix), the metric, its baseline metric and
// ratio metric, and the goal as text.
type row struct {
	name, sub               string // sub: the benchmark to read, e.g. "BenchmarkImport/10000"
	figure, baseline, ratio string
	goal                    string
}

var benches = []bench{
	{pkg: "./dag/", pattern: "^BenchmarkImport$/^10000$", benchtime: "1x", timeout: "10m", quick: true, rows: []row{
		{name: "import 10k into the on-disk DAG vs raw store writes", sub: "BenchmarkImport/10000", figure: "blocks/s", baseline: "baseline-blocks/s", ratio: "ratio", goal: "≥ 0.5"}}},
	{pkg: "./dag/", pattern: "^BenchmarkImport$/^100000$", benchtime: "1x", timeout: "30m", rows: []row{
		{name: "import 100k into the on-disk DAG vs raw store writes", sub: "BenchmarkImport/100000", figure: "blocks/s", baseline: "baseline-blocks/s", ratio: "ratio", goal: "≥ 0.5"}}},
	{pkg: "./dag/", pattern: "^BenchmarkImportGHOSTDAG$/^10000$", benchtime: "2x", timeout: "10m", quick: true, rows: []row{
		{name: "import 10k wide with GHOSTDAG vs without", sub: "BenchmarkImportGHOSTDAG/10000", figure: "blocks/s", baseline: "plain-blocks/s", ratio: "ratio", goal: "≥ 0.7"}}},
	{pkg: "./dag/", pattern: "^BenchmarkImportGHOSTDAG$/^100000$", benchtime: "1x", timeout: "30m", rows: []row{
		{name: "import 100k wide with GHOSTDAG vs without", sub: "BenchmarkImportGHOSTDAG/100000", figure: "blocks/s", baseline: "plain-blocks/s", ratio: "ratio", goal: "≥ 0.7"}}},
	{pkg: "./syncproto/", pattern: "^BenchmarkSync(Wide|Holey)?$/^10000$", benchtime: "3x", timeout: "10m", quick: true, rows: []row{
		{name: "sync 10k linear vs import limit", sub: "BenchmarkSync/10000", figure: "sync-blocks/s", baseline: "import-blocks/s", ratio: "ratio", goal: "≥ 0.8"},
		{name: "sync 10k wide vs import limit", sub: "BenchmarkSyncWide/10000", figure: "sync-blocks/s", baseline: "import-blocks/s", ratio: "ratio", goal: "≥ 0.8"},
		{name: "sync 10k with holes vs import limit", sub: "BenchmarkSyncHoley/10000", figure: "sync-blocks/s", baseline: "import-blocks/s", ratio: "ratio", goal: "≥ 0.8"}}},
	{pkg: "./syncproto/", pattern: "^BenchmarkSync$/^100000$", benchtime: "1x", timeout: "30m", rows: []row{
		{name: "sync 100k linear vs import limit", sub: "BenchmarkSync/100000", figure: "sync-blocks/s", baseline: "import-blocks/s", ratio: "ratio", goal: "≥ 0.8"}}},
	{pkg: "./rpc/", pattern: "^BenchmarkRPC$", benchtime: "20000x", timeout: "10m", quick: true, rows: []row{
		{name: "RPC getblockcount vs minimal net/http", sub: "BenchmarkRPC/getblockcount", figure: "req/s", baseline: "baseline-req/s", ratio: "ratio", goal: "≥ 0.8"},
		{name: "RPC getblockmetrics vs minimal net/http", sub: "BenchmarkRPC/getblockmetrics", figure: "req/s", baseline: "baseline-req/s", ratio: "ratio", goal: "≥ 0.8"}}},
	{pkg: "./miner/", pattern: "^BenchmarkWorkerVsBareHash$", benchtime: "5x", timeout: "10m", quick: true, rows: []row{
		{name: "miner worker vs bare hash loop", sub: "BenchmarkWorkerVsBareHash", figure: "worker-hashes/s", baseline: "bare-hashes/s", ratio: "ratio", goal: "≥ 0.9"}}},
	{pkg: "./cmd/dagnode/", pattern: "^BenchmarkPropagation$/^20$", benchtime: "1x", timeout: "20m", quick: true, rows: []row{
		{name: "propagation p50, 20 nodes in-process, validated+stored vs bare GossipSub", sub: "BenchmarkPropagation/20", figure: "disk-p50-ms", baseline: "bare-p50-ms", ratio: "disk-p50-ratio", goal: "≤ 1.25"},
		{name: "propagation p99, 20 nodes in-process", sub: "BenchmarkPropagation/20", figure: "disk-p99-ms", baseline: "bare-p99-ms", ratio: "disk-p99-ratio", goal: "≤ 1.25"}}},
	{pkg: "./cmd/dagnode/", pattern: "^BenchmarkPropagation$/^50$", benchtime: "1x", timeout: "20m", rows: []row{
		{name: "propagation p50, 50 nodes in-process", sub: "BenchmarkPropagation/50", figure: "disk-p50-ms", baseline: "bare-p50-ms", ratio: "disk-p50-ratio", goal: "≤ 1.25"},
		{name: "propagation p99, 50 nodes in-process", sub: "BenchmarkPropagation/50", figure: "disk-p99-ms", baseline: "bare-p99-ms", ratio: "disk-p99-ratio", goal: "≤ 1.25"}}},
	// Root only (network namespaces); elsewhere it skips and its rows say
	// "not reported".
	{pkg: "./test/netbench/", pattern: "^BenchmarkNetBench$", benchtime: "1x", timeout: "20m", rows: []row{
		{name: "arrival p50, 50 dagnode processes over 20-60 ms paths vs bare GossipSub processes", sub: "BenchmarkNetBench", figure: "p50-ms", baseline: "bare-p50-ms", ratio: "p50-ratio", goal: "≤ 1.1"},
		{name: "arrival p99, 50 processes over latency", sub: "BenchmarkNetBench", figure: "p99-ms", baseline: "bare-p99-ms", ratio: "p99-ratio", goal: "≤ 1.1"},
		{name: "memory per process (PSS), 50 processes", sub: "BenchmarkNetBench", figure: "PSS-MiB", baseline: "bare-PSS-MiB", ratio: "PSS-ratio", goal: "≤ 1.5"},
		{name: "memory per process (RSS, the binary's shared pages included), 50 processes", sub: "BenchmarkNetBench", figure: "RSS-MiB", baseline: "bare-RSS-MiB", ratio: "RSS-ratio", goal: "≤ 1.5"}}},
}

func main() {
	quick := flag.Bool("quick", false, "run only the small cases")
	flag.Parse()
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("dagnode benchmarks, %s, %s/%s, %d CPUs, %s, load average %s\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Println("| figure | value | baseline | ratio | goal | met |")
	fmt.Println("|---|---|---|---|---|---|")
	failed := false
	for _, b := range benches {
		if *quick && !b.quick {
			continue
		}
		args := []string{"test", "-run", "^$", "-bench", b.pattern, "-benchtime", b.benchtime, "-timeout", b.timeout, b.pkg}
		fmt.Fprintf(os.Stderr, "dagbench: go %s\n", strings.Join(args, " "))
		cmd := exec.Command("go", args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "dagbench: %s %s failed: %v\n%s", b.pkg, b.pattern, err, out.String())
			failed = true
			continue
		}
		results := parse(out.Bytes())
		for _, r := range b.rows {
			m := results[r.sub]
			if m == nil {
				fmt.Printf("| %s | not reported | | | %s | |\n", r.name, r.goal)
				continue
			}
			fmt.Printf("| %s | %s %s | %s %s | %s | %s | %s |\n", r.name, num(m[r.figure]), r.figure, num(m[r.baseline]), r.baseline,
				num(m[r.ratio]), r.goal, met(m[r.ratio], r.goal))
		}
	}
	if failed {
		os.Exit(1)
	}
}

// parse reads `go test -bench` output: benchmark name → metric → value.
func parse(out []byte) map[string]map[string]float64 {
	res := map[string]map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 { // the GOMAXPROCS suffix
			name = name[:i]
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[f[i+1]] = v
			}
		}
		res[name] = m
	}
	return res
}

func num(v float64) string {
	switch {
	case v == 0:
		return "–"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// met compares a ratio with a goal written "≥ x" or "≤ x".
func met(ratio float64, goal string) string {
	f := strings.Fields(goal)
	if len(f) != 2 || ratio == 0 {
		return ""
	}
	want, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		return ""
	}
	if (f[0] == "≥" && ratio >= want) || (f[0] == "≤" && ratio <= want) {
		return "yes"
	}
	return "no"
}
