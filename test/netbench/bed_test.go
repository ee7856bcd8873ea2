package netbench

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dagnode/dagnode/internal/netbed"
)

// The binaries, built once by TestMain without -race.
var bins struct{ dagnode, bareps, wire string }

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if bedUnavailable() != nil || testing.Short() {
		return m.Run() // the tests skip and say why
	}
	dir, err := os.MkdirTemp("", "netbench-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, b := range []struct {
		path *string
		pkg  string
	}{
		{&bins.dagnode, "github.com/dagnode/dagnode/cmd/dagnode"},
		{&bins.bareps, "github.com/dagnode/dagnode/test/netbench/bareps"},
		{&bins.wire, "github.com/dagnode/dagnode/test/netbench/wire"},
	} {
		*b.path = filepath.Join(dir, filepath.Base(b.pkg))
		// A plain build, never -race, whatever this test binary was built with.
		build := exec.Command("go", "build", "-o", *b.path, b.pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "netbench: building %s: %v\n", b.pkg, err)
			return 1
		}
	}
	return m.Run()
}

// bedUnavailable says why the bench cannot run here, or nil.
func bedUnavailable() error {
	if err := netbed.Available(); err != nil {
		return err
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("netbench: no TUN device: %w", err)
	}
	return nil
}

// needBed skips tb unless the bench can run here.
func needBed(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("network bench: starts dagnode processes in network namespaces")
	}
	if err := bedUnavailable(); err != nil {
		tb.Skipf("network bench unavailable: %v", err)
	}
}

// Links: every node's access link, both directions.
const (
	minLinkDelay = 10 * time.Millisecond // one way, so node to node 20-60 ms
	maxLinkDelay = 30 * time.Millisecond
	linkJitter   = 2 * time.Millisecond
	linkRate     = 20e6 // bit/s
)

// network is the bed: one namespace per node and the wire between them.
type network struct {
	tb     testing.TB
	bed    *netbed.Bed
	hosts  []*netbed.Host
	delays []time.Duration
	// boot[i] are the earlier nodes node i bootstraps from.
	boot   [][]int
	logDir string
}

// newNetwork builds n namespaces, the links between them and the bootstrap
// graph, all from seed.
func newNetwork(tb testing.TB, n int, seed uint64) *network {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	nw := &network{tb: tb, bed: netbed.New(tb, "bench"), logDir: filepath.Join(tb.TempDir(), "logs")}
	if dir := os.Getenv("DAGNODE_NETBENCH_LOGS"); dir != "" {
		nw.logDir = dir // kept after the test
	}
	if err := os.MkdirAll(nw.logDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	var files []*os.File
	var spec []string
	for i := range n {
		h, f := nw.bed.AddTUN(fmt.Sprintf("n%02d", i))
		d := minLinkDelay + time.Duration(rng.Int64N(int64(maxLinkDelay-minLinkDelay)+1))
		d = d.Round(100 * time.Microsecond)
		nw.hosts, nw.delays = append(nw.hosts, h), append(nw.delays, d)
		files = append(files, f)
		spec = append(spec, h.IP().String()+"="+d.String())
	}
	nw.boot = make([][]int, n)
	for i := 1; i < n; i++ {
		k := min(i, 2+rng.IntN(2))
		nw.boot[i] = rng.Perm(i)[:k]
	}

	wire := exec.Command(bins.wire, "--link", strings.Join(spec, ","),
		"--rate", strconv.FormatFloat(linkRate, 'f', -1, 64), "--jitter", linkJitter.String(),
		"--seed", strconv.FormatUint(seed, 10))
	wire.ExtraFiles = files
	var stderr lockedBuffer
	wire.Stderr = &stderr
	stdout, err := wire.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := wire.Start(); err != nil {
		tb.Fatalf("starting the wire: %v", err)
	}
	nw.bed.Track(wire)
	done := make(chan error, 1)
	go func() { done <- wire.Wait() }()
	tb.Cleanup(func() { // before the bed's cleanup, which would only find it stopped
		_ = wire.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = wire.Process.Kill()
			<-done
		}
		tb.Logf("%s", strings.TrimSpace(stderr.String()))
	})
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line == "ready\n"
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case ok := <-ready:
		if !ok {
			tb.Fatalf("the wire did not start: %s", stderr.String())
		}
	case <-time.After(10 * time.Second):
		tb.Fatal("the wire did not start within 10 s")
	}
	var mean time.Duration
	for _, d := range nw.delays {
		mean += d
	}
	tb.Logf("network: %d nodes, access links %v-%v one way (mean %v) ±%v, %.0f Mbit/s each way; seed %d",
		n, minLinkDelay, maxLinkDelay, (mean / time.Duration(n)).Round(100*time.Microsecond), linkJitter, linkRate/1e6, seed)
	return nw
}

