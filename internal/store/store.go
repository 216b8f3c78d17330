// Package store defines what the service keeps — calls, verifications, the
// append-only event log, agents and their sessions — and the contract every
// store implementation satisfies (sqlite for one small instance, PostgreSQL
// for several). The storetest package checks an implementation against it.
//
// It is the home of the domain types, so that a store links no HTTP,
// websocket, Twilio or JWT package: it imports nothing but the standard
// library.
package store

import (
	"cmp"
	"context"
	"errors"
	"time"
)

// Errors shared by the stores and the packages that use them. Stores
// translate their own "no rows", unique-key and version mismatches into
// these; callers compare with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("concurrent update")
	ErrExists   = errors.New("already exists")
	// ErrInFlight refuses a verification for a call that has one starting
	// or pending already.
	ErrInFlight = errors.New("a verification is in flight for this call")
)

// CallState is where a call is in the IVR flow.
type CallState string

const (
	CallGathering CallState = "gathering" // asking for the national identity number
	CallVerifying CallState = "verifying" // a verification is in flight; the caller is on hold
	CallRetry     CallState = "retry"     // a verification failed; the caller was offered one retry
	CallHandedOff CallState = "handed_off"
	CallEnded     CallState = "ended"
)

// VerificationStatus is where a verification is in its lifecycle.
type VerificationStatus string

const (
	VerStarting    VerificationStatus = "starting"     // bc-authorize not yet answered
	VerPending     VerificationStatus = "pending"      // the broker is waiting for the user
	VerApproved    VerificationStatus = "approved"     // ID token validated, number matches
	VerDeclined    VerificationStatus = "declined"     // access_denied
	VerExpired     VerificationStatus = "expired"      // expired_token or our own deadline
	VerUnknownUser VerificationStatus = "unknown_user" // unknown_user_id
	VerFailed      VerificationStatus = "failed"       // broker down, invalid token, mismatch
	VerCancelled   VerificationStatus = "cancelled"    // the call ended first
)

// Done reports whether the status is final.
func (s VerificationStatus) Done() bool {
	return s != VerStarting && s != VerPending
}

// Country of a national identity number.
type Country string

// IDKind says what identified a caller at the broker.
type IDKind string

const (
	IDNationalID IDKind = "national_id"     // personnummer / fødselsnummer (Idura BankID)
	IDCustomer   IDKind = "customer_number" // typed on the keypad, mapped to the broker's user id
	IDCallerID   IDKind = "caller_id"       // the number the caller calls from
	IDPhone      IDKind = "phone"           // a phone number an agent types
	IDEmail      IDKind = "email"           // an e-mail address an agent types
)

const (
	Sweden Country = "SE"
	Norway Country = "NO"
)

// Call outcomes.
const (
	OutcomeVerified   = "verified"
	OutcomeUnverified = "unverified"
)

// Call is one phone call, keyed by Twilio's CallSid.
type Call struct {
	SID      string
	From     string // caller id as Twilio sent it; never logged, shown masked
	To       string
	Language string // "sv-SE", "nb-NO", "en-US"
	State    CallState

	// Step counts the webhook steps processed for this call. Action and
	// redirect URLs carry the step they answer, so a retried or duplicated
	// Twilio request is recognised and answered with LastTwiML instead of
	// being applied twice.
	Step      int
	LastTwiML string

	// Identify is the way the caller chose to be identified, when the IVR
	// offers more than one (IDCallerID, IDCustomer); "" before they chose
	// or when there is one way.
	Identify IDKind

	NumberAttempts int    // wrong numbers entered so far
	VerifyAttempts int    // verifications started by the IVR so far
	VerificationID string // the current verification, if any
	Outcome        string // "verified" or "unverified" once handed off
	// Reason says why the call was handed off unverified or ended without
	// an outcome; "" for a verified call.
	Reason      Reason
	HandedOffAt time.Time // when the caller was put through to agents; zero before

	CreatedAt time.Time
	UpdatedAt time.Time
	EndedAt   time.Time // zero while the call is live
	Version   int64     // optimistic concurrency; bumped by every update
}

