package netbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Addressing plan of every bed. Each bed has its own internet namespace, so parallel beds reuse the
// same addresses without meeting.
const (
	// internetPrefix is the bridge subnet. 11.0.0.0/8 is neither private, shared, loopback, link-local
	// nor documentation space, so libp2p (manet.IsPublicAddr) treats its addresses as public.
	internetPrefix = 16
	// firstPublicHost is the last byte of the first AddPublic address (11.0.0.10); the bytes below it
	// are reserved (11.0.0.1 is the internet namespace itself, the bed's black-hole default gateway).
	firstPublicHost = 10
	// maxPublicHosts keeps public hosts inside 11.0.0.10-11.0.0.254.
	maxPublicHosts = 254 - firstPublicHost + 1
	// maxHomes is bounded by the 192.168.N.0/24 LAN plan.
	maxHomes = 254
	// maxWANAddrs bounds router WAN addresses 11.0.1.1-11.0.254.254 (AddHome and ChangePublicIP).
	maxWANAddrs = 254 * 254

	bridgeName = "br0"
	// cmdTimeout bounds every ip/nft/conntrack invocation.
	cmdTimeout = 30 * time.Second
	// stopGrace is how long cleanup waits after SIGTERM before SIGKILL.
	stopGrace = 5 * time.Second
)

