package ivr

import (
	"context"
	"sync"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// cacheLimit bounds the calls and verifications a writeCache keeps; past
// it the cache starts afresh (rare: live calls are far fewer).
const cacheLimit = 20_000

// writeCache is a store.Store that keeps in memory the live calls and the
// verifications it has read or written, and answers reads of them from
// memory. It is correct only when the Service is the store's sole writer
// of calls and verifications — sqlite, one instance — since every write
// then passes through it: a write that succeeds replaces the kept copy, one
// that fails drops it. A store that several instances share (a
// store.EventFeed) is never wrapped. It spares a hold-loop hop the two
// reads that were most of its cost.
type writeCache struct {
	store.Store
	mu    sync.Mutex
	calls map[string]store.Call
	vers  map[string]store.Verification
}

func newWriteCache(st store.Store) *writeCache {
	return &writeCache{Store: st, calls: map[string]store.Call{}, vers: map[string]store.Verification{}}
}

// keepCall keeps a copy of c, or forgets it once the call has ended (the
// retention purge deletes ended calls behind the Service's back).
func (w *writeCache) keepCall(c *store.Call) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !c.EndedAt.IsZero() || c.State == store.CallEnded {
		delete(w.calls, c.SID)
		return
	}
	if len(w.calls) >= cacheLimit {
		clear(w.calls)
	}
	cp := *c
	cp.HandedOffAt, cp.CreatedAt, cp.UpdatedAt = stored(cp.HandedOffAt), stored(cp.CreatedAt), stored(cp.UpdatedAt)
	w.calls[c.SID] = cp
}

// stored is t as a store hands it back: UTC, whole milliseconds.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Millisecond)
}

func (w *writeCache) dropCall(sid string) {
	w.mu.Lock()
	delete(w.calls, sid)
	w.mu.Unlock()
}

func (w *writeCache) keepVerification(v *store.Verification) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.vers) >= cacheLimit {
		clear(w.vers)
	}
	cp := *v
	for _, t := range []*time.Time{&cp.ExpiresAt, &cp.NextPollAt, &cp.CreatedAt, &cp.UpdatedAt, &cp.CompletedAt, &cp.NotifiedAt, &cp.LeaseUntil} {
		*t = stored(*t)
	}
	w.vers[v.ID] = cp
}

func (w *writeCache) dropVerification(id string) {
	w.mu.Lock()
	delete(w.vers, id)
	w.mu.Unlock()
}

func (w *writeCache) CreateCall(ctx context.Context, c *store.Call, events ...*store.Event) (bool, error) {
	created, err := w.Store.CreateCall(ctx, c, events...)
	if created && err == nil {
		w.keepCall(c)
	} else {
		w.dropCall(c.SID)
	}
	return created, err
}

func (w *writeCache) Call(ctx context.Context, sid string) (*store.Call, error) {
	w.mu.Lock()
	c, ok := w.calls[sid]
	w.mu.Unlock()
	if ok {
		return &c, nil
	}
	got, err := w.Store.Call(ctx, sid)
	if err == nil {
		w.keepCall(got)
	}
	return got, err
}

func (w *writeCache) UpdateCall(ctx context.Context, c *store.Call, events ...*store.Event) error {
	err := w.Store.UpdateCall(ctx, c, events...)
	if err == nil {
		w.keepCall(c)
	} else {
		w.dropCall(c.SID)
	}
	return err
}

func (w *writeCache) StartVerification(ctx context.Context, c *store.Call, v *store.Verification, limits []store.Limit, events ...*store.Event) ([]store.Limit, error) {
	over, err := w.Store.StartVerification(ctx, c, v, limits, events...)
	switch {
	case err == nil:
		if c != nil {
			w.keepCall(c)
		}
		w.keepVerification(v)
	default:
		if c != nil {
			w.dropCall(c.SID)
		}
		w.dropVerification(v.ID)
	}
	return over, err
}

func (w *writeCache) Verification(ctx context.Context, id string) (*store.Verification, error) {
	w.mu.Lock()
	v, ok := w.vers[id]
	w.mu.Unlock()
	if ok {
		return &v, nil
	}
	got, err := w.Store.Verification(ctx, id)
	if err == nil {
		w.keepVerification(got)
	}
	return got, err
}

func (w *writeCache) UpdateVerification(ctx context.Context, v *store.Verification, events ...*store.Event) error {
	err := w.Store.UpdateVerification(ctx, v, events...)
	if err == nil {
		// The store ended the lease as it stored v.
		cp := *v
		cp.LeaseOwner, cp.LeaseUntil = "", time.Time{}
		w.keepVerification(&cp)
	} else {
		w.dropVerification(v.ID)
	}
	return err
}

func (w *writeCache) ClaimDue(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*store.Verification, error) {
	vs, err := w.Store.ClaimDue(ctx, owner, now, lease, limit)
	for _, v := range vs {
		w.keepVerification(v)
	}
	return vs, err
}
