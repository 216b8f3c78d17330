package ciba

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// maxPingBody bounds a ping notification body.
const maxPingBody = 8 << 10

// NewPingHandler returns the handler for the client notification endpoint of
// ping mode (CIBA Core §10.2). The broker POSTs {"auth_req_id": "..."} with
// "Authorization: Bearer <client_notification_token>"; the handler checks the
// bearer token in constant time and calls ready with the auth_req_id, after
// which the caller should call Client.Token for it. It answers 204 on
// success, 401 on a missing or wrong bearer token, 400 on a bad body and 405
// on anything but POST.
//
// token is the client_notification_token sent in the AuthRequest; use one per
// request, or one per deployment that the broker cannot guess.
func NewPingHandler(token string, ready func(authReqID string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		got, ok := bearer(r.Header.Get("Authorization"))
		if !ok || token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var body struct {
			AuthReqID string `json:"auth_req_id"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, maxPingBody))
		if err := dec.Decode(&body); err != nil || body.AuthReqID == "" ||
			len(body.AuthReqID) > maxAuthReqID || !printable(body.AuthReqID) {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if ready != nil {
			ready(body.AuthReqID)
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
