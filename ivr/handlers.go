package ivr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ivr/callerverify/internal/store"
	"github.com/twilio/twilio-go/twiml"
)

// maxConflictRetries bounds how often a handler reloads a call that another
// writer changed under it.
const maxConflictRetries = 4

// request is what a webhook handler reads from Twilio's form.
type request struct {
	sid    string
	from   string
	to     string
	digits string
	step   int // the ?s= the request answers; -1 when absent
	hold   HoldState
	// interrupt is true for a hold request made by the service's own
	// interrupt (i=1), false for the loop's own hop.
	interrupt bool
}

// parseRequest reads Twilio's form. A request whose CallSid is not shaped
// like Twilio's, or that names another account than ours, gets 400 with
// the reason: a signed request can be re-split into other parameters
// (Twilio signs the keys and values run together), and such a replay must
// not pass for a new call.
func (s *Service) parseRequest(w http.ResponseWriter, r *http.Request) (request, bool) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form body", http.StatusBadRequest)
		return request{}, false
	}
	q := r.URL.Query()
	req := request{
		sid:    r.PostForm.Get("CallSid"),
		from:   r.PostForm.Get("From"),
		to:     r.PostForm.Get("To"),
		digits: r.PostForm.Get("Digits"),
		step:   -1,
	}
	if !validCallSID(req.sid) {
		http.Error(w, "CallSid must be CA followed by 32 hex digits", http.StatusBadRequest)
		return request{}, false
	}
	if r.PostForm.Get("AccountSid") != s.cfg.AccountSID {
		http.Error(w, "AccountSid is not this service's Twilio account", http.StatusBadRequest)
		return request{}, false
	}
	if n, err := strconv.Atoi(q.Get("s")); err == nil && n >= 0 {
		req.step = n
	}
	req.hold.Announced = q.Get("a") == "1"
	req.interrupt = q.Get("i") == "1"
	if n, err := strconv.Atoi(q.Get("n")); err == nil && n >= 0 && n < 1000 {
		req.hold.Hops = n
	}
	return req, true
}

// validCallSID reports whether s looks like a Twilio call SID: "CA" and 32
// lower-case hex digits.
func validCallSID(s string) bool { return twilioSID(s, "CA") }

// ValidAccountSID reports whether s looks like a Twilio account SID: "AC"
// and 32 lower-case hex digits.
func ValidAccountSID(s string) bool { return twilioSID(s, "AC") }

func twilioSID(s, prefix string) bool {
	if len(s) != 34 || s[:2] != prefix {
		return false
	}
	for i := 2; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func writeTwiML(w http.ResponseWriter, doc string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(doc))
}

// apologise answers a caller when our own state cannot be read or written:
// an apology and a hand-off, unverified, in the default language.
func (s *Service) apologise(w http.ResponseWriter, sid string, err error) {
	s.log.Error("webhook failed; handing off unverified", "call_sid", sid, "err", err)
	writeTwiML(w, s.fallbackTwiML(sid))
}

// handleVoice answers an incoming call: the greeting and the Gather for the
// national identity number. A retried request gets the stored answer.
func (s *Service) handleVoice(w http.ResponseWriter, r *http.Request) {
	req, ok := s.parseRequest(w, r)
	if !ok {
		return
	}
	s.greet(w, r.Context(), req)
}

// greet creates the call and greets the caller; for a call that exists
// already it repeats the stored answer.
func (s *Service) greet(w http.ResponseWriter, ctx context.Context, req request) {
	now := s.now()
	c := store.Call{SID: req.sid, From: req.from, To: req.to, Language: s.cfg.Language, Step: 1, CreatedAt: now, UpdatedAt: now}
	_, usable := CallerIdentity(req.from)
	c, d := Step(c, Input{Kind: InIncoming, CallerIDUsable: usable}, s.lim, now)
	doc, err := s.render(&c, d, nil)
	if err != nil {
		s.apologise(w, req.sid, err)
		return
	}
	c.LastTwiML = doc
	ev := s.event(&c, "", store.EventCallStarted, "twilio", "caller "+MaskPhone(req.from))
	created, err := s.store.CreateCall(ctx, &c, ev)
	if err != nil {
		s.apologise(w, req.sid, err)
		return
	}
	if !created {
		old, err := s.store.Call(ctx, req.sid)
		if err != nil {
			s.apologise(w, req.sid, err)
			return
		}
		writeTwiML(w, s.stored(old))
		return
	}
	s.log.Info("call started", "call_sid", c.SID, "state", c.State)
	s.publish(ctx, &c, nil, ev)
	writeTwiML(w, doc)
}

