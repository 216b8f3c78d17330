// Package ivr answers Twilio voice webhooks for the caller-verification line:
// it gathers the caller's national identity number, runs a CIBA
// authentication through a ciba client, holds the caller while the broker is
// polled, and hands the call to agents, verified or not. It knows nothing of
// websockets, HTML or SQL: the dashboard receives events through Publisher,
// and persistence sits behind Store.
package ivr

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/internal/store"
)

// Config configures a Service.
type Config struct {
	PublicURL       string // the https base Twilio calls; used to check signatures
	TwilioAuthToken string
	// AccountSID is the Twilio account (AC…) whose calls these are: a
	// webhook naming another account is refused. Required.
	AccountSID string

	Language    string // prompts' language: "sv-SE" (default), "nb-NO" or "en-US"
	AgentQueue  string // <Enqueue> queue name; default "support"
	DialNumber  string // optional: <Dial> this number instead of <Enqueue>
	WorkflowSID string // optional TaskRouter workflow for <Enqueue><Task>

	// HashKey is the service's secret (IVR_HASH_KEY, ≥ 16 bytes): the key of
	// the national-ID hash kept at rest, and the key from which the one
	// that seals numbers in flight is derived. Required.
	HashKey []byte
	Profile *ciba.Profile // broker profile; default ciba.Idura
	// Issuer is the broker's issuer, for login hints that name it (Auth0's
	// iss_sub). Default: the Authenticator's Issuer(), as discovered.
	Issuer string
	// Identify are the ways callers are identified in the IVR
	// (IVR_IDENTIFY): a national identity number or a customer number
	// typed on the keypad, and the number they call from. Default
	// DefaultIdentify(Profile); CheckIdentify says what a profile serves.
	Identify []store.IDKind
	// Customer says what customer numbers look like and which broker user
	// they name.
	Customer CustomerRules
	// Mode is how tokens are delivered (CIBA_MODE): ModePoll (default) or
	// ModePing, where the broker notifies NotifyPath and the poller then
	// asks at once, polling only every PingSafetyPoll (default
	// DefaultPingSafetyPoll) meanwhile. CheckMode says which a profile
	// offers.
	Mode           string
	PingSafetyPoll time.Duration

	// StartWait is how long a webhook waits for bc-authorize before it
	// answers with the hold loop; default 6 s (Twilio waits 15 s in all).
	StartWait time.Duration
	// StartTimeout fails a verification still starting after this long
	// (its bc-authorize was lost, e.g. in a crash); default 30 s.
	StartTimeout time.Duration

	// Rate limits on starting verifications, a defence against
	// push-bombing: a national identity number is a widely known login
	// hint, so anyone could send BankID requests to its owner. Per number
	// (counted by its keyed hash), per caller id, one bucket shared by
	// every withheld caller id, per agent, and a global cap sized to the
	// broker contract. A caller over a limit is handed to agents
	// unverified; an agent gets a *RateLimitError. An agent goes past the
	// per-number limit (recorded in the timeline), so that strangers
	// cannot lock a person out of help. Zero fields get the Default*
	// limits; a negative Max turns a limit off.
	RateLimitNumber   RateLimit
	RateLimitCaller   RateLimit
	RateLimitWithheld RateLimit
	RateLimitAgent    RateLimit
	RateLimitGlobal   RateLimit

	// CallIdleLimit ends a call still in the IVR that has not changed for
	// this long (its status callback never came); default 30 min, past the
	// longest verification. MaxCallDuration ends any call this old
	// (Twilio's default call time limit); default 4 h.
	CallIdleLimit   time.Duration
	MaxCallDuration time.Duration

	// Observer is told of what operators count (limits that bite,
	// outcomes, interrupts); nil means nobody is.
	Observer Observer

	// Calls interrupts the hold loop the moment a verification ends (or
	// the caller should hear what to do), so that the caller need not wait
	// for the loop's next hop: Twilio's REST API in production. Nil leaves
	// the hold loop on its own.
	Calls CallUpdater

	PollConcurrency   int // token requests in flight at once; default DefaultPollConcurrency
	MaxNumberAttempts int // wrong numbers before a hand-off; default 3
	MaxVerifyAttempts int // verifications per call; default 2 (one retry)

	Now func() time.Time // default time.Now
}