// Verification is one CIBA authentication for a call.
type Verification struct {
	ID      string
	CallSID string
	Country Country // of a national identity number; "" for other identifiers
	// Method is the broker profile's method that ran it ("se-bankid",
	// "no-bankid", "guardian", "link", "default").
	Method string
	IDKind IDKind // what identified the caller

	// SealedID is the identifier the caller gave (a national identity
	// number, a customer number, a phone number), sealed (AES-GCM) by the
	// IVR under a key the store never sees, so that it never reaches the
	// database in clear. It is kept only while the verification is in
	// flight (to check the ID token against it) and emptied when it ends.
	// MaskedID and IDHash (a keyed hash) stay.
	SealedID string
	MaskedID string
	IDHash   string
	// Caller is the rate-limit key of the caller id the verification was
	// started for: the number as Twilio sent it, or "withheld" for every
	// caller id that cannot tell one caller from another.
	Caller string

	Initiator string // "caller", or "agent:<name>" for agent-started ones
	Status    VerificationStatus
	Pending   string // last authorization_pending description (Swedish sub-state)

	AuthReqID      string // bearer handle at the broker; never logged
	BindingMessage string // SE: what we sent; NO: the word pair from the broker
	Interval       time.Duration
	ExpiresAt      time.Time
	NextPollAt     time.Time
	Polls          int
	SlowDowns      int
	Failures       int // consecutive transport failures (for backoff)

	Subject    string // the ID token's sub
	Name       string
	GivenName  string
	FamilyName string
	Error      string // a short, PII-free reason for a failure

	CreatedAt   time.Time
	UpdatedAt   time.Time
	CompletedAt time.Time
	Version     int64

	// NotifyHash is, in CIBA ping mode, the SHA-256 (hex) of the
	// client_notification_token sent with the request: the broker's
	// notification must bear that token. NotifiedAt is when the one
	// notification it may send was accepted; zero before.
	NotifyHash string
	NotifiedAt time.Time

	// LeaseOwner and LeaseUntil say which poller holds the verification
	// (ClaimDue) and until when; UpdateVerification ignores them and ends
	// the lease.
	LeaseOwner string
	LeaseUntil time.Time
}

// EventKind names a state change.
type EventKind string

// Event kinds recorded in the audit trail and published to dashboards.
const (
	EventCallStarted       EventKind = "call_started"
	EventNumberInvalid     EventKind = "number_invalid"
	EventNumberAccepted    EventKind = "number_accepted"
	EventIdentifyChosen    EventKind = "identification_chosen" // the caller chose how to be identified
	EventVerification      EventKind = "verification_started"  // a verification was created (starting)
	EventPending           EventKind = "verification_pending"  // bc-authorize answered; waiting for the user
	EventPendingUpdate     EventKind = "verification_progress" // a new Swedish pending sub-state
	EventApproved          EventKind = "verification_approved"
	EventDeclined          EventKind = "verification_declined"
	EventExpired           EventKind = "verification_expired"
	EventUnknownUser       EventKind = "verification_unknown_user"
	EventFailed            EventKind = "verification_failed"
	EventCancelled         EventKind = "verification_cancelled"
	EventRetryOffered      EventKind = "retry_offered"
	EventRetryAccepted     EventKind = "retry_accepted"
	EventRetryRefused      EventKind = "retry_refused"
	EventHandedOff         EventKind = "handed_off"
	EventCallEnded         EventKind = "call_ended"
	EventCallStatus        EventKind = "call_status"
	EventFallback          EventKind = "fallback"
	EventAgentVerification EventKind = "agent_verification"
	EventRateLimited       EventKind = "rate_limited"     // a verification was refused by a rate limit
	EventLimitOverridden   EventKind = "limit_overridden" // an agent started a verification past a rate limit
)

// Event is one entry of the append-only audit trail, and what is published
// to dashboards. It never holds a full national identity number.
type Event struct {
	Seq            int64 // assigned by the store
	At             time.Time
	CallSID        string
	VerificationID string
	Kind           EventKind
	Actor          string    // "caller", "system", "twilio", "agent:<name>"
	Detail         string    // short human-readable text, no personal data beyond masked forms
	Call           *CallView // the call as it is after the change; set when published, not stored
}

