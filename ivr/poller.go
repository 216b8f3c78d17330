package ivr

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/internal/store"
)

// maxInvalidGrants is how many invalid_grant answers in a row fail a
// verification.
const maxInvalidGrants = 3

// Backoff bounds for transport failures toward the broker, and for a store
// that refuses writes.
const (
	maxBackoff      = 30 * time.Second
	storeBackoff    = time.Second
	maxStoreBackoff = 2 * time.Second
)

// pollLease is how long a claimed verification is the poller's alone (or
// its interval, if longer): a token request and storing its answer fit well
// inside it. A poller that dies holding a lease delays that verification's
// next poll by at most this long.
const pollLease = tokenCallTimeout + 3*time.Second

// callCheckPolls: every this many polls of a verification (and before the
// first), the poller checks that its call has not ended behind its back,
// a read of the call. The hang-up cancels the verification itself; this
// only catches a cancel that was lost, within a few polls, without a read
// per poll.
const callCheckPolls = 4

// claimBatch is the most free poll slots the poller waits for before it
// claims again while polls are in flight (fewer when the concurrency is
// small): at 2,000 polls a second a batch of 16 frees up in a few
// milliseconds, and the store sees one claim where it saw sixteen.
const claimBatch = 16

// sharedIdle bounds the poller's sleep on a store shared by several
// instances: a verification another instance created, or one whose lease
// a dead instance held, is then picked up within this long.
const sharedIdle = 2 * time.Second

// Run is the poller: it drives every pending verification in the store
// until ctx is done, then waits for the polls in flight. On a store shared
// by several instances (a store.EventFeed) it also relays every instance's
// events to the Publisher. It keeps no state of its own that a restart
// could lose: what to poll and when is read from the store, and each
// verification is claimed (leased) before it is polled, so any number of
// pollers on one store poll each one at a time, at its due time. It wakes
// when the earliest verification is due, when a new one is stored or when
// a poll finishes; it never busy-loops.
func (s *Service) Run(ctx context.Context) error {
	var (
		wg     sync.WaitGroup
		slots  = make(chan struct{}, s.cfg.PollConcurrency)
		kick   = make(chan struct{}, 1) // a poll finished
		failed atomic.Bool              // a poll could not store its result
		// polling holds the verifications this poller is still working on:
		// one whose lease ran out while its result waited for the store is
		// claimed again but not polled twice here.
		mu      sync.Mutex
		polling = map[string]bool{}
		// batch is the fewest free slots worth a claim while polls are in
		// flight: at full concurrency, a claim per finished poll would be
		// a round trip and a commit per poll more.
		batch = max(1, min(claimBatch, cap(slots)/8))
		// claim says whether to claim now: something is due, or may be.
		// A claim is a write transaction (on SQLite, the connection every
		// webhook's write queues for), so the poller does not claim on
		// every wake-up: a finished poll is worth a claim only when the
		// last claim filled every free slot (backlog: more may be due),
		// a new verification only once NextDue says it is due.
		claim   = true
		backlog = false
	)
	defer wg.Wait()
	if s.feed != nil {
		wg.Go(func() { s.relay(ctx) })
	}
	for {
		if ctx.Err() != nil {
			return nil
		}
		if failed.Swap(false) {
			// The store refused a result: its NextPollAt did not move, so
			// polling again at once would hammer the broker.
			if !sleep(ctx, storeBackoff) {
				return nil
			}
		}
		// Claim no more than can be polled now: a claimed row's lease
		// runs while it waits for a slot. While polls are in flight, wait
		// until a batch of slots is free: each poll that finishes kicks.
		free := cap(slots) - len(slots)
		if claim && free < batch && free < cap(slots) {
			select {
			case <-ctx.Done():
			case <-kick:
			}
			continue
		}
		if claim && free > 0 {
			due, err := s.store.ClaimDue(ctx, s.owner, s.now(), pollLease, free)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.log.Error("poller: claim due verifications", "err", err)
				if !sleep(ctx, storeBackoff) {
					return nil
				}
				continue
			}
			for _, v := range due {
				mu.Lock()
				busy := polling[v.ID]
				polling[v.ID] = true
				mu.Unlock()
				if busy {
					continue
				}
				slots <- struct{}{}
				wg.Go(func() {
					defer func() {
						mu.Lock()
						delete(polling, v.ID)
						mu.Unlock()
						<-slots
						select {
						case kick <- struct{}{}:
						default:
						}
					}()
					if !s.poll(ctx, v) {
						failed.Store(true)
					}
				})
			}
			if backlog = len(due) == free; backlog {
				continue // maybe more are due; a finished poll frees a slot
			}
		}
		claim = true
		var timer *time.Timer
		var fire <-chan time.Time
		if len(slots) < cap(slots) {
			next, ok, err := s.store.NextDue(ctx, s.now())
			switch {
			case err != nil:
				if ctx.Err() != nil {
					return nil
				}
				s.log.Error("poller: next due time", "err", err)
				next, ok = s.now().Add(storeBackoff), true
			case s.feed != nil && (!ok || next.Sub(s.now()) > sharedIdle):
				next, ok = s.now().Add(sharedIdle), true
			}
			if ok {
				d := next.Sub(s.now())
				if d <= 0 {
					continue // due now, or came due meanwhile
				}
				timer = time.NewTimer(d)
				fire = timer.C
			}
		}
		select {
		case <-ctx.Done():
		case <-s.wake:
			claim = false // NextDue first: is it due?
		case <-kick:
			claim = backlog
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// sleep waits d or until ctx is done; false when ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// poll handles one claimed verification: fails it if it never started,
// expires it at its deadline, otherwise asks the broker for the token once
// and stores what it learnt (which ends the claim). It reports false when
// the result could not be stored.
func (s *Service) poll(ctx context.Context, v *store.Verification) bool {
	now := s.now()
	var f func(*store.Verification) mutation
	switch {
	case v.Status == store.VerStarting:
		if now.Before(v.CreatedAt.Add(s.cfg.StartTimeout)) {
			f = func(v *store.Verification) mutation { // not yet: come back at the timeout
				if v.Status != store.VerStarting {
					return keep()
				}
				v.NextPollAt = v.CreatedAt.Add(s.cfg.StartTimeout)
				return save()
			}
			break
		}
		f = s.ending(store.VerFailed, errNoStartAnswer, now)
	case !v.ExpiresAt.IsZero() && !now.Before(v.ExpiresAt):
		if v.Failures > 0 {
			f = s.ending(store.VerFailed, errBrokerUnreachable, now)
		} else {
			f = s.ending(store.VerExpired, "no answer before expiry", now)
		}
	case v.Polls%callCheckPolls == 0 && s.callEnded(ctx, v.CallSID):
		// The hang-up's cancel was lost (the call was ended but its
		// verification not, a crash between the two writes): stop
		// polling for a call nobody is on.
		f = s.ending(store.VerCancelled, "call ended", now)
	default:
		tctx, cancel := context.WithTimeout(ctx, tokenCallTimeout)
		tok, err := s.auth.Token(tctx, v.AuthReqID)
		cancel()
		if ctx.Err() != nil {
			return true // shutting down: the next run polls again
		}
		f = s.outcome(tok, err, s.now())
	}
	got, evs, err := s.storeResult(ctx, v, f)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("poller: store verification", "call_sid", v.CallSID, "verification_id", v.ID, "err", err)
		}
		return false
	}
	if got.Status.Done() && len(evs) > 0 {
		s.log.Info("verification finished", "call_sid", got.CallSID, "verification_id", got.ID, "state", got.Status, "polls", got.Polls)
	}
	var published []*store.Event
	for _, e := range evs {
		if e.Kind != "" {
			published = append(published, e)
		}
	}
	s.settled(ctx, got, false, published...)
	return true
}

