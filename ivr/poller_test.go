package ivr_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/internal/store/storetest"
	"github.com/ivr/callerverify/ivr"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

// scriptedBroker is an Authenticator whose token answers follow a script.
type scriptedBroker struct {
	mu       sync.Mutex
	answers  []func() (*ciba.TokenResponse, error)
	calls    []time.Time
	inFlight int
	overlap  bool
	number   string
}

func (b *scriptedBroker) Authenticate(ctx context.Context, req ciba.AuthRequest) (*ciba.AuthResponse, error) {
	b.number = strings.TrimPrefix(req.LoginHint, "sub:ssn:")
	return &ciba.AuthResponse{AuthReqID: "auth-req-1", ExpiresIn: 120 * time.Second, Interval: 2 * time.Second}, nil
}

func (b *scriptedBroker) Token(ctx context.Context, id string) (*ciba.TokenResponse, error) {
	b.mu.Lock()
	b.calls = append(b.calls, time.Now())
	b.inFlight++
	if b.inFlight > 1 {
		b.overlap = true
	}
	var next func() (*ciba.TokenResponse, error)
	if len(b.answers) > 0 {
		next, b.answers = b.answers[0], b.answers[1:]
	}
	b.mu.Unlock()
	defer func() { b.mu.Lock(); b.inFlight--; b.mu.Unlock() }()
	if next == nil {
		return nil, ciba.ErrAuthorizationPending
	}
	return next()
}

func pendingAnswer() (*ciba.TokenResponse, error) { return nil, ciba.ErrAuthorizationPending }

// idToken is a token response whose ID token has claims (a JSON object),
// as a broker's would after validation.
func idToken(t *testing.T, claims string) *ciba.TokenResponse {
	t.Helper()
	tok, err := ciba.NewIDToken([]byte(claims))
	if err != nil {
		t.Fatal(err)
	}
	return &ciba.TokenResponse{RawIDToken: "x", IDToken: tok}
}

func TestPollerObeysSlowDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &scriptedBroker{}
		b.answers = []func() (*ciba.TokenResponse, error){
			func() (*ciba.TokenResponse, error) { return nil, &ciba.Error{Code: "slow_down"} },
			pendingAnswer,
			func() (*ciba.TokenResponse, error) {
				return nil, &ciba.Error{Code: "slow_down", RetryAfter: 20 * time.Second}
			},
			func() (*ciba.TokenResponse, error) {
				return nil, errors.Join(ciba.ErrTransport, errors.New("connection refused"))
			},
			func() (*ciba.TokenResponse, error) {
				return idToken(t, `{"sub":"s","ssn":"`+b.number+`","name":"Astrid Lindqvist","given_name":"Astrid"}`), nil
			},
		}
		e := newEnv(t)
		e.stop()
		e.auth = b
		e.start()
		start := time.Now()
		c := &caller{numbers: []string{cibatest.SEApprove}}
		tr := e.call(c)
		if !strings.Contains(sayLines(tr), "Tack, Astrid") {
			t.Error("not verified")
		}
		// Polls: 2 s (slow_down → 7 s), 9 s (pending), 16 s (slow_down,
		// Retry-After 20 s), 36 s (transport error → back off 20 s), 56 s.
		want := []time.Duration{2, 9, 16, 36, 56}
		var got []time.Duration
		for _, at := range b.calls {
			got = append(got, at.Sub(start)/time.Second)
		}
		if len(got) != len(want) {
			t.Fatalf("polls at %v s, want %v s", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("poll %d at %d s, want %d s (all: %v)", i, got[i], want[i], got)
			}
		}
		if b.overlap {
			t.Error("two token requests in flight for one verification")
		}
		vs := e.verifications(tr.CallSID)
		if len(vs) != 1 || vs[0].SlowDowns != 2 || vs[0].Status != store.VerApproved {
			t.Errorf("verification %+v", vs)
		}
	})
}

func TestMismatchedNationalIDFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &scriptedBroker{}
		b.answers = []func() (*ciba.TokenResponse, error){
			func() (*ciba.TokenResponse, error) {
				return idToken(t, `{"sub":"s","ssn":"`+cibatest.SEDecline+`","name":"Someone Else"}`), nil
			},
		}
		e := newEnv(t)
		e.stop()
		e.auth = b
		e.start()
		tr := e.call(&caller{numbers: []string{cibatest.SEApprove}})
		if strings.Contains(sayLines(tr), "Tack") {
			t.Error("verified with somebody else's ID token")
		}
		vs := e.verifications(tr.CallSID)
		if len(vs) != 1 || vs[0].Status != store.VerFailed || vs[0].Name != "" {
			t.Errorf("verification %+v, want failed without a name", vs[0])
		}
	})
}

