package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A small Chrome DevTools Protocol client for the browser tests: headless
// Chromium started with --remote-debugging-port=0, driven over one
// WebSocket in flat session mode (gorilla/websocket is already in the
// module graph, through libp2p; chromedp would add cdproto, a large
// generated package, to every build of this test binary for the handful
// of commands used here).

// chromiumNames are the executables looked for, Debian's first.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

var devtoolsRe = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// browser is a headless Chromium process and its DevTools connection.
type browser struct {
	t    *testing.T
	cmd  *exec.Cmd
	conn *websocket.Conn
	done chan struct{} // closed when the reader stops

	wmu    sync.Mutex // serialises writes
	nextID atomic.Int64

	mu      sync.Mutex // guards the fields below
	pending map[int64]chan cdpMessage
	// consoleErrors are the console errors, uncaught exceptions and error
	// log entries of watched sessions.
	consoleErrors []string
	watched       map[string]bool
	// handlers are called, on the reader goroutine, with the events of a
	// session; they must not block (they may start a call in a goroutine).
	handlers map[string]func(cdpMessage)
	readErr  error
}

type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// startBrowser starts headless Chromium, or skips the test when none is
// installed.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	var path string
	for _, name := range chromiumNames {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skipf("headless Chromium not found (looked for %s): install Debian's chromium package "+
			"(apt-get install chromium; .ci/run does as root) to run the dashboard's browser test", strings.Join(chromiumNames, ", "))
	}
	cmd := exec.Command(path, "--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run",
		"--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--disable-extensions", "--disable-default-apps", "--no-proxy-server", "--mute-audio",
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--user-data-dir="+t.TempDir(), "--window-size=1440,1000", "about:blank")
	// Its own process group: Chromium's helpers go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	exited := make(chan struct{})
	wsURL := make(chan string, 1)
	var tail []string
	var tailMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			tailMu.Lock()
			tail = append(tail, line)
			if len(tail) > 50 {
				tail = tail[1:]
			}
			tailMu.Unlock()
			if m := devtoolsRe.FindStringSubmatch(line); m != nil {
				select {
				case wsURL <- m[1]:
				default:
				}
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	b := &browser{t: t, cmd: cmd, done: make(chan struct{}), pending: make(map[int64]chan cdpMessage),
		watched: make(map[string]bool), handlers: make(map[string]func(cdpMessage))}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = b.call(ctx, "", "Browser.close", nil, nil)
		cancel()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group of the process started above
			<-exited
		}
		if b.conn != nil {
			b.conn.Close()
		}
	})
	var u string
	select {
	case u = <-wsURL:
	case <-exited:
		tailMu.Lock()
		defer tailMu.Unlock()
		t.Fatalf("%s exited before its DevTools endpoint was up:\n%s", path, strings.Join(tail, "\n"))
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: no DevTools endpoint within 60 s", path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
	if err != nil {
		t.Fatalf("DevTools %s: %v", u, err)
	}
	conn.SetReadLimit(256 << 20) // screenshots come base64-encoded
	b.conn = conn
	go b.read()
	var v struct {
		Product string `json:"product"`
	}
	if err := b.call(ctx, "", "Browser.getVersion", nil, &v); err != nil {
		t.Fatal(err)
	}
	t.Logf("browser: %s", v.Product)
	return b
}

// read dispatches replies and records console errors until the
// connection ends.
func (b *browser) read() {
	defer close(b.done)
	for {
		_, data, err := b.conn.ReadMessage()
		if err != nil {
			b.mu.Lock()
			b.readErr = err
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var m cdpMessage
		if err := json.Unmarshal(data, &m); err != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch := b.pending[m.ID]; ch != nil {
				ch <- m
				delete(b.pending, m.ID)
			}
		} else {
			if b.watched[m.SessionID] {
				if e := consoleError(m); e != "" {
					b.consoleErrors = append(b.consoleErrors, e)
				}
			}
			if h := b.handlers[m.SessionID]; h != nil {
				h(m)
			}
		}
		b.mu.Unlock()
	}
}

