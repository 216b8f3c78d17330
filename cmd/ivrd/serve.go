package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ivr/callerverify/agentui"
	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ivr"
)

// Compile-time checks that the parts fit the interfaces their consumers
// declare.
var (
	_ ivr.Publisher     = (*agentui.Hub)(nil)
	_ ivr.Authenticator = (*ciba.Client)(nil)
	_ ivr.Authenticator = (*lazyBroker)(nil)
	_ agentui.Calls     = (*ivr.Service)(nil)
)

func cmdServe(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	cfg, err := loadServe(getenv, args, stderr)
	if err != nil || cfg == nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	slog.SetDefault(log)
	warnReadableKey(cfg.Broker.KeyFile, log)
	keys, err := publishedKeys(cfg.Broker)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("IVR_LISTEN: %w", err)
	}
	var admin net.Listener
	if cfg.AdminListen != "" {
		if admin, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			ln.Close()
			return fmt.Errorf("IVR_ADMIN_LISTEN: %w", err)
		}
	}
	broker := &lazyBroker{}
	return runServer(ctx, server{
		cfg:      cfg,
		log:      log,
		listener: ln,
		admin:    admin,
		broker:   broker,
		discover: func(ctx context.Context) { broker.discover(ctx, cfg.Broker, nil, log) },
		jwks:     keys,
	})
}

// warnReadableKey warns when the private key file can be read by others
// than its owner.
func warnReadableKey(path string, log *slog.Logger) {
	if path == "" {
		return
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn("CIBA_CLIENT_KEY is readable by group or others: chmod 600 it", "file", path, "mode", st.Mode().Perm().String())
	}
}

// server is what runServer needs; serve and demo fill it differently.
type server struct {
	cfg       *Config
	log       *slog.Logger
	listener  net.Listener
	admin     net.Listener // IVR_ADMIN_LISTEN; nil serves /metrics on listener
	broker    *lazyBroker
	discover  func(ctx context.Context)       // makes broker ready; runs in the background
	jwks      []ciba.Key                      // our signing keys, whose public halves the broker fetches
	extra     func(r chi.Router)              // more routes (the demo pages)
	demoLogin string                          // the demo's one-click agent login, offered on the login page
	wrap      func(http.Handler) http.Handler // wraps the whole public handler (the demo's Host check)
	started   func(app *app)                  // called once serving
}

// app is the running service, for the demo's benefit.
type app struct {
	db    database
	calls *ivr.Service
	ui    *agentui.Server
	hub   *agentui.Hub
}

