package ivr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/internal/store"
)

// newVerification makes a verification in VerStarting for id. NextPollAt is
// the start timeout, so the poller fails it if bc-authorize never answers.
func (s *Service) newVerification(callSID string, id Identity, caller, initiator string, now time.Time) *store.Verification {
	vid := newID()
	v := &store.Verification{
		ID:         vid,
		CallSID:    callSID,
		Country:    id.Country(),
		IDKind:     id.Kind(),
		SealedID:   s.seal.seal(id.Value(), vid),
		MaskedID:   id.Masked(),
		IDHash:     id.Hash(s.cfg.HashKey),
		Caller:     caller,
		Initiator:  initiator,
		Status:     store.VerStarting,
		NextPollAt: now.Add(s.cfg.StartTimeout),
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	if s.cfg.Mode == ModePing {
		v.NotifyHash = hashToken(s.ping.token(vid))
	}
	return v
}

// defaultExpiry is the lifetime assumed when the broker gives none;
// maxExpiry bounds any lifetime (Idura's Norwegian requests live 900 s).
const (
	defaultExpiry = 120 * time.Second
	maxExpiry     = 15 * time.Minute
)

// launchStart sends bc-authorize in a goroutine owned by the Service, with a
// context detached from the request (Twilio hangs up on slow webhooks; the
// broker call must still land in the store) and bounded by its own timeout.
// The stored verification arrives on the returned channel.
func (s *Service) launchStart(ctx context.Context, v *store.Verification, id Identity, callInitiator string) *startWait {
	w := &startWait{result: make(chan *store.Verification, 1)}
	cp := *v
	s.wg.Go(func() {
		// Until the poller would fail it anyway: the broker call has
		// startCallTimeout of it, storing the answer the rest.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.StartTimeout)
		defer cancel()
		s.authenticate(ctx, &cp, id, callInitiator, w)
	})
	return w
}

// authenticate runs bc-authorize for v and stores the result. It returns
// the verification as stored.
func (s *Service) authenticate(ctx context.Context, v *store.Verification, id Identity, callInitiator string, w *startWait) {
	in, err := BuildRequest(s.cfg.Profile, id, s.cfg.Customer, RequestOptions{Language: s.cfg.Language, CallInitiator: callInitiator, Code: NewCode()})
	in.Issuer = s.issuer()
	if v.NotifyHash != "" {
		in.ClientNotificationToken = s.ping.token(v.ID)
	}
	var (
		resp *ciba.AuthResponse
		req  ciba.AuthRequest
	)
	if err == nil {
		req, err = s.cfg.Profile.Request(in)
	}
	if err == nil {
		actx, cancel := context.WithTimeout(ctx, startCallTimeout)
		resp, err = s.auth.Authenticate(actx, req)
		cancel()
	}
	now := s.now()
	got, evs, werr := s.storeResult(ctx, v, func(v *store.Verification) mutation {
		if v.Status != store.VerStarting {
			return keep() // cancelled or timed out meanwhile
		}
		v.Method = in.Method
		if err != nil {
			st, reason := classify(err)
			if st == "" { // a transport failure: nothing to retry at start
				st = store.VerFailed
			}
			finish(v, st, reason, now)
			return save(s.verificationEvent(v, statusEvent(st), reason, now))
		}
		v.Status = store.VerPending
		v.AuthReqID = resp.AuthReqID
		v.Interval = resp.PollInterval()
		switch {
		case resp.ExpiresIn > 0:
			v.ExpiresAt = now.Add(resp.ExpiresIn)
		case !resp.ExpiresAt.IsZero():
			v.ExpiresAt = resp.ExpiresAt
		default:
			v.ExpiresAt = now.Add(defaultExpiry)
		}
		// Nobody holds longer than this, whatever the broker allows.
		v.ExpiresAt = minTime(v.ExpiresAt, now.Add(maxExpiry))
		v.BindingMessage = in.BindingMessage
		if in.BindingMessage == "" {
			v.BindingMessage = resp.BindingMessage // Norwegian BankID's word pair
		}
		v.NextPollAt = ceilMS(minTime(now.Add(s.pollWait(v)), v.ExpiresAt))
		if !v.NotifiedAt.IsZero() {
			v.NextPollAt = now // the broker's notification beat this answer home
		}
		v.UpdatedAt = now
		detail := "waiting for the user"
		if v.Country == store.Norway {
			detail = "word pair sent"
		}
		return save(s.verificationEvent(v, store.EventPending, detail, now))
	})
	if werr != nil {
		s.log.Error("store bc-authorize result", "call_sid", v.CallSID, "verification_id", v.ID, "err", werr)
		w.finish(v)
		return
	}
	if err != nil {
		s.log.Warn("bc-authorize failed", "call_sid", v.CallSID, "verification_id", v.ID, "state", got.Status, "err", err)
	} else {
		s.log.Info("bc-authorize accepted", "call_sid", v.CallSID, "verification_id", v.ID, "state", got.Status)
	}
	s.notify()
	gaveUp := w.finish(got)
	s.settled(ctx, got, gaveUp && len(evs) > 0, evs...)
}

func (s *Service) verificationEvent(v *store.Verification, kind store.EventKind, detail string, now time.Time) *store.Event {
	actor := "system"
	return &store.Event{At: now, CallSID: v.CallSID, VerificationID: v.ID, Kind: kind, Actor: actor, Detail: detail}
}

// mutation is what a change to a verification decided: leave it as
// stored (keep), or store it with these events, none being fine (save).
type mutation struct {
	write  bool
	events []*store.Event
}

// keep leaves the verification as it is stored.
func keep() mutation { return mutation{} }

// save stores the verification with evs.
func save(evs ...*store.Event) mutation { return mutation{write: true, events: evs} }

// mutateVerification applies f to v and, when f says so, stores it with
// the events f returns; on a version conflict it reloads v and applies f
// again. It returns the verification as stored and the events written.
func (s *Service) mutateVerification(ctx context.Context, v *store.Verification, f func(*store.Verification) mutation) (*store.Verification, []*store.Event, error) {
	cur := *v
	for i := 0; ; i++ {
		wasDone := cur.Status.Done()
		u := f(&cur)
		if !u.write {
			return &cur, nil, nil
		}
		evs := u.events
		err := s.store.UpdateVerification(ctx, &cur, evs...)
		if err == nil {
			if !wasDone && cur.Status.Done() && s.cfg.Observer != nil {
				s.cfg.Observer.VerificationEnded(&cur)
			}
			return &cur, evs, nil
		}
		if !errors.Is(err, store.ErrConflict) || i >= maxConflictRetries {
			return &cur, nil, err
		}
		fresh, err := s.store.Verification(ctx, v.ID)
		if err != nil {
			return &cur, nil, err
		}
		cur = *fresh
	}
}

// finish ends a verification: its full national identity number is dropped.
func finish(v *store.Verification, st store.VerificationStatus, reason string, now time.Time) {
	v.Status = st
	v.Error = reason
	v.SealedID = ""
	v.CompletedAt = now
	v.UpdatedAt = now
}

// cancelVerification ends a verification whose call ended.
func (s *Service) cancelVerification(ctx context.Context, id string) (*store.Verification, error) {
	v, err := s.store.Verification(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	got, evs, err := s.mutateVerification(ctx, v, func(v *store.Verification) mutation {
		if v.Status.Done() {
			return keep()
		}
		finish(v, store.VerCancelled, "call ended", now)
		return save(s.verificationEvent(v, store.EventCancelled, "call ended", now))
	})
	if err != nil {
		return got, err
	}
	if len(evs) > 0 {
		s.log.Info("verification cancelled", "call_sid", got.CallSID, "verification_id", got.ID, "state", got.Status)
	}
	return got, nil
}

// Failure texts kept in Verification.Error that mean the broker could not
// be reached or did not answer.
const (
	errBrokerUnreachable = "broker unreachable"
	errNoStartAnswer     = "broker did not answer the start"
	errUnsealable        = "the number entered could not be read back to check the ID token"
)

// FailureReason is why a verification whose status is st (its effective
// status, see EffectiveStatus) did not verify the caller; "" when it is
// approved or still in flight.
func FailureReason(v *store.Verification, st store.VerificationStatus) store.Reason {
	switch st {
	case store.VerDeclined:
		return store.ReasonDeclined
	case store.VerExpired:
		return store.ReasonExpired
	case store.VerUnknownUser:
		return store.ReasonUnknownUser
	case store.VerCancelled:
		return store.ReasonHungUp
	case store.VerFailed:
		if v.Status == store.VerStarting || v.Error == errBrokerUnreachable || v.Error == errNoStartAnswer {
			return store.ReasonBrokerUnreachable
		}
		return store.ReasonFailed
	}
	return ""
}

// classify maps a broker error to a final status and a short reason that
// carries no personal data. A transport failure gives status "" (retry).
func classify(err error) (store.VerificationStatus, string) {
	switch {
	case errors.Is(err, ciba.ErrAccessDenied):
		return store.VerDeclined, "declined by the user"
	case errors.Is(err, ciba.ErrExpiredToken), errors.Is(err, ciba.ErrExpired):
		return store.VerExpired, "expired at the broker"
	case errors.Is(err, ciba.ErrUnknownUserID):
		return store.VerUnknownUser, "unknown user"
	case errors.Is(err, ciba.ErrInvalidIDToken):
		return store.VerFailed, "invalid ID token"
	case errors.Is(err, ciba.ErrTransport), errors.Is(err, context.DeadlineExceeded):
		return "", errBrokerUnreachable
	}
	if e, ok := errors.AsType[*ciba.Error](err); ok {
		return store.VerFailed, "broker error " + safeToken(e.Code)
	}
	return store.VerFailed, "broker error"
}

// safeToken keeps an OAuth error code printable and short.
func safeToken(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r == '_' {
			return r
		}
		return -1
	}, s)
}

