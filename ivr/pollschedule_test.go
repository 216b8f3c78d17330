package ivr_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
)

// punctualBroker answers every token request "pending" after a latency, and
// records when each auth_req_id was asked, to catch early or overlapping
// polls (a real broker answers those with slow_down).
type punctualBroker struct {
	interval, latency time.Duration

	mu       sync.Mutex
	n        int
	asked    map[string][]time.Time
	answered map[string]time.Time
	early    []string
	late     []time.Duration // how long after its due time each poll came
}

func newPunctualBroker(interval, latency time.Duration) *punctualBroker {
	return &punctualBroker{interval: interval, latency: latency, asked: map[string][]time.Time{}, answered: map[string]time.Time{}}
}

func (b *punctualBroker) Authenticate(ctx context.Context, req ciba.AuthRequest) (*ciba.AuthResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	return &ciba.AuthResponse{AuthReqID: "req-" + strconv.Itoa(b.n), ExpiresIn: 10 * time.Minute, Interval: b.interval, ExpiresAt: time.Now().Add(10 * time.Minute)}, nil
}

func (b *punctualBroker) Token(ctx context.Context, id string) (*ciba.TokenResponse, error) {
	now := time.Now()
	b.mu.Lock()
	if last, ok := b.answered[id]; ok {
		if now.Sub(last) < b.interval {
			b.early = append(b.early, fmt.Sprintf("%s asked %v after its previous answer", id, now.Sub(last)))
		}
		b.late = append(b.late, now.Sub(last)-b.interval)
	}
	if n := len(b.asked[id]); n > 0 && b.answered[id].Before(b.asked[id][n-1]) {
		b.early = append(b.early, id+" asked while its previous request was in flight")
	}
	b.asked[id] = append(b.asked[id], now)
	b.mu.Unlock()
	select {
	case <-time.After(b.latency):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	b.mu.Lock()
	b.answered[id] = time.Now()
	b.mu.Unlock()
	return nil, ciba.ErrAuthorizationPending
}

// TestPollerIsPunctualUnderLoad starts many verifications at once, with
// fewer poll slots than verifications and a broker that takes a while to
// answer: no verification may be polled before its interval has passed
// since the previous answer (the poller must not dispatch a row whose poll
// finished after it was read), and every poll must be made close to when
// it is due.
func TestPollerIsPunctualUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newPunctualBroker(time.Second, 50*time.Millisecond)
		e := newEnv(t, func(c *ivr.Config) {
			c.PollConcurrency = 4
			c.RateLimitCaller = ivr.RateLimit{Max: -1} // one caller id for all
		})
		e.stop()
		e.auth = b
		e.start()
		const calls = 40
		startCalls(e, "punctual", calls, 0)
		time.Sleep(30 * time.Second)
		e.stop()

		b.mu.Lock()
		defer b.mu.Unlock()
		for _, msg := range b.early {
			t.Error(msg)
		}
		if len(b.asked) != calls {
			t.Fatalf("%d verifications polled, want %d", len(b.asked), calls)
		}
		// 40 polls a second through 4 slots of 50 ms fit (80/s): each
		// verification gets about one poll a second.
		for id, at := range b.asked {
			if n := len(at); n < 25 {
				t.Errorf("%s polled %d times in 30 s at a 1 s interval", id, n)
			}
		}
		// Punctual: 99 % of polls within 10 % of the interval after due.
		slices.Sort(b.late)
		if p99 := b.late[len(b.late)*99/100]; p99 > b.interval/10 {
			t.Errorf("poll lateness p99 %v (max %v), want at most %v", p99, b.late[len(b.late)-1], b.interval/10)
		}
	})
}

// startCalls places n calls whose callers each type a valid personnummer,
// gap apart: n verifications start.
func startCalls(e *env, prefix string, n int, gap time.Duration) {
	for i := range n {
		sid := testSID(fmt.Sprintf("%s%d", prefix, i))
		e.post("/twilio/voice", params(sid))
		e.post("/twilio/gather?s=1", params(sid, "Digits", validSwedish(i)))
		if gap > 0 {
			time.Sleep(gap)
		}
	}
}

// validSwedish returns the i-th of a series of valid 12-digit personnummer.
func validSwedish(i int) string {
	base := fmt.Sprintf("8001%02d%03d", 1+i%28, 100+i) // YYMMDD + serial
	sum := 0
	for j, r := range base {
		d := int(r - '0')
		if j%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return "19" + base + strconv.Itoa((10-sum%10)%10)
}

// claimCounter counts the store's claims, and those that claimed nothing.
type claimCounter struct {
	store.Store
	claims, empty atomic.Int64
}

func (c *claimCounter) ClaimDue(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*store.Verification, error) {
	vs, err := c.Store.ClaimDue(ctx, owner, now, lease, limit)
	c.claims.Add(1)
	if err == nil && len(vs) == 0 {
		c.empty.Add(1)
	}
	return vs, err
}

// TestPollerClaimsWhenSomethingIsDue: a claim is a write transaction, on
// SQLite the one connection every webhook's write queues for. The poller
// claims when a verification comes due, or when a poll finishing frees a
// slot that a backlog waits for; not after every poll when nothing else is
// due (a claim that found nothing for each poll, twice the polls' claims).
func TestPollerClaimsWhenSomethingIsDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newPunctualBroker(time.Second, 50*time.Millisecond)
		e := newEnv(t, func(c *ivr.Config) {
			c.RateLimitCaller = ivr.RateLimit{Max: -1} // one caller id for all
		})
		e.stop()
		e.auth = b
		cc := &claimCounter{Store: e.db}
		e.store = cc
		e.start()
		const calls = 10
		startCalls(e, "due", calls, 97*time.Millisecond) // due at different times
		time.Sleep(20 * time.Second)
		e.stop()

		b.mu.Lock()
		defer b.mu.Unlock()
		polls := 0
		for _, at := range b.asked {
			polls += len(at)
		}
		if polls < calls*15 {
			t.Fatalf("%d polls of %d verifications in 20 s at a 1 s interval", polls, calls)
		}
		claims, empty := cc.claims.Load(), cc.empty.Load()
		t.Logf("%d polls, %d claims, %d of them empty", polls, claims, empty)
		if empty > int64(polls)/20 {
			t.Errorf("%d of %d claims found nothing due, for %d polls; want at most one in twenty polls", empty, claims, polls)
		}
	})
}