// CallView is a call as the dashboard shows it: nothing in it is personal
// data in full.
type CallView struct {
	CallSID   string     `json:"callSid"`
	Caller    string     `json:"caller"` // partly masked phone number
	Language  string     `json:"language"`
	State     string     `json:"state"` // one of the View* states
	Since     time.Time  `json:"since"`
	UpdatedAt time.Time  `json:"updatedAt"`
	EndedAt   *time.Time `json:"endedAt,omitempty"`
	Outcome   string     `json:"outcome,omitempty"`
	// Reason is why the caller is not verified (declined, expired, …), ""
	// while nothing has gone wrong or once verified.
	Reason string `json:"reason,omitempty"`
	// HandedOffAt is when the caller reached the agents' queue: the start
	// of their wait.
	HandedOffAt  *time.Time        `json:"handedOffAt,omitempty"`
	Verification *VerificationView `json:"verification,omitempty"`
}

// VerificationView is a verification as the dashboard shows it.
type VerificationView struct {
	ID       string `json:"id"`
	Country  string `json:"country"`
	Method   string `json:"method"` // "Swedish BankID", "Norwegian BankID", "Auth0 Guardian", "Mosaic"
	IDKind   string `json:"idKind"` // national_id, customer_number, caller_id, phone, email
	MaskedID string `json:"maskedId"`
	Status   string `json:"status"`
	Pending  string `json:"pending,omitempty"`
	WordPair string `json:"wordPair,omitempty"`
	// Code is the short code the request shows the user at brokers that
	// show one (Auth0, Mosaic, generic) while it is in flight: the caller
	// checks it against what they were told.
	Code        string     `json:"code,omitempty"`
	Name        string     `json:"name,omitempty"`
	Initiator   string     `json:"initiator"`
	StartedAt   time.Time  `json:"startedAt"`
	CompletedAt *time.Time `json:"completedAt,omitempty"`
}

// Dashboard states of a call (CallView.State).
const (
	ViewRinging        = "ringing"
	ViewGathering      = "gathering"
	ViewStarting       = "starting"
	ViewAwaitingBankID = "awaiting_bankid" // SE: with the pending sub-state
	ViewWordPair       = "word_pair"       // NO: waiting for the caller to pick the word pair
	ViewVerified       = "verified"
	ViewDeclined       = "declined"
	ViewExpired        = "expired"
	ViewUnknownUser    = "unknown_user"
	ViewFailed         = "failed"
	ViewUnverified     = "unverified" // handed to agents unverified
	ViewEnded          = "ended"
)

// CallFilter selects calls for listings.
type CallFilter struct {
	Live       bool      // only calls that have not ended
	EndedSince time.Time // with Live false: calls ended at or after this time
	Limit      int       // 0 means DefaultCallsLimit
}

// How many rows a store returns when asked for a limit of 0 or less: calls
// (Calls, StaleCalls) and due verifications (ClaimDue).
const (
	DefaultCallsLimit = 200
	DefaultDueLimit   = 100
)

// CallsLimit is how many calls Calls or StaleCalls return when asked for
// limit: limit when positive, DefaultCallsLimit otherwise.
func CallsLimit(limit int) int { return cmp.Or(max(limit, 0), DefaultCallsLimit) }

// DueLimit is how many verifications ClaimDue returns when asked for
// limit: limit when positive, DefaultDueLimit otherwise.
func DueLimit(limit int) int { return cmp.Or(max(limit, 0), DefaultDueLimit) }

// CompareDue orders verifications as ClaimDue returns them: earliest
// NextPollAt first, then by ID. For slices.SortFunc.
func CompareDue(a, b *Verification) int {
	return cmp.Or(a.NextPollAt.Compare(b.NextPollAt), cmp.Compare(a.ID, b.ID))
}

