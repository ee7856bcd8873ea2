package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/keys"
)

// TestMain lets the test binary stand in for the dagnode binary: the daemon
// tests re-execute it with DAGNODE_TEST_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("DAGNODE_TEST_MAIN") == "1" {
		os.Exit(realMain())
	}
	os.Exit(m.Run())
}

func runArgs(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a daemon that gets this far returns at once
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestBadConfigExitsTwoAndWritesNothing(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	cases := []struct {
		name string
		args []string
		toml string
		want string
	}{
		{"unknown flag", []string{"--bogus"}, "", "unknown flag"},
		{"unknown network", []string{"--network", "moonnet"}, "", "unknown network"},
		{"bad log level", []string{"--loglevel", "loud"}, "", "--loglevel"},
		{"negative genproclimit", []string{"--genproclimit", "-3"}, "", "--genproclimit"},
		{"genproclimit not a number", []string{"--genproclimit", "many"}, "", "genproclimit"},
		{"bad mining address", []string{"--network", "regtest", "--miningaddr", "notanaddress"}, "", "--miningaddr"},
		{"mining address of another network", []string{"--network", "simnet", "--miningaddr", "D597kHXGdkwkryF9oGhz9Bp1ypTpD1u99Z"}, "", "another network"},
		{"bad reachability", []string{"--network", "regtest", "--reachability", "maybe"}, "", "--reachability"},
		{"config bad reachability", nil, "reachability = \"behind\"", "--reachability"},
		{"stray argument", []string{"--network", "regtest", "start"}, "", "unexpected argument"},
		{"config syntax error", nil, "network = ", "config file"},
		{"config unknown key", nil, "netwrok = \"regtest\"", "unknown key"},
		{"config wrong type", nil, "genproclimit = \"two\"", "config file"},
		{"config bad value", nil, "network = \"moonnet\"", "unknown network"},
		{"missing explicit config file", []string{"--configfile", "/nonexistent/dagnode.toml"}, "", "config file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			datadir := filepath.Join(dir, "data")
			args := append([]string{"--datadir", datadir}, c.args...)
			if c.toml != "" {
				path := filepath.Join(dir, "dagnode.toml")
				if err := os.WriteFile(path, []byte(c.toml), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--configfile", path)
			}
			code, _, stderr := runArgs(t, args...)
			if code != exitUsage {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Fatalf("stderr %q does not mention %q", stderr, c.want)
			}
			if _, err := os.Stat(datadir); !os.IsNotExist(err) {
				t.Fatalf("data directory was created (%v)", err)
			}
		})
	}
}

func TestConfigFileThenFlags(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	path := filepath.Join(t.TempDir(), "dagnode.toml")
	const file = "network = \"regtest\"\ngenproclimit = 3\nloglevel = \"debug\"\ngenerate = true\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig([]string{"--configfile", path, "--genproclimit", "1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Network != "regtest" || cfg.params != dag.RegTestParams || cfg.LogLevel != "debug" || !cfg.Generate {
		t.Fatalf("file values not applied: %+v", cfg)
	}
	if cfg.GenProcLimit != 1 {
		t.Fatalf("genproclimit %d: the flag must override the file's 3", cfg.GenProcLimit)
	}
	if want := filepath.Join(os.Getenv("HOME"), appDirName, "regtest"); cfg.DataDir != want {
		t.Fatalf("default datadir %s, want %s", cfg.DataDir, want)
	}
}

func TestDefaultConfigFileIsOptional(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	cfg, err := loadConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Network != "mainnet" || cfg.LogLevel != "info" {
		t.Fatalf("defaults %+v", cfg)
	}
}

func TestHelpExitsZero(t *testing.T) {
	code, stdout, _ := runArgs(t, "--help")
	if code != exitOK || !strings.Contains(stdout, "--generate") {
		t.Fatalf("help: code %d, output %q", code, stdout)
	}
}

func TestKeysNewAddress(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runArgs(t, "keys", "newaddress", "--network", "simnet", "--datadir", dir)
	if code != exitOK {
		t.Fatalf("code %d: %s", code, stderr)
	}
	s := strings.TrimSpace(stdout)
	a, err := keys.DecodeAddress(s, dag.SimNetParams.AddrPrefix)
	if err != nil {
		t.Fatalf("printed address %q: %v", s, err)
	}
	fi, err := os.Stat(filepath.Join(dir, keysDir, a.String()+".key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	if code, _, _ := runArgs(t, "keys", "frobnicate"); code != exitUsage {
		t.Fatalf("unknown keys command: exit %d, want %d", code, exitUsage)
	}
}

// daemon is a dagnode process (the re-executed test binary).
type daemon struct {
	cmd   *exec.Cmd
	lines chan string
	log   strings.Builder
}

func startDaemon(t *testing.T, home string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.SysProcAttr = childAttr()
	cmd.Env = append(os.Environ(), "DAGNODE_TEST_MAIN=1", "HOME="+home)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, lines: make(chan string, 1024)}
	go func() {
		defer close(d.lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return d
}

// waitLine reads log lines until one matches re, n times.
func (d *daemon) waitLine(t *testing.T, re *regexp.Regexp, n int) []string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	var m []string
	for n > 0 {
		select {
		case line, ok := <-d.lines:
			if !ok {
				t.Fatalf("daemon exited before %q; log:\n%s", re, d.log.String())
			}
			d.log.WriteString(line + "\n")
			if mm := re.FindStringSubmatch(line); mm != nil {
				m = mm
				n--
			}
		case <-timeout:
			t.Fatalf("no %q within 60 s; log:\n%s", re, d.log.String())
		}
	}
	return m
}

// stop signals the daemon (unless sig is 0: it was asked to stop another
// way) and waits for a clean exit.
func (d *daemon) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if sig != 0 {
		if err := d.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	for line := range d.lines { // drain until the process closes stderr
		d.log.WriteString(line + "\n")
	}
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("daemon exit: %v; log:\n%s", err, d.log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not exit within 30 s of %v", sig)
	}
	if !strings.Contains(d.log.String(), "store closed") {
		t.Fatalf("no orderly shutdown in log:\n%s", d.log.String())
	}
}

func TestDaemonMinesStopsAndRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dagnode processes")
	}
	home := t.TempDir()
	datadir := filepath.Join(t.TempDir(), "node")
	startRe := regexp.MustCompile(`msg="dagnode starting".* peer=(\S+) new_identity=(\S+)`)
	minedRe := regexp.MustCompile(`msg="mined block accepted"`)

	net := []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--nonat", "--nomdns", "--nodht", "--rpclisten", "127.0.0.1:0"}
	d := startDaemon(t, home, append([]string{"--network", "regtest", "--datadir", datadir, "--generate", "--genproclimit", "1", "--loglevel", "debug"}, net...)...)
	first := d.waitLine(t, startRe, 1)
	if first[2] != "true" {
		t.Fatalf("first start did not create an identity: %v", first)
	}
	d.waitLine(t, minedRe, 20)
	d.stop(t, syscall.SIGINT)

	store, err := dag.OpenPebbleStore(filepath.Join(datadir, storeDir))
	if err != nil {
		t.Fatal(err)
	}
	dg, err := dag.Open(context.Background(), store, dag.RegTestParams)
	if err != nil {
		t.Fatal(err)
	}
	if dg.Count() < 21 {
		t.Fatalf("%d blocks after mining 20", dg.Count())
	}
	if err := dg.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	count := dg.Count()
	store.Close()

	d = startDaemon(t, home, append([]string{"--network", "regtest", "--datadir", datadir}, net...)...)
	second := d.waitLine(t, startRe, 1)
	if second[1] != first[1] || second[2] != "false" {
		t.Fatalf("restart changed the identity: %v then %v", first[1:], second[1:])
	}
	loaded := d.waitLine(t, regexp.MustCompile(`msg="dag loaded".* blocks=(\d+)`), 1)
	if loaded[1] != strconv.Itoa(count) {
		t.Fatalf("restart loaded %s blocks, %d were stored", loaded[1], count)
	}
	rpcAddr := d.waitLine(t, regexp.MustCompile(`msg="rpc server listening" addrs="?\[([0-9.:]+)\]`), 1)[1]
	d.waitLine(t, regexp.MustCompile(`msg="dagnode running"`), 1)
	// The stop RPC, through the command-line client and the cookie.
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"rpc", "--network", "regtest", "--datadir", datadir, "--rpcserver", rpcAddr, "stop"}, &out, &errb); code != exitOK {
		t.Fatalf("dagnode rpc stop: exit %d: %s", code, errb.String())
	}
	d.stop(t, 0)
}
