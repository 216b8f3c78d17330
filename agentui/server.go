package agentui

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/websocket"

	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/web"
)

// Calls is what the dashboard needs from the IVR; *ivr.Service satisfies it.
//
// StartAgentVerification starts a verification for a live call on behalf of
// the named agent; value is the identifier of kind kind the caller read out.
// It returns an error matching *ivr.InvalidIDError for a value that does not
// parse, ivr.ErrKindNotOffered for a kind the broker does not take, and
// store.ErrNotFound for an unknown call.
type Calls interface {
	LiveCalls(ctx context.Context) ([]store.CallView, error)
	RecentCalls(ctx context.Context, since time.Time) ([]store.CallView, error)
	Timeline(ctx context.Context, callSID string) ([]store.Event, error)
	StartAgentVerification(ctx context.Context, callSID string, kind store.IDKind, value, agent string) (*store.Verification, error)
}

// Config configures a Server. Zero fields get defaults.
type Config struct {
	// PublicURL is the service's external base URL (IVR_PUBLIC_URL). Its
	// origin is the only one accepted on state-changing requests and on the
	// websocket; https makes the session cookie Secure. Empty: the request's
	// own Host over http (development).
	PublicURL string
	// SessionTTL is a session's absolute lifetime (default 12 h).
	SessionTTL time.Duration
	// IdleTimeout ends a session unused for this long (default 1 h). An open
	// dashboard counts as use.
	IdleTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// RecentWindow is how far back the "recent calls" list goes (default 24 h).
	RecentWindow time.Duration
	// LoginWindow is how long failed logins are remembered after the last
	// one (default 15 min); see throttle.go for what they cost.
	LoginWindow time.Duration
	// TrustedProxies are the proxies (IVR_TRUSTED_PROXIES) whose
	// X-Forwarded-For names the client address that failed logins are
	// throttled by and logged with. Empty: the peer's address, and
	// X-Forwarded-For is ignored.
	TrustedProxies []netip.Prefix
	// MaxConcurrentHashes bounds password checks running at once (default
	// 4): each takes argon2id's 19 MiB, so hashing never needs more than
	// this many times that, however many logins arrive together.
	MaxConcurrentHashes int
	// Sleep waits out a login's slow-down (default: a timer); tests
	// record the waits instead.
	Sleep func(ctx context.Context, d time.Duration) error
	// DemoLoginURL, in `ivrd demo` only, is where the login page sends
	// someone who has no password: the demo's one-click login.
	DemoLoginURL string
	// VerifyWith are the identifiers an agent can verify a caller with, in
	// the order the form offers them (default: national identity number).
	// ivr.AgentKinds says which the broker takes.
	VerifyWith []store.IDKind
	// Approver names what the caller approves with, in the agent's words
	// (default "BankID"; ivr.Approver).
	Approver string
}

// Server serves the agent dashboard under /agent/.
type Server struct {
	cfg      Config
	origin   string // scheme://host of PublicURL, or "" to use the request's Host
	secure   bool
	agents   store.AgentStore
	calls    Calls
	hub      *Hub
	log      *slog.Logger
	sessions *sessions
	throttle *throttle
	hashing  chan struct{} // a slot per password check allowed at once
	// hashingNow and hashingPeak count password checks running, for tests.
	hashingNow, hashingPeak atomic.Int32
	upgrader                websocket.Upgrader
	static                  http.Handler
	loginPage               *template.Template
	board                   *template.Template
}