// consoleError describes an event that is a console error, or "".
func consoleError(m cdpMessage) string {
	switch m.Method {
	case "Runtime.exceptionThrown":
		var p struct {
			Details struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		_ = json.Unmarshal(m.Params, &p)
		return "exception: " + p.Details.Text + " " + p.Details.Exception.Description
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		_ = json.Unmarshal(m.Params, &p)
		if p.Type == "error" || p.Type == "assert" {
			return fmt.Sprintf("console.%s: %v", p.Type, p.Args)
		}
	case "Log.entryAdded":
		var p struct {
			Entry struct {
				Level  string `json:"level"`
				Text   string `json:"text"`
				URL    string `json:"url"`
				Source string `json:"source"`
			} `json:"entry"`
		}
		_ = json.Unmarshal(m.Params, &p)
		if p.Entry.Level == "error" {
			return fmt.Sprintf("log (%s): %s %s", p.Entry.Source, p.Entry.Text, p.Entry.URL)
		}
	}
	return ""
}

// call sends a command (to a session, or to the browser when sessionID is
// empty) and decodes its result into result, if not nil.
func (b *browser) call(ctx context.Context, sessionID, method string, params, result any) error {
	id := b.nextID.Add(1)
	raw, err := json.Marshal(params)
	if err != nil {
		return err
	}
	if params == nil {
		raw = nil
	}
	ch := make(chan cdpMessage, 1)
	b.mu.Lock()
	if b.readErr != nil {
		b.mu.Unlock()
		return fmt.Errorf("%s: DevTools connection closed: %w", method, b.readErr)
	}
	b.pending[id] = ch
	b.mu.Unlock()
	msg, _ := json.Marshal(cdpMessage{ID: id, Method: method, Params: raw, SessionID: sessionID})
	b.wmu.Lock()
	_ = b.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	err = b.conn.WriteMessage(websocket.TextMessage, msg)
	b.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		switch {
		case !ok:
			return fmt.Errorf("%s: DevTools connection closed", method)
		case m.Error != nil:
			return fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
		case result != nil:
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// page is one tab, attached in flat mode.
type page struct {
	b       *browser
	target  string
	session string
}

// newPage opens a blank tab, in a new browser context (no cookies shared
// with the other tabs) when isolated, and watches its console if watch.
func (b *browser) newPage(isolated, watch bool) *page {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	params := map[string]any{"url": "about:blank"}
	if isolated {
		var bc struct {
			ID string `json:"browserContextId"`
		}
		if err := b.call(ctx, "", "Target.createBrowserContext", map[string]any{"disposeOnDetach": true}, &bc); err != nil {
			b.t.Fatal(err)
		}
		params["browserContextId"] = bc.ID
	}
	var tg struct {
		ID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", params, &tg); err != nil {
		b.t.Fatal(err)
	}
	var at struct {
		Session string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": tg.ID, "flatten": true}, &at); err != nil {
		b.t.Fatal(err)
	}
	p := &page{b: b, target: tg.ID, session: at.Session}
	if watch {
		b.mu.Lock()
		b.watched[at.Session] = true
		b.mu.Unlock()
	}
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		if err := b.call(ctx, at.Session, m, nil, nil); err != nil {
			b.t.Fatal(err)
		}
	}
	if err := b.call(ctx, at.Session, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": 1440, "height": 1000, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// navigate loads url and returns the navigation's error text ("" if it
// loaded, whatever its HTTP status).
func (p *page) navigate(url string) string {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var r struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.b.call(ctx, p.session, "Page.navigate", map[string]any{"url": url}, &r); err != nil {
		p.b.t.Fatal(err)
	}
	return r.ErrorText
}

// eval evaluates a JavaScript expression in the page and decodes its
// value (returned by value: JSON-able) into out, if not nil.
func (p *page) eval(expr string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := p.b.call(ctx, p.session, "Runtime.evaluate", map[string]any{
		"expression": expr, "returnByValue": true, "awaitPromise": true}, &r); err != nil {
		return err
	}
	if r.Exception != nil {
		return fmt.Errorf("evaluating %q: %s %s", expr, r.Exception.Text, r.Exception.Exception.Description)
	}
	if out != nil && len(r.Result.Value) > 0 {
		return json.Unmarshal(r.Result.Value, out)
	}
	return nil
}

// mustEval is eval that fails the test on error.
func (p *page) mustEval(expr string, out any) {
	p.b.t.Helper()
	if err := p.eval(expr, out); err != nil {
		p.b.t.Fatal(err)
	}
}

// screenshot saves a PNG of the element matched by selector (the whole
// page when selector is empty) to path.
func (p *page) screenshot(selector, path string) error {
	var rect struct{ X, Y, W, H float64 }
	expr := `(() => { const r = document.documentElement.getBoundingClientRect();
		return {X: 0, Y: 0, W: document.documentElement.scrollWidth, H: document.documentElement.scrollHeight}; })()`
	if selector != "" {
		expr = fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return null;
			const r = e.getBoundingClientRect();
			return {X: r.left + window.scrollX, Y: r.top + window.scrollY, W: r.width, H: r.height}; })()`, selector)
	}
	if err := p.eval(expr, &rect); err != nil {
		return err
	}
	if rect.W == 0 || rect.H == 0 {
		return fmt.Errorf("screenshot: %q has no size", selector)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var r struct {
		Data string `json:"data"`
	}
	if err := p.b.call(ctx, p.session, "Page.captureScreenshot", map[string]any{
		"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": rect.X, "y": rect.Y, "width": rect.W, "height": rect.H, "scale": 1},
	}, &r); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// errorsSeen returns the console errors seen so far in watched pages.
func (b *browser) errorsSeen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.consoleErrors...)
}

// cancelAuthPrompts makes the page answer every HTTP authentication
// prompt with Cancel, as a user without credentials would, so that the
// 401 page is shown.
func (p *page) cancelAuthPrompts() {
	p.b.t.Helper()
	respond := func(method string, params map[string]any) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = p.b.call(ctx, p.session, method, params, nil)
		}()
	}
	p.b.mu.Lock()
	p.b.handlers[p.session] = func(m cdpMessage) {
		var ev struct {
			RequestID string `json:"requestId"`
		}
		_ = json.Unmarshal(m.Params, &ev)
		switch m.Method {
		case "Fetch.requestPaused":
			respond("Fetch.continueRequest", map[string]any{"requestId": ev.RequestID})
		case "Fetch.authRequired":
			respond("Fetch.continueWithAuth", map[string]any{"requestId": ev.RequestID,
				"authChallengeResponse": map[string]any{"response": "CancelAuth"}})
		}
	}
	p.b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.b.call(ctx, p.session, "Fetch.enable", map[string]any{"handleAuthRequests": true}, nil); err != nil {
		p.b.t.Fatal(err)
	}
}
