package cibatest

import (
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Request states.
const (
	StatePending  = "pending"
	StateApproved = "approved"
	StateDeclined = "declined"
	StateExpired  = "expired"
	// StateCancelled is a request closed because a newer one started for
	// the same user and client; its token answers access_denied.
	StateCancelled = "cancelled"
)

// Pending descriptions, as Idura words them.
const (
	PendingFirstInteraction = "awaiting first user interaction"
	PendingAcknowledgement  = "awaiting user request acknowledgement"
	PendingIdentification   = "awaiting user identification"
	PendingNorwegian        = "User has not yet granted authorization"
)

// retention is how long a finished request stays listed and answerable.
const retention = 10 * time.Minute

// Errors of the request-moving methods.
var (
	ErrNotFound      = errors.New("cibatest: no such request")
	ErrNotPending    = errors.New("cibatest: request is no longer pending")
	ErrWrongWordPair = errors.New("cibatest: wrong word pair; request declined")
)

// Request is a backchannel authentication request as the simulated BankID
// app (or authenticator) sees it. It holds no full national ID, phone
// number, e-mail address or user id, and no auth_req_id.
type Request struct {
	ID              string    `json:"id"`      // opaque sim id, not the auth_req_id
	Profile         string    `json:"profile"` // ProfileIdura, …
	Country         string    `json:"country"` // idura: "SE" or "NO"; "" otherwise
	MaskedID        string    `json:"maskedId"`
	HintType        string    `json:"hintType"`   // HintSSN, HintUserID, HintPhone or HintEmail
	MaskedHint      string    `json:"maskedHint"` // "+46 70 *** ** 67", "a***@example.com", "auth0|******19"
	Name            string    `json:"name"`
	BindingMessage  string    `json:"bindingMessage"` // the client's message, if any; NO: the word pair
	WordPairChoices []string  `json:"wordPairChoices,omitempty"`
	CallInitiator   string    `json:"callInitiator,omitempty"` // SE: "user" or "RP"
	Channel         string    `json:"channel,omitempty"`       // transmit: "sms", "email" or "link"
	CustomMessage   string    `json:"customMessage,omitempty"` // transmit request_context custom_message
	State           string    `json:"state"`                   // StatePending, …
	Pending         string    `json:"pending,omitempty"`       // the current pending description
	CreatedAt       time.Time `json:"createdAt"`
	ExpiresAt       time.Time `json:"expiresAt"`
}

type request struct {
	spec                       *spec
	simID, authReqID, clientID string
	seq                        int64
	user                       User
	country, acr               string
	binding                    string
	choices                    []string
	callInitiator              string
	ssnScope                   bool // the "ssn" scope was asked for
	hintType, maskedHint       string
	channel, customMessage     string
	created, expires           time.Time
	ping                       *pingTarget // nil for poll clients

	interval time.Duration // enforced between polls; grows on slow_down
	lastPoll time.Time
	polls    int

	phase       int    // SE phase moved by Open/Acknowledge
	decision    string // set by Approve/Decline, or StateCancelled
	decidedAt   time.Time
	tokenIssued bool
}

// step is one scripted event: a new SE phase, or an outcome.
type step struct {
	at      time.Duration
	phase   int
	outcome string
}

func timeline(s Script, country string) []step {
	se := country == "SE"
	switch s {
	case ScriptApproveFast:
		if se {
			return []step{{at: 2 * time.Second, phase: 1}, {at: 4 * time.Second, phase: 2}, {at: 6 * time.Second, outcome: StateApproved}}
		}
		return []step{{at: 4 * time.Second, outcome: StateApproved}}
	case ScriptApproveSlow:
		if se {
			return []step{{at: 20 * time.Second, phase: 1}, {at: 40 * time.Second, phase: 2}, {at: 60 * time.Second, outcome: StateApproved}}
		}
		return []step{{at: 60 * time.Second, outcome: StateApproved}}
	case ScriptDecline:
		if se {
			return []step{{at: 2 * time.Second, phase: 1}, {at: 4 * time.Second, outcome: StateDeclined}}
		}
		return []step{{at: 4 * time.Second, outcome: StateDeclined}}
	}
	return nil
}

// describe is the pending description of a request.
func (r *request) describe(phase int) string {
	if r.spec.name != ProfileIdura {
		return r.spec.pending
	}
	if r.country != "SE" {
		return PendingNorwegian
	}
	switch phase {
	case 0:
		return PendingFirstInteraction
	case 1:
		return PendingAcknowledgement
	}
	return PendingIdentification
}

// status is the request's state at now, the pending description, and when
// it reached a final state.
func (r *request) status(now time.Time) (state, pending string, at time.Time) {
	if r.decision != "" {
		return r.decision, "", r.decidedAt
	}
	phase := r.phase
	for _, st := range timeline(r.user.Script, r.country) {
		t := r.created.Add(st.at)
		if !t.Before(r.expires) || now.Before(t) {
			break
		}
		if st.outcome != "" {
			return st.outcome, "", t
		}
		phase = max(phase, st.phase)
	}
	if !now.Before(r.expires) {
		return StateExpired, "", r.expires
	}
	return StatePending, r.describe(phase), time.Time{}
}

// finalAt is when the request reaches a final state unless someone acts:
// its scripted outcome or its expiry.
func (r *request) finalAt() time.Time {
	if r.decision != "" {
		return r.decidedAt
	}
	for _, st := range timeline(r.user.Script, r.country) {
		if t := r.created.Add(st.at); st.outcome != "" && t.Before(r.expires) {
			return t
		}
	}
	return r.expires
}

func (r *request) view(now time.Time) Request {
	state, pending, _ := r.status(now)
	var maskedID string
	if r.user.NationalID != "" {
		maskedID = mask(r.user.NationalID)
	}
	return Request{
		ID:              r.simID,
		Profile:         r.spec.name,
		Country:         r.country,
		MaskedID:        maskedID,
		HintType:        r.hintType,
		MaskedHint:      r.maskedHint,
		Name:            r.user.name(),
		BindingMessage:  r.binding,
		WordPairChoices: slices.Clone(r.choices),
		CallInitiator:   r.callInitiator,
		Channel:         r.channel,
		CustomMessage:   r.customMessage,
		State:           state,
		Pending:         pending,
		CreatedAt:       r.created,
		ExpiresAt:       r.expires,
	}
}

// sweepLocked forgets requests finished more than retention ago.
func (b *Broker) sweepLocked(now time.Time) {
	if now.Before(b.nextReqSwp) {
		return
	}
	b.nextReqSwp = now.Add(10 * time.Second)
	for id, r := range b.reqs {
		if st, _, at := r.status(now); st != StatePending && now.Sub(at) > retention {
			delete(b.reqs, id)
			delete(b.byAuthReq, r.authReqID)
			if k := r.latestKey(); b.latest[k] == r {
				delete(b.latest, k)
			}
			r.stopTimer()
		}
	}
}

func (r *request) latestKey() string { return r.clientID + "\x00" + r.user.key() }

// supersedeLocked makes r the newest request of its user at its client and
// cancels the previous one if it is still pending.
func (b *Broker) supersedeLocked(r *request, now time.Time) {
	k := r.latestKey()
	if old := b.latest[k]; old != nil {
		if st, _, _ := old.status(now); st == StatePending {
			old.decision, old.decidedAt = StateCancelled, now
			b.notifyLocked(old)
		}
	}
	b.latest[k] = r
}

// Requests returns the open and recently finished requests, newest first.
func (b *Broker) Requests() []Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.sweepLocked(now)
	rs := make([]*request, 0, len(b.reqs))
	for _, r := range b.reqs {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(x, y *request) int { return cmp.Compare(y.seq, x.seq) })
	out := make([]Request, len(rs))
	for i, r := range rs {
		out[i] = r.view(now)
	}
	return out
}