// storeResult applies f to v and stores it as mutateVerification does, but
// when the store fails it tries again, with backoff (1 s doubling to 10 s),
// until it succeeds, the verification is gone, or ctx ends. What the broker
// answered cannot be asked again (a token is issued once; asking again gets
// invalid_grant), so a store that is busy or briefly unwritable must not
// lose it. Each failure is logged.
func (s *Service) storeResult(ctx context.Context, v *store.Verification, f func(*store.Verification) mutation) (*store.Verification, []*store.Event, error) {
	wait := storeBackoff
	for {
		got, evs, err := s.mutateVerification(ctx, v, f)
		if err == nil || ctx.Err() != nil || errors.Is(err, store.ErrNotFound) {
			return got, evs, err
		}
		s.log.Error("store verification result; will retry", "call_sid", v.CallSID, "verification_id", v.ID, "retry_in", wait.String(), "err", err)
		if !sleep(ctx, wait) {
			return got, evs, err
		}
		wait = min(2*wait, maxStoreBackoff)
	}
}

// ending returns a mutation that ends a still-open verification with st.
func (s *Service) ending(st store.VerificationStatus, reason string, now time.Time) func(*store.Verification) mutation {
	return func(v *store.Verification) mutation {
		if v.Status.Done() {
			return keep()
		}
		finish(v, st, reason, now)
		return save(s.verificationEvent(v, statusEvent(st), reason, now))
	}
}

