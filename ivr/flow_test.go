package ivr_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/internal/sqlite"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

const (
	publicURL = "http://127.0.0.1:8080"
	authToken = "0123456789abcdeftesttoken"
	// accountSID is the Twilio account of the tests' calls (virtualtwilio's default).
	accountSID = "AC00000000000000000000000000000000"
	issuer     = "http://127.0.0.1:9999"
)

// unknownSE is a valid Swedish personnummer the broker does not know.
var unknownSE = "19" + luhnComplete("800101234")

func luhnComplete(nine string) string {
	sum := 0
	for i, r := range nine {
		v := int(r-'0') * (2 - i%2)
		sum += v/10 + v%10
	}
	return nine + string(rune('0'+(10-sum%10)%10))
}

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
)

// signingKey is one broker signing key for the whole suite: RSA key
// generation is slow.
func signingKey(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() {
		var err error
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
	})
	return key
}

// recorder is a Publisher that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []store.Event
}

func (r *recorder) Publish(_ context.Context, e store.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) all() []store.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.Event(nil), r.events...)
}

// switchHandler lets a test swap the service behind the virtual Twilio (a
// restart).
type switchHandler struct{ h atomic.Pointer[http.Handler] }

func (s *switchHandler) set(h http.Handler) { s.h.Store(&h) }
func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// env is a whole IVR: the simulated broker, a real ciba client, sqlite in a
// temp dir, the service with its poller, and a virtual Twilio. It must be
// made inside a synctest bubble.
type env struct {
	t      testing.TB
	broker *cibatest.Broker
	client *ciba.Client
	db     *sqlite.DB
	dbPath string
	pub    *recorder
	svc    *ivr.Service
	stop   func() // stops the service's poller and waits for it
	front  *switchHandler
	notify *switchHandler // the service's ping notification endpoint, for the broker
	tw     *virtualtwilio.Twilio
	cfg    ivr.Config
	auth   ivr.Authenticator // replaces the ciba client when set (before start)
	store  store.Store       // replaces db as the service's store when set (before start)
}

func newEnv(t testing.TB, mod ...func(*ivr.Config)) *env {
	t.Helper()
	return newEnvFor(t, ciba.Idura, mod...)
}

// newEnvFor is newEnv with a broker of profile p: the simulator speaks it,
// and the service is configured for it (Auth0's user ids are
// "auth0|<customer number>"; customer numbers end in a Luhn check digit).
func newEnvFor(t testing.TB, p *ciba.Profile, mod ...func(*ivr.Config)) *env {
	t.Helper()
	ctx := t.Context()
	iss := issuer
	if p.Name == "auth0" {
		iss += "/" // Auth0's issuers end with a slash
	}
	e := &env{t: t, pub: &recorder{}, front: &switchHandler{}, notify: &switchHandler{}}
	e.cfg = ivr.Config{
		PublicURL:       publicURL,
		TwilioAuthToken: authToken,
		AccountSID:      accountSID,
		HashKey:         []byte("0123456789abcdef0123456789abcdef"),
		Profile:         p,
	}
	if p.Name != "idura" {
		e.cfg.Customer = ivr.CustomerRules{MinDigits: 8, MaxDigits: 8, Check: "luhn"}
		if p.Name == "auth0" {
			e.cfg.Customer.Template = cibatest.Auth0UserIDPrefix + "{digits}"
		}
	}
	for _, m := range mod {
		m(&e.cfg)
	}
	b, err := cibatest.New(cibatest.Config{Issuer: iss, SigningKey: signingKey(t), Profile: p.Name})
	if err != nil {
		t.Fatal(err)
	}
	client := cibatest.Client{ID: "ivr", Secret: "ivr-secret"}
	if e.cfg.Mode == ivr.ModePing {
		// The broker's notifications reach the service's notification
		// endpoint, as over the internet.
		client.DeliveryMode, client.NotificationEndpoint = cibatest.DeliveryPing, publicURL+ivr.NotifyPath
		b.SetFetchClient(virtualtwilio.HandlerClient(e.notify))
	}
	if err := b.RegisterClient(client); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cl, err := ciba.New(ctx, ciba.Config{Issuer: iss, ClientID: "ivr", Secret: "ivr-secret", HTTPClient: b.HTTPClient(), Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	e.broker, e.client = b, cl
	e.dbPath = filepath.Join(t.TempDir(), "ivr.db")
	e.db, err = sqlite.Open(ctx, e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	e.tw = &virtualtwilio.Twilio{BaseURL: publicURL, AuthToken: authToken, HTTPClient: virtualtwilio.HandlerClient(e.front)}
	// Interrupts reach the virtual Twilio through Twilio's REST API, as
	// in production.
	calls, err := ivr.NewTwilioCalls(accountSID, authToken, "https://api.twilio.test", virtualtwilio.HandlerClient(e.tw.RESTHandler()))
	if err != nil {
		t.Fatal(err)
	}
	if e.cfg.Calls == nil {
		e.cfg.Calls = calls
	}
	e.start()
	return e
}

// start runs a new Service (and its poller) on the env's store.
func (e *env) start() {
	e.t.Helper()
	var auth ivr.Authenticator = e.client
	if e.auth != nil {
		auth = e.auth
	}
	var st store.Store = e.db
	if e.store != nil {
		st = e.store
	}
	svc, err := ivr.NewService(e.cfg, st, auth, e.pub, testLogger(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(e.t.Context()))
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("Run: %v", err)
			}
			svc.Close()
		})
	}
	e.t.Cleanup(e.stop)
	e.svc = svc
	e.front.set(svc.Handler())
	e.notify.set(svc.NotifyHandler())
}