func minTime(a, b time.Time) time.Time {
	if b.IsZero() || a.Before(b) {
		return a
	}
	return b
}

// ErrKindNotOffered is returned by ParseIdentity for an identifier the
// broker cannot take.
var ErrKindNotOffered = errors.New("ivr: the broker cannot identify a caller by that")

// AgentKinds are the identifiers agents may verify callers with at the
// configured broker.
func (s *Service) AgentKinds() []store.IDKind { return AgentKinds(s.cfg.Profile) }

// ParseIdentity reads an identifier of kind an agent typed for a caller:
// *InvalidIDError when it is malformed, ErrKindNotOffered when the broker
// cannot take that kind.
func (s *Service) ParseIdentity(kind store.IDKind, value string, now time.Time) (Identity, error) {
	if !contains(s.AgentKinds(), kind) {
		return Identity{}, ErrKindNotOffered
	}
	switch kind {
	case store.IDNationalID:
		n, err := ParseNationalID(value, now)
		if err != nil {
			return Identity{}, err
		}
		return NationalIdentity(n), nil
	case store.IDCustomer:
		return s.cfg.Customer.Parse(value)
	case store.IDPhone:
		return ParsePhone(value)
	}
	return ParseEmail(value)
}

// ErrVerificationInFlight is returned by StartAgentVerification while the
// call's verification is still starting or pending: a second BankID request
// would only confuse the caller.
var ErrVerificationInFlight = errors.New("ivr: a verification is already in flight for this call")

