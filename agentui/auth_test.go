package agentui_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/websocket"

	"github.com/ivr/callerverify/agentui"
)

func TestLoginSetsAStrictHttpOnlyCookie(t *testing.T) {
	tests := []struct {
		name       string
		publicURL  string
		wantName   string
		wantSecure bool
	}{
		{"plain http in development", "", "ivr_agent", false},
		{"https public url makes it Secure and __Host-", "https://ivr.example.com", "__Host-ivr_agent", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, agentui.Config{PublicURL: tt.publicURL}, nil)
			cookie, err := e.s.Login(t.Context(), "Anna", testPass)
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			if cookie.Name != tt.wantName || cookie.Secure != tt.wantSecure || !cookie.HttpOnly ||
				cookie.SameSite != http.SameSiteStrictMode || len(cookie.Value) < 40 {
				t.Errorf("cookie = %+v, want %s, Secure=%v, HttpOnly, SameSite=Strict, a long value", cookie, tt.wantName, tt.wantSecure)
			}
			if got, want := cookie.Expires, e.clock.Now().Add(12*time.Hour); !got.Equal(want) {
				t.Errorf("cookie expires %v, want %v (12 h)", got, want)
			}
			if e.store.sessionCount() != 1 {
				t.Errorf("sessions stored = %d, want 1", e.store.sessionCount())
			}
			e.store.mu.Lock()
			for id := range e.store.sessions {
				if id == cookie.Value {
					t.Error("the store holds the cookie's token itself, want its hash")
				}
			}
			e.store.mu.Unlock()
		})
	}
}

func TestLoginForm(t *testing.T) {
	e := newEnv(t, agentui.Config{}, nil)
	tests := []struct {
		name     string
		form     url.Values
		origin   string
		want     int
		wantBody string
	}{
		{"right password redirects to the dashboard", url.Values{"name": {testAgent}, "password": {testPass}}, e.origin, http.StatusSeeOther, ""},
		{"wrong password is 401 with a message", url.Values{"name": {testAgent}, "password": {"nope nope nope"}}, e.origin, http.StatusUnauthorized, "Wrong agent name or password."},
		{"unknown agent looks the same", url.Values{"name": {"nobody"}, "password": {testPass}}, e.origin, http.StatusUnauthorized, "Wrong agent name or password."},
		{"foreign origin is refused", url.Values{"name": {testAgent}, "password": {testPass}}, "https://evil.example", http.StatusForbidden, ""},
		{"missing origin is refused", url.Values{"name": {testAgent}, "password": {testPass}}, "", http.StatusForbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.postForm(t, e.client(t), "/agent/login", tt.form, tt.origin)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("status %d, body %.200q; want %d containing %q", resp.StatusCode, body, tt.want, tt.wantBody)
			}
		})
	}
}

func TestDashboardNeedsASession(t *testing.T) {
	e := newEnv(t, agentui.Config{}, nil)
	c := e.client(t)
	resp := e.get(t, c, "/agent/")
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/agent/login" {
		t.Errorf("GET /agent/ without session: %d to %q, want 303 to /agent/login", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, path := range []string{"/agent/api/calls", "/agent/api/calls/CA1/timeline"} {
		resp := e.get(t, c, path)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without session: %d, want 401", path, resp.StatusCode)
		}
	}
	resp = e.get(t, c, "/agent/login")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `<form method="post" action="/agent/login"`) {
		t.Errorf("login page: %d, want 200 with the form", resp.StatusCode)
	}
	e.login(t, c)
	resp = e.get(t, c, "/agent/")
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), ">anna<") {
		t.Errorf("dashboard after login: %d, want 200 naming the agent", resp.StatusCode)
	}
}