var (
	gatewayIP = net.IPv4(11, 0, 0, 1).To4()
	// validName keeps bed, host and home names short and safe in namespace names.
	validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_]{0,19}$`)
)

// tools holds absolute paths of the external programs the package runs.
type tools struct {
	ip, nft string
}

var (
	probeOnce    = sync.OnceValues(probe)
	probeTUNOnce = sync.OnceValues(probeTUN)
	probeCount   atomic.Int64
	// tagMu guards tagUsed, the bed tags taken in this process.
	tagMu   sync.Mutex
	tagUsed = map[string]bool{}
)

// Available returns nil when a bed can be built here (root, ip and nft found, `ip netns add` works and
// nftables NAT works inside a namespace), otherwise an error saying exactly what is missing. The probe
// runs once per process. Tests call:
//
//	if err := netbed.Available(); err != nil { t.Skip(err) }
func Available() error {
	_, err := probeOnce()
	return err
}

// MiniUPnPdAvailable returns nil when Available does and miniupnpd is installed, otherwise an error
// saying what is missing. Tests that use UPnP(true) skip on its error.
func MiniUPnPdAvailable() error {
	if err := Available(); err != nil {
		return err
	}
	if _, err := findTool("miniupnpd"); err != nil {
		return fmt.Errorf("netbed: miniupnpd not installed: %w", err)
	}
	return nil
}

// findTool looks a program up on PATH, then in the sbin directories that a non-login root shell may
// lack on its PATH.
func findTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH nor in /usr/sbin, /sbin, /usr/local/sbin", name)
}

// probe checks everything a bed needs, creating and deleting one throwaway namespace.
func probe() (tools, error) {
	tl, err := probeNamespaces()
	if err != nil {
		return tl, err
	}
	if tl.nft, err = findTool("nft"); err != nil {
		return tl, fmt.Errorf("netbed: nftables missing: %w", err)
	}
	ns := probeName()
	if err := runTool("", tl.ip, "netns", "add", ns); err != nil {
		return tl, fmt.Errorf("netbed: cannot create a network namespace: %w", err)
	}
	defer func() { _ = runTool("", tl.ip, "netns", "del", ns) }()
	// The same NAT features AddHome uses: an inet-family nat chain with fully-random masquerade.
	const rules = `table inet probe {
	chain postrouting { type nat hook postrouting priority srcnat; policy accept; oifname "x" masquerade fully-random; }
	chain forward { type filter hook forward priority filter; policy drop; ct state established,related accept; }
}
`
	if err := runTool(rules, tl.ip, "netns", "exec", ns, tl.nft, "-f", "-"); err != nil {
		return tl, fmt.Errorf("netbed: nftables NAT unusable inside a namespace: %w", err)
	}
	return tl, nil
}

// probeName returns a fresh name for a probe's throwaway namespace (the probes of New and Open may
// run at once).
func probeName() string {
	return fmt.Sprintf("nb-probe-%d-%d", os.Getpid(), probeCount.Add(1))
}

// probeNamespaces checks what every bed needs: Linux, root, iproute2, and that a namespace can be
// created and entered from Go (a throwaway one, deleted again).
func probeNamespaces() (tools, error) {
	var tl tools
	if err := platformError(); err != nil {
		return tl, err
	}
	if uid := os.Geteuid(); uid != 0 {
		return tl, fmt.Errorf("netbed: needs root to create network namespaces (running as uid %d)", uid)
	}
	var err error
	if tl.ip, err = findTool("ip"); err != nil {
		return tl, fmt.Errorf("netbed: iproute2 missing: %w", err)
	}
	ns := probeName()
	if err := runTool("", tl.ip, "netns", "add", ns); err != nil {
		return tl, fmt.Errorf("netbed: cannot create a network namespace: %w", err)
	}
	defer func() { _ = runTool("", tl.ip, "netns", "del", ns) }()
	if err := writeSysctl(filepath.Join("/run/netns", ns), "net/ipv4/ip_forward", "1"); err != nil {
		return tl, fmt.Errorf("netbed: cannot enter a network namespace from Go (setns): %w", err)
	}
	return tl, nil
}

// runTool runs a program to completion, feeding stdin, and returns an error carrying its output.
func runTool(stdin, path string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(path), strings.Join(args, " "), err,
			bytes.TrimSpace(out))
	}
	return nil
}

// Bed is one test's network: an "internet" namespace holding a bridge, public hosts on it and home
// networks behind NAT routers. Build it with New; it is torn down by the test's cleanup. A program
// (dagnode devnet) builds a bed of TUN hosts with Open and OpenTUN instead, and tears it down with
// Close.
//
// Constructors (New, AddPublic, AddHome, ChangePublicIP, AddTUN) fail the test with t.Fatalf, so they
// must be called from the test goroutine, on a bed made by New. Other methods are safe for concurrent
// use.
type Bed struct {
	t     testing.TB // nil for a bed made by Open
	tools tools
	tag   string // "nb-<name>-<pid>", the prefix of every namespace of this bed
	netNS string // the internet namespace; "" for a bed made by Open

	closeOnce sync.Once
	closeErr  error

	mu         sync.Mutex
	closed     bool
	names      map[string]bool // host and home names in use
	namespaces []string        // created namespaces, deleted at cleanup
	publics    int             // public hosts added
	homes      int             // homes added
	wans       int             // router WAN addresses handed out
	tracked    []*exec.Cmd
	daemons    []*daemon
	transports []*http.Transport
	tempDirs   []string
	files      []*os.File // AddTUN devices' files, closed at cleanup

	// failAt makes the named construction step fail; tests use it to check cleanup after a partial build.
	failAt string
}

// New builds the internet of a bed: a namespace with bridge br0 on 11.0.0.1/16 that forwards nothing, so
// traffic to any address outside the bed dies there. name is a short tag ([A-Za-z0-9_], up to 20
// characters); namespaces are named "nb-<name>-<pid>-<role>" (a numeric suffix is added to name if
// another bed in this process already used it), so beds can run in parallel.
//
// New registers a t.Cleanup that tears down everything: it stops processes given to Track and
// miniupnpd (SIGTERM, then SIGKILL after 5 s) and deletes all the bed's namespaces, which removes
// their veths and the bridge. It does so also when the test fails or a later constructor fails
// halfway.
func New(t testing.TB, name string) *Bed {
	t.Helper()
	tl, err := probeOnce()
	if err != nil {
		t.Fatalf("netbed.New: %v (call netbed.Available first and skip)", err)
	}
	if !validName.MatchString(name) {
		t.Fatalf("netbed.New: invalid bed name %q (want %s)", name, validName)
	}
	b := &Bed{t: t, tools: tl, tag: uniqueTag(name), names: map[string]bool{}}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("netbed: cleanup: %v", err)
		}
		if t.Failed() {
			b.mu.Lock()
			daemons := b.daemons
			b.mu.Unlock()
			for _, d := range daemons {
				t.Logf("netbed: %s log:\n%s", d.name, d.log.String())
			}
		}
	})
	b.netNS = b.tag + "-net"
	if err := b.build(); err != nil {
		t.Fatalf("netbed.New(%q): %v", name, err)
	}
	t.Logf("netbed: bed %s: internet %s/%d in namespace %s", name, gatewayIP, internetPrefix, b.netNS)
	return b
}

// Open makes a bed for a program rather than a test: a bed of TUN hosts only (OpenTUN), with no
// internet namespace, that needs what TUNAvailable checks (not nftables). Its namespaces are named as
// New's ("nb-<name>-<pid>-tun-<host>"). The caller must Close it, also after an error of its own: Close
// stops tracked processes and deletes the namespaces. A process killed before Close leaves them
// behind (remove them with `ip netns del`).
func Open(name string) (*Bed, error) {
	tl, err := probeTUNOnce()
	if err != nil {
		return nil, err
	}
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("netbed.Open: invalid bed name %q (want %s)", name, validName)
	}
	return &Bed{tools: tl, tag: uniqueTag(name), names: map[string]bool{}}, nil
}

// Close tears the bed down: idle HTTP connections, tracked processes and daemons (SIGTERM, then
// SIGKILL after 5 s), TUN files, then every namespace. It is idempotent; a bed made by New is closed by
// its test's cleanup. The error names processes that survived SIGKILL and namespaces left behind.
func (b *Bed) Close() error {
	b.closeOnce.Do(func() { b.closeErr = b.teardown() })
	return b.closeErr
}

// uniqueTag returns "nb-<name>-<pid>", with a suffix if the name is already taken in this process.
func uniqueTag(name string) string {
	tagMu.Lock()
	defer tagMu.Unlock()
	base := fmt.Sprintf("nb-%s-%d", name, os.Getpid())
	tag := base
	for i := 2; tagUsed[tag]; i++ {
		tag = base + "-" + strconv.Itoa(i)
	}
	tagUsed[tag] = true
	return tag
}

func (b *Bed) build() error {
	if err := b.addNamespaces(b.netNS); err != nil {
		return err
	}
	if err := b.isolate(b.netNS); err != nil {
		return err
	}
	return b.ipIn(b.netNS,
		"link set lo up",
		"link add "+bridgeName+" type bridge stp_state 0 forward_delay 0",
		"link set "+bridgeName+" up",
		fmt.Sprintf("addr add %s/%d dev %s", gatewayIP, internetPrefix, bridgeName),
	)
}

// Namespaces returns the names of the namespaces the bed has created so far.
func (b *Bed) Namespaces() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.namespaces...)
}

// Internet returns the name of the bed's internet namespace (the one holding the bridge), or "" for a
// bed made by Open, which has none.
func (b *Bed) Internet() string { return b.netNS }

// Track makes cleanup stop cmd if it is still running then: SIGTERM, then SIGKILL after 5 s. The
// caller starts cmd (before or after Track) and may Wait for it as usual; cleanup never reaps it.
// Use it for every process started with Host.Command.
func (b *Bed) Track(cmd *exec.Cmd) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		// Too late for cleanup to see it: stop it now rather than leak it.
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
		return
	}
	b.tracked = append(b.tracked, cmd)
}

// step fails when a test asked the named construction step to fail.
func (b *Bed) step(name string) error {
	if b.failAt == name {
		return fmt.Errorf("injected failure at step %q", name)
	}
	return nil
}

// reserve checks that the bed is open and name is valid and unused, and records it.
func (b *Bed) reserve(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("bed already cleaned up")
	}
	if !validName.MatchString(name) {
		return fmt.Errorf("invalid name %q (want %s)", name, validName)
	}
	if b.names[name] {
		return fmt.Errorf("name %q already used in this bed", name)
	}
	b.names[name] = true
	return nil
}

// addNamespaces creates namespaces, recording each before it exists so cleanup never misses one.
func (b *Bed) addNamespaces(names ...string) error {
	var batch strings.Builder
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errors.New("bed already cleaned up")
	}
	for _, ns := range names {
		b.namespaces = append(b.namespaces, ns)
		fmt.Fprintf(&batch, "netns add %s\n", ns)
	}
	b.mu.Unlock()
	return runTool(batch.String(), b.tools.ip, "-batch", "-")
}

// isolate switches IPv6 off in a fresh namespace (before its links exist, so they inherit it): the bed
// is IPv4-only, and no link-local IPv6 addresses or router solicitations appear.
func (b *Bed) isolate(ns string) error {
	path := nsPath(ns)
	for _, key := range []string{"net/ipv6/conf/default/disable_ipv6", "net/ipv6/conf/all/disable_ipv6"} {
		if err := writeSysctl(path, key, "1"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	return nil
}

// ipIn runs ip commands as one batch inside namespace ns.
func (b *Bed) ipIn(ns string, cmds ...string) error {
	return runTool(strings.Join(cmds, "\n")+"\n", b.tools.ip, "-n", ns, "-batch", "-")
}

// ipRoot runs ip commands as one batch from the root namespace; only for commands that name their
// target namespaces (netns add/del, link add ... netns X ... peer ... netns Y).
func (b *Bed) ipRoot(cmds ...string) error {
	return runTool(strings.Join(cmds, "\n")+"\n", b.tools.ip, "-batch", "-")
}

// nftIn loads an nftables rule set inside namespace ns.
func (b *Bed) nftIn(ns, rules string) error {
	return runTool(rules, b.tools.ip, "netns", "exec", ns, b.tools.nft, "-f", "-")
}

// AddPublic adds a host namespace on the internet bridge with the next public address (11.0.0.10,
// 11.0.0.11, ...). Its default route points at the internet namespace, which forwards nothing.
func (b *Bed) AddPublic(name string) *Host {
	b.t.Helper()
	h, err := b.addPublic(name)
	if err != nil {
		b.t.Fatalf("netbed.AddPublic(%q): %v", name, err)
	}
	b.t.Logf("netbed: public host %s: %s in namespace %s", name, h.IP(), h.Name())
	return h
}

func (b *Bed) addPublic(name string) (*Host, error) {
	if err := b.reserve(name); err != nil {
		return nil, err
	}
	b.mu.Lock()
	idx := b.publics
	if idx >= maxPublicHosts {
		b.mu.Unlock()
		return nil, fmt.Errorf("more than %d public hosts", maxPublicHosts)
	}
	b.publics++
	b.mu.Unlock()

	ip := net.IPv4(11, 0, 0, byte(firstPublicHost+idx)).To4()
	h := newHost(b, b.tag+"-pub-"+name, ip)
	port := "p" + strconv.Itoa(idx)
	if err := b.addNamespaces(h.ns); err != nil {
		return nil, err
	}
	if err := b.isolate(h.ns); err != nil {
		return nil, err
	}
	if err := b.ipRoot(fmt.Sprintf("link add %s netns %s type veth peer name eth0 netns %s", port, b.netNS, h.ns)); err != nil {
		return nil, err
	}
	if err := b.ipIn(h.ns,
		"link set lo up",
		"link set eth0 up",
		fmt.Sprintf("addr add %s/%d dev eth0", ip, internetPrefix),
		fmt.Sprintf("route add default via %s dev eth0", gatewayIP),
	); err != nil {
		return nil, err
	}
	if err := b.ipIn(b.netNS, "link set "+port+" master "+bridgeName, "link set "+port+" up"); err != nil {
		return nil, err
	}
	return h, nil
}

// nextWAN hands out the next router WAN address: 11.0.1.1, 11.0.1.2, ... 11.0.1.254, 11.0.2.1, ...
func (b *Bed) nextWAN() (net.IP, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wans >= maxWANAddrs {
		return nil, fmt.Errorf("more than %d router WAN addresses", maxWANAddrs)
	}
	i := b.wans
	b.wans++
	return net.IPv4(11, 0, byte(1+i/254), byte(1+i%254)).To4(), nil
}

// stoppable is a process cleanup must end.
type stoppable struct {
	name   string
	signal func(os.Signal) error
	done   func() bool
}

// teardown tears the bed down: idle HTTP connections, tracked processes and daemons, then namespaces.
func (b *Bed) teardown() error {
	b.mu.Lock()
	b.closed = true
	tracked, daemons, transports := b.tracked, b.daemons, b.transports
	namespaces, tempDirs, files := b.namespaces, b.tempDirs, b.files
	b.mu.Unlock()

	for _, tr := range transports {
		tr.CloseIdleConnections()
	}

	var procs []stoppable
	for _, cmd := range tracked {
		p := cmd.Process
		if p == nil {
			continue // never started
		}
		procs = append(procs, stoppable{
			name:   strings.Join(cmd.Args, " "),
			signal: p.Signal,
			done: func() bool {
				return errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone) || exited(p.Pid)
			},
		})
	}
	for _, d := range daemons {
		procs = append(procs, stoppable{name: d.name, signal: d.cmd.Process.Signal, done: d.exited})
	}
	var errs []error
	for _, name := range stopAll(procs) {
		errs = append(errs, fmt.Errorf("process still running after SIGKILL: %s", name))
	}
	for _, f := range files {
		_ = f.Close()
	}

	if len(namespaces) > 0 {
		var cmds []string
		for i := len(namespaces) - 1; i >= 0; i-- {
			cmds = append(cmds, "netns del "+namespaces[i])
		}
		// -force: keep deleting after one fails (e.g. a namespace whose creation failed).
		err := runTool(strings.Join(cmds, "\n")+"\n", b.tools.ip, "-force", "-batch", "-")
		if err != nil {
			if left := b.leftNamespaces(namespaces); len(left) > 0 {
				errs = append(errs, fmt.Errorf("namespaces left behind %v: %w", left, err))
			}
		}
	}
	for _, dir := range tempDirs {
		_ = os.RemoveAll(dir)
	}
	return errors.Join(errs...)
}

// leftNamespaces returns those of names that still exist.
func (b *Bed) leftNamespaces(names []string) []string {
	var left []string
	for _, ns := range names {
		if _, err := os.Stat(nsPath(ns)); err == nil {
			left = append(left, ns)
		}
	}
	return left
}

// stopAll sends SIGTERM to every process, SIGKILL to those still running after stopGrace, and returns
// the names of any that survive that too.
func stopAll(procs []stoppable) []string {
	const poll = 20 * time.Millisecond
	waitAll := func(limit time.Duration) []stoppable {
		deadline := time.Now().Add(limit)
		for {
			var running []stoppable
			for _, p := range procs {
				if !p.done() {
					running = append(running, p)
				}
			}
			if len(running) == 0 || time.Now().After(deadline) {
				return running
			}
			time.Sleep(poll)
		}
	}
	for _, p := range procs {
		if !p.done() {
			_ = p.signal(syscall.SIGTERM)
		}
	}
	procs = waitAll(stopGrace)
	for _, p := range procs {
		_ = p.signal(syscall.SIGKILL)
	}
	procs = waitAll(stopGrace)
	var names []string
	for _, p := range procs {
		names = append(names, p.name)
	}
	return names
}

// nsPath is the file naming namespace ns (where `ip netns add` bind-mounts it).
func nsPath(ns string) string { return filepath.Join("/run/netns", ns) }
