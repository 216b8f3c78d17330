package ivr_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
)

// sharedStore is a store several instances share: its feed delivers
// nothing here, but a poller on it looks for others' work every couple of
// seconds, as on PostgreSQL.
type sharedStore struct{ store.Store }

func (sharedStore) Listen(ctx context.Context, deliver func(seqs []int64, resync bool)) error {
	deliver(nil, true)
	<-ctx.Done()
	return nil
}

func (sharedStore) LoadEvents(context.Context, []int64) (store.EventBatch, error) {
	return store.EventBatch{}, nil
}

// slowStore is the store of an instance whose database is saturated: the
// first time it stores an approval, that write and every claim of its
// poller meanwhile take delay. The token's result is still waiting after
// the poll's lease ran out.
type slowStore struct {
	sharedStore
	delay   time.Duration
	once    sync.Once
	entered chan struct{}
	until   atomic.Pointer[time.Time]
}

func (s *slowStore) UpdateVerification(ctx context.Context, v *store.Verification, evs ...*store.Event) error {
	if v.Status == store.VerApproved {
		s.once.Do(func() { // the first attempt only
			until := time.Now().Add(s.delay)
			s.until.Store(&until)
			close(s.entered)
			time.Sleep(s.delay)
		})
	}
	return s.sharedStore.UpdateVerification(ctx, v, evs...)
}

func (s *slowStore) ClaimDue(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*store.Verification, error) {
	if until := s.until.Load(); until != nil && time.Now().Before(*until) {
		time.Sleep(time.Until(*until))
		now = time.Now()
	}
	return s.sharedStore.ClaimDue(ctx, owner, now, lease, limit)
}

// TestApprovalStoredLateIsNotLostToAnotherPoller: poller A gets the token
// of an approved request, but its database is saturated and storing it
// takes 20 s; meanwhile its lease runs out and poller B, sharing the
// store, polls the spent auth_req_id and gets invalid_grant. B must give A
// a lease's time between its tries rather than fail the verification (3
// invalid_grants at the interval's backoff took 6 s, and A's approval was
// then dropped as stale): the caller approved and must count as verified.
// Seen with two instances under a 1,000-call burst on a saturated
// machine: 4 approved callers told their verification failed.
func TestApprovalStoredLateIsNotLostToAnotherPoller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.stop()
		slow := &slowStore{sharedStore: sharedStore{e.db}, delay: 20 * time.Second, entered: make(chan struct{})}
		e.store = slow
		e.start() // poller A

		sid := testSID("lease")
		pnr := validSwedish(7) // born 1980: the bubble's clock is in 2000
		e.broker.AddUser(cibatest.User{NationalID: pnr, GivenName: "Lisa", FamilyName: "Lease", Script: cibatest.ScriptManual})
		e.post("/twilio/voice", params(sid))
		e.post("/twilio/gather?s=1", params(sid, "Digits", pnr))
		var reqID string
		for _, rq := range e.broker.Requests() {
			if rq.State == cibatest.StatePending {
				reqID = rq.ID
			}
		}
		if reqID == "" {
			t.Fatal("no BankID request started")
		}
		if err := e.broker.Approve(reqID, ""); err != nil {
			t.Fatal(err)
		}
		<-slow.entered // A holds the token, its store is stuck

		b, err := ivr.NewService(e.cfg, sharedStore{e.db}, e.client, &recorder{}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx) }()

		time.Sleep(time.Minute)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("poller B: %v", err)
		}
		b.Close()
		c := e.storedCall(sid)
		v, err := e.db.Verification(t.Context(), c.VerificationID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != store.VerApproved {
			t.Errorf("verification %s (%s) after poller B met the spent auth_req_id; want approved: the token was issued to poller A", v.Status, v.Error)
		}
	})
}