// Store persists calls, verifications and the event log. Every write takes
// the events it causes and stores them in the same transaction, so the audit
// trail never disagrees with the state. Updates check Version (ErrConflict
// when another writer got there first) and bump it.
type Store interface {
	// CreateCall stores a new call; created is false (and nothing changes)
	// when a call with that SID exists already.
	CreateCall(ctx context.Context, c *Call, events ...*Event) (created bool, err error)
	Call(ctx context.Context, sid string) (*Call, error)
	UpdateCall(ctx context.Context, c *Call, events ...*Event) error
	Calls(ctx context.Context, f CallFilter) ([]*Call, error)
	// StaleCalls returns up to CallsLimit(limit) live calls that no real
	// call can still be: in the IVR (gathering, verifying, retry) and not
	// updated since idleSince, or handed off and created before
	// startedBefore. Their status callback never came (lost, or a forged or
	// replayed webhook made them); the service ends them.
	StaleCalls(ctx context.Context, idleSince, startedBefore time.Time, limit int) ([]*Call, error)

	// StartVerification stores a new verification v, the call c pointing
	// at it (when c is not nil: c.Version is checked, ErrConflict when it
	// moved, and bumped) and events, in one transaction, after checking
	// every limit inside it, so that two starts at once cannot both slip
	// under a limit. A full limit refuses the start with a *LimitError and
	// stores nothing, unless it is an Override: then the start goes ahead
	// and the limit is returned, for the audit trail. A call that has a
	// verification starting or pending gets ErrInFlight. An existing ID is
	// ErrConflict.
	StartVerification(ctx context.Context, c *Call, v *Verification, limits []Limit, events ...*Event) (overridden []Limit, err error)
	Verification(ctx context.Context, id string) (*Verification, error)
	// UpdateVerification stores v if the stored version equals v.Version,
	// with events, ends its lease and increments v.Version. An update
	// without events is the poller's bookkeeping (the next poll, a count):
	// a store may make it durable lazily, as sqlite's synchronous=NORMAL
	// does every commit, so that a crash of the database may lose the last
	// of those, never one that came with an event.
	UpdateVerification(ctx context.Context, v *Verification, events ...*Event) error
	// ClaimDue leases to owner up to DueLimit(limit) verifications that are
	// due: in VerStarting or VerPending, NextPollAt at or before now, and not
	// leased at now. Each is leased until now plus lease, or plus its
	// Interval if that is longer (so that whoever polls next after a lost
	// lease does not poll early), and they are returned in CompareDue order
	// (earliest due first), as stored, with their Version bumped. No other
	// ClaimDue returns a leased row until its lease runs out or the
	// verification is next updated (which ends the lease). Instances that
	// share a store poll each verification one at a time this way.
	ClaimDue(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*Verification, error)
	// NextDue is when the poller should look again: the earliest NextPollAt
	// of the verifications in VerStarting or VerPending not leased at now,
	// or the end of the earliest lease if that comes first; false when
	// there is no verification in flight.
	NextDue(ctx context.Context, now time.Time) (time.Time, bool, error)

	// Events returns a call's events, oldest first. AppendEvent stores one
	// event on its own (Seq is set on e).
	Events(ctx context.Context, callSID string) ([]Event, error)
	AppendEvent(ctx context.Context, e *Event) error
}

// LimitScope says which verifications a Limit counts.
type LimitScope string

const (
	// LimitNumber counts the verifications for one national identity
	// number: Key is its IDHash.
	LimitNumber LimitScope = "number"
	// LimitCaller counts the verifications the IVR started for one caller
	// id: Key is the Caller key (agents' starts do not count).
	LimitCaller LimitScope = "caller"
	// LimitWithheld is LimitCaller for the one bucket that every withheld
	// or unusable caller id shares: Key is "withheld".
	LimitWithheld LimitScope = "withheld"
	// LimitAgent counts the verifications one agent started: Key is the
	// Initiator ("agent:<name>").
	LimitAgent LimitScope = "agent"
	// LimitGlobal counts every verification; Key is empty.
	LimitGlobal LimitScope = "global"
)

// WithheldCaller is the Caller key of every withheld caller id.
const WithheldCaller = "withheld"

// Limit allows at most Max verifications within Window among those its
// Scope and Key select, counting the one being started.
type Limit struct {
	Scope  LimitScope
	Key    string
	Max    int
	Window time.Duration
	// Override lets a start through a full limit (an agent talking to the
	// caller may go past the per-number limit); StartVerification reports
	// it instead of refusing.
	Override bool
}

// Check is what StartVerification makes of l once it has counted n, the
// verifications l counts in its window: nil when l has room or is off
// (Max 0 or less); when l is full, a *LimitError, or overridden true and
// no error if l is an Override. (The PostgreSQL store makes the same
// decision in the server, ivr_limit in its migration 0005: change both.)
func (l Limit) Check(n int) (overridden bool, err error) {
	switch {
	case l.Max <= 0 || n < l.Max:
		return false, nil
	case l.Override:
		return true, nil
	}
	return false, &LimitError{Limit: l}
}

// LimitError refuses a verification: Limit was full.
type LimitError struct{ Limit Limit }

func (e *LimitError) Error() string {
	return "too many verifications for the " + string(e.Limit.Scope) + " limit"
}