func TestSessionExpiry(t *testing.T) {
	tests := []struct {
		name    string
		steps   []time.Duration // advance the clock, then use the session
		wantOK  bool
		comment string
	}{
		{"active session survives beyond the idle timeout", []time.Duration{50 * time.Minute, 50 * time.Minute, 50 * time.Minute}, true, ""},
		{"idle session ends", []time.Duration{61 * time.Minute}, false, ""},
		{"session ends at its absolute lifetime despite use", repeat(30*time.Minute, 24), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, agentui.Config{}, nil)
			c := e.client(t)
			e.login(t, c)
			var status int
			for _, d := range tt.steps {
				e.clock.Advance(d)
				resp := e.get(t, c, "/agent/api/calls")
				resp.Body.Close()
				status = resp.StatusCode
			}
			if ok := status == http.StatusOK; ok != tt.wantOK {
				t.Errorf("last status %d, want ok=%v", status, tt.wantOK)
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestLogoutNeedsCSRF(t *testing.T) {
	e := newEnv(t, agentui.Config{}, nil)
	c := e.client(t)
	csrf := e.login(t, c)
	tests := []struct {
		name   string
		form   url.Values
		origin string
		want   int
	}{
		{"no token is refused", url.Values{}, e.origin, http.StatusForbidden},
		{"wrong token is refused", url.Values{"csrf": {"forged"}}, e.origin, http.StatusForbidden},
		{"right token from a foreign origin is refused", url.Values{"csrf": {csrf}}, "https://evil.example", http.StatusForbidden},
		{"right token and origin log out", url.Values{"csrf": {csrf}}, e.origin, http.StatusSeeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.postForm(t, c, "/agent/logout", tt.form, tt.origin)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	if n := e.store.sessionCount(); n != 0 {
		t.Errorf("sessions after logout = %d, want 0", n)
	}
	resp := e.get(t, c, "/agent/api/calls")
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("API after logout: %d, want 401", resp.StatusCode)
	}
}

func TestWebsocketChecksSessionAndOrigin(t *testing.T) {
	e := newEnv(t, agentui.Config{}, nil)
	c := e.client(t)
	e.login(t, c)
	u, _ := url.Parse(e.srv.URL)
	cookies := c.Jar.Cookies(&url.URL{Scheme: "http", Host: u.Host, Path: "/agent/"})
	wsURL := "ws://" + u.Host + "/agent/ws"
	tests := []struct {
		name       string
		withCookie bool
		origin     string
		want       int
	}{
		{"no session is 401", false, e.origin, http.StatusUnauthorized},
		{"foreign origin is 403", true, "https://evil.example", http.StatusForbidden},
		{"missing origin is 403", true, "", http.StatusForbidden},
		{"same-origin agent is upgraded", true, e.origin, http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			if tt.withCookie {
				for _, ck := range cookies {
					h.Add("Cookie", ck.Name+"="+ck.Value)
				}
			}
			ws, resp, err := websocket.DefaultDialer.DialContext(t.Context(), wsURL, h)
			if ws != nil {
				ws.Close()
			}
			if resp == nil {
				t.Fatalf("dial: %v", err)
			}
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestSameOriginComesFromPublicURL(t *testing.T) {
	e := newEnv(t, agentui.Config{PublicURL: "https://ivr.example.com"}, nil)
	ctx := context.Background()
	cookie, err := e.s.Login(ctx, testAgent, testPass)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		origin string
		want   int
	}{
		{e.origin, http.StatusForbidden}, // the test server's own http origin is not the public one
		{"https://ivr.example.com", http.StatusSwitchingProtocols},
	} {
		h := http.Header{"Origin": {tt.origin}, "Cookie": {cookie.Name + "=" + cookie.Value}}
		ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.srv.URL, "http")+"/agent/ws", h)
		if ws != nil {
			ws.Close()
		}
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		if resp.StatusCode != tt.want {
			t.Errorf("origin %s: status %d, want %d", tt.origin, resp.StatusCode, tt.want)
		}
	}
}

func TestStaticAssets(t *testing.T) {
	e := newEnv(t, agentui.Config{}, nil)
	c := e.client(t)
	tests := []struct {
		path string
		want int
		ct   string
	}{
		{"/agent/static/dashboard.js", http.StatusOK, "text/javascript"},
		{"/agent/static/dashboard.css", http.StatusOK, "text/css"},
		{"/agent/static/login.html", http.StatusNotFound, ""}, // templates are rendered, not served raw
		{"/agent/static/../web.go", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		resp := e.get(t, c, tt.path)
		resp.Body.Close()
		if resp.StatusCode != tt.want || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ct) {
			t.Errorf("GET %s: %d %q, want %d %q", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.want, tt.ct)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: CSP %q, want script-src 'self'", tt.path, csp)
		}
	}
}

func TestSuccessfulLoginsDoNotCountAgainstTheLimit(t *testing.T) {
	e := newEnv(t, agentui.Config{}, nil)
	for i := range 8 {
		if _, err := e.s.Login(t.Context(), testAgent, testPass); err != nil {
			t.Fatalf("login %d: %v", i+1, err)
		}
	}
}

// TestMountedBesideOtherRoutes: the dashboard's routes go on the product's
// router beside others; its Handler serves them on its own too.
func TestMountedBesideOtherRoutes(t *testing.T) {
	e := newEnv(t, agentui.Config{}, nil)
	mounts := map[string]http.Handler{
		"Mount on a router with other routes": func() http.Handler {
			r := chi.NewRouter()
			r.Post("/twilio/voice", func(http.ResponseWriter, *http.Request) {})
			e.s.Mount(r)
			return r
		}(),
		"Handler":                  e.s.Handler(),
		"Handler under a ServeMux": func() http.Handler { m := http.NewServeMux(); m.Handle("/agent/", e.s.Handler()); return m }(),
	}
	for name, m := range mounts {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			m.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/agent/login", nil))
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Agent name") {
				t.Errorf("GET /agent/login: %d, want the login page", rec.Code)
			}
		})
	}
}

func TestLoginPagePointsToTheDemoLogin(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  agentui.Config
		want bool
	}{
		{"serve: no demo link", agentui.Config{}, false},
		{"demo: a link to the one-click login", agentui.Config{DemoLoginURL: "/demo/login"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg, nil)
			resp := e.get(t, e.client(t), "/agent/login")
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := strings.Contains(string(body), `href="/demo/login"`); got != tt.want {
				t.Errorf("login page links /demo/login: %t, want %t", got, tt.want)
			}
		})
	}
}
