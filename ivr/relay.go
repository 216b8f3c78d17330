package ivr

import (
	"context"
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
func (s *Service) relay(ctx context.Context) {
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
			s.relayEvents(ctx, seqs)
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

// relayEvents loads the events seqs and publishes them with their calls.
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
	views := map[string]*store.CallView{}
	for _, e := range evs {
		cv, ok := views[e.CallSID]
		if !ok {
			if c, err := s.store.Call(ctx, e.CallSID); err == nil {
				v, _ := s.current(ctx, c)
				view := View(c, v)
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
