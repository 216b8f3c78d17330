package agentui_test

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivr/callerverify/agentui"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
)

// memStore is an in-memory store.AgentStore.
type memStore struct {
	mu       sync.Mutex
	agents   map[string]store.Agent
	sessions map[string]store.Session
	failures map[string]store.LoginFailures
}

func newMemStore() *memStore {
	return &memStore{agents: map[string]store.Agent{}, sessions: map[string]store.Session{}, failures: map[string]store.LoginFailures{}}
}

func (m *memStore) CreateAgent(_ context.Context, a store.Agent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.agents[a.Name]; ok {
		return store.ErrExists
	}
	m.agents[a.Name] = a
	return nil
}

func (m *memStore) Agent(_ context.Context, name string) (store.Agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.agents[name]
	if !ok {
		return store.Agent{}, store.ErrNotFound
	}
	return a, nil
}

func (m *memStore) Agents(context.Context) ([]store.Agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Agent
	for _, a := range m.agents {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b store.Agent) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (m *memStore) DeleteAgent(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.agents[name]; !ok {
		return store.ErrNotFound
	}
	delete(m.agents, name)
	for id, s := range m.sessions {
		if s.Agent == name {
			delete(m.sessions, id)
		}
	}
	return nil
}

func (m *memStore) CreateSession(_ context.Context, s store.Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.agents[s.Agent]; !ok {
		return store.ErrNotFound
	}
	m.sessions[s.ID] = s
	return nil
}

func (m *memStore) Session(_ context.Context, id string) (store.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return store.Session{}, store.ErrNotFound
	}
	return s, nil
}

func (m *memStore) DeleteSession(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, id)
	return nil
}

func (m *memStore) DeleteExpiredSessions(_ context.Context, now time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, s := range m.sessions {
		if !now.Before(s.ExpiresAt) {
			delete(m.sessions, id)
			n++
		}
	}
	return n, nil
}

func (m *memStore) sessionCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// fakeCalls is an in-memory agentui.Calls. StartAgentVerification records
// its arguments and, unless err is set, publishes the events a real service
// would (verification started) through pub.
type fakeCalls struct {
	mu       sync.Mutex
	live     []store.CallView
	recent   []store.CallView
	timeline map[string][]store.Event
	err      error                    // returned by StartAgentVerification when set
	status   store.VerificationStatus // of the verification it returns; starting when empty
	pub      ivr.Publisher            // may be nil
	started  []startCall
}

type startCall struct {
	sid   string
	kind  store.IDKind
	value string // as parsed
	agent string
}

func (f *fakeCalls) LiveCalls(context.Context) ([]store.CallView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.live), nil
}

func (f *fakeCalls) RecentCalls(context.Context, time.Time) ([]store.CallView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.recent), nil
}

func (f *fakeCalls) Timeline(_ context.Context, sid string) ([]store.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev, ok := f.timeline[sid]
	if !ok {
		return nil, store.ErrNotFound
	}
	return ev, nil
}

// parseAs reads value as the real service does, before anything is stored.
func parseAs(kind store.IDKind, value string) (ivr.Identity, error) {
	switch kind {
	case store.IDNationalID:
		n, err := ivr.ParseNationalID(value, time.Now())
		return ivr.NationalIdentity(n), err
	case store.IDCustomer:
		return ivr.CustomerRules{Check: "luhn"}.Parse(value)
	case store.IDPhone:
		return ivr.ParsePhone(value)
	case store.IDEmail:
		return ivr.ParseEmail(value)
	}
	return ivr.Identity{}, ivr.ErrKindNotOffered
}

func (f *fakeCalls) StartAgentVerification(ctx context.Context, sid string, kind store.IDKind, value, agent string) (*store.Verification, error) {
	id, err := parseAs(kind, value)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.started = append(f.started, startCall{sid, kind, id.Value(), agent})
	err = f.err
	var cv *store.CallView
	for i := range f.live {
		if f.live[i].CallSID == sid {
			c := f.live[i]
			cv = &c
		}
	}
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if cv == nil {
		return nil, store.ErrNotFound
	}
	v := &store.Verification{ID: "ver-1", CallSID: sid, Country: store.Sweden,
		MaskedID: id.Masked(), Initiator: "agent:" + agent, Status: cmp.Or(f.status, store.VerStarting)}
	if f.pub != nil {
		cv.State = store.ViewStarting
		cv.Verification = &store.VerificationView{ID: v.ID, Country: "SE", Method: "Swedish BankID",
			MaskedID: v.MaskedID, Status: string(v.Status), Initiator: v.Initiator}
		f.pub.Publish(ctx, store.Event{Seq: 100, At: time.Now(), CallSID: sid, VerificationID: v.ID,
			Kind: "verification_started", Actor: "agent:" + agent, Detail: "agent started BankID", Call: cv})
	}
	return v, nil
}

