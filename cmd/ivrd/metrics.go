package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
)

// metrics are the service's Prometheus metrics, on a registry of their own
// (no global state). Labels never carry personal data: routes are from a
// fixed list, outcomes and countries from fixed sets.
type metrics struct {
	reg           *prometheus.Registry
	webhook       *prometheus.HistogramVec
	verifications *prometheus.CounterVec
	brokerLatency *prometheus.HistogramVec
	brokerErrors  *prometheus.CounterVec
	storeErrors   prometheus.Counter
	rateLimited   *prometheus.CounterVec
	interrupts    *prometheus.CounterVec
	safetyNet     prometheus.Counter
	notifications *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.webhook = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ivr_webhook_duration_seconds",
		Help:    "Time to answer a Twilio webhook, by route and status code class.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
	}, []string{"route", "code"})
	m.verifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ivr_verifications_total",
		Help: "Verifications that reached an outcome, by outcome, country and initiator.",
	}, []string{"outcome", "country", "initiator"})
	m.brokerLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ivr_broker_request_duration_seconds",
		Help:    "Time of requests to the eID broker, by endpoint and result.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20},
	}, []string{"endpoint", "result"})
	m.brokerErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ivr_broker_errors_total",
		Help: "Failed requests to the eID broker (unreachable, 5xx, garbage, client rejected), by endpoint and kind.",
	}, []string{"endpoint", "kind"})
	m.storeErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ivr_store_errors_total",
		Help: "Failed store operations: reads and writes of the IVR (calls, verifications, events) and readiness checks.",
	})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ivr_rate_limited_total",
		Help: "Verifications a rate limit refused, by limit: number, caller, withheld, agent, global.",
	}, []string{"limit"})
	m.interrupts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ivr_hold_interrupts_total",
		Help: "Holds interrupted through Twilio's REST API when an outcome was learnt, by result: sent, failed (the caller then hears it at the next hop).",
	}, []string{"result"})
	m.safetyNet = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ivr_safety_net_outcomes_total",
		Help: "Outcomes a hop of the hold loop brought the caller because no interrupt did.",
	})
	m.notifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ivr_ping_notifications_total",
		Help: "CIBA ping notifications received, by result: accepted, unknown (a token never issued), reused, bad (malformed).",
	}, []string{"result"})
	m.reg.MustRegister(m.webhook, m.verifications, m.brokerLatency, m.brokerErrors, m.storeErrors, m.rateLimited, m.interrupts, m.safetyNet, m.notifications,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// RateLimited counts a verification a rate limit refused (ivr.Observer).
func (m *metrics) RateLimited(scope store.LimitScope) {
	m.rateLimited.WithLabelValues(string(scope)).Inc()
}

// Interrupted counts a hold interrupt (ivr.Observer).
func (m *metrics) Interrupted(ok bool) {
	result := "sent"
	if !ok {
		result = "failed"
	}
	m.interrupts.WithLabelValues(result).Inc()
}

// SafetyNet counts an outcome the hold loop's own hop delivered
// (ivr.Observer).
func (m *metrics) SafetyNet() { m.safetyNet.Inc() }

// Notified counts a ping notification by result (ivr.Observer).
func (m *metrics) Notified(result string) { m.notifications.WithLabelValues(result).Inc() }

// buildInfo registers ivr_build_info: 1, labelled with the build.
func (m *metrics) buildInfo(b buildInfo) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ivr_build_info",
		Help: "The running build: always 1, labelled with version, commit and Go version.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(b.Version, b.Revision, b.GoVersion).Set(1)
	m.reg.MustRegister(g)
}