// outcome turns one token response into a mutation of the verification.
func (s *Service) outcome(tok *ciba.TokenResponse, err error, now time.Time) func(*store.Verification) mutation {
	if err == nil {
		return polled(func(v *store.Verification) mutation {
			if tok == nil || tok.IDToken == nil {
				finish(v, store.VerFailed, "no ID token", now)
				return save(s.verificationEvent(v, store.EventFailed, "no ID token", now))
			}
			value, oerr := s.seal.open(v.SealedID, v.ID)
			if oerr != nil {
				// IVR_HASH_KEY changed while it was in flight, or the
				// row was tampered with: nothing to check the token
				// against.
				finish(v, store.VerFailed, errUnsealable, now)
				return save(s.verificationEvent(v, store.EventFailed, errUnsealable, now))
			}
			claims, merr := matchToken(tok.IDToken, v.IDKind, value, s.cfg.Customer)
			if merr != nil {
				reason := merr.Error()
				finish(v, store.VerFailed, reason, now)
				return save(s.verificationEvent(v, store.EventFailed, reason, now))
			}
			v.Subject = tok.IDToken.Subject
			v.Name = claims.Name
			v.GivenName = claims.GivenName
			v.FamilyName = claims.FamilyName
			if v.Name == "" {
				v.Name = joinName(v.GivenName, v.FamilyName)
			}
			v.Pending = ""
			finish(v, store.VerApproved, "", now)
			return save(s.verificationEvent(v, store.EventApproved, "verified", now))
		})
	}
	switch {
	case errors.Is(err, ciba.ErrAuthorizationPending):
		desc := ""
		if e, ok := errors.AsType[*ciba.Error](err); ok {
			desc = pendingText(e.Description)
		}
		return polled(func(v *store.Verification) mutation {
			v.Failures = 0
			v.NextPollAt = ceilMS(minTime(now.Add(s.pollWait(v)), v.ExpiresAt))
			v.UpdatedAt = now
			if desc != "" && desc != v.Pending {
				v.Pending = desc
				return save(s.verificationEvent(v, store.EventPendingUpdate, desc, now))
			}
			return save()
		})
	case errors.Is(err, ciba.ErrSlowDown):
		var retryAfter time.Duration
		if e, ok := errors.AsType[*ciba.Error](err); ok {
			retryAfter = e.RetryAfter
		}
		return polled(func(v *store.Verification) mutation {
			v.SlowDowns++
			v.Failures = 0
			v.Interval += ciba.SlowDownStep
			if retryAfter > v.Interval {
				v.Interval = retryAfter
			}
			v.NextPollAt = ceilMS(minTime(now.Add(s.pollWait(v)), v.ExpiresAt))
			v.UpdatedAt = now
			return save()
		})
	}
	st, reason := classify(err)
	if errors.Is(err, ciba.ErrInvalidGrant) {
		// The auth_req_id is spent or unknown. Spent is what another
		// poll's token request leaves behind while its result waits for
		// the store (a lease that ran out during a store outage): back off
		// and look again before calling the verification failed.
		st = ""
	}
	if st == "" { // transport: back off, retry until the deadline
		return polled(func(v *store.Verification) mutation {
			v.Failures++
			if errors.Is(err, ciba.ErrInvalidGrant) && v.Failures >= maxInvalidGrants {
				finish(v, store.VerFailed, reason, now)
				return save(s.verificationEvent(v, store.EventFailed, reason, now))
			}
			wait := backoff(v.Interval, v.Failures)
			if errors.Is(err, ciba.ErrInvalidGrant) {
				// The poll that spent it may still be storing its token:
				// give it a whole lease before asking again.
				wait = max(wait, pollLease)
			}
			v.NextPollAt = ceilMS(minTime(now.Add(wait), v.ExpiresAt))
			v.UpdatedAt = now
			return save()
		})
	}
	return polled(func(v *store.Verification) mutation {
		finish(v, st, reason, now)
		return save(s.verificationEvent(v, statusEvent(st), reason, now))
	})
}

// polled is the mutation for a token answer: none when the verification
// is no longer pending (a hang-up, the expiry or another poll ended it),
// else the poll is counted and f applied.
func polled(f func(*store.Verification) mutation) func(*store.Verification) mutation {
	return func(v *store.Verification) mutation {
		if v.Status != store.VerPending {
			return keep()
		}
		v.Polls++
		return f(v)
	}
}

// backoff is the wait after the n-th consecutive transport failure:
// doubling from the interval, capped.
func backoff(interval time.Duration, n int) time.Duration {
	d := max(interval, time.Second)
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// pendingText keeps a broker's pending description only if it is one of
// the short, known, PII-free sub-states (broker text may echo the hint).
func pendingText(desc string) string {
	switch desc {
	case "awaiting first user interaction",
		"awaiting user request acknowledgement",
		"awaiting user identification",
		"User has not yet granted authorization":
		return desc
	}
	return ""
}

func joinName(given, family string) string {
	switch {
	case given == "":
		return family
	case family == "":
		return given
	}
	return given + " " + family
}

// ceilMS rounds t up to a whole millisecond: stores may keep milliseconds
// only, and a poll a fraction early earns a slow_down.
func ceilMS(t time.Time) time.Time {
	r := t.Truncate(time.Millisecond)
	if r.Before(t) {
		r = r.Add(time.Millisecond)
	}
	return r
}

// callEnded reports whether the call is known to have ended.
func (s *Service) callEnded(ctx context.Context, sid string) bool {
	c, err := s.store.Call(ctx, sid)
	return err == nil && (c.State == store.CallEnded || !c.EndedAt.IsZero())
}
