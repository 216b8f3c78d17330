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
			s.relayEvents(ctx, seqs)
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

// relayEvents loads the events seqs and publishes them, in seq order, with
// their calls (each loaded once).
func (s *Service) relayEvents(ctx context.Context, seqs []int64) {
	if s.pub == nil {
		return
	}
	evs, err := s.feed.EventsBySeq(ctx, seqs)
	if err != nil {
		s.log.Error("relay events", "err", err)
		if r, ok := s.pub.(Resyncer); ok {
			r.Resync()
		}
		return
	}
	// The calls, a few at a time: a batch can name many.
	var sids []string
	views := map[string]*store.CallView{}
	for _, e := range evs {
		if _, ok := views[e.CallSID]; !ok {
			views[e.CallSID] = nil
			sids = append(sids, e.CallSID)
		}
	}
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		slots = make(chan struct{}, relayLoads)
	)
	for _, sid := range sids {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			c, err := s.store.Call(ctx, sid)
			if err != nil {
				return
			}
			v, _ := s.current(ctx, c)
			view := View(c, v)
			mu.Lock()
			views[sid] = &view
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, e := range evs {
		if cv := views[e.CallSID]; cv != nil {
			cp := *cv
			e.Call = &cp
		}
		s.pub.Publish(ctx, e)
	}
}

// relayLoads is how many calls relayEvents loads at once.
const relayLoads = 8