// stored is the answer kept for a call: its last TwiML, or a hang-up for a
// call that has ended.
func (s *Service) stored(c *store.Call) string {
	if c.State == store.CallEnded || c.LastTwiML == "" {
		doc, _ := s.render(c, Decision{Screen: ScreenGoodbye}, nil)
		return doc
	}
	return c.LastTwiML
}

func (s *Service) handleGather(w http.ResponseWriter, r *http.Request) {
	s.advance(w, r, InNumber)
}

func (s *Service) handleHold(w http.ResponseWriter, r *http.Request) {
	s.advance(w, r, InHold)
}

func (s *Service) handleRetry(w http.ResponseWriter, r *http.Request) {
	s.advance(w, r, InRetryChoice)
}

func (s *Service) handleMenu(w http.ResponseWriter, r *http.Request) {
	s.advance(w, r, InMenu)
}

// advance runs one step of a call: load, Step, store, effect, answer. A
// request for a step already processed (a Twilio retry or a duplicate) is
// answered with the stored TwiML and changes nothing.
func (s *Service) advance(w http.ResponseWriter, r *http.Request, kind InputKind) {
	req, ok := s.parseRequest(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	for range maxConflictRetries {
		c, err := s.store.Call(ctx, req.sid)
		if errors.Is(err, store.ErrNotFound) {
			// Only the voice URL starts a call. A gather, hold or retry for
			// a call we do not know is a replay or a forgery (or our store
			// lost it): nothing starts, and whoever is there hears goodbye.
			s.log.Warn("webhook for an unknown call; ending it", "call_sid", req.sid)
			writeTwiML(w, s.goodbyeTwiML())
			return
		}
		if err != nil {
			s.apologise(w, req.sid, err)
			return
		}
		if req.step != c.Step || c.State == store.CallEnded {
			writeTwiML(w, s.stored(c))
			return
		}
		doc, err := s.apply(ctx, c, kind, req)
		if errors.Is(err, store.ErrConflict) {
			continue // another writer got there first; look again
		}
		if err != nil {
			s.apologise(w, req.sid, err)
			return
		}
		writeTwiML(w, doc)
		return
	}
	s.apologise(w, req.sid, store.ErrConflict)
}

// apply runs Step for one request on c (as loaded) and stores the result.
func (s *Service) apply(ctx context.Context, c *store.Call, kind InputKind, req request) (string, error) {
	now := s.now()
	v, err := s.current(ctx, c)
	if err != nil {
		return "", err
	}
	_, usable := CallerIdentity(c.From)
	in := Input{Kind: kind, Verification: v, Hold: req.hold, CallerIDUsable: usable}
	var id Identity
	switch kind {
	case InNumber:
		var perr error
		id, perr = s.parseTyped(req.digits, now)
		in.NumberOK = perr == nil
		if perr != nil {
			in.NumberReason = ReasonLength
			if e, ok := errors.AsType[*InvalidIDError](perr); ok {
				in.NumberReason = e.Reason
			}
		}
	case InHold, InRetryChoice, InMenu:
		in.Key = firstKey(req.digits)
	}
	next, d := Step(*c, in, s.lim, now)
	if d.Event == "" && next.State == c.State && d.Effect == EffectNone {
		// Nothing changed (a hold hop): answer from state, store nothing.
		return s.render(c, d, v)
	}
	if d.Effect == EffectStart {
		if d.Identify == store.IDCallerID {
			id, _ = CallerIdentity(c.From)
		}
		doc, err := s.startFromCall(ctx, next, d, id)
		var le *store.LimitError
		if !errors.As(err, &le) {
			return doc, err
		}
		// A limit refused it, checked as the verification was about to be
		// stored: the caller hears so and goes to an agent unverified.
		s.limited(c.SID, le.Limit.Scope)
		in.RateLimited = le.Limit.Scope
		next, d = Step(*c, in, s.lim, now)
	}
	doc, err := s.storeStep(ctx, next, d, v, kind, now)
	if err == nil && kind == InHold && !req.interrupt && (d.Screen == ScreenHandOff || d.Screen == ScreenOfferRetry) && s.cfg.Observer != nil {
		s.cfg.Observer.SafetyNet() // the interrupt did not come (first)
	}
	return doc, err
}

// storeStep stores one step of a call: the decision's TwiML as the call's
// answer, and its events.
func (s *Service) storeStep(ctx context.Context, next store.Call, d Decision, v *store.Verification, kind InputKind, now time.Time) (string, error) {
	next.Step++
	next.UpdatedAt = now
	doc, err := s.render(&next, d, v)
	if err != nil {
		return "", err
	}
	next.LastTwiML = doc
	vid := ""
	if v != nil {
		vid = v.ID
	}
	actor := "caller"
	if kind == InHold {
		actor = "system" // the hold loop only reports what the poller learnt
	}
	evs := []*store.Event{s.event(&next, vid, d.Event, actor, eventDetail(d))}
	if next.State == store.CallHandedOff && d.Event != store.EventHandedOff {
		evs = append(evs, s.event(&next, vid, store.EventHandedOff, "system", eventDetail(Decision{Screen: ScreenHandOff, Verified: d.Verified, Reason: d.Reason, Told: d.Told})))
	}
	if err := s.store.UpdateCall(ctx, &next, evs...); err != nil {
		return "", err
	}
	s.log.Info("call step", "call_sid", next.SID, "state", next.State, "event", string(d.Event))
	s.publish(ctx, &next, v, evs...)
	return doc, nil
}

// limited records a verification a rate limit refused: a log line and the
// operators' count.
func (s *Service) limited(callSID string, scope store.LimitScope) {
	s.log.Warn("verification refused by a rate limit", "call_sid", callSID, "limit", string(scope))
	if s.cfg.Observer != nil {
		s.cfg.Observer.RateLimited(scope)
	}
}

func eventDetail(d Decision) string {
	if d.Event == store.EventRateLimited {
		return rateLimitDetail(d.Limit)
	}
	switch d.Screen {
	case ScreenHandOff:
		switch {
		case d.Verified:
			return "handed to agents, verified"
		case d.Told:
			return "handed to agents unverified: " + string(d.Reason) + ", retry refused"
		case d.Reason != "":
			return "handed to agents unverified: " + string(d.Reason)
		}
		return "handed to agents unverified"
	case ScreenOfferRetry:
		return "retry offered after " + string(d.Reason)
	case ScreenAskNumber:
		if d.Problem != 0 {
			return "number rejected: " + d.Problem.String()
		}
		if d.Event == store.EventRetryAccepted {
			return "caller asked to try again"
		}
	}
	return ""
}

func firstKey(digits string) string {
	if digits == "" {
		return ""
	}
	return digits[:1]
}

// startFromCall stores the call as verifying together with a new
// verification for id (the rate limits checked in the same transaction),
// starts bc-authorize in the background and waits for it up to StartWait,
// then answers with what the caller should hear: the instructions (or word
// pair), the failure, or "one moment" and the hold loop. A limit that
// refuses the start is returned as a *store.LimitError, with nothing
// stored.
func (s *Service) startFromCall(ctx context.Context, c store.Call, d Decision, id Identity) (string, error) {
	now := s.now()
	c.Step++
	c.UpdatedAt = now
	v := s.newVerification(c.SID, id, callerKey(c.From), "caller", now)
	c.VerificationID = v.ID
	doc, err := s.render(&c, d, v) // "one moment" and the hold loop, for a retried request
	if err != nil {
		return "", err
	}
	c.LastTwiML = doc
	evAccepted := s.event(&c, v.ID, store.EventNumberAccepted, "caller", acceptedDetail(id))
	evStarted := s.event(&c, v.ID, store.EventVerification, "caller", verificationDetail(v))
	if _, err := s.store.StartVerification(ctx, &c, v, s.limits(v.IDHash, v.Caller, v.Initiator), evAccepted, evStarted); err != nil {
		return "", err
	}
	s.log.Info("verification starting", "call_sid", c.SID, "verification_id", v.ID, "state", v.Status)
	s.publish(ctx, &c, v, evAccepted, evStarted)
	s.notify()

	v, ok := s.startAndWait(ctx, v, id, "user")
	if !ok {
		return doc, nil
	}

	// Decide what the caller hears now, from the verification as it is.
	now = s.now()
	next, d2 := Step(c, Input{Kind: InHold, Verification: v}, s.lim, now)
	doc2, err := s.render(&next, d2, v)
	if err != nil {
		return doc, nil
	}
	next.LastTwiML = doc2
	next.UpdatedAt = now
	var evs []*store.Event
	if d2.Event != "" {
		evs = append(evs, s.event(&next, v.ID, d2.Event, "system", eventDetail(d2)))
	}
	if err := s.store.UpdateCall(ctx, &next, evs...); err != nil {
		// The first answer is stored; the hold loop catches up.
		s.log.Warn("store answer after start", "call_sid", c.SID, "verification_id", v.ID, "err", err)
		return doc, nil
	}
	s.publish(ctx, &next, v, evs...)
	return doc2, nil
}

// parseTyped reads what the caller typed as the IVR's typed way: a
// national identity number or a customer number.
func (s *Service) parseTyped(digits string, now time.Time) (Identity, error) {
	if s.lim.Typed == store.IDCustomer {
		return s.cfg.Customer.Parse(digits)
	}
	n, err := ParseNationalID(digits, now)
	if err != nil {
		return Identity{}, err
	}
	return NationalIdentity(n), nil
}

// acceptedDetail says what identifies the caller, for the timeline.
func acceptedDetail(id Identity) string {
	switch id.Kind() {
	case store.IDNationalID:
		return "number accepted: " + string(id.Country())
	case store.IDCallerID:
		return "identified by the number they call from"
	}
	return KindName(id.Kind()) + " accepted"
}

func verificationDetail(v *store.Verification) string {
	return MethodName(v.Method, v.Country) + " " + v.MaskedID + " (" + v.Initiator + ")"
}

// handleStatus records the end of a call: its verification is cancelled so
// that polling stops. Duplicates and unknown calls are answered 200.
func (s *Service) handleStatus(w http.ResponseWriter, r *http.Request) {
	req, ok := s.parseRequest(w, r)
	if !ok {
		return
	}
	status := r.PostForm.Get("CallStatus")
	if terminalStatus(status) {
		if err := s.endCall(r.Context(), req.sid, "twilio", "call "+safeStatus(status)); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("end call", "call_sid", req.sid, "err", err)
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
	}
	writeTwiML(w, emptyResponse)
}

const emptyResponse = `<?xml version="1.0" encoding="UTF-8"?><Response/>`

func terminalStatus(st string) bool {
	switch st {
	case "completed", "busy", "failed", "no-answer", "canceled":
		return true
	}
	return false
}

// endCall marks the call ended and cancels its verification.
func (s *Service) endCall(ctx context.Context, sid, actor, detail string) error {
	var c *store.Call
	var ev *store.Event
	for i := 0; ; i++ {
		var err error
		c, err = s.store.Call(ctx, sid)
		if err != nil {
			return err
		}
		if c.State == store.CallEnded {
			return nil // a duplicate callback
		}
		now := s.now()
		if c.Outcome != store.OutcomeVerified && c.Reason == "" {
			c.Reason = store.ReasonHungUp
			if v, err := s.current(ctx, c); err == nil && v != nil && v.Status.Done() && v.Status != store.VerApproved {
				c.Reason = FailureReason(v, v.Status) // e.g. declined, then hung up at the retry offer
			}
		}
		c.State = store.CallEnded
		c.EndedAt = now
		c.UpdatedAt = now
		ev = s.event(c, c.VerificationID, store.EventCallEnded, actor, detail)
		err = s.store.UpdateCall(ctx, c, ev)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrConflict) || i >= maxConflictRetries {
			return err
		}
	}
	s.log.Info("call ended", "call_sid", sid, "state", c.State, "reason", string(c.Reason))
	var v *store.Verification
	if c.VerificationID != "" {
		var err error
		v, err = s.cancelVerification(ctx, c.VerificationID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("cancel verification", "call_sid", sid, "verification_id", c.VerificationID, "err", err)
		}
	}
	s.publish(ctx, c, v, ev)
	return nil
}