// StartAgentVerification starts a verification for a live call on an
// agent's behalf (Swedish callInitiator "RP"). It waits up to StartWait for
// the broker's answer and returns the verification as stored, without the
// sealed number. The agent's own limit and the global cap apply; the
// per-number limit does not stop an agent talking to the person (who must
// not be locked out of help by strangers' calls) but going past it is
// recorded in the call's timeline. Errors: *InvalidIDError for a bad
// number, store.ErrNotFound for an unknown call, ErrCallEnded for a call
// that ended, ErrCallInIVR for a call that has not reached an agent yet,
// ErrVerificationInFlight while one is starting or pending, and
// *RateLimitError (ErrRateLimited) when a limit refuses it.
func (s *Service) StartAgentVerification(ctx context.Context, callSID string, kind store.IDKind, value, agent string) (*store.Verification, error) {
	now := s.now()
	id, err := s.ParseIdentity(kind, value, now)
	if err != nil {
		return nil, err
	}
	initiator := "agent:" + agent
	var (
		c    *store.Call
		v    *store.Verification
		over []store.Limit
		evs  []*store.Event
	)
	for i := 0; ; i++ {
		if c, err = s.store.Call(ctx, callSID); err != nil {
			return nil, fmt.Errorf("ivr: agent verification: %w", err)
		}
		if c.State == store.CallEnded || !c.EndedAt.IsZero() {
			return nil, ErrCallEnded
		}
		if c.State != store.CallHandedOff {
			return nil, ErrCallInIVR
		}
		v = s.newVerification(callSID, id, callerKey(c.From), initiator, now)
		evs = []*store.Event{
			{At: now, CallSID: callSID, VerificationID: v.ID, Kind: store.EventAgentVerification, Actor: initiator, Detail: "started by " + initiator},
			{At: now, CallSID: callSID, VerificationID: v.ID, Kind: store.EventVerification, Actor: initiator, Detail: verificationDetail(v)},
		}
		c.VerificationID = v.ID // the call now shows this verification
		c.UpdatedAt = now
		over, err = s.store.StartVerification(ctx, c, v, s.limits(v.IDHash, v.Caller, initiator), evs...)
		if !errors.Is(err, store.ErrConflict) || i >= maxConflictRetries {
			break
		}
	}
	if le, ok := errors.AsType[*store.LimitError](err); ok {
		s.limited(callSID, le.Limit.Scope)
		rl := &RateLimitError{Scope: le.Limit.Scope, Limit: limitOf(le.Limit)}
		s.record(ctx, &store.Event{At: now, CallSID: callSID, Kind: store.EventRateLimited, Actor: initiator, Detail: rateLimitDetail(rl.Scope)})
		return nil, rl
	}
	switch {
	case errors.Is(err, store.ErrInFlight):
		return nil, ErrVerificationInFlight
	case err != nil:
		return nil, fmt.Errorf("ivr: agent verification: %w", err)
	}
	for _, l := range over {
		s.log.Warn("agent verification past a rate limit", "call_sid", callSID, "verification_id", v.ID, "agent", agent, "limit", string(l.Scope))
		s.record(ctx, &store.Event{At: now, CallSID: callSID, VerificationID: v.ID, Kind: store.EventLimitOverridden, Actor: initiator,
			Detail: fmt.Sprintf("%s started BankID past the limit %s (%s)", agent, scopeWords(l.Scope), limitOf(l))})
	}
	s.log.Info("agent verification starting", "call_sid", callSID, "verification_id", v.ID, "state", v.Status)
	s.publish(ctx, c, v, evs...)
	s.notify()

	v, _ = s.startAndWait(ctx, v, id, "RP")
	out := *v
	out.SealedID = ""
	return &out, nil
}