// Polls returns how many token requests were seen for a request, named by
// its sim id or its auth_req_id; 0 if unknown.
func (b *Broker) Polls(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r := b.reqs[id]; r != nil {
		return r.polls
	}
	if r := b.byAuthReq[id]; r != nil {
		return r.polls
	}
	return 0
}

// act runs f on a pending request, and sends the ping notification if f
// decided it.
func (b *Broker) act(id string, f func(r *request, now time.Time) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.reqs[id]
	if r == nil {
		return ErrNotFound
	}
	now := b.now()
	if st, _, _ := r.status(now); st != StatePending {
		return ErrNotPending
	}
	err := f(r, now)
	if r.decision != "" {
		b.notifyLocked(r)
	}
	return err
}

// Open moves a Swedish request to "awaiting user request acknowledgement"
// (the user opened the app). For other requests it changes nothing.
func (b *Broker) Open(id string) error {
	return b.act(id, func(r *request, _ time.Time) error {
		r.phase = max(r.phase, 1)
		return nil
	})
}

// Acknowledge moves a Swedish request to "awaiting user identification"
// (the user confirmed the call). For other requests it changes nothing.
func (b *Broker) Acknowledge(id string) error {
	return b.act(id, func(r *request, _ time.Time) error {
		r.phase = max(r.phase, 2)
		return nil
	})
}