func (f *fakeCalls) startedCalls() []startCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.started)
}

// Test personnummer that pass the Luhn check (Skatteverket's test range).
const (
	validSE   = "199001012385"
	testAgent = "anna"
	testPass  = "correct horse battery"
)

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// env is a running dashboard server with one agent, "anna".
type env struct {
	srv    *httptest.Server
	s      *agentui.Server
	hub    *agentui.Hub
	store  *memStore
	calls  *fakeCalls
	clock  *clock
	origin string

	stopHub func() // cancels Run and waits for it to return; idempotent
	ws      *wsGate
}

// wsGate stands between the dashboards and /agent/ws like a network that
// can fail: cut drops every open websocket and refuses new ones (503)
// until restore.
type wsGate struct {
	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{} // hijacked, that is websocket, connections
}

func (g *wsGate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		down := g.down
		g.mu.Unlock()
		if down && r.URL.Path == "/agent/ws" {
			http.Error(w, "network down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// track is the server's ConnState hook: it keeps the connections that
// handlers hijacked.
func (g *wsGate) track(c net.Conn, st http.ConnState) {
	if st != http.StateHijacked {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.conns[c] = struct{}{}
}

func (g *wsGate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down = true
	for c := range g.conns {
		c.Close()
		delete(g.conns, c)
	}
}

func (g *wsGate) restore() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down = false
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newEnv starts a hub and a server with cfg (Now is set to a test clock).
// Each opt is applied to the hub before it runs.
func newEnv(t testing.TB, cfg agentui.Config, calls *fakeCalls, opts ...func(*agentui.Hub)) *env {
	t.Helper()
	if calls == nil {
		calls = &fakeCalls{timeline: map[string][]store.Event{}}
	}
	e := &env{store: newMemStore(), calls: calls, clock: &clock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}}
	if err := agentui.AddAgent(t.Context(), e.store, testAgent, testPass, e.clock.Now()); err != nil {
		t.Fatalf("AddAgent: %v", err)
	}
	e.hub = agentui.NewHub(discardLog())
	calls.pub = e.hub
	for _, o := range opts {
		o(e.hub)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.hub.Run(ctx); close(done) }()
	e.stopHub = func() { cancel(); <-done }
	t.Cleanup(e.stopHub)

	cfg.Now = e.clock.Now
	s, err := agentui.NewServer(cfg, e.store, calls, e.hub, discardLog())
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	e.s = s
	e.ws = &wsGate{conns: map[net.Conn]struct{}{}}
	e.srv = httptest.NewUnstartedServer(e.ws.wrap(s.Handler()))
	e.srv.Config.ConnState = e.ws.track
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	e.origin = e.srv.URL
	return e
}

// client returns an HTTP client with a cookie jar that does not follow redirects.
func (e *env) client(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// login logs c in as anna through the login form and returns the CSRF token.
func (e *env) login(t *testing.T, c *http.Client) string {
	t.Helper()
	resp := e.postForm(t, c, "/agent/login", url.Values{"name": {testAgent}, "password": {testPass}}, e.origin)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: status %d, want 303", resp.StatusCode)
	}
	resp = e.get(t, c, "/agent/")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	const marker = `<meta name="csrf-token" content="`
	i := strings.Index(string(body), marker)
	if i < 0 {
		t.Fatalf("dashboard has no CSRF token; status %d", resp.StatusCode)
	}
	rest := string(body)[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}

func (e *env) get(t *testing.T, c *http.Client, path string) *http.Response {
	t.Helper()
	resp, err := c.Get(e.srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp
}

func (e *env) postForm(t *testing.T, c *http.Client, path string, form url.Values, origin string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return resp
}
