package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
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

	"github.com/gorilla/websocket"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/internal/sqlite"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

// TestStoreFailuresSurface holds the sqlite file's write lock from another
// connection (another process, a stuck migration): /readyz must answer 503
// naming the store, log an error, and count it in ivr_store_errors_total;
// and every failed read or write of the IVR is counted too.
func TestStoreFailuresSurface(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ivr.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b, err := cibatest.New(cibatest.Config{Issuer: "http://127.0.0.1:9999"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.RegisterClient(cibatest.Client{ID: "ivr", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	cl, err := ciba.New(t.Context(), ciba.Config{Issuer: b.Issuer(), ClientID: "ivr", Secret: "s", HTTPClient: b.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	broker := &lazyBroker{}
	broker.client.Store(cl)
	m := newMetrics()
	var logs bytes.Buffer
	now := time.Now()
	ready := &readiness{db: db, broker: broker, m: m, log: newLogger(&logs, slog.LevelInfo), now: func() time.Time { return now }}

	check := func(wantCode int, wantStore string) {
		t.Helper()
		now = now.Add(readinessEvery) // each check a fresh one
		w := httptest.NewRecorder()
		ready.handler(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var got map[string]string
		_ = json.Unmarshal(w.Body.Bytes(), &got)
		if w.Code != wantCode || got["store"] != wantStore {
			t.Errorf("/readyz = %d %s, want %d with store %q", w.Code, w.Body, wantCode, wantStore)
		}
	}
	check(http.StatusOK, "ok")

	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec("INSERT INTO write_probe (id, at) VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET at = 0"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	check(http.StatusServiceUnavailable, "unreachable")
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("/readyz took %v with the file locked; it must answer within its own 2 s budget", took)
	}
	if !strings.Contains(logs.String(), `"msg":"readiness: store check failed"`) || !strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Errorf("no error logged for the failed readiness check:\n%s", logs.String())
	}
	if got := metricValue(t, m, "ivr_store_errors_total"); got != 1 {
		t.Errorf("ivr_store_errors_total = %v after a failed check, want 1", got)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	check(http.StatusOK, "ok")

	// The IVR's own reads and writes: not-found and conflicts are answers;
	// real failures count.
	cs := countingStore{Store: db, m: m}
	if _, err := cs.Call(t.Context(), "CAnone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Call: %v", err)
	}
	if got := metricValue(t, m, "ivr_store_errors_total"); got != 1 {
		t.Errorf("a not-found counted as a store error (%v)", got)
	}
	db.Close() // the file is gone from under the service
	if err := cs.AppendEvent(t.Context(), &store.Event{CallSID: "CA1", Kind: store.EventFallback}); err == nil {
		t.Fatal("AppendEvent on a closed store succeeded")
	}
	if _, _, err := cs.NextDue(t.Context(), time.Now()); err == nil {
		t.Fatal("NextDue on a closed store succeeded")
	}
	if got := metricValue(t, m, "ivr_store_errors_total"); got != 3 {
		t.Errorf("ivr_store_errors_total = %v after two failed store calls, want 3", got)
	}
}

// metricValue scrapes m and returns the value of an unlabelled metric.
func metricValue(t *testing.T, m *metrics, name string) float64 {
	t.Helper()
	w := httptest.NewRecorder()
	m.handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`)
	mm := re.FindStringSubmatch(w.Body.String())
	if mm == nil {
		t.Fatalf("%s not in /metrics", name)
	}
	v, err := strconv.ParseFloat(mm[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// syncBuffer collects a subprocess's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond every 50 ms until it holds or the deadline passes.
func waitFor(t *testing.T, deadline time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("gave up after %v waiting for %s", deadline, what)
		}
		<-tick.C
	}
}

// TestKill9MidVerification builds ivrd, serves it against the simulator on
// loopback, puts a caller on hold waiting for BankID, kills the server
// with SIGKILL, starts it again on the same database and port, and has the
// person approve in BankID: the verification resumes, the caller hears the
// outcome on the next hop, and a dashboard sees it.
func TestKill9MidVerification(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it as a subprocess")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "ivrd")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	testStart := time.Now()

	// The broker simulator, in this process, on loopback, with our client key.
	b, keyFile := startSimBroker(t, dir, "RS256", cibatest.Config{}, nil)

	// A free loopback port for ivrd, kept across the restart.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	public := "http://" + addr
	const token, password = "kill9authtoken", "correct horse battery"
	env := []string{
		"IVR_LISTEN=" + addr,
		"IVR_PUBLIC_URL=" + public,
		"IVR_DB=" + filepath.Join(dir, "ivr.db"),
		"TWILIO_AUTH_TOKEN=" + token,
		"TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000", // virtualtwilio's
		"IVR_HASH_KEY=000102030405060708090a0b0c0d0e0f",
		"CIBA_ISSUER=" + b.Issuer(),
		"CIBA_CLIENT_ID=ivr",
		"CIBA_CLIENT_KEY=" + keyFile,
		"IVR_LOG_LEVEL=debug",
	}

	add := exec.CommandContext(t.Context(), bin, "agents", "add", "alice")
	add.Env, add.Stdin = env, strings.NewReader(password+"\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ivrd agents add: %v\n%s", err, out)
	}

	logs := &syncBuffer{}
	hc := &http.Client{Timeout: 10 * time.Second}
	serve := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command(bin, "serve")
		cmd.Env, cmd.Stdout, cmd.Stderr = env, logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
		waitFor(t, 10*time.Second, "ivrd ready", func() bool {
			resp, err := hc.Get(public + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		return cmd
	}
	srv := serve()

	// A caller enters the number of a person who approves only when told.
	var mu sync.Mutex
	var lastURL string
	rec := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path != "/twilio/status" {
			mu.Lock()
			lastURL = r.URL.RequestURI()
			mu.Unlock()
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	tw := &virtualtwilio.Twilio{BaseURL: public, AuthToken: token, HTTPClient: &http.Client{Transport: rec, Timeout: 10 * time.Second}}
	type result struct {
		tr  *virtualtwilio.Transcript
		err error
	}
	done := make(chan result, 1)
	go func() {
		tr, err := tw.Call(t.Context(), virtualtwilio.Caller{Keys: func(heard string) string {
			if strings.Contains(heard, "avsluta med fyrkant") {
				return cibatest.SEManual + "#"
			}
			return ""
		}})
		done <- result{tr, err}
	}()
	var simID string
	waitFor(t, 10*time.Second, "the server polling the broker", func() bool {
		reqs := b.Requests()
		if len(reqs) == 0 {
			return false
		}
		simID = reqs[0].ID
		return b.Polls(simID) > 0
	})

	// kill -9 while the caller is on hold.
	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.Wait()
	pollsBefore := b.Polls(simID)
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the call did not notice the server was gone")
	}
	if r.err == nil {
		t.Fatalf("the call went on without the server:\n%s", r.tr)
	}
	t.Logf("call cut by the kill (%v):\n%s", r.err, r.tr)
	if !strings.Contains(strings.Join(sayTexts(r.tr), "\n"), "Öppna BankID-appen") {
		t.Fatal("the caller was not on hold for BankID when the server died")
	}
	mu.Lock()
	retry := lastURL
	mu.Unlock()

	serve()
	// A dashboard connects: the snapshot has the call, still waiting.
	cookie := login(t, hc, public, "alice", password)
	ws := dialDashboard(t, public, cookie)
	snap := readMsg(t, ws)
	if snap["type"] != "snapshot" || !strings.Contains(mustJSON(snap), r.tr.CallSID) {
		t.Fatalf("first message %s, want a snapshot with the call", mustJSON(snap))
	}

	// The person approves in the app; the new server's poller picks it up.
	if err := b.Approve(simID, ""); err != nil {
		t.Fatal(err)
	}
	for {
		msg := readMsg(t, ws)
		ev, _ := msg["event"].(map[string]any)
		if msg["type"] == "event" && ev["kind"] == string(store.EventApproved) && ev["callSid"] == r.tr.CallSID {
			break
		}
	}
	if b.Polls(simID) <= pollsBefore {
		t.Errorf("no polls after the restart (%d before)", pollsBefore)
	}

	// Twilio asks again for the hop that failed: the caller hears the outcome.
	p := url.Values{"CallSid": {r.tr.CallSID}, "AccountSid": {"AC00000000000000000000000000000000"}, "From": {"+46701234567"},
		"To": {"+46812345678"}, "CallStatus": {"in-progress"}}
	var heard string
	for hop := 0; hop < 5 && !strings.Contains(heard, "<Enqueue"); hop++ {
		resp, err := tw.Post(t.Context(), retry, p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", retry, resp.StatusCode, body)
		}
		heard = string(body)
		doc, err := virtualtwilio.ParseTwiML(body)
		if err != nil {
			t.Fatal(err)
		}
		if g := doc.Find("Gather"); len(g) > 0 {
			retry = g[0].Attr("action")
		}
	}
	if !strings.Contains(heard, "Tack, Elsa") || !strings.Contains(heard, "<Enqueue") {
		t.Errorf("after the restart the caller heard:\n%s\nwant the verified outcome and the queue", heard)
	}

	// A dashboard connecting now gets the call verified in its snapshot.
	ws2 := dialDashboard(t, public, cookie)
	snap = readMsg(t, ws2)
	if s := mustJSON(snap); !strings.Contains(s, r.tr.CallSID) || !strings.Contains(s, `"status":"approved"`) || !strings.Contains(s, `"outcome":"verified"`) {
		t.Errorf("snapshot after the restart: %s\nwant the call verified", s)
	}
	tw.Post(t.Context(), "/twilio/status", url.Values{"CallSid": {r.tr.CallSID}, "CallStatus": {"completed"}})

	if out := logs.String(); strings.Contains(out, cibatest.SEManual) || strings.Contains(out, cibatest.SEManual[2:]) {
		t.Error("the server logged the full national identity number")
	}
	t.Logf("kill -9 test took %v (after the build)", time.Since(testStart).Round(time.Millisecond))
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func sayTexts(tr *virtualtwilio.Transcript) []string {
	var out []string
	for _, l := range tr.Lines {
		if l.Kind == "say" {
			out = append(out, l.Text)
		}
	}
	return out
}

// login signs in on the dashboard and returns the session cookie.
func login(t *testing.T, hc *http.Client, public, name, password string) *http.Cookie {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, public+"/agent/login",
		strings.NewReader(url.Values{"name": {name}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", public)
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Value != "" {
			return c
		}
	}
	t.Fatalf("login: %s, no session cookie", resp.Status)
	return nil
}

func dialDashboard(t *testing.T, public string, cookie *http.Cookie) *websocket.Conn {
	t.Helper()
	h := http.Header{"Origin": {public}, "Cookie": {cookie.Name + "=" + cookie.Value}}
	ws, resp, err := websocket.DefaultDialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(public, "http")+"/agent/ws", h)
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("dial dashboard: %v %s", err, status)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func readMsg(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m map[string]any
	if err := ws.ReadJSON(&m); err != nil {
		t.Fatalf("dashboard read: %v", err)
	}
	return m
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestVerificationOutcomesCounted: ivr_verifications_total counts each
// verification's outcome once, on the instance that ended it.
func TestVerificationOutcomesCounted(t *testing.T) {
	m := newMetrics()
	m.VerificationEnded(&store.Verification{ID: "v1", Country: store.Sweden, Status: store.VerApproved, Initiator: "caller"})
	m.VerificationEnded(&store.Verification{ID: "v2", Country: store.Norway, Status: store.VerDeclined, Initiator: "agent:alice"})
	w := httptest.NewRecorder()
	m.handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`ivr_verifications_total{country="SE",initiator="caller",outcome="approved"} 1`,
		`ivr_verifications_total{country="NO",initiator="agent",outcome="declined"} 1`,
	} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// countingPinger counts store checks.
type countingPinger struct{ n atomic.Int32 }

func (p *countingPinger) Ping(context.Context) error { p.n.Add(1); return nil }

// TestReadinessFloodIsCheap: /readyz wrote to the database on every request
// (59,068 writes in 12 s from a flood). It now answers from a check made at
// most a second ago.
func TestReadinessFloodIsCheap(t *testing.T) {
	p := &countingPinger{}
	broker := &lazyBroker{}
	now := time.Now()
	ready := &readiness{db: p, broker: broker, m: newMetrics(), log: slog.New(slog.DiscardHandler), now: func() time.Time { return now }}
	h := http.HandlerFunc(ready.handler)
	var wg sync.WaitGroup
	for range 500 {
		wg.Go(func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if w.Code != http.StatusServiceUnavailable { // the broker is not discovered
				t.Errorf("/readyz = %d", w.Code)
			}
		})
	}
	wg.Wait()
	if n := p.n.Load(); n != 1 {
		t.Errorf("%d store checks for 500 requests within a second, want 1", n)
	}
	now = now.Add(readinessEvery)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if n := p.n.Load(); n != 2 {
		t.Errorf("%d store checks after a second, want 2", n)
	}
}