// Approve approves a request. A Norwegian request needs the right word pair
// (compared ignoring case and surrounding space); any other pick declines
// it, as in the app, and returns ErrWrongWordPair. Other requests ignore
// wordPair.
func (b *Broker) Approve(id string, wordPair string) error {
	return b.act(id, func(r *request, now time.Time) error {
		r.decidedAt = now
		if r.country == "NO" && !strings.EqualFold(strings.TrimSpace(wordPair), r.binding) {
			r.decision = StateDeclined
			return ErrWrongWordPair
		}
		r.decision = StateApproved
		return nil
	})
}

// Decline declines a request (Idura: "user declined").
func (b *Broker) Decline(id string) error {
	return b.act(id, func(r *request, now time.Time) error {
		r.decision, r.decidedAt = StateDeclined, now
		return nil
	})
}

// RequestForAuthReqID returns the request an auth_req_id names, e.g. to
// link it to the call that started it.
func (b *Broker) RequestForAuthReqID(authReqID string) (Request, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.byAuthReq[authReqID]
	if r == nil {
		return Request{}, false
	}
	return r.view(b.now()), true
}

// requestView returns the view of one request.
func (b *Broker) requestView(id string) (Request, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.reqs[id]
	if r == nil {
		return Request{}, false
	}
	return r.view(b.now()), true
}

func (b *Broker) handleSimList(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, b.Requests())
}

type simAction int

const (
	actOpen simAction = iota
	actAcknowledge
	actApprove
	actDecline
)

// handleSimAction serves POST /sim/requests/{id}/{action}. It answers the
// request as it is afterwards (200; a wrong Norwegian word pair gives 200
// with state "declined"), 404 for an unknown id, 409 when it is no longer
// pending.
func (b *Broker) handleSimAction(a simAction) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var err error
		switch a {
		case actOpen:
			err = b.Open(id)
		case actAcknowledge:
			err = b.Acknowledge(id)
		case actDecline:
			err = b.Decline(id)
		case actApprove:
			pair, ok := readWordPair(w, r)
			if !ok {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_request", "error_description": "send wordPair as a form field or JSON"})
				return
			}
			err = b.Approve(id, pair)
		}
		switch {
		case errors.Is(err, ErrNotFound):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found"})
			return
		case errors.Is(err, ErrNotPending):
			view, _ := b.requestView(id)
			writeJSON(w, http.StatusConflict, map[string]any{"error": "not_pending", "request": view})
			return
		}
		view, ok := b.requestView(id)
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found"})
			return
		}
		writeJSON(w, http.StatusOK, view)
	}
}

// readWordPair reads wordPair from a JSON or form body; an empty body is an
// empty pair.
func readWordPair(w http.ResponseWriter, r *http.Request) (string, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" {
		var body struct {
			WordPair string `json:"wordPair"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			return "", false
		}
		return body.WordPair, true
	}
	if err := r.ParseForm(); err != nil {
		return "", false
	}
	return r.PostForm.Get("wordPair"), true
}