func runServer(ctx context.Context, s server) error {
	cfg, log := s.cfg, s.log
	defer s.listener.Close()
	if s.admin != nil {
		defer s.admin.Close()
	}
	db, err := openDatabase(ctx, cfg.DBPath)
	if err != nil {
		return fmt.Errorf("IVR_DB: %w", err)
	}
	defer db.Close()

	bi := readBuildInfo()
	backend := "sqlite"
	if isPostgresURL(cfg.DBPath) {
		backend = "postgres"
	}
	resumed, err := db.InFlight(ctx)
	if err != nil {
		return fmt.Errorf("IVR_DB: %w", err)
	}
	log.Info("starting", "version", bi.Version, "commit", bi.Revision, "database", backend,
		"profile", cfg.Broker.Profile, "ciba_mode", cfg.Mode, "pending_verifications_resumed", resumed)
	m := newMetrics()
	m.buildInfo(bi)
	hub := agentui.NewHub(log.With("component", "hub"))
	m.gauge("ivr_verifications_pending", "Verifications starting or waiting for the caller's BankID.", func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := db.InFlight(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	m.gauge("ivr_dashboards_connected", "Agent dashboards connected over websockets.", func() float64 { return float64(hub.Clients()) })
	rest, err := ivr.NewTwilioCalls(cfg.TwilioAccountSID, cfg.TwilioAuthToken, cfg.TwilioAPIURL, nil)
	if err != nil {
		return err
	}
	profile, err := ciba.ProfileByName(cfg.Broker.Profile)
	if err != nil {
		return fmt.Errorf("CIBA_PROFILE: %w", err)
	}
	calls, err := ivr.NewService(ivr.Config{
		Profile:           profile,
		Mode:              cfg.Mode,
		Identify:          cfg.Identify,
		Customer:          cfg.Customer,
		PublicURL:         cfg.PublicURL,
		TwilioAuthToken:   cfg.TwilioAuthToken,
		AccountSID:        cfg.TwilioAccountSID,
		Language:          cfg.Language,
		AgentQueue:        cfg.AgentQueue,
		DialNumber:        cfg.DialNumber,
		HashKey:           cfg.HashKey,
		RateLimitNumber:   cfg.RateLimitNumber,
		RateLimitCaller:   cfg.RateLimitCaller,
		RateLimitWithheld: cfg.RateLimitWithheld,
		RateLimitAgent:    cfg.RateLimitAgent,
		RateLimitGlobal:   cfg.RateLimitGlobal,
		MaxCallDuration:   cfg.MaxCallDuration,
		PollConcurrency:   cfg.PollConcurrency,
		Observer:          m,
		Calls:             rest,
	}, counting(db, m), instrumentedBroker{next: s.broker, m: m}, hub, log.With("component", "ivr"))
	if err != nil {
		return err
	}
	defer calls.Close()
	ui, err := agentui.NewServer(agentui.Config{
		PublicURL:      cfg.PublicURL,
		DemoLoginURL:   s.demoLogin,
		TrustedProxies: cfg.TrustedProxies,
		VerifyWith:     ivr.AgentKinds(profile),
		Approver:       ivr.Approver(profile),
	},
		db, calls, hub, log.With("component", "agentui"))
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Go(func() { s.discover(ctx) })
	wg.Go(func() { hub.Run(ctx) })
	wg.Go(func() { housekeeping(ctx, db, calls, cfg.Retention, log) })
	wg.Go(func() {
		if err := calls.Run(ctx); err != nil {
			log.Error("poller stopped", "err", err)
		}
	})

	ready := &readiness{db: db, broker: s.broker, m: m, log: log}
	health := func(r chi.Router) {
		r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})
		r.Get("/readyz", ready.handler)
	}
	r := chi.NewRouter()
	r.Group(func(r chi.Router) {
		r.Use(m.instrument)
		calls.Mount(r)
	})
	ui.Mount(r)
	r.Get("/", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/agent/", http.StatusFound) })
	r.Get("/.well-known/jwks.json", jwksHandler(s.jwks))
	health(r)
	if s.admin == nil {
		r.Handle("/metrics", m.handler())
	}
	if s.extra != nil {
		s.extra(r)
	}
	var h http.Handler = r
	if s.wrap != nil {
		h = s.wrap(h)
	}
	if s.admin != nil {
		ar := chi.NewRouter()
		ar.Handle("/metrics", m.handler())
		health(ar)
		asrv := newHTTPServer(ar, log)
		wg.Go(func() {
			if err := serveUntilDone(ctx, asrv, s.admin, log); err != nil {
				log.Error("admin listener stopped", "err", err)
			}
		})
		log.Info("serving metrics and health", "addr", s.admin.Addr().String())
	}
	log.Info("serving", "addr", s.listener.Addr().String(), "public_url", cfg.PublicURL)
	if s.started != nil {
		s.started(&app{db: db, calls: calls, ui: ui, hub: hub})
	}
	return serveUntilDone(ctx, newHTTPServer(h, log), s.listener, log)
}

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// readinessEvery is how old a readiness answer may be: a flood of /readyz
// requests costs one store check a second, not one write each.
const readinessEvery = time.Second

// readiness answers /readyz from a check made at most readinessEvery ago.
type readiness struct {
	db     interface{ Ping(context.Context) error }
	broker *lazyBroker
	m      *metrics
	log    *slog.Logger
	now    func() time.Time // default time.Now

	mu     sync.Mutex
	at     time.Time
	status int
	checks map[string]string
}

func (rd *readiness) handler(w http.ResponseWriter, r *http.Request) {
	status, checks := rd.check(r.Context())
	writeJSON(w, status, checks)
}

// check returns the last answer if it is recent, else checks again (one
// request at a time does; the others wait for its answer).
func (rd *readiness) check(ctx context.Context) (int, map[string]string) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	now := time.Now()
	if rd.now != nil {
		now = rd.now()
	}
	if !rd.at.IsZero() && now.Sub(rd.at) < readinessEvery {
		return rd.status, rd.checks
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	checks := map[string]string{"store": "ok", "broker": "ok"}
	status := http.StatusOK
	if err := rd.db.Ping(ctx); err != nil {
		checks["store"], status = "unreachable", http.StatusServiceUnavailable
		rd.m.storeErrors.Inc()
		rd.log.Error("readiness: store check failed", "err", err)
	}
	if !rd.broker.Ready() {
		checks["broker"], status = "not discovered", http.StatusServiceUnavailable
	}
	rd.at, rd.status, rd.checks = now, status, checks
	return status, checks
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// housekeeping ends calls whose status callback never came, every
// minute, and deletes ended calls, their verifications and events once they
// are older than the retention period, at start and then every hour (and
// checkpoints the database's write-ahead log after, so that deleted pages
// do not linger in it).
func housekeeping(ctx context.Context, db database, calls *ivr.Service, retention time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	var lastPurge time.Time
	for {
		if n, err := calls.EndStaleCalls(ctx); err != nil && ctx.Err() == nil {
			log.Error("ending stale calls failed", "err", err)
		} else if n > 0 {
			log.Warn("ended calls whose status callback never came", "calls", n)
		}
		if time.Since(lastPurge) >= time.Hour {
			lastPurge = time.Now()
			n, err := db.PurgeEnded(ctx, time.Now().Add(-retention))
			switch {
			case err != nil && ctx.Err() == nil:
				log.Error("retention purge failed", "err", err)
			case n > 0:
				log.Info("retention purge", "calls_deleted", n, "retention", retention.String())
			}
			if c, ok := db.(interface{ Checkpoint(context.Context) error }); ok { // sqlite's WAL
				if err := c.Checkpoint(ctx); err != nil && ctx.Err() == nil {
					log.Warn("checkpoint failed", "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// publishedKeys loads the signing key and any keys published beside it
// (CIBA_PUBLISH_KEYS) for /.well-known/jwks.json. Rotation: publish the
// next key, let the broker see it, switch CIBA_CLIENT_KEY to it while
// publishing the old one, and drop the old one once its last assertions
// have expired (a minute).
func publishedKeys(b BrokerConfig) ([]ciba.Key, error) {
	var keys []ciba.Key
	if b.KeyFile != "" {
		k, err := ciba.LoadKey(b.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("CIBA_CLIENT_KEY: %w", err)
		}
		keys = append(keys, k)
	}
	for _, f := range b.PublishKeys {
		k, err := ciba.LoadKey(f)
		if err != nil {
			return nil, fmt.Errorf("CIBA_PUBLISH_KEYS: %s: %w", f, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
