package agentui

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// Throttling of failed logins. Failures are counted in the store, so every
// instance sees them, under three keys:
//
//   - an agent name from one client address: after PairLimit failures that
//     address waits before trying that name again, a minute and then twice
//     as long after each further failure;
//   - a client address, whatever the names: after AddressLimit failures
//     (someone trying many names) the address waits likewise;
//   - an agent name from anywhere: after NameFreeFailures, every attempt
//     on that name is answered more slowly, half a second and then twice as
//     long after each failure, up to a few seconds. It never refuses: a
//     guesser elsewhere must not lock the agent out, nor everyone behind the
//     same proxy.
//
// Counts reset once no failure came for LoginWindow. Attempts being checked
// right now count too, so that parallel guesses cannot all pass the check
// before the first of them has failed.
type throttle struct {
	agents store.AgentStore
	now    func() time.Time
	window time.Duration                                    // LoginWindow
	sleep  func(ctx context.Context, d time.Duration) error // Config.Sleep

	mu       sync.Mutex
	inflight map[string]int
}

// Throttling limits.
const (
	pairLimit        = 5
	addressLimit     = 20
	nameFreeFailures = 5
	firstWait        = time.Minute
	firstDelay       = 500 * time.Millisecond
	maxDelay         = 4 * time.Second
)

// attempt is one login being checked.
type attempt struct {
	t    *throttle
	keys []string // pair, address, name
}

func throttleKeys(name, ip string) []string {
	return []string{"pair:" + name + "|" + ip, "ip:" + ip, "name:" + name}
}

// begin checks whether an attempt for name from ip may go ahead: a
// *RateLimitError when its address must wait, after the name's slow-down
// otherwise. The attempt must be ended (end) once checked.
func (t *throttle) begin(ctx context.Context, name, ip string) (*attempt, error) {
	a := &attempt{t: t, keys: throttleKeys(name, ip)}
	failures, err := t.agents.LoginFailures(ctx, a.keys, t.now().Add(-t.window))
	if err != nil {
		return nil, fmt.Errorf("agentui: login: %w", err)
	}
	now := t.now()
	t.mu.Lock()
	// waitFor is how long k must wait after its failures: the backoff
	// counted from its last failure (or from now, while attempts are in
	// flight).
	waitFor := func(k string, limit int, first, most time.Duration) time.Duration {
		f := failures[k]
		b := backoff(f.Count+t.inflight[k], limit, first, most)
		last := f.Last
		if t.inflight[k] > 0 {
			last = now
		}
		return max(0, last.Add(b).Sub(now))
	}
	var wait time.Duration
	if ip != "" {
		wait = max(waitFor(a.keys[0], pairLimit, firstWait, t.window), waitFor(a.keys[1], addressLimit, firstWait, t.window))
	}
	slow := backoff(failures[a.keys[2]].Count+t.inflight[a.keys[2]], nameFreeFailures, firstDelay, maxDelay)
	if wait == 0 {
		for _, k := range a.keys {
			t.inflight[k]++
		}
	}
	t.mu.Unlock()
	if wait > 0 {
		return nil, &RateLimitError{RetryAfter: wait}
	}
	if slow > 0 {
		if err := t.sleep(ctx, slow); err != nil {
			a.end()
			return nil, fmt.Errorf("agentui: login: %w", err)
		}
	}
	return a, nil
}

// backoff is the wait after n failures when limit of them are free: first
// after the limit-th, doubling with each further failure, at most most.
func backoff(n, limit int, first, most time.Duration) time.Duration {
	if n < limit {
		return 0
	}
	d := first
	for i := limit; i < n && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}

// failed counts the attempt as a failure under its keys.
func (a *attempt) failed(ctx context.Context) {
	now := a.t.now()
	_ = a.t.agents.AddLoginFailure(context.WithoutCancel(ctx), a.keys, now.Add(-a.t.window), now) // the refusal stands either way
}

// succeeded forgets the failures of this name from this address.
func (a *attempt) succeeded(ctx context.Context) {
	_ = a.t.agents.ClearLoginFailures(context.WithoutCancel(ctx), a.keys[0])
}

// end stops counting the attempt as in flight.
func (a *attempt) end() {
	a.t.mu.Lock()
	defer a.t.mu.Unlock()
	for _, k := range a.keys {
		if a.t.inflight[k]--; a.t.inflight[k] <= 0 {
			delete(a.t.inflight, k)
		}
	}
}

// sleepCtx waits d, or less if ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
