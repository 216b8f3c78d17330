package ivr_test

// Faults: the broker slow, failing, refusing connections or answering
// garbage, and the store refusing writes. Each test runs whole calls (the
// virtual Twilio, the simulated broker, sqlite) in a synctest bubble and
// checks that the caller hears something sensible within Twilio's limits,
// reaches an agent, and that nothing is lost.

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

// brokerFault is what the broker does wrong.
type brokerFault struct {
	name    string
	outage  cibatest.Outage // served by the simulator
	refused bool            // or: no connection at all
}

var brokerFaults = []brokerFault{
	{name: "5xx", outage: cibatest.Outage{Status: http.StatusServiceUnavailable}},
	{name: "500", outage: cibatest.Outage{Status: http.StatusInternalServerError}},
	{name: "garbage", outage: cibatest.Outage{Garbage: true}},
	{name: "connection refused", refused: true},
	{name: "slower than any timeout", outage: cibatest.Outage{Latency: 25 * time.Second}},
}

// faultyNet sits between the ciba client and the simulator: it refuses
// connections on demand and records when each token request was sent.
type faultyNet struct {
	next    http.RoundTripper
	refused atomic.Bool
	mu      sync.Mutex
	tokens  []time.Time
}

func (f *faultyNet) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/oauth2/token") {
		f.mu.Lock()
		f.tokens = append(f.tokens, time.Now())
		f.mu.Unlock()
	}
	if f.refused.Load() {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	return f.next.RoundTrip(r)
}

func (f *faultyNet) tokenTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.tokens...)
}

// timedHandler records how long each webhook took to answer (fake time).
type timedHandler struct {
	next    http.Handler
	mu      sync.Mutex
	slowest time.Duration
	path    string
	n       int
}

func (h *timedHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h.next.ServeHTTP(w, r)
	d := time.Since(start)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	if d > h.slowest {
		h.slowest, h.path = d, r.URL.Path
	}
}

// faultEnv is an env whose ciba client goes through a faultyNet and whose
// virtual Twilio times every webhook.
func faultEnv(t *testing.T, mod ...func(*ivr.Config)) (*env, *faultyNet, *timedHandler) {
	e := newEnv(t, mod...)
	fn := &faultyNet{next: e.broker.Transport()}
	cl, err := ciba.New(t.Context(), ciba.Config{Issuer: issuer, ClientID: "ivr", Secret: "ivr-secret", HTTPClient: &http.Client{Transport: fn}})
	if err != nil {
		t.Fatal(err)
	}
	e.client = cl
	e.restart()
	th := &timedHandler{next: e.front}
	e.tw = &virtualtwilio.Twilio{BaseURL: publicURL, AuthToken: authToken, HTTPClient: virtualtwilio.HandlerClient(th)}
	return e, fn, th
}

func (e *env) setFault(fn *faultyNet, f brokerFault) {
	e.broker.SetOutage(f.outage)
	fn.refused.Store(f.refused)
}

// checkFast checks that no webhook kept Twilio waiting past StartWait (6 s),
// far inside the 15 s Twilio allows.
func checkFast(t *testing.T, th *timedHandler) {
	t.Helper()
	th.mu.Lock()
	defer th.mu.Unlock()
	if th.n == 0 {
		t.Fatal("no webhook was timed")
	}
	if th.slowest > 6*time.Second {
		t.Errorf("%s took %v to answer; every webhook must answer within StartWait (6 s)", th.path, th.slowest)
	}
}

func TestBrokerFaultAtStart(t *testing.T) {
	for _, f := range brokerFaults {
		t.Run(f.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e, fn, th := faultEnv(t)
				e.setFault(fn, f)
				// The caller tries again once, and the broker is still down.
				c := &caller{numbers: []string{cibatest.SEApprove, cibatest.SEApprove}, retries: []string{"1"}}
				tr := e.call(c)
				checkFast(t, th)
				heard := sayLines(tr)
				if n := strings.Count(heard, "Vi når tyvärr inte BankID just nu"); n != 2 {
					t.Errorf("caller told %d times that BankID cannot be reached, want 2 (once per attempt)", n)
				}
				if !strings.Contains(heard, "Du kopplas nu till en medarbetare") || tr.Outcome != "enqueued:support" {
					t.Errorf("caller not handed to agents: outcome %q", tr.Outcome)
				}
				e.checkEnded(tr.CallSID)
				if c := e.storedCall(tr.CallSID); c.Outcome != store.OutcomeUnverified {
					t.Errorf("call outcome %q, want unverified", c.Outcome)
				}
				vs := e.verifications(tr.CallSID)
				if len(vs) != 2 || vs[0].Status != store.VerFailed || vs[1].Status != store.VerFailed {
					t.Errorf("verifications %v, want two failed", statuses(vs))
				}
				for _, v := range vs {
					if v.Error != "broker unreachable" {
						t.Errorf("verification error %q, want a plain, PII-free reason", v.Error)
					}
				}
			})
		})
	}
}

func TestBrokerSlowAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, _, th := faultEnv(t)
		e.broker.SetOutage(cibatest.Outage{Latency: 10 * time.Second}) // bc-authorize takes 10 s
		c := &caller{numbers: []string{cibatest.SEApprove}}
		tr := e.call(c, func(ic *virtualtwilio.Caller) {
			keys := ic.Keys
			ic.Keys = func(heard string) string {
				if strings.Contains(heard, "Ett ögonblick") {
					e.broker.SetOutage(cibatest.Outage{}) // only the start was slow
				}
				return keys(heard)
			}
		})
		checkFast(t, th)
		pressed := lineAt(tr, "press")
		moment := saidAt(tr, "Ett ögonblick")
		if moment < 0 || moment-pressed > 6*time.Second {
			t.Errorf("'one moment' %v after the number, want within 6 s", moment-pressed)
		}
		if open := saidAt(tr, "Öppna BankID-appen"); open < moment {
			t.Errorf("instructions at %v, want after 'one moment' at %v", open, moment)
		}
		if !strings.Contains(sayLines(tr), "Tack, Astrid") {
			t.Error("not verified after a 10 s start")
		}
		e.checkEnded(tr.CallSID)
	})
}

func TestBrokerFaultWhilePollingRecovers(t *testing.T) {
	faults := append(brokerFaults[:4:4], brokerFault{name: "slow 12 s", outage: cibatest.Outage{Latency: 12 * time.Second}})
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e, fn, th := faultEnv(t)
				// Approval comes 60 s after the start; the broker is down from
				// 11 s to 46 s after the number was entered (polls fall on
				// even seconds).
				c := &caller{numbers: []string{cibatest.SEApproveSlow}}
				var down, up time.Time
				done := e.callAsync(c, func(ic *virtualtwilio.Caller) { ic.MaxSteps = 400 })
				<-time.After(11 * time.Second)
				down = time.Now()
				e.setFault(fn, f)
				<-time.After(35 * time.Second)
				up = time.Now()
				e.setFault(fn, brokerFault{})
				tr := <-done
				checkFast(t, th)
				if !strings.Contains(sayLines(tr), "Tack, Bengt") {
					t.Error("the outcome did not reach the caller after the broker recovered")
				}
				if strings.Contains(sayLines(tr), "Vi når tyvärr inte BankID") {
					t.Error("caller told the broker is down although it recovered in time")
				}
				vs := e.verifications(tr.CallSID)
				if len(vs) != 1 || vs[0].Status != store.VerApproved {
					t.Fatalf("verifications %v, want one approved", statuses(vs))
				}
				// Backoff: during the outage the token requests spread out
				// (2, 4, 8, 16 s …) instead of coming every 2 s.
				var during []time.Time
				for _, at := range fn.tokenTimes() {
					if !at.Before(down) && at.Before(up) {
						during = append(during, at)
					}
				}
				if len(during) < 2 || len(during) > 6 {
					t.Errorf("%d token requests during a 35 s outage, want a few with backoff (2 s polling would send ~17)", len(during))
				}
				gap := func(i int) time.Duration { return during[i].Sub(during[i-1]) }
				for i := 2; i < len(during); i++ {
					if gap(i) < gap(i-1) {
						t.Errorf("token requests during the outage at %v: a gap shrank", during)
					}
				}
				// (A slow broker's requests each take the 10 s timeout, which
				// counts in the gaps; immediate failures show the doubling.)
				if n := len(during); f.outage.Latency == 0 && n >= 3 && gap(n-1) < 4*gap(1) {
					t.Errorf("token requests during the outage at %v: gaps do not grow (no backoff)", during)
				}
				e.checkEnded(tr.CallSID)
			})
		})
	}
}

// flakyStore is the sqlite store with writes that fail on demand, as when
// the file is locked by another process, read-only or on a full disk. Its
// claims still succeed: the outage comes between a poll's claim and the
// write of its result, and outlasts the claim's lease.
type flakyStore struct {
	store.Store
	failing atomic.Bool
	refused atomic.Int64
}

