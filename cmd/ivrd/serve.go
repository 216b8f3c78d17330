package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ivr/callerverify/agentui"
	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/internal/sqlite"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
)

// Compile-time checks that the parts fit the interfaces their consumers
// declare.
var (
	_ ivr.Publisher     = (*agentui.Hub)(nil)
	_ store.Store       = (*sqlite.DB)(nil)
	_ ivr.Authenticator = (*ciba.Client)(nil)
	_ ivr.Authenticator = (*lazyBroker)(nil)
	_ store.AgentStore  = (*sqlite.DB)(nil)
	_ agentui.Calls     = (*ivr.Service)(nil)
)

func cmdServe(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	cfg, err := loadServe(getenv, args)
	if err == flag.ErrHelp {
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	slog.SetDefault(log)
	keys, err := publishedKeys(cfg.Broker)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("IVR_LISTEN: %w", err)
	}
	broker := &lazyBroker{}
	return runServer(ctx, server{
		cfg:      cfg,
		log:      log,
		listener: ln,
		broker:   broker,
		discover: func(ctx context.Context) { broker.discover(ctx, cfg.Broker, nil, log) },
		jwks:     keys,
	})
}

// server is what runServer needs; serve and demo fill it differently.
type server struct {
	cfg       *Config
	log       *slog.Logger
	listener  net.Listener
	broker    *lazyBroker
	discover  func(ctx context.Context) // makes broker ready; runs in the background
	jwks      []jwkKey                  // our public signing keys, published for the broker
	extra     func(r chi.Router)        // more routes (the demo pages)
	demoLogin string                    // the demo's one-click agent login, offered on the login page
	started   func(app *app)            // called once serving
}

// app is the running service, for the demo's benefit.
type app struct {
	db    *sqlite.DB
	calls *ivr.Service
	ui    *agentui.Server
	hub   *agentui.Hub
}

func runServer(ctx context.Context, s server) error {
	cfg, log := s.cfg, s.log
	defer s.listener.Close()
	db, err := sqlite.Open(ctx, cfg.DBPath)
	if err != nil {
		return fmt.Errorf("IVR_DB: open %s: %w", cfg.DBPath, err)
	}
	defer db.Close()

	m := newMetrics()
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
	calls, err := ivr.NewService(ivr.Config{
		PublicURL:       cfg.PublicURL,
		TwilioAuthToken: cfg.TwilioAuthToken,
		Language:        cfg.Language,
		AgentQueue:      cfg.AgentQueue,
		DialNumber:      cfg.DialNumber,
		HashKey:         cfg.HashKey,
		RateLimitNumber: cfg.RateLimitNumber,
		RateLimitCaller: cfg.RateLimitCaller,
		PollConcurrency: cfg.PollConcurrency,
	}, countingStore{Store: db, m: m}, instrumentedBroker{next: s.broker, m: m}, countingPublisher{next: hub, m: m}, log.With("component", "ivr"))
	if err != nil {
		return fmt.Errorf("ivr: %w", err)
	}
	defer calls.Close()
	ui, err := agentui.NewServer(agentui.Config{PublicURL: cfg.PublicURL, DemoLoginURL: s.demoLogin}, db, calls, hub, log.With("component", "agentui"))
	if err != nil {
		return fmt.Errorf("agentui: %w", err)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Go(func() { s.discover(ctx) })
	wg.Go(func() { hub.Run(ctx) })
	wg.Go(func() { purgeLoop(ctx, db, cfg.Retention, log) })
	wg.Go(func() {
		if err := calls.Run(ctx); err != nil {
			log.Error("poller stopped", "err", err)
		}
	})

	r := chi.NewRouter()
	r.Handle("/twilio/*", m.instrument(calls.Handler()))
	r.Handle("/agent", http.RedirectHandler("/agent/", http.StatusMovedPermanently))
	r.Handle("/agent/*", ui.Handler())
	r.Get("/", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/agent/", http.StatusFound) })
	r.Get("/.well-known/jwks.json", jwksHandler(s.jwks))
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", readyHandler(db, s.broker, m, log))
	r.Handle("/metrics", m.handler())
	if s.extra != nil {
		s.extra(r)
	}
	srv := &http.Server{
		Handler:           r,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("serving", "addr", s.listener.Addr().String(), "public_url", cfg.PublicURL)
	if s.started != nil {
		s.started(&app{db: db, calls: calls, ui: ui, hub: hub})
	}
	return serveUntilDone(ctx, srv, s.listener, log)
}

func readyHandler(db *sqlite.DB, broker *lazyBroker, m *metrics, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		checks := map[string]string{"store": "ok", "broker": "ok"}
		status := http.StatusOK
		if err := db.Ping(ctx); err != nil {
			checks["store"], status = "unreachable", http.StatusServiceUnavailable
			m.storeErrors.Inc()
			log.Error("readiness: store check failed", "err", err)
		}
		if !broker.Ready() {
			checks["broker"], status = "not discovered", http.StatusServiceUnavailable
		}
		writeJSON(w, status, checks)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// purgeLoop deletes ended calls, their verifications and events once they
// are older than the retention period: at start and then every hour.
func purgeLoop(ctx context.Context, db *sqlite.DB, retention time.Duration, log *slog.Logger) {
	if retention <= 0 {
		return
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := db.PurgeEnded(ctx, time.Now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("retention purge failed", "err", err)
		case n > 0:
			log.Info("retention purge", "calls_deleted", n, "retention", retention.String())
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
func publishedKeys(b BrokerConfig) ([]jwkKey, error) {
	var keys []jwkKey
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
