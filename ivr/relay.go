package ivr

import (
	"context"
	"sync"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// Resyncer is a Publisher that can reload what it shows from the store, for
// when events may have been missed. The dashboard hub is one.
type Resyncer interface {
	Resync()
}

// relayRetry is the wait before listening again after the feed failed.
const relayRetry = time.Second

// relay publishes the events of every instance sharing the store, as the
// store's feed delivers them, each with its call as it is now. On a shared
// store this is the only way events reach the Publisher, so every
// dashboard sees every event whichever instance made it. A gap in the feed
// (a lost connection) resyncs the Publisher from the store.
//
// The feed only queues the seqs it delivers; another goroutine loads and
// publishes all those queued at once, so that a relay that falls behind (a
// burst of calls, a busy machine) catches up in one batch instead of
// paying a few round trips to the store per notification.
func (s *Service) relay(ctx context.Context) {
	var (
		mu      sync.Mutex
		pending []int64
		ready   = make(chan struct{}, 1)
		wg      sync.WaitGroup
	)
	defer wg.Wait()
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-ready:
			}
			mu.Lock()
			seqs := pending
			pending = nil
			mu.Unlock()
			started := time.Now()
			s.relayEvents(ctx, seqs)
			// At most one load per relayGap: under a burst the next
			// batch gathers what arrived meanwhile instead of a load per
			// notification competing with the writers for the database.
			if wait := relayGap - time.Since(started); wait > 0 && !sleep(ctx, wait) {
				return
			}
		}
	})
	queue := func(seqs []int64) {
		mu.Lock()
		pending = append(pending, seqs...)
		mu.Unlock()
		select {
		case ready <- struct{}{}:
		default:
		}
	}
	for ctx.Err() == nil {
		started := false
		err := s.feed.Listen(ctx, func(seqs []int64, resync bool) {
			if resync {
				if started {
					s.log.Warn("event feed resumed after a gap; dashboards resync")
				}
				started = true
				if r, ok := s.pub.(Resyncer); ok {
					r.Resync()
				}
				return
			}
			queue(seqs)
		})
		if err != nil && ctx.Err() == nil {
			s.log.Error("event feed failed; listening again", "err", err)
			if r, ok := s.pub.(Resyncer); ok {
				r.Resync()
			}
			sleep(ctx, relayRetry)
		}
	}
}

// relayGap is the least time between two of the relay's loads: a few
// milliseconds added to what a dashboard sees, for far fewer loads when
// events come by the hundred a second.
const relayGap = 10 * time.Millisecond

// relayEvents loads the events seqs, with their calls and the calls'
// verifications, in one go, and publishes them in seq order.
func (s *Service) relayEvents(ctx context.Context, seqs []int64) {
	if s.pub == nil {
		return
	}
	b, err := s.feed.LoadEvents(ctx, seqs)
	if err != nil {
		s.log.Error("relay events", "err", err)
		if r, ok := s.pub.(Resyncer); ok {
			r.Resync()
		}
		return
	}
	views := map[string]*store.CallView{}
	for _, e := range b.Events {
		cv, seen := views[e.CallSID]
		if !seen {
			if c := b.Calls[e.CallSID]; c != nil {
				view := View(c, b.Verifications[c.VerificationID])
				cv = &view
			}
			views[e.CallSID] = cv
		}
		if cv != nil {
			cp := *cv
			e.Call = &cp
		}
		s.pub.Publish(ctx, e)
	}
}