// EndStaleCalls ends the live calls that no real call can still be: in the
// IVR and untouched for CallIdleLimit, or older than MaxCallDuration. Their
// status callback never came (lost, or a forged or replayed webhook made
// them), so without this they would stay live on the dashboard for ever
// and never fall under retention. It returns how many it ended.
func (s *Service) EndStaleCalls(ctx context.Context) (int, error) {
	now := s.now()
	stale, err := s.store.StaleCalls(ctx, now.Add(-s.cfg.CallIdleLimit), now.Add(-s.cfg.MaxCallDuration), 500)
	if err != nil {
		return 0, fmt.Errorf("ivr: stale calls: %w", err)
	}
	n := 0
	for _, c := range stale {
		err := s.endCall(ctx, c.SID, "system", "no status callback came: the call is presumed over")
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return n, fmt.Errorf("ivr: end stale call: %w", err)
		}
		n++
	}
	return n, nil
}

func safeStatus(st string) string {
	if terminalStatus(st) {
		return st
	}
	return "ended"
}

// handleFallback is Twilio's Voice Fallback URL: an apology and a hand-off,
// unverified. It touches no store, so it works when the store is down.
func (s *Service) handleFallback(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	sid := r.PostForm.Get("CallSid")
	if !validCallSID(sid) {
		sid = ""
	}
	code := safeCode(r.PostForm.Get("ErrorCode"))
	s.log.Warn("twilio fallback", "call_sid", sid, "error_code", code)
	writeTwiML(w, s.fallbackTwiML(sid))
	if sid != "" {
		// Best effort, after answering: the store may be what failed.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Second)
		defer cancel()
		ev := &store.Event{At: s.now(), CallSID: sid, Kind: store.EventFallback, Actor: "twilio", Detail: "Twilio used the fallback URL, error " + code}
		if err := s.store.AppendEvent(ctx, ev); err != nil {
			s.log.Warn("record fallback", "call_sid", sid, "err", err)
		}
	}
}