// ErrCallEnded is returned by StartAgentVerification for a call that has
// ended. It also matches ErrNotFound (errors.Is), since the call is no
// longer live.
var ErrCallEnded error = callEndedError{}

type callEndedError struct{}

func (callEndedError) Error() string        { return "ivr: call has ended" }
func (callEndedError) Is(target error) bool { return target == store.ErrNotFound }

// ErrCallInIVR is returned by StartAgentVerification for a call that is
// still in the IVR: the caller can verify there, and no agent is talking
// to them yet. Two verifications for one call would race for the caller's
// attention and for the call's outcome.
var ErrCallInIVR = errors.New("ivr: the caller is still in the IVR")

// Observer is told of events worth a metric, on the instance where they
// happen. Its methods must not block.
type Observer interface {
	// RateLimited is called when a limit refuses a verification.
	RateLimited(scope store.LimitScope)
	// VerificationEnded is called once when a verification reaches a final
	// status, with the verification as stored.
	VerificationEnded(v *store.Verification)
	// Interrupted is called for each hold the service asked Twilio to
	// interrupt: ok false when Twilio could not be told (the caller then
	// hears it at the next hop).
	Interrupted(ok bool)
	// SafetyNet is called when a hop of the hold loop, not an interrupt,
	// brings the caller an outcome.
	SafetyNet()
	// Notified is called for each ping notification, with its result:
	// NotifyAccepted, NotifyUnknown, NotifyReused or NotifyBad.
	Notified(result string)
}

// DefaultPollConcurrency is how many token requests the poller keeps in
// flight toward the broker at most, unless configured. A poll's cycle is
// the broker's latency plus its own signing and store writes (~75 ms at a
// 50 ms broker with 10,000 pending on sqlite), so 128 capped an instance
// at ~1,700 polls a second, short of the 2,000 that 10,000 pending at a
// 5 s interval need (BENCHMARKS.md, issue 10's P run).
const DefaultPollConcurrency = 256

// maxStartWait keeps a webhook well inside Twilio's 15 s.
const maxStartWait = 10 * time.Second

// startCallTimeout bounds one background bc-authorize call.
const startCallTimeout = 20 * time.Second

// tokenCallTimeout bounds one token request.
const tokenCallTimeout = 5 * time.Second

// Service is the IVR: webhook handlers, the verification lifecycle and the
// poller. It is safe for concurrent use.
type Service struct {
	cfg   Config
	store store.Store
	auth  Authenticator
	pub   Publisher
	log   *slog.Logger
	sig   *SignatureChecker
	seal  sealer
	lim   Limits

	wake chan struct{} // a verification became due; buffered 1
	// ping issues client_notification_tokens (ping mode);
	// notifyRefusals rate-limits the logs of refused notifications.
	ping           notifier
	notifyRefusals refusalLog
	wg             sync.WaitGroup
	owner          string          // this poller's name in the leases it takes
	feed           store.EventFeed // the store's, when several instances share it
}