var errUnwritable = errors.New("sqlite: attempt to write a readonly database")

func (s *flakyStore) fail() error {
	if s.failing.Load() {
		s.refused.Add(1)
		return errUnwritable
	}
	return nil
}

func (s *flakyStore) CreateCall(ctx context.Context, c *store.Call, evs ...*store.Event) (bool, error) {
	if err := s.fail(); err != nil {
		return false, err
	}
	return s.Store.CreateCall(ctx, c, evs...)
}

func (s *flakyStore) UpdateCall(ctx context.Context, c *store.Call, evs ...*store.Event) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.UpdateCall(ctx, c, evs...)
}

func (s *flakyStore) StartVerification(ctx context.Context, c *store.Call, v *store.Verification, limits []store.Limit, evs ...*store.Event) ([]store.Limit, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.Store.StartVerification(ctx, c, v, limits, evs...)
}

func (s *flakyStore) UpdateVerification(ctx context.Context, v *store.Verification, evs ...*store.Event) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.UpdateVerification(ctx, v, evs...)
}

func (s *flakyStore) AppendEvent(ctx context.Context, e *store.Event) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.AppendEvent(ctx, e)
}

func storeEnv(t *testing.T) (*env, *flakyStore) {
	e := newEnv(t)
	fs := &flakyStore{Store: e.db}
	e.store = fs
	e.restart()
	return e, fs
}

func TestStoreUnwritableWhenTheNumberIsEntered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, fs := storeEnv(t)
		c := &caller{numbers: []string{cibatest.SEApprove}}
		tr, err := e.tw.Call(t.Context(), virtualtwilio.Caller{Keys: func(heard string) string {
			fs.failing.Store(true) // the disk fills up while the caller types
			return c.keys(heard)
		}})
		t.Logf("transcript:\n%s", tr)
		// Every webhook got TwiML (never a 5xx the caller would hear as an
		// application error); the status callback alone may be refused
		// with 503, so that Twilio's retry or our hang-up detection
		// records the end later.
		if err != nil && !strings.Contains(err.Error(), "status callback: status 503") {
			t.Fatalf("call: %v", err)
		}
		if !strings.Contains(sayLines(tr), "Tyvärr har vi ett tekniskt fel just nu") || tr.Outcome != "enqueued:support" {
			t.Errorf("caller not told of the fault and handed to agents: outcome %q", tr.Outcome)
		}
		if len(e.broker.Requests()) != 0 {
			t.Error("a BankID request was sent for a verification that could not be stored")
		}
		if fs.refused.Load() == 0 {
			t.Fatal("the store never refused a write: the test tested nothing")
		}
		if !strings.Contains(suiteLogs.String(), `msg="webhook failed; handing off unverified" call_sid=`+tr.CallSID) {
			t.Error("no error logged for the failed webhook")
		}
		// The store recovers; Twilio's status callback comes again.
		fs.failing.Store(false)
		if code, _ := e.post("/twilio/status", params(tr.CallSID, "CallStatus", "completed")); code != 200 {
			t.Errorf("status callback after recovery: %d", code)
		}
		if got := e.storedCall(tr.CallSID); got.State != store.CallEnded {
			t.Errorf("call %s after recovery, want ended", got.State)
		}
	})
}

func TestStoreUnwritableAtApprovalLosesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, fs := storeEnv(t)
		c := &caller{numbers: []string{cibatest.SEApprove}} // approves 6 s after the start
		done := e.callAsync(c)
		<-time.After(3 * time.Second) // on hold, before the approval
		fs.failing.Store(true)
		<-time.After(20 * time.Second) // the token is fetched meanwhile and cannot be stored
		if fs.refused.Load() == 0 {
			t.Error("the store never refused a write: the test tested nothing")
		}
		fs.failing.Store(false)
		tr := <-done
		if !strings.Contains(sayLines(tr), "Tack, Astrid") {
			t.Error("the approval was lost while the store refused writes")
		}
		vs := e.verifications(tr.CallSID)
		if len(vs) != 1 || vs[0].Status != store.VerApproved {
			t.Errorf("verifications %v, want approved", statuses(vs))
		}
		if n := e.broker.Polls(e.broker.Requests()[0].ID); n > 5 {
			t.Errorf("%d token requests: the result must be stored again, not fetched again", n)
		}
		if !strings.Contains(suiteLogs.String(), `msg="store verification result; will retry"`) {
			t.Error("no error logged while the store refused the result")
		}
		e.checkEnded(tr.CallSID)
	})
}
