package agentui_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivr/callerverify/agentui"
)

// loginFrom posts the login form as a browser behind the proxy at the test
// server's address would, the proxy saying the client is xff.
func (e *env) loginFrom(t *testing.T, xff, name, password string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/agent/login", strings.NewReader(url.Values{"name": {name}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.origin)
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := e.client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

var loopbackProxy = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}

// waits records the slow-downs a server asked for, instead of waiting.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(_ context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return nil
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// TestGuessingCannotLockOutAgents is the attack of the security review:
// five wrong passwords for one agent locked out every agent from the same
// address, and behind the README's nginx every agent has the same address,
// so a correct password was then refused too.
func TestGuessingCannotLockOutAgents(t *testing.T) {
	w := &waits{}
	e := newEnv(t, agentui.Config{TrustedProxies: loopbackProxy, Sleep: w.sleep}, nil)
	const attacker, agentDesk, otherDesk = "203.0.113.5", "198.51.100.7", "198.51.100.8"
	for i := range 5 {
		if resp := e.loginFrom(t, attacker, testAgent, "a wrong guess"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i+1, resp.StatusCode)
		}
	}
	// The guesser now waits: a minute, then twice as long after each failure.
	resp := e.loginFrom(t, attacker, testAgent, "another guess")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "60" {
		t.Errorf("6th guess from one address: %d, Retry-After %q; want 429, 60", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The agent, at their desk behind the same proxy, gets in.
	if resp := e.loginFrom(t, agentDesk, testAgent, testPass); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the right password from the agent's desk: %d, want 303", resp.StatusCode)
	}
	if err := agentui.AddAgent(t.Context(), e.store, "bert", testPass, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if resp := e.loginFrom(t, otherDesk, "bert", testPass); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("another agent behind the proxy: %d, want 303", resp.StatusCode)
	}
	// The guesses slowed down every try on the name, never refused one.
	if got := w.all(); len(got) == 0 || got[0] != 500*time.Millisecond {
		t.Errorf("slow-downs %v, want the name's attempts slowed after 5 failures", got)
	}
	// After the wait, the guesser's next failure doubles it.
	e.clock.Advance(time.Minute)
	e.loginFrom(t, attacker, testAgent, "guess after the wait")
	if resp := e.loginFrom(t, attacker, testAgent, "and another"); resp.Header.Get("Retry-After") != "120" {
		t.Errorf("after another failure: Retry-After %q, want 120", resp.Header.Get("Retry-After"))
	}
	// Failures are forgotten after a quiet window.
	e.clock.Advance(16 * time.Minute)
	if resp := e.loginFrom(t, attacker, testAgent, testPass); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("right password after the window: %d, want 303", resp.StatusCode)
	}
}

func TestSlowDownOfANameGrowsAndIsBounded(t *testing.T) {
	w := &waits{}
	e := newEnv(t, agentui.Config{TrustedProxies: loopbackProxy, Sleep: w.sleep}, nil)
	// A botnet: every guess from another address.
	for i := range 12 {
		e.loginFrom(t, "203.0.113."+string(rune('1'+i%9))+string(rune('0'+i/9)), testAgent, "guess")
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
	if got := w.all(); len(got) != len(want) || got[0] != want[0] || got[3] != want[3] || got[6] != want[6] {
		t.Errorf("slow-downs %v, want %v", got, want)
	}
	if resp := e.loginFrom(t, "198.51.100.7", testAgent, testPass); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the right password during the spray: %d, want 303 (slowed, not refused)", resp.StatusCode)
	}
}

func TestForwardedForIsBelievedOnlyFromTrustedProxies(t *testing.T) {
	e := newEnv(t, agentui.Config{Sleep: (&waits{}).sleep}, nil) // no trusted proxies
	// A guesser cannot escape the per-address limit by inventing addresses.
	for i := range 6 {
		e.loginFrom(t, "203.0.113."+string(rune('1'+i)), testAgent, "guess")
	}
	if resp := e.loginFrom(t, "203.0.113.99", testAgent, "guess"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("forged X-Forwarded-For from an untrusted peer: %d, want 429", resp.StatusCode)
	}
}

func TestParallelGuessesAreLimitedToo(t *testing.T) {
	e := newEnv(t, agentui.Config{TrustedProxies: loopbackProxy, Sleep: (&waits{}).sleep}, nil)
	codes := make(chan int, 20)
	for range 20 {
		go func() { codes <- e.loginFrom(t, "203.0.113.5", testAgent, "a wrong guess").StatusCode }()
	}
	checked := 0
	for range 20 {
		if <-codes == http.StatusUnauthorized {
			checked++
		}
	}
	if checked != 5 {
		t.Errorf("%d of 20 parallel guesses were checked, want 5 (the rest told to wait)", checked)
	}
}

// TestLoginFloodKeepsMemoryBounded: forty concurrent logins took the process
// from 61 MB to 784 MB, argon2id taking 19 MiB each without a cap.
func TestLoginFloodKeepsMemoryBounded(t *testing.T) {
	e := newEnv(t, agentui.Config{MaxConcurrentHashes: 3, Sleep: (&waits{}).sleep}, nil)
	const n = 100
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			pw := "wrong password"
			if i%10 == 0 {
				pw = testPass
			}
			_, errs[i] = e.s.Login(t.Context(), testAgent, pw)
		})
	}
	wg.Wait()
	ok, bad := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, agentui.ErrBadCredentials):
			bad++
		}
	}
	if ok != n/10 || bad != n-n/10 {
		t.Errorf("%d logged in and %d refused, want %d and %d", ok, bad, n/10, n-n/10)
	}
	if peak := agentui.PeakHashing(e.s); peak < 1 || peak > 3 {
		t.Errorf("%d password checks ran at once, want at most 3", peak)
	}
}

func TestLoginsAreLoggedWithoutThePassword(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	e := newEnv(t, agentui.Config{}, nil)
	s, err := agentui.NewServer(agentui.Config{TrustedProxies: loopbackProxy, Now: e.clock.Now}, e.store, e.calls, e.hub, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	e.srv, e.origin = srv, srv.URL
	e.loginFrom(t, "198.51.100.7", testAgent, "secret wrong password")
	e.loginFrom(t, "198.51.100.7", testAgent, testPass)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{`"msg":"agent login failed","agent":"anna","client_ip":"198.51.100.7"`, `"msg":"agent logged in","agent":"anna","client_ip":"198.51.100.7"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret wrong password") || strings.Contains(out, testPass) {
		t.Errorf("a password reached the log:\n%s", out)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