// restart stops the service and starts a new one on the same database, as
// a deploy or a crash would.
func (e *env) restart() {
	e.stop()
	e.start()
}

// caller is a scripted person: it types the next number when asked for
// one, answers the retry offer, and stays silent on hold.
type caller struct {
	numbers []string // what to type at each "enter your number", "" for silence
	retries []string // keys at each retry offer
	menu    []string // keys at each identification menu
	heard   []string
}

func (c *caller) keys(heard string) string {
	c.heard = append(c.heard, heard)
	switch {
	case containsAny(heard, "telefonen du ringer från", "telefonen du ringer fra", "phone you're calling from"):
		return nextKeys(&c.menu)
	case containsAny(heard, "avsluta med fyrkant", "avslutt med firkant", "followed by the pound key"):
		if n := nextKeys(&c.numbers); n != "" {
			return n + "#"
		}
		return ""
	case containsAny(heard, "försöka igen", "prøve igjen", "try again"):
		return nextKeys(&c.retries)
	}
	return ""
}

// nextKeys takes the first of the answers left in script: "" (silence)
// when none is.
func nextKeys(script *[]string) string {
	if len(*script) == 0 {
		return ""
	}
	k := (*script)[0]
	*script = (*script)[1:]
	return k
}

func (c *caller) all() string { return strings.Join(c.heard, "\n") }

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// call places a call and returns the transcript and the caller.
func (e *env) call(c *caller, mod ...func(*virtualtwilio.Caller)) *virtualtwilio.Transcript {
	e.t.Helper()
	tr, err := e.tw.Call(e.t.Context(), c.dial(mod))
	if err != nil {
		e.t.Fatalf("call: %v\n%s", err, tr)
	}
	e.t.Logf("transcript:\n%s", tr)
	return tr
}

// callAsync places a call in the background, for a test that changes
// something (the broker, the store, the server) while the caller waits;
// the transcript arrives when the call ends. The call does not end with
// the test's context.
func (e *env) callAsync(c *caller, mod ...func(*virtualtwilio.Caller)) <-chan *virtualtwilio.Transcript {
	ic := c.dial(mod)
	done := make(chan *virtualtwilio.Transcript, 1)
	go func() {
		tr, err := e.tw.Call(context.WithoutCancel(e.t.Context()), ic)
		if err != nil {
			e.t.Errorf("call: %v", err)
		}
		e.t.Logf("transcript:\n%s", tr)
		done <- tr
	}()
	return done
}

// dial is the virtual Twilio caller c answers prompts as, changed by mod.
func (c *caller) dial(mod []func(*virtualtwilio.Caller)) virtualtwilio.Caller {
	ic := virtualtwilio.Caller{Keys: c.keys}
	for _, m := range mod {
		m(&ic)
	}
	return ic
}

func (e *env) storedCall(sid string) *store.Call {
	e.t.Helper()
	c, err := e.db.Call(context.Background(), sid)
	if err != nil {
		e.t.Fatalf("load call: %v", err)
	}
	return c
}

func (e *env) verifications(sid string) []*store.Verification {
	e.t.Helper()
	evs, err := e.db.Events(context.Background(), sid)
	if err != nil {
		e.t.Fatal(err)
	}
	seen := map[string]bool{}
	var out []*store.Verification
	for _, ev := range evs {
		if ev.VerificationID == "" || seen[ev.VerificationID] {
			continue
		}
		seen[ev.VerificationID] = true
		v, err := e.db.Verification(context.Background(), ev.VerificationID)
		if err != nil {
			e.t.Fatalf("load verification: %v", err)
		}
		out = append(out, v)
	}
	return out
}

func (e *env) eventKinds(sid string) []store.EventKind {
	evs, err := e.db.Events(context.Background(), sid)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []store.EventKind
	for _, ev := range evs {
		out = append(out, ev.Kind)
	}
	return out
}

func countKind(kinds []store.EventKind, k store.EventKind) int {
	n := 0
	for _, x := range kinds {
		if x == k {
			n++
		}
	}
	return n
}

// checkEnded checks what must hold after every call: the call ended, no
// verification is open, and none keeps the full number.
func (e *env) checkEnded(sid string) {
	e.t.Helper()
	c := e.storedCall(sid)
	if c.State != store.CallEnded || c.EndedAt.IsZero() {
		e.t.Errorf("call state %s, ended %v; want ended", c.State, c.EndedAt)
	}
	for _, v := range e.verifications(sid) {
		if !v.Status.Done() {
			e.t.Errorf("verification %s still %s after the call", v.ID, v.Status)
		}
		if v.SealedID != "" {
			e.t.Errorf("verification %s keeps the sealed national identity number after it ended", v.ID)
		}
		if v.MaskedID == "" || v.IDHash == "" {
			e.t.Errorf("verification %s lost its masked ID or hash", v.ID)
		}
	}
}

// saidAt returns the call time at which text was first said, or -1.
func saidAt(tr *virtualtwilio.Transcript, text string) time.Duration {
	for _, l := range tr.Lines {
		if l.Kind == "say" && strings.Contains(l.Text, text) {
			return l.At
		}
	}
	return -1
}
