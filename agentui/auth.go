package agentui

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// Login errors.
var (
	ErrBadCredentials = errors.New("agentui: wrong agent name or password")
)

// RateLimitError is returned by Login when too many logins failed recently.
type RateLimitError struct{ RetryAfter time.Duration }

func (e *RateLimitError) Error() string { return "agentui: too many failed logins" }

const csrfHeader = "X-CSRF-Token"

// cookie returns the session cookie's name and path: a __Host- cookie on
// https (Secure, Path=/, no Domain), a plain one scoped to /agent otherwise.
func (s *Server) cookie() (name, path string) {
	if s.secure {
		return "__Host-ivr_agent", "/"
	}
	return "ivr_agent", "/agent"
}

// Login checks an agent's name and password, and on success creates a
// session and returns its cookie. It is the login of a trusted caller (the
// demo); the HTTP handler adds the client address, which failures are
// throttled by.
func (s *Server) Login(ctx context.Context, name, password string) (*http.Cookie, error) {
	return s.login(ctx, name, password, "")
}

func (s *Server) login(ctx context.Context, name, password, ip string) (*http.Cookie, error) {
	norm, nameErr := NormalizeAgentName(name)
	if nameErr != nil {
		norm = "" // all malformed names share one key
	}
	t, err := s.throttle.begin(ctx, norm, ip)
	if err != nil {
		return nil, err
	}
	defer t.end()
	hash := dummyHash
	a, err := s.agents.Agent(ctx, norm)
	switch {
	case nameErr == nil && err == nil:
		hash = a.PasswordHash
	case nameErr == nil && !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("agentui: login: %w", err)
	}
	ok, err := s.checkPassword(ctx, hash, password)
	if err != nil {
		return nil, err
	}
	if !ok || nameErr != nil || a.Name == "" {
		t.failed(ctx)
		return nil, ErrBadCredentials
	}
	t.succeeded(ctx)
	now := s.cfg.Now()
	token, sess, err := s.sessions.create(ctx, norm, now)
	if err != nil {
		return nil, err
	}
	name, path := s.cookie()
	return &http.Cookie{
		Name: name, Value: token, Path: path, Expires: sess.ExpiresAt,
		MaxAge:   int(sess.ExpiresAt.Sub(now).Seconds()),
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode,
	}, nil
}

// checkPassword checks pw against hash with at most MaxConcurrentHashes
// checks running at once: each takes argon2id's 19 MiB, so a burst of
// logins waits its turn instead of exhausting memory.
func (s *Server) checkPassword(ctx context.Context, hash, pw string) (bool, error) {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("agentui: login: %w", context.Cause(ctx))
	}
	n := s.hashingNow.Add(1)
	for {
		peak := s.hashingPeak.Load()
		if n <= peak || s.hashingPeak.CompareAndSwap(peak, n) {
			break
		}
	}
	defer func() {
		s.hashingNow.Add(-1)
		<-s.hashing
	}()
	return CheckPassword(hash, pw), nil
}

func (s *Server) clearCookie(w http.ResponseWriter) {
	name, path := s.cookie()
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
}

// session returns the request's valid session.
func (s *Server) session(r *http.Request) (store.Session, bool) {
	name, _ := s.cookie()
	c, err := r.Cookie(name)
	if err != nil || c.Value == "" {
		return store.Session{}, false
	}
	return s.sessions.get(r.Context(), sessionID(c.Value))
}

// sameOrigin reports whether the request's Origin (or, lacking one, its
// Referer) is the service's own origin. A request with neither is refused.
func (s *Server) sameOrigin(r *http.Request) bool {
	want := s.origin
	if want == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		want = scheme + "://" + strings.ToLower(r.Host)
	}
	got := r.Header.Get("Origin")
	if got == "" {
		u, err := url.Parse(r.Header.Get("Referer"))
		if err != nil || u.Host == "" {
			return false
		}
		got = u.Scheme + "://" + u.Host
	}
	return strings.EqualFold(got, want)
}

// checkCSRF reports whether a state-changing request carries the session's
// CSRF token (header or form field) and a same-origin Origin.
func (s *Server) checkCSRF(r *http.Request, sess store.Session) bool {
	tok := r.Header.Get(csrfHeader)
	if tok == "" {
		tok = r.PostFormValue("csrf")
	}
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(sess.CSRFToken)) == 1 && s.sameOrigin(r)
}

// clientIP is the address of the client: the peer's, unless the peer is a
// trusted proxy, in which case the last address in X-Forwarded-For that is
// not a trusted proxy. Without trusted proxies X-Forwarded-For is ignored
// (anyone can send it).
func (s *Server) clientIP(r *http.Request) string {
	peer := remoteAddr(r.RemoteAddr)
	if !s.trusted(peer) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a garbled hop: trust nothing before it
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return a.String()
		}
	}
	return peer.String()
}

func remoteAddr(hostport string) netip.Addr {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(hostport)
	return a.Unmap()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.session(r); ok {
		http.Redirect(w, r, "/agent/", http.StatusSeeOther)
		return
	}
	s.renderLogin(w, http.StatusOK, "", "")
}