// gauge registers a gauge read at scrape time.
func (m *metrics) gauge(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// instrument times every webhook by route: the pattern the router matched
// (so labels cannot drift from the routes), "other" for a request no
// route matched.
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := "other"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		m.webhook.WithLabelValues(route, codeClass(sw.code)).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func codeClass(code int) string {
	return string("12345"[min(max(code/100, 1), 5)-1]) + "xx"
}

// instrumentedBroker times broker requests and classifies their results.
type instrumentedBroker struct {
	next ivr.Authenticator
	m    *metrics
}

func (b instrumentedBroker) Authenticate(ctx context.Context, req ciba.AuthRequest) (*ciba.AuthResponse, error) {
	start := time.Now()
	res, err := b.next.Authenticate(ctx, req)
	b.observe("bc-authorize", start, err)
	return res, err
}

// Issuer forwards the discovered issuer, for login hints that name it.
func (b instrumentedBroker) Issuer() string {
	if i, ok := b.next.(interface{ Issuer() string }); ok {
		return i.Issuer()
	}
	return ""
}

func (b instrumentedBroker) Token(ctx context.Context, id string) (*ciba.TokenResponse, error) {
	start := time.Now()
	res, err := b.next.Token(ctx, id)
	b.observe("token", start, err)
	return res, err
}

func (b instrumentedBroker) observe(endpoint string, start time.Time, err error) {
	result := "ok"
	var be *ciba.Error
	switch {
	case err == nil:
	case errors.As(err, &be):
		result = be.Code // a fixed protocol vocabulary
		if len(result) > 40 || strings.ContainsAny(result, " \n") {
			result = "other"
		}
		if be.Code == "invalid_client" || be.Code == "unauthorized_client" || be.Code == "invalid_request" {
			b.m.brokerErrors.WithLabelValues(endpoint, be.Code).Inc()
		}
	case errors.Is(err, ciba.ErrInvalidIDToken):
		result = "invalid_id_token"
		b.m.brokerErrors.WithLabelValues(endpoint, result).Inc()
	case errors.Is(err, ciba.ErrTransport):
		result = "transport"
		b.m.brokerErrors.WithLabelValues(endpoint, result).Inc()
	default:
		result = "error"
		b.m.brokerErrors.WithLabelValues(endpoint, result).Inc()
	}
	b.m.brokerLatency.WithLabelValues(endpoint, result).Observe(time.Since(start).Seconds())
}

// VerificationEnded counts a verification's outcome (ivr.Observer), on the
// instance that ended it.
func (m *metrics) VerificationEnded(v *store.Verification) {
	initiator := "caller"
	if strings.HasPrefix(v.Initiator, "agent:") {
		initiator = "agent"
	}
	m.verifications.WithLabelValues(string(v.Status), string(v.Country), initiator).Inc()
}

// countingStore counts the store's failures in ivr_store_errors_total: a
// file that is locked, read-only or full shows in /metrics as soon as the
// IVR first fails to read or write it, not only at the next readiness
// check. Not-found and version conflicts are answers, not failures, and a
// request that gave up (its context ended) is not the store's fault. The
// IVR logs each failure where it handles it.
type countingStore struct {
	store.Store
	m *metrics
}

// countingFeed is a countingStore over a store that several instances
// share: the IVR still sees its event feed.
type countingFeed struct {
	countingStore
	store.EventFeed
}

// counting wraps st in a countingStore, keeping its event feed if it has one.
func counting(st store.Store, m *metrics) store.Store {
	c := countingStore{Store: st, m: m}
	if f, ok := st.(store.EventFeed); ok {
		return countingFeed{c, f}
	}
	return c
}

func (s countingStore) count(ctx context.Context, err error) error {
	if err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) &&
		!errors.Is(err, store.ErrInFlight) && !errors.As(err, new(*store.LimitError)) {
		s.m.storeErrors.Inc()
	}
	return err
}

func (s countingStore) CreateCall(ctx context.Context, c *store.Call, events ...*store.Event) (bool, error) {
	ok, err := s.Store.CreateCall(ctx, c, events...)
	return ok, s.count(ctx, err)
}

func (s countingStore) Call(ctx context.Context, sid string) (*store.Call, error) {
	c, err := s.Store.Call(ctx, sid)
	return c, s.count(ctx, err)
}

func (s countingStore) UpdateCall(ctx context.Context, c *store.Call, events ...*store.Event) error {
	return s.count(ctx, s.Store.UpdateCall(ctx, c, events...))
}

func (s countingStore) Calls(ctx context.Context, f store.CallFilter) ([]*store.Call, error) {
	cs, err := s.Store.Calls(ctx, f)
	return cs, s.count(ctx, err)
}

func (s countingStore) StartVerification(ctx context.Context, c *store.Call, v *store.Verification, limits []store.Limit, events ...*store.Event) ([]store.Limit, error) {
	over, err := s.Store.StartVerification(ctx, c, v, limits, events...)
	return over, s.count(ctx, err)
}

func (s countingStore) StaleCalls(ctx context.Context, idleSince, startedBefore time.Time, limit int) ([]*store.Call, error) {
	cs, err := s.Store.StaleCalls(ctx, idleSince, startedBefore, limit)
	return cs, s.count(ctx, err)
}

func (s countingStore) Verification(ctx context.Context, id string) (*store.Verification, error) {
	v, err := s.Store.Verification(ctx, id)
	return v, s.count(ctx, err)
}

func (s countingStore) UpdateVerification(ctx context.Context, v *store.Verification, events ...*store.Event) error {
	return s.count(ctx, s.Store.UpdateVerification(ctx, v, events...))
}

func (s countingStore) ClaimDue(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*store.Verification, error) {
	vs, err := s.Store.ClaimDue(ctx, owner, now, lease, limit)
	return vs, s.count(ctx, err)
}

func (s countingStore) NextDue(ctx context.Context, now time.Time) (time.Time, bool, error) {
	t, ok, err := s.Store.NextDue(ctx, now)
	return t, ok, s.count(ctx, err)
}

func (s countingStore) Events(ctx context.Context, callSID string) ([]store.Event, error) {
	evs, err := s.Store.Events(ctx, callSID)
	return evs, s.count(ctx, err)
}

func (s countingStore) AppendEvent(ctx context.Context, e *store.Event) error {
	return s.count(ctx, s.Store.AppendEvent(ctx, e))
}
