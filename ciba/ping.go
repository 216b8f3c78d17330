package ciba

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// maxPingBody bounds a ping notification body.
const maxPingBody = 8 << 10

// Notification is a ping mode notification (CIBA Core §10.2) as received
// at the client notification endpoint: the bearer token the broker
// presented (the request's client_notification_token, if genuine) and the
// auth_req_id it names.
type Notification struct {
	Token     string
	AuthReqID string
}

// Errors of ReadNotification: ErrNotificationAuth for a request without a
// bearer token (answer 401), ErrNotificationBody for a body that is not
// {"auth_req_id": "..."} (answer 400).
var (
	ErrNotificationAuth = errors.New("ciba: notification: no bearer token")
	ErrNotificationBody = errors.New("ciba: notification: body is not {\"auth_req_id\": ...}")
)

// ReadNotification reads a ping notification from r: the bearer token of
// its Authorization header and the auth_req_id of its JSON body (at most
// 8 KiB). It does not judge the token: the caller looks up which request
// it was issued for and compares in constant time.
func ReadNotification(r *http.Request) (Notification, error) {
	tok, ok := bearer(r.Header.Get("Authorization"))
	if !ok || tok == "" {
		return Notification{}, ErrNotificationAuth
	}
	var body struct {
		AuthReqID string `json:"auth_req_id"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxPingBody))
	if err := dec.Decode(&body); err != nil || body.AuthReqID == "" ||
		len(body.AuthReqID) > maxAuthReqID || !printable(body.AuthReqID) {
		return Notification{}, ErrNotificationBody
	}
	return Notification{Token: tok, AuthReqID: body.AuthReqID}, nil
}

// NewPingHandler returns a handler for the client notification endpoint of
// ping mode when one token serves every request: it checks the bearer
// token against token in constant time and calls ready with the
// auth_req_id, after which the caller should call Client.Token for it. It
// answers 204 on success, 401 on a missing or wrong bearer token, 400 on a
// bad body and 405 on anything but POST. A service with a token per
// request reads notifications with ReadNotification instead.
func NewPingHandler(token string, ready func(authReqID string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		n, err := ReadNotification(r)
		if errors.Is(err, ErrNotificationAuth) || err == nil &&
			(token == "" || subtle.ConstantTimeCompare([]byte(n.Token), []byte(token)) != 1) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if ready != nil {
			ready(n.AuthReqID)
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func bearer(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(h[len(prefix):]), true
}