func (s *Server) renderLogin(w http.ResponseWriter, status int, name, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := s.loginPage.Execute(w, map[string]string{"Name": name, "Error": msg, "DemoLogin": s.cfg.DemoLoginURL}); err != nil {
		s.log.Error("render login page", "err", err)
	}
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if !s.sameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		s.renderLogin(w, http.StatusBadRequest, "", "The form could not be read. Please try again.")
		return
	}
	name, ip := r.PostFormValue("name"), s.clientIP(r)
	agent, nameErr := NormalizeAgentName(name)
	if nameErr != nil {
		agent = "(not an agent name)"
	}
	cookie, err := s.login(r.Context(), name, r.PostFormValue("password"), ip)
	var rl *RateLimitError
	switch {
	case err == nil:
		s.log.Info("agent logged in", "agent", agent, "client_ip", ip)
		http.SetCookie(w, cookie)
		http.Redirect(w, r, "/agent/", http.StatusSeeOther)
	case errors.As(err, &rl):
		secs := int(math.Ceil(rl.RetryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.log.Warn("agent login refused: too many failures", "agent", agent, "client_ip", ip, "retry_after", rl.RetryAfter.String())
		s.renderLogin(w, http.StatusTooManyRequests, name, "Too many failed attempts from here. Try again in "+waitWords(rl.RetryAfter)+".")
	case errors.Is(err, ErrBadCredentials):
		s.log.Warn("agent login failed", "agent", agent, "client_ip", ip)
		s.renderLogin(w, http.StatusUnauthorized, name, "Wrong agent name or password.")
	default:
		s.log.Error("login", "agent", agent, "client_ip", ip, "err", err)
		s.renderLogin(w, http.StatusInternalServerError, name, "Something went wrong. Please try again.")
	}
}

// waitWords says a wait in words: "30 seconds", "2 minutes".
func waitWords(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d seconds", int(math.Ceil(d.Seconds())))
	}
	if m := int(math.Ceil(d.Minutes())); m != 1 {
		return fmt.Sprintf("%d minutes", m)
	}
	return "1 minute"
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.session(r)
	if !ok {
		s.clearCookie(w)
		http.Redirect(w, r, "/agent/login", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if !s.checkCSRF(r, sess) {
		http.Error(w, "missing or wrong CSRF token or origin", http.StatusForbidden)
		return
	}
	if err := s.sessions.delete(r.Context(), sess.ID); err != nil {
		s.log.Error("logout", "err", err)
		http.Error(w, "logout failed; try again", http.StatusInternalServerError)
		return
	}
	s.clearCookie(w)
	http.Redirect(w, r, "/agent/login", http.StatusSeeOther)
}

// sessions creates and checks sessions. The store keeps them (so a restart
// keeps agents logged in); last use, for the idle timeout, is kept in
// memory: after a restart a session's idle clock starts again.
type sessions struct {
	store store.AgentStore
	ttl   time.Duration
	idle  time.Duration
	now   func() time.Time
}

// touchEvery is how stale a session's stored last use may get: it is
// written at most this often, not on every request.
const touchEvery = time.Minute

func newSessions(agents store.AgentStore, cfg Config) *sessions {
	return &sessions{store: agents, ttl: cfg.SessionTTL, idle: cfg.IdleTimeout, now: cfg.Now}
}

// sessionID is the stored ID of a cookie token: its SHA-256, hex.
func sessionID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (ss *sessions) create(ctx context.Context, agent string, now time.Time) (string, store.Session, error) {
	// Logging in is a fine moment to clear out sessions that expired.
	if _, err := ss.store.DeleteExpiredSessions(ctx, now); err != nil {
		return "", store.Session{}, fmt.Errorf("agentui: delete expired sessions: %w", err)
	}
	token := randomToken()
	sess := store.Session{ID: sessionID(token), Agent: agent, CSRFToken: randomToken(),
		CreatedAt: now.UTC(), ExpiresAt: now.Add(ss.ttl).UTC(), LastUsedAt: now.UTC()}
	if err := ss.store.CreateSession(ctx, sess); err != nil {
		return "", store.Session{}, fmt.Errorf("agentui: create session: %w", err)
	}
	return token, sess, nil
}

// get returns the session with the given ID if it has neither expired nor
// been idle too long, and marks it used.
func (ss *sessions) get(ctx context.Context, id string) (store.Session, bool) {
	sess, err := ss.store.Session(ctx, id)
	if err != nil {
		return store.Session{}, false
	}
	return sess, ss.use(ctx, sess)
}

// alive is asked by an open websocket at every ping: an open dashboard keeps
// its session from going idle, and a session that ended (logout, expiry,
// agent removed) closes the websocket. A store error keeps it open.
func (ss *sessions) alive(ctx context.Context, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sess, err := ss.store.Session(ctx, id)
	if err != nil {
		return !errors.Is(err, store.ErrNotFound)
	}
	return ss.use(ctx, sess)
}

// use reports whether sess is still valid and, if so, marks it used now.
// The last use is kept in the store, so every instance applies the same
// idle timeout; it is written at most every touchEvery. An expired or idle
// session is deleted.
func (ss *sessions) use(ctx context.Context, sess store.Session) bool {
	now := ss.now()
	if !now.Before(sess.ExpiresAt) || now.Sub(sess.LastUsedAt) >= ss.idle {
		_ = ss.store.DeleteSession(ctx, sess.ID) // best effort; it is refused anyway
		return false
	}
	if now.Sub(sess.LastUsedAt) >= touchEvery {
		_ = ss.store.TouchSession(ctx, sess.ID, now) // best effort: the next use tries again
	}
	return true
}

func (ss *sessions) delete(ctx context.Context, id string) error {
	if err := ss.store.DeleteSession(ctx, id); err != nil {
		return fmt.Errorf("agentui: delete session: %w", err)
	}
	return nil
}
