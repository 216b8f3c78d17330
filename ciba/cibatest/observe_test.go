package cibatest_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ivr/callerverify/ciba/cibatest"
)

// TestObserve: every bc-authorize and token exchange is reported once
// answered, with what was asked and what was answered; nothing else is.
func TestObserve(t *testing.T) {
	e := newEnv(t, cibatest.Config{Interval: 2 * time.Second})
	var mu sync.Mutex
	var seen []cibatest.Exchange
	e.b.Observe(func(x cibatest.Exchange) {
		mu.Lock()
		seen = append(seen, x)
		mu.Unlock()
	})
	observed := func() []cibatest.Exchange {
		mu.Lock()
		defer mu.Unlock()
		return append([]cibatest.Exchange(nil), seen...)
	}
	ar := e.start(seForm(cibatest.SEApprove))
	id := ar.str("auth_req_id")
	e.token(id)
	e.token("no-such-request")
	e.get("/.well-known/openid-configuration")

	got := observed()
	want := []struct {
		endpoint, authReqID, err string
		status                   int
	}{
		{"bc-authorize", id, "", http.StatusOK},
		{"token", id, "authorization_pending", http.StatusBadRequest},
		{"token", "no-such-request", "invalid_grant", http.StatusBadRequest},
	}
	if len(got) != len(want) {
		t.Fatalf("observed %d exchanges, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		x := got[i]
		if x.Endpoint != w.endpoint || x.AuthReqID != w.authReqID || x.Error != w.err || x.Status != w.status {
			t.Errorf("exchange %d = %s %q error %q status %d, want %s %q error %q status %d", i, x.Endpoint, x.AuthReqID, x.Error, x.Status, w.endpoint, w.authReqID, w.err, w.status)
		}
		if x.Arrived.IsZero() || x.Answered.Before(x.Arrived) {
			t.Errorf("exchange %d: arrived %v, answered %v", i, x.Arrived, x.Answered)
		}
	}
	if got[0].Interval != 2*time.Second || got[0].Form.Get("login_hint") != "sub:ssn:"+cibatest.SEApprove {
		t.Errorf("bc-authorize: interval %v, login_hint %q", got[0].Interval, got[0].Form.Get("login_hint"))
	}

	e.b.Observe(nil)
	e.token(id)
	if len(observed()) != len(want) {
		t.Errorf("an exchange was reported after Observe(nil)")
	}
}
