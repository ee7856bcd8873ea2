package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dagnode/dagnode/rpc"
)

func TestUIFlagRefusesABadAddress(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	datadir := filepath.Join(t.TempDir(), "data")
	code, _, stderr := runArgs(t, "--datadir", datadir, "--network", "regtest", "--ui", "9720")
	if code != exitUsage || !strings.Contains(stderr, "--ui") {
		t.Fatalf("exit code %d, stderr %q", code, stderr)
	}
}

// uiURL waits for the node's "ui server listening" line and returns the
// URL it logged.
func (p *proc) uiURL() string {
	p.t.Helper()
	var u string
	pollUntil(p.t, 10*time.Second, p.name+"'s dashboard URL in its log", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, l := range p.tail {
			if m := uiLogRe.FindStringSubmatch(l); m != nil {
				u = m[1]
			}
		}
		return u != ""
	})
	return u
}

// TestUIOffLoopbackServesTLS: a dashboard on all interfaces is served over
// TLS with the RPC certificate, and takes the node's RPC credentials (its
// cookie) as basic auth.
func TestUIOffLoopbackServesTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dagnode process")
	}
	p := startProc(t, "a", "--ui", "0.0.0.0:0")
	raw := p.uiURL()
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Hostname() != "127.0.0.1" || u.Query().Get("token") == "" {
		t.Fatalf("dashboard URL %q (%v)", raw, err)
	}
	tlsConf, err := rpc.TLSClientConfig(filepath.Join(p.datadir, rpcCertFile))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	get := func(u string, user, pass string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp, string(b)
	}
	if resp, _ := get(raw, "", ""); resp.StatusCode != 200 || len(resp.Cookies()) != 1 || !resp.Cookies()[0].Secure {
		t.Fatalf("token URL over TLS: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	snapURL := u.Scheme + "://" + u.Host + "/api/snapshot"
	user, pass, err := rpc.ReadCookie(filepath.Join(p.datadir, cookieFile))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(snapURL, user, pass)
	var snap struct {
		Blocks []struct{ Hash string }
		Panels struct {
			Status struct {
				Network string
				Blocks  int
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &snap); err != nil || resp.StatusCode != 200 ||
		snap.Panels.Status.Network != "regtest" || snap.Panels.Status.Blocks != 1 || len(snap.Blocks) != 1 {
		t.Fatalf("snapshot with the RPC cookie: %d %+v %v", resp.StatusCode, snap, err)
	}
	if resp, _ := get(snapURL, user, "wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong password: %d", resp.StatusCode)
	}
	// Plain HTTP gets no dashboard.
	plain, err := http.Get("http://" + u.Host + "/?token=" + u.Query().Get("token"))
	if err == nil {
		b, _ := io.ReadAll(io.LimitReader(plain.Body, 1<<20))
		plain.Body.Close()
		if plain.StatusCode == 200 || strings.Contains(string(b), "dagsvg") {
			t.Fatalf("plain HTTP: %d %q", plain.StatusCode, b)
		}
	}
}

// TestUIDependencies keeps ui/doc.go's promise: the dashboard imports none
// of the node's parts (cmd/dagnode adapts them) and nothing networked
// beyond the standard library, but the connection budget.
func TestUIDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command("go", "list", "-deps", module+"/ui").Output()
	if err != nil {
		t.Fatalf("go list ui: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if rest, ok := strings.CutPrefix(dep, module+"/"); ok && rest != "ui" && rest != "internal/connlimit" && rest != "internal/loopback" {
			t.Errorf("ui imports %s", rest)
		}
		if strings.HasPrefix(dep, "github.com/libp2p/") || strings.HasPrefix(dep, "github.com/multiformats/") {
			t.Errorf("ui imports networking package %s", dep)
		}
	}
}
