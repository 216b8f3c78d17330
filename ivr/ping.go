package ivr

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/internal/store"
)

// Token delivery modes (CIBA_MODE).
const (
	ModePoll = "poll" // the poller asks the token endpoint at the broker's interval
	ModePing = "ping" // the broker notifies /ciba/notify; the poller then asks at once
)

// DefaultPingSafetyPoll is how often a verification is polled in ping
// mode while no notification has come: so that a notification that never
// arrives delays the caller's outcome by at most this long, not forever.
const DefaultPingSafetyPoll = 15 * time.Second

// NotifyPath is where brokers send ping notifications: register
// IVR_PUBLIC_URL + NotifyPath as the client notification endpoint.
const NotifyPath = "/ciba/notify"

// CheckMode reports whether profile p can deliver tokens in mode.
func CheckMode(p *ciba.Profile, mode string) error {
	switch mode {
	case ModePoll:
		return nil
	case ModePing:
		if slices.Contains(p.DeliveryModes, ModePing) {
			return nil
		}
		return fmt.Errorf("the %s broker does not offer ping mode: use poll", p.Name)
	}
	return fmt.Errorf("%q is not a token delivery mode: use poll or ping", mode)
}

// notifier issues and checks ping mode's client_notification_tokens. A
// token is the verification's ID and a MAC of it under a key derived from
// Config.HashKey: fresh and unguessable per request, and the service can
// make it again when it sends bc-authorize without keeping it anywhere.
// The store keeps only its SHA-256, which a notification must match.
type notifier struct{ key []byte }

func newNotifier(secret []byte) notifier {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("ivrd ciba client notification v1")) // a key of its own
	return notifier{key: m.Sum(nil)}
}

// token is the client_notification_token of verification id.
func (n notifier) token(id string) string {
	m := hmac.New(sha256.New, n.key)
	m.Write([]byte(id))
	return id + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// hash is what the store keeps of a token.
func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// Results of a ping notification, for logs and the Observer.
const (
	NotifyAccepted = "accepted" // a verification's one notification: polled at once
	NotifyUnknown  = "unknown"  // a token no verification was issued
	NotifyReused   = "reused"   // a token whose notification came before
	NotifyBad      = "bad"      // not a notification: no bearer token, a bad body, another auth_req_id
)

// handleNotify is the client notification endpoint of ping mode (CIBA
// Core §10.2). The bearer token must be the one issued with the request
// (compared as SHA-256 hashes, in constant time) and is accepted once; the
// verification is then due at once and the poller asks the broker for its
// token. 204 when accepted, 401 for an unknown or reused token, 400 for a
// malformed notification. The body names the auth_req_id, which must be
// the request's.
func (s *Service) handleNotify(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, result, why string) {
		s.observeNotify(result)
		s.notifyRefusals.refuse(s.log, "ping notification refused", "reason", why)
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
		http.Error(w, why, status)
	}
	n, err := ciba.ReadNotification(r)
	switch {
	case errors.Is(err, ciba.ErrNotificationAuth):
		refuse(http.StatusUnauthorized, NotifyBad, "no bearer token")
		return
	case err != nil:
		refuse(http.StatusBadRequest, NotifyBad, `the body must be {"auth_req_id": "..."}`)
		return
	}
	id, _, _ := strings.Cut(n.Token, ".")
	v, err := s.store.Verification(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		refuse(http.StatusUnauthorized, NotifyUnknown, "unknown token")
		return
	case err != nil:
		s.log.Error("ping notification: load verification", "err", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	if v.NotifyHash == "" || subtle.ConstantTimeCompare([]byte(hashToken(n.Token)), []byte(v.NotifyHash)) != 1 {
		refuse(http.StatusUnauthorized, NotifyUnknown, "unknown token")
		return
	}
	if v.AuthReqID != "" && subtle.ConstantTimeCompare([]byte(n.AuthReqID), []byte(v.AuthReqID)) != 1 {
		refuse(http.StatusBadRequest, NotifyBad, "auth_req_id is not the token's request")
		return
	}
	now := s.now()
	accepted := false
	got, _, err := s.mutateVerification(r.Context(), v, func(v *store.Verification) mutation {
		accepted = false
		if !v.NotifiedAt.IsZero() {
			return keep()
		}
		accepted = true
		v.NotifiedAt = now
		if v.Status == store.VerPending {
			v.NextPollAt = now // poll at once; bc-authorize's result does the same if it is still on its way
		}
		return save()
	})
	switch {
	case err != nil:
		s.log.Error("ping notification: store", "call_sid", v.CallSID, "verification_id", v.ID, "err", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	case !accepted:
		refuse(http.StatusUnauthorized, NotifyReused, "token used before")
		return
	}
	s.observeNotify(NotifyAccepted)
	s.log.Debug("ping notification accepted", "call_sid", got.CallSID, "verification_id", got.ID, "state", got.Status)
	w.WriteHeader(http.StatusNoContent)
	s.notify() // wake the poller
}

func (s *Service) observeNotify(result string) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.Notified(result)
	}
}