func safeCode(s string) string {
	if len(s) > 8 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return ""
		}
	}
	return s
}

// handleWhisper is played to the agent before a <Dial>ed call connects:
// who the caller is, verified or not. The call is named by ?call=.
func (s *Service) handleWhisper(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	sid := r.URL.Query().Get("call")
	var c *store.Call
	var v *store.Verification
	if validCallSID(sid) {
		if got, err := s.store.Call(r.Context(), sid); err == nil {
			c = got
			v, _ = s.current(r.Context(), c)
		}
	}
	doc, err := s.whisperTwiML(c, v)
	if err != nil {
		s.log.Error("whisper", "call_sid", sid, "err", err)
		doc = emptyResponse
	}
	writeTwiML(w, doc)
}

// handleAfter is the action of the hand-off's <Enqueue> or <Dial>: once the
// caller has talked to an agent the call ends; if nobody answered, the
// caller hears so before it ends. It reads no store.
func (s *Service) handleAfter(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	qr, ds := r.PostForm.Get("QueueResult"), r.PostForm.Get("DialCallStatus")
	lang := s.cfg.Language
	var doc []byte
	var err error
	if qr == "bridged" || qr == "hangup" || ds == "completed" || ds == "answered" {
		doc, err = Render(twiml.VoiceHangup{})
	} else {
		doc, err = Render(say(lang, prompt(lang, pNoAgent, "")), twiml.VoiceHangup{})
	}
	if err != nil {
		writeTwiML(w, emptyResponse)
		return
	}
	writeTwiML(w, string(doc))
}