func TestAgentVerification(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		ctx := t.Context()
		// The caller stays silent three times and reaches an agent unverified.
		sid := testSID("agent000000000000000000000000001")
		e.post("/twilio/voice", params(sid))
		if _, err := e.svc.StartAgentVerification(ctx, sid, store.IDNationalID, cibatest.SEApprove, "alice"); !errors.Is(err, ivr.ErrCallInIVR) {
			t.Errorf("call still in the IVR: %v, want ErrCallInIVR", err)
		}
		for s := 1; s <= 3; s++ {
			e.post("/twilio/gather?s="+string(rune('0'+s)), params(sid, "Digits", ""))
		}
		if c := e.storedCall(sid); c.State != store.CallHandedOff {
			t.Fatalf("call %s, want handed off", c.State)
		}

		if _, err := e.svc.StartAgentVerification(ctx, sid, store.IDNationalID, "12345", "alice"); err == nil {
			t.Error("a bad number was accepted")
		} else if _, ok := errors.AsType[*ivr.InvalidIDError](err); !ok {
			t.Errorf("bad number: %v, want *InvalidIDError", err)
		}
		if _, err := e.svc.StartAgentVerification(ctx, testSID("nosuchcall"), store.IDNationalID, cibatest.SEApprove, "alice"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown call: %v, want ErrNotFound", err)
		}

		v, err := e.svc.StartAgentVerification(ctx, sid, store.IDNationalID, cibatest.SEApprove, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != store.VerPending || v.Initiator != "agent:alice" || v.SealedID != "" {
			t.Errorf("agent verification %s by %s (number returned %t)", v.Status, v.Initiator, v.SealedID != "")
		}
		if reqs := e.broker.Requests(); len(reqs) != 1 || reqs[0].CallInitiator != "RP" {
			t.Errorf("broker requests %+v, want callInitiator RP", reqs)
		}
		<-time.After(10 * time.Second)
		synctest.Wait()
		live, err := e.svc.LiveCalls(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(live) != 1 || live[0].State != store.ViewVerified || live[0].Verification.Name != "Astrid Lindqvist" {
			t.Fatalf("live calls %+v, want the call verified", live)
		}
		tl, err := e.svc.Timeline(ctx, sid)
		if err != nil {
			t.Fatal(err)
		}
		var byAgent bool
		for _, ev := range tl {
			if ev.Kind == store.EventAgentVerification && ev.Actor == "agent:alice" {
				byAgent = true
			}
		}
		if !byAgent {
			t.Error("timeline does not record the agent")
		}

		e.post("/twilio/status", params(sid, "CallStatus", "completed"))
		if _, err := e.svc.StartAgentVerification(ctx, sid, store.IDNationalID, cibatest.SEApprove, "alice"); !errors.Is(err, ivr.ErrCallEnded) || !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ended call: %v, want ErrCallEnded (matching ErrNotFound)", err)
		}
		recent, err := e.svc.RecentCalls(ctx, time.Now().Add(-time.Hour))
		if err != nil || len(recent) != 1 || recent[0].State != store.ViewEnded {
			t.Errorf("recent calls %+v %v", recent, err)
		}
		if _, err := e.svc.Timeline(ctx, testSID("nosuchcall")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("timeline of an unknown call: %v", err)
		}
	})
}

func TestNewServiceChecksConfig(t *testing.T) {
	good := ivr.Config{PublicURL: publicURL, TwilioAuthToken: authToken, AccountSID: accountSID, HashKey: make([]byte, 16)}
	store := downStore{}
	auth := &scriptedBroker{}
	for _, tc := range []struct {
		name string
		mod  func(*ivr.Config)
	}{
		{"short hash key", func(c *ivr.Config) { c.HashKey = []byte("short") }},
		{"no account SID", func(c *ivr.Config) { c.AccountSID = "" }},
		{"a malformed account SID", func(c *ivr.Config) { c.AccountSID = "ACdemo00000000000000000000000000000" }},
		{"unknown language", func(c *ivr.Config) { c.Language = "de-DE" }},
		{"no auth token", func(c *ivr.Config) { c.TwilioAuthToken = "" }},
		{"plain http public URL", func(c *ivr.Config) { c.PublicURL = "http://ivr.example.com" }},
	} {
		cfg := good
		tc.mod(&cfg)
		if _, err := ivr.NewService(cfg, store, auth, nil, nil); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if _, err := ivr.NewService(good, store, auth, nil, nil); err != nil {
		t.Errorf("good config: %v", err)
	}
}

func TestManyConcurrentCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *ivr.Config) { c.PollConcurrency = 3 })
		numbers := []string{cibatest.SEApprove, cibatest.NOApprove, cibatest.SEDecline, cibatest.NODecline, cibatest.SEApproveSlow, cibatest.NOApproveSlow}
		var wg sync.WaitGroup
		results := make([]*virtualtwilio.Transcript, len(numbers))
		for i, n := range numbers {
			wg.Go(func() {
				c := &caller{numbers: []string{n}}
				// Six different people: one caller id would meet its rate limit.
				from := "+4670123450" + strconv.Itoa(i)
				tr, err := e.tw.Call(t.Context(), virtualtwilio.Caller{Keys: c.keys, From: from})
				if err != nil {
					t.Errorf("call %d: %v", i, err)
				}
				results[i] = tr
			})
		}
		wg.Wait()
		want := []bool{true, true, false, false, true, true}
		for i, tr := range results {
			if tr == nil {
				continue
			}
			verified := strings.Contains(sayLines(tr), "Tack,")
			if verified != want[i] {
				t.Errorf("call %d (%s): verified %t\n%s", i, numbers[i][:2], verified, tr)
			}
			e.checkEnded(tr.CallSID)
		}
	})
}

func TestMissedHangUpStopsPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		sid := testSID("missed00000000000000000000000001")
		e.post("/twilio/voice", params(sid))
		e.post("/twilio/gather?s=1", params(sid, "Digits", cibatest.SENoAnswer))
		// The call ends but its status callback never reaches this
		// service; only the call row says so (another instance recorded
		// it, or the row was written while this one was down).
		e.stop()
		c := e.storedCall(sid)
		c.State, c.EndedAt = store.CallEnded, time.Now()
		if err := e.db.UpdateCall(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		e.start()
		<-time.After(5 * time.Second)
		synctest.Wait()
		req := e.broker.Requests()[0]
		polls := e.broker.Polls(req.ID)
		<-time.After(20 * time.Second)
		synctest.Wait()
		if got := e.broker.Polls(req.ID); got != polls {
			t.Errorf("polls went from %d to %d for an ended call", polls, got)
		}
		e.checkEnded(sid)
	})
}

// BenchmarkHoldHop measures one hop of the hold loop: a signed webhook
// answered from the store (sqlite on disk), without the broker.
func BenchmarkHoldHop(b *testing.B) {
	e := newEnv(b)
	sid := testSID("bench00000000000000000000000001")
	e.post("/twilio/voice", params(sid))
	e.post("/twilio/gather?s=1", params(sid, "Digits", cibatest.SENoAnswer))
	step := e.storedCall(sid).Step
	path := "/twilio/hold?s=" + strconv.Itoa(step) + "&a=1&n=1"
	p := params(sid)
	b.ResetTimer()
	for b.Loop() {
		if code, _ := e.post(path, p); code != 200 {
			b.Fatal(code)
		}
	}
}

// TestLostCancelStopsPolling: when an instance dies between ending a call
// and cancelling its verification, the poller finds the call ended (it
// reads it before a verification's first poll and every few after) and
// cancels the verification instead of polling for a caller who is gone.
func TestLostCancelStopsPolling(t *testing.T) {
	for _, tc := range []struct {
		name      string
		polls     int // the verification's polls when the call ended
		maxTokens int // token requests before the cancel, at most
	}{
		{"before the first poll", 0, 0},
		{"between checks", 1, 3},
		{"at a check", 4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := &scriptedBroker{}
				e := newEnv(t)
				e.stop()
				e.auth = b
				now := time.Now()
				c := storetest.NewCall("CA-lost-cancel", now.Add(-time.Minute))
				c.State, c.EndedAt, c.UpdatedAt = store.CallEnded, now, now
				if _, err := e.db.CreateCall(t.Context(), c); err != nil {
					t.Fatal(err)
				}
				v := storetest.NewVerification("ver-lost-cancel", c.SID, store.VerPending, now)
				v.CreatedAt, v.ExpiresAt, v.Polls = now.Add(-time.Minute), now.Add(2*time.Minute), tc.polls
				if _, err := e.db.StartVerification(t.Context(), nil, v, nil); err != nil {
					t.Fatal(err)
				}
				e.start()
				<-time.After(time.Minute) // fake time: a few checks' worth of polls
				synctest.Wait()
				got, err := e.db.Verification(t.Context(), v.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != store.VerCancelled || got.Error != "call ended" {
					t.Errorf("verification %s (%q), want cancelled: call ended", got.Status, got.Error)
				}
				b.mu.Lock()
				tokens := len(b.calls)
				b.mu.Unlock()
				if tokens > tc.maxTokens {
					t.Errorf("%d token requests for a call that had ended, want at most %d", tokens, tc.maxTokens)
				}
			})
		})
	}
}