// NewService checks cfg, fills in defaults and returns a Service. pub may be
// nil.
func NewService(cfg Config, st store.Store, auth Authenticator, pub Publisher, log *slog.Logger) (*Service, error) {
	if st == nil || auth == nil {
		return nil, errors.New("ivr: new service: store and authenticator are required")
	}
	if len(cfg.HashKey) < 16 {
		return nil, errors.New("ivr: new service: HashKey must be at least 16 bytes")
	}
	if !ValidAccountSID(cfg.AccountSID) {
		return nil, errors.New("ivr: new service: AccountSID must be a Twilio account SID, AC and 32 hex digits")
	}
	if cfg.Language == "" {
		cfg.Language = Swedish
	}
	if err := CheckLanguage(cfg.Language); err != nil {
		return nil, fmt.Errorf("ivr: new service: %w", err)
	}
	if cfg.AgentQueue == "" {
		cfg.AgentQueue = "support"
	}
	if cfg.Profile == nil {
		cfg.Profile = ciba.Idura
	}
	if cfg.Identify == nil {
		cfg.Identify = DefaultIdentify(cfg.Profile)
	}
	if err := CheckIdentify(cfg.Profile, cfg.Identify); err != nil {
		return nil, fmt.Errorf("ivr: new service: %w", err)
	}
	cfg.Mode = cmp.Or(cfg.Mode, ModePoll)
	if err := CheckMode(cfg.Profile, cfg.Mode); err != nil {
		return nil, fmt.Errorf("ivr: new service: %w", err)
	}
	cfg.PingSafetyPoll = cmp.Or(cfg.PingSafetyPoll, DefaultPingSafetyPoll)
	if err := cfg.Customer.Validate(); err != nil {
		return nil, fmt.Errorf("ivr: new service: %w", err)
	}
	if cfg.StartWait <= 0 {
		cfg.StartWait = 6 * time.Second
	}
	if cfg.StartWait > maxStartWait {
		cfg.StartWait = maxStartWait // Twilio gives up on a webhook after 15 s
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.StartTimeout <= startCallTimeout {
		cfg.StartTimeout = startCallTimeout + 5*time.Second
	}
	cfg.RateLimitNumber = cfg.RateLimitNumber.orDefault(DefaultRateLimitNumber)
	cfg.RateLimitCaller = cfg.RateLimitCaller.orDefault(DefaultRateLimitCaller)
	cfg.RateLimitWithheld = cfg.RateLimitWithheld.orDefault(DefaultRateLimitWithheld)
	cfg.RateLimitAgent = cfg.RateLimitAgent.orDefault(DefaultRateLimitAgent)
	cfg.RateLimitGlobal = cfg.RateLimitGlobal.orDefault(DefaultRateLimitGlobal)
	cfg.CallIdleLimit = cmp.Or(cfg.CallIdleLimit, 30*time.Minute)
	cfg.MaxCallDuration = cmp.Or(cfg.MaxCallDuration, 4*time.Hour)
	if cfg.PollConcurrency <= 0 {
		cfg.PollConcurrency = DefaultPollConcurrency
	}
	if cfg.MaxNumberAttempts <= 0 {
		cfg.MaxNumberAttempts = 3
	}
	if cfg.MaxVerifyAttempts <= 0 {
		cfg.MaxVerifyAttempts = 2
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sig, err := newSignatureChecker(cfg.PublicURL, cfg.TwilioAuthToken)
	if err != nil {
		return nil, fmt.Errorf("ivr: new service: %w", err)
	}
	sig.log = log
	seal, err := newSealer(cfg.HashKey)
	if err != nil {
		return nil, fmt.Errorf("ivr: new service: %w", err)
	}
	svc := &Service{
		cfg:   cfg,
		store: st,
		auth:  auth,
		pub:   pub,
		log:   log,
		sig:   sig,
		seal:  seal,
		lim: Limits{
			Typed:             typedWay(cfg.Identify),
			CallerID:          contains(cfg.Identify, store.IDCallerID),
			MaxNumberAttempts: cfg.MaxNumberAttempts,
			MaxVerifyAttempts: cfg.MaxVerifyAttempts,
			StartTimeout:      cfg.StartTimeout,
			ExpiryGrace:       5 * time.Second,
			ReminderHops:      3, // about every 24 s
		},
		wake:  make(chan struct{}, 1),
		owner: pollerName(),
		ping:  newNotifier(cfg.HashKey),
	}
	svc.feed, _ = st.(store.EventFeed)
	if svc.feed == nil {
		// The sole writer of its store: reads of live calls and their
		// verifications can come from memory.
		svc.store = newWriteCache(st)
	}
	return svc, nil
}

// Close waits for background bc-authorize calls to finish. Call it after
// the HTTP server has shut down.
func (s *Service) Close() { s.wg.Wait() }

func (s *Service) now() time.Time { return s.cfg.Now() }

// notify wakes the poller.
func (s *Service) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// publish sends events to the dashboard with the call as it is now. On a
// store shared by several instances the relay publishes every event
// instead, this instance's too.
func (s *Service) publish(ctx context.Context, c *store.Call, v *store.Verification, events ...*store.Event) {
	if s.pub == nil || s.feed != nil || len(events) == 0 {
		return
	}
	view := View(c, v)
	for _, e := range events {
		ev := *e
		cv := view
		ev.Call = &cv
		s.pub.Publish(ctx, ev)
	}
}

func (s *Service) event(c *store.Call, verificationID string, kind store.EventKind, actor, detail string) *store.Event {
	return &store.Event{At: s.now(), CallSID: c.SID, VerificationID: verificationID, Kind: kind, Actor: actor, Detail: detail}
}

// LiveCalls returns every call that has not ended, as the dashboard shows it.
func (s *Service) LiveCalls(ctx context.Context) ([]store.CallView, error) {
	return s.views(ctx, store.CallFilter{Live: true})
}

// RecentCalls returns the calls that ended at or after since.
func (s *Service) RecentCalls(ctx context.Context, since time.Time) ([]store.CallView, error) {
	return s.views(ctx, store.CallFilter{EndedSince: since})
}

func (s *Service) views(ctx context.Context, f store.CallFilter) ([]store.CallView, error) {
	calls, err := s.store.Calls(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("ivr: list calls: %w", err)
	}
	out := make([]store.CallView, 0, len(calls))
	for _, c := range calls {
		v, err := s.current(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("ivr: list calls: %w", err)
		}
		out = append(out, View(c, v))
	}
	return out, nil
}

// current loads the call's current verification, nil if none.
func (s *Service) current(ctx context.Context, c *store.Call) (*store.Verification, error) {
	if c.VerificationID == "" {
		return nil, nil
	}
	v, err := s.store.Verification(ctx, c.VerificationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

// Timeline returns a call's events, oldest first; ErrNotFound for an
// unknown call.
func (s *Service) Timeline(ctx context.Context, callSID string) ([]store.Event, error) {
	if _, err := s.store.Call(ctx, callSID); err != nil {
		return nil, fmt.Errorf("ivr: timeline: %w", err)
	}
	evs, err := s.store.Events(ctx, callSID)
	if err != nil {
		return nil, fmt.Errorf("ivr: timeline: %w", err)
	}
	return evs, nil
}

// typedWay is the way of ways callers type, "" when none is.
func typedWay(ways []store.IDKind) store.IDKind {
	for _, w := range ways {
		if w != store.IDCallerID {
			return w
		}
	}
	return ""
}

// pollerName names this process's poller in the leases it takes: host,
// process and a random part (a restarted process is another poller).
func pollerName() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return "v_" + hex.EncodeToString(b[:])
}

// Mount adds the Twilio webhooks to r: POST /twilio/voice, gather, hold,
// retry, menu, status, fallback, whisper and after (the action of the
// hand-off's <Enqueue> or <Dial>). Every request's X-Twilio-Signature is
// checked first. In ping mode it adds POST NotifyPath too, for the
// broker, which authenticates with the bearer token issued with each
// request instead.
func (s *Service) Mount(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(s.sig.Middleware, withDeadline)
		r.Post("/twilio/voice", s.handleVoice)
		r.Post("/twilio/gather", s.handleGather)
		r.Post("/twilio/hold", s.handleHold)
		r.Post("/twilio/retry", s.handleRetry)
		r.Post("/twilio/menu", s.handleMenu)
		r.Post("/twilio/status", s.handleStatus)
		r.Post("/twilio/fallback", s.handleFallback)
		r.Post("/twilio/whisper", s.handleWhisper)
		r.Post("/twilio/after", s.handleAfter)
	})
	if s.cfg.Mode == ModePing {
		r.With(withDeadline).Post(NotifyPath, s.handleNotify)
	}
}

// Handler is a router with only the service's routes (Mount), for tests
// and for serving the service on its own.
func (s *Service) Handler() http.Handler {
	r := chi.NewRouter()
	s.Mount(r)
	return r
}

// NotifyHandler serves only the client notification endpoint of CIBA
// ping mode, POST NotifyPath, as Handler does in ping mode.
func (s *Service) NotifyHandler() http.Handler {
	r := chi.NewRouter()
	r.With(withDeadline).Post(NotifyPath, s.handleNotify)
	return r
}

// webhookDeadline bounds the work behind one webhook, so that a store that
// cannot be reached (a lost database connection) fails it well before
// Twilio's 15 s timeout: the caller hears our apology and is handed off,
// rather than silence and Twilio's "application error".
const webhookDeadline = 8 * time.Second

func withDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), webhookDeadline)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