// NewServer returns a Server and attaches calls to hub, so that the hub's
// snapshots start from the calls that are live now.
func NewServer(cfg Config, agents store.AgentStore, calls Calls, hub *Hub, log *slog.Logger) (*Server, error) {
	if agents == nil || calls == nil || hub == nil || log == nil {
		return nil, errors.New("agentui: new server: agents, calls, hub and log are required")
	}
	cfg.SessionTTL = cmp.Or(cfg.SessionTTL, 12*time.Hour)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, time.Hour)
	cfg.RecentWindow = cmp.Or(cfg.RecentWindow, 24*time.Hour)
	cfg.LoginWindow = cmp.Or(cfg.LoginWindow, 15*time.Minute)
	cfg.MaxConcurrentHashes = cmp.Or(cfg.MaxConcurrentHashes, 4)
	cfg.Approver = cmp.Or(cfg.Approver, "BankID")
	if len(cfg.VerifyWith) == 0 {
		cfg.VerifyWith = []store.IDKind{store.IDNationalID}
	}
	for _, k := range cfg.VerifyWith {
		if _, ok := kindFieldOf[k]; !ok {
			return nil, fmt.Errorf("agentui: new server: agents cannot verify with %q", k)
		}
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, agents: agents, calls: calls, hub: hub, log: log}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("agentui: public url: want http(s)://host")
		}
		s.origin = u.Scheme + "://" + strings.ToLower(u.Host)
		s.secure = u.Scheme == "https"
	}
	s.sessions = newSessions(agents, cfg)
	s.throttle = &throttle{agents: agents, now: cfg.Now, window: cfg.LoginWindow, sleep: cfg.Sleep, inflight: map[string]int{}}
	s.hashing = make(chan struct{}, cfg.MaxConcurrentHashes)
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  4096,
		WriteBufferPool:  &sync.Pool{}, // idle dashboards hold no write buffer
		CheckOrigin:      s.sameOrigin,
	}
	static, err := fs.Sub(web.FS, "static")
	if err != nil {
		return nil, fmt.Errorf("agentui: static files: %w", err)
	}
	s.static = http.StripPrefix("/agent/static/", http.FileServerFS(static))
	if s.loginPage, err = template.ParseFS(static, "login.html"); err != nil {
		return nil, fmt.Errorf("agentui: login template: %w", err)
	}
	if s.board, err = template.ParseFS(static, "dashboard.html"); err != nil {
		return nil, fmt.Errorf("agentui: dashboard template: %w", err)
	}
	hub.attach(source{calls: calls, keep: cfg.RecentWindow, now: cfg.Now})
	return s, nil
}

// Mount adds the dashboard's routes to r: /agent/ (login page or
// dashboard), /agent/login, /agent/logout, /agent/ws, /agent/api/calls,
// /agent/api/calls/{sid}/timeline, POST /agent/api/calls/{sid}/verify and
// /agent/static/.
func (s *Server) Mount(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(securityHeaders)
		r.Get("/agent", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/agent/", http.StatusMovedPermanently)
		})
		r.Get("/agent/", s.handleIndex)
		r.Get("/agent/login", s.handleLoginPage)
		r.Post("/agent/login", s.handleLogin)
		r.Post("/agent/logout", s.handleLogout)
		r.Get("/agent/ws", s.handleWS)
		r.Get("/agent/static/*", s.handleStatic)
		r.Get("/agent/api/calls", s.api(s.handleCalls))
		r.Get("/agent/api/calls/{sid}/timeline", s.api(s.handleTimeline))
		r.Post("/agent/api/calls/{sid}/verify", s.api(s.csrf(s.handleVerify)))
	})
}

// Handler is a router with only the dashboard's routes (Mount).
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	s.Mount(r)
	return r
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// handleStatic serves scripts, styles and images; the HTML templates are
// rendered by their handlers, not served raw.
func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) {
	switch path.Ext(r.URL.Path) {
	case ".js", ".css", ".svg", ".png", ".ico":
		w.Header().Set("Cache-Control", "no-cache")
		s.static.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.session(r)
	if !ok {
		http.Redirect(w, r, "/agent/login", http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	data := struct {
		Agent, CSRF, Approver string
		VerifyWith            []kindField
	}{sess.Agent, sess.CSRFToken, s.cfg.Approver, kindFields(s.cfg.VerifyWith)}
	if err := s.board.Execute(w, data); err != nil {
		s.log.Error("render dashboard", "err", err)
	}
}

// handleWS upgrades a logged-in agent's same-origin request to a websocket
// and hands it to the hub.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.session(r)
	if !ok {
		http.Error(w, "not logged in", http.StatusUnauthorized)
		return
	}
	if !s.sameOrigin(r) {
		http.Error(w, "cross-origin websocket refused", http.StatusForbidden)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	id := sess.ID
	s.hub.serve(ws, func() bool { return s.sessions.alive(context.Background(), id) })
}