// record stores one event on its own and publishes it with its call; a
// failure is logged (the event is an audit line, not the change itself).
func (s *Service) record(ctx context.Context, ev *store.Event) {
	if err := s.store.AppendEvent(ctx, ev); err != nil {
		s.log.Error("record event", "call_sid", ev.CallSID, "event", string(ev.Kind), "err", err)
		return
	}
	c, err := s.store.Call(ctx, ev.CallSID)
	if err != nil {
		return
	}
	if v, err := s.current(ctx, c); err == nil {
		s.publish(ctx, c, v, ev)
	}
}

// startAndWait starts bc-authorize in the background and waits for its
// result at most StartWait, so that a webhook stays well inside Twilio's
// 15 s. It returns the verification as it then is; ok is false when ctx
// ended first. When it stops waiting first, the broker's answer
// interrupts the caller's hold once it comes.
func (s *Service) startAndWait(ctx context.Context, v *store.Verification, id Identity, callInitiator string) (_ *store.Verification, ok bool) {
	w := s.launchStart(ctx, v, id, callInitiator)
	timer := time.NewTimer(s.cfg.StartWait)
	defer timer.Stop()
	ok = true
	select {
	case got := <-w.result:
		return got, true
	case <-timer.C:
	case <-ctx.Done():
		ok = false
	}
	if !w.giveUp() {
		return <-w.result, ok // it came just now
	}
	return v, ok // the caller holds; the answer interrupts the hold
}

// issuer is the broker's issuer for login hints that name it:
// Config.Issuer, else the one the Authenticator discovered (its Issuer
// method, as *ciba.Client has), "" before discovery.
func (s *Service) issuer() string {
	if s.cfg.Issuer != "" {
		return s.cfg.Issuer
	}
	if i, ok := s.auth.(interface{ Issuer() string }); ok {
		return i.Issuer()
	}
	return ""
}

// pollWait is how long after a poll (or bc-authorize) the next one is
// due: the broker's interval, or in ping mode, where the notification
// says when, the safety poll's longer wait.
func (s *Service) pollWait(v *store.Verification) time.Duration {
	if v.NotifyHash != "" && v.NotifiedAt.IsZero() {
		return max(v.Interval, s.cfg.PingSafetyPoll)
	}
	return v.Interval
}