// lockedBuffer is a concurrency-safe bytes buffer.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is one process in a node's namespace.
type proc struct {
	name    string
	node    int
	cmd     *exec.Cmd
	stdin   io.WriteCloser // bareps only
	done    chan struct{}
	logPath string
}

// start runs bin in node i's namespace; every line of its output goes to its
// log file and to onLine (from one goroutine, in order).
func (nw *network) start(i int, name, bin string, args []string, withStdin bool, onLine func(string)) *proc {
	tb := nw.tb
	tb.Helper()
	p := &proc{name: name, node: i, done: make(chan struct{}), logPath: filepath.Join(nw.logDir, name+".log")}
	logf, err := os.Create(p.logPath)
	if err != nil {
		tb.Fatal(err)
	}
	p.cmd = nw.hosts[i].Command(context.Background(), bin, args...)
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if withStdin {
		if p.stdin, err = p.cmd.StdinPipe(); err != nil {
			tb.Fatal(err)
		}
	}
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	nw.bed.Track(p.cmd)
	go func() {
		defer logf.Close()
		w := bufio.NewWriter(logf)
		defer w.Flush()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			w.WriteString(line)
			w.WriteByte('\n')
			onLine(line)
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		_ = p.cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.stop()
		if tb.Failed() {
			p.dumpLog(tb, 40)
		}
	})
	return p
}

// stop ends the process with SIGTERM (SIGKILL after 10 s) and waits for it.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	if p.stdin != nil {
		p.stdin.Close()
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) dumpLog(tb testing.TB, lines int) {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	tb.Logf("%s: last %d log lines:\n%s", p.name, min(lines, len(all)), strings.Join(all[max(0, len(all)-lines):], "\n"))
}

// memory is a process's memory, in bytes: resident (VmRSS: its anonymous
// memory plus every resident page of the files it maps, its executable
// above all, shared by all processes running it), proportional (PSS: each
// shared page divided among the processes that map it, the kernel's measure
// of what a process costs when several run the same binary), and anonymous
// (heap, stacks: its own).
type memory struct{ rss, pss, anon int64 }

// memory reads the process's memory from /proc/<pid>/smaps_rollup.
func (p *proc) memory() (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p.cmd.Process.Pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	fields := map[string]*int64{"Rss:": &m.rss, "Pss:": &m.pss, "Anonymous:": &m.anon}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 || fields[f[0]] == nil {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("%s: smaps_rollup %q: %w", p.name, line, err)
		}
		*fields[f[0]] = kb << 10
	}
	if m.rss == 0 {
		return memory{}, fmt.Errorf("%s: no Rss in smaps_rollup", p.name)
	}
	return m, nil
}

// cpu returns the CPU time (user and system) the process has used so far.
func (p *proc) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses: state is
	// field 3, utime and stime fields 14 and 15, in clock ticks.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("%s: bad /proc stat: %q", p.name, b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: bad /proc stat: %q", p.name, b)
	}
	const ticksPerSecond = 100 // USER_HZ, 100 on every Linux the bench runs on
	return time.Duration(utime+stime) * time.Second / ticksPerSecond, nil
}

// loadavg returns the first field of /proc/loadavg (one-minute load).
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// counters are a node's eth0 byte counters.
type counters struct{ rx, tx uint64 }

// netDev reads eth0's counters from /proc/net/dev inside node i's namespace.
func (nw *network) netDev(i int) (counters, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := nw.hosts[i].Command(ctx, "cat", "/proc/net/dev").Output()
	if err != nil {
		return counters{}, err
	}
	for line := range strings.Lines(string(out)) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != "eth0" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			break
		}
		rx, err1 := strconv.ParseUint(f[0], 10, 64)
		tx, err2 := strconv.ParseUint(f[8], 10, 64)
		if err1 != nil || err2 != nil {
			break
		}
		return counters{rx, tx}, nil
	}
	return counters{}, fmt.Errorf("node %d: no eth0 in /proc/net/dev:\n%s", i, out)
}

// allNetDev reads every node's counters.
func (nw *network) allNetDev() []counters {
	nw.tb.Helper()
	cs := make([]counters, len(nw.hosts))
	var wg sync.WaitGroup
	errs := make([]error, len(nw.hosts))
	for i := range nw.hosts {
		wg.Go(func() { cs[i], errs[i] = nw.netDev(i) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			nw.tb.Fatal(err)
		}
	}
	return cs
}