// Agent is a person who may use the dashboard.
type Agent struct {
	Name         string
	PasswordHash string // a PHC-style encoded password hash, never the password
	CreatedAt    time.Time
}

// Session is a logged-in agent's server-side session. ID is a hash of the
// cookie's token, so a copy of the database does not hold usable cookies.
type Session struct {
	ID        string
	Agent     string
	CSRFToken string
	CreatedAt time.Time
	ExpiresAt time.Time
	// LastUsedAt is when the session was last used, for the idle timeout;
	// TouchSession moves it.
	LastUsedAt time.Time
}

// AgentStore persists agents and their sessions.
type AgentStore interface {
	CreateAgent(ctx context.Context, a Agent) error // ErrExists when the name is taken
	Agent(ctx context.Context, name string) (Agent, error)
	Agents(ctx context.Context) ([]Agent, error)
	DeleteAgent(ctx context.Context, name string) error // also deletes the agent's sessions

	CreateSession(ctx context.Context, s Session) error
	Session(ctx context.Context, id string) (Session, error)
	DeleteSession(ctx context.Context, id string) error
	// TouchSession records that session id was used at at (ErrNotFound for
	// an unknown one).
	TouchSession(ctx context.Context, id string, at time.Time) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)

	// LoginFailures returns, for each of keys with a failed login at or
	// after since, the failures counted under it; other keys are absent.
	// Keys name what is throttled: an agent name, a client address, or
	// both.
	LoginFailures(ctx context.Context, keys []string, since time.Time) (map[string]LoginFailures, error)
	// AddLoginFailure counts a failed login at now under each key; a key
	// whose last failure is before since starts again from one.
	AddLoginFailure(ctx context.Context, keys []string, since, now time.Time) error
	// ClearLoginFailures forgets the failures counted under keys.
	ClearLoginFailures(ctx context.Context, keys ...string) error
}

// EventFeed is a store whose events reach every instance sharing it: the
// PostgreSQL store, through LISTEN/NOTIFY. A service on such a store
// publishes what the feed delivers instead of what it stored itself, so
// every dashboard sees every event whichever instance made it.
type EventFeed interface {
	// Listen delivers the Seq of every event committed by any instance
	// once it listens, until ctx ends, as they arrive: seqs, in commit
	// order. Its first delivery is a resync (resync true) as soon as it
	// listens: events committed before then were not delivered, so the
	// caller loads what it shows from the store then. Whenever
	// notifications may have been lost later (the listening connection
	// dropped and came back), it calls deliver with resync true again. It
	// returns when ctx ends.
	Listen(ctx context.Context, deliver func(seqs []int64, resync bool)) error
	// LoadEvents returns the events with those Seqs that exist, in Seq
	// order, with the calls they name and those calls' current
	// verifications, on connections of the feed's own: a relay catching
	// up after a burst does not queue behind the store's writers.
	LoadEvents(ctx context.Context, seqs []int64) (EventBatch, error)
}

// EventBatch is what LoadEvents loads: events, and for each call they name
// the call (by SID; absent if purged) and its current verification (by
// ID; absent if it has none).
type EventBatch struct {
	Events        []Event
	Calls         map[string]*Call
	Verifications map[string]*Verification
}

// LoginFailures are the failed logins counted under one key.
type LoginFailures struct {
	Count int
	Last  time.Time
}

// Reason says in one word why a call is not verified: the caller's
// verification failed, a limit refused one, or the caller hung up
// (Call.Reason, CallView.Reason).
type Reason string

const (
	ReasonDeclined          Reason = "declined"           // the user declined in the app (NO: or picked the wrong word pair)
	ReasonExpired           Reason = "expired"            // nobody answered before the request expired
	ReasonUnknownUser       Reason = "unknown_user"       // the broker knows no user for that identifier
	ReasonBrokerUnreachable Reason = "broker_unreachable" // the broker could not be reached or did not answer
	ReasonFailed            Reason = "failed"             // the broker refused, or its ID token did not check out
	ReasonRateLimited       Reason = "rate_limited"       // too many verifications recently; none was started
	ReasonInvalidNumber     Reason = "invalid_number"     // the caller did not enter a valid number
	ReasonHungUp            Reason = "hung_up"            // the caller hung up before the end
	ReasonWithheld          Reason = "withheld"           // the only way offered was the caller id, and it was withheld
)
