package cibatest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
)

const (
	pingClientID = "rp-ping"
	notifyURL    = "https://rp.example/ciba/notify"
)

// notification is one POST the broker made to the client notification
// endpoint, as the ciba package's ping handler answered it.
type notification struct {
	at          time.Time
	authReqID   string // as the ping handler passed it on
	auth, ctype string
	status      int
}

// notifySite is the RP's notification endpoint: ciba.NewPingHandler for
// token, recording every call, reached in-process by the broker's fetch
// client.
type notifySite struct {
	mu   sync.Mutex
	got  []notification
	h    http.Handler
	last string
}

func newNotifySite(token string) *notifySite {
	s := &notifySite{}
	s.h = ciba.NewPingHandler(token, func(id string) {
		s.mu.Lock()
		s.last = id
		s.mu.Unlock()
	})
	return s
}

func (s *notifySite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	s.mu.Lock()
	s.last = ""
	s.mu.Unlock()
	s.h.ServeHTTP(rec, r)
	s.mu.Lock()
	s.got = append(s.got, notification{
		at: time.Now(), authReqID: s.last, status: rec.Code,
		auth: r.Header.Get("Authorization"), ctype: r.Header.Get("Content-Type"),
	})
	s.mu.Unlock()
	w.WriteHeader(rec.Code)
}

func (s *notifySite) calls() []notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]notification(nil), s.got...)
}

// newPingEnv is a generic broker with a ping client whose notification
// endpoint is site.
func newPingEnv(t *testing.T, site http.Handler, cfg cibatest.Config) *penv {
	t.Helper()
	e := newPenv(t, genericInfo(), cfg)
	e.b.SetFetchClient(&http.Client{Transport: handlerTransport{site}})
	if err := e.b.RegisterClient(cibatest.Client{
		ID: pingClientID, Secret: clientSecret,
		DeliveryMode: cibatest.DeliveryPing, NotificationEndpoint: notifyURL,
	}); err != nil {
		t.Fatalf("RegisterClient: %v", err)
	}
	return e
}

// startPing starts a request of the ping client for user.
func (e *penv) startPing(user, token string) string {
	e.t.Helper()
	form := withSecret(e.p.form(user), pingClientID)
	form.Set("client_notification_token", token)
	r := e.post(e.p.authorize, form)
	if r.status != http.StatusOK {
		e.t.Fatalf("bc-authorize = %d %s", r.status, r.raw)
	}
	return r.str("auth_req_id")
}

func (e *penv) pingToken(authReqID string) reply {
	e.t.Helper()
	return e.post(e.p.token, withSecret(url.Values{"grant_type": {ciba.GrantType}, "auth_req_id": {authReqID}}, pingClientID))
}

func TestPingNotification(t *testing.T) {
	const token = "cnt-9b3f6c0e4a7d2e18f5a1c3b7d9e0f2a4"
	tests := []struct {
		name  string
		cfg   cibatest.Config
		user  string
		act   func(e *penv, authReqID string) // at the time the notification is due
		at    time.Duration                   // when the notification is due
		token string                          // error code, or "" for a token
	}{
		{"scripted approval", cibatest.Config{}, cibatest.GenericApprove, nil, 4 * time.Second, ""},
		{"scripted decline", cibatest.Config{}, cibatest.GenericDecline, nil, 4 * time.Second, "access_denied"},
		{"expiry", cibatest.Config{}, cibatest.GenericNoAnswer, nil, 300 * time.Second, "expired_token"},
		{"approval by the Go method", cibatest.Config{}, cibatest.GenericManual, func(e *penv, id string) {
			v, _ := e.b.RequestForAuthReqID(id)
			if err := e.b.Approve(v.ID, ""); err != nil {
				e.t.Fatal(err)
			}
		}, 3 * time.Second, ""},
		{"decline through the sim API", cibatest.Config{}, cibatest.GenericManual, func(e *penv, id string) {
			v, _ := e.b.RequestForAuthReqID(id)
			if r := e.post("/sim/requests/"+v.ID+"/decline", url.Values{}); r.status != http.StatusOK {
				e.t.Fatalf("decline = %d %s", r.status, r.raw)
			}
		}, 3 * time.Second, "access_denied"},
		{"cancelled by a newer request", cibatest.Config{}, cibatest.GenericManual, func(e *penv, id string) {
			e.startPing(cibatest.GenericManual, "cnt-another-token")
		}, 3 * time.Second, "access_denied"},
		{"approval scripted after expiry", cibatest.Config{ExpiresIn: 30 * time.Second}, cibatest.GenericApproveSlow, nil, 30 * time.Second, "expired_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				site := newNotifySite(token)
				e := newPingEnv(t, site, tt.cfg)
				start := time.Now()
				id := e.startPing(tt.user, token)
				time.Sleep(tt.at - time.Millisecond)
				synctest.Wait()
				if n := len(site.calls()); n != 0 {
					t.Fatalf("%d notifications before %v, want none", n, tt.at)
				}
				time.Sleep(time.Millisecond)
				if tt.act != nil {
					tt.act(e, id)
				}
				synctest.Wait()
				calls := site.calls()
				if len(calls) != 1 {
					t.Fatalf("%d notifications at %v, want 1", len(calls), tt.at)
				}
				c := calls[0]
				if c.at.Sub(start) != tt.at || c.status != http.StatusNoContent || c.authReqID != id ||
					c.auth != "Bearer "+token || c.ctype != "application/json" {
					t.Errorf("notification %+v after %v, want 204 for our auth_req_id with our bearer token and JSON at %v",
						c, c.at.Sub(start), tt.at)
				}
				if n := e.b.Notifications(); n != 1 {
					t.Errorf("Notifications() = %d, want 1", n)
				}
				// The client asks the token endpoint once it is told.
				tok := e.pingToken(id)
				if tt.token == "" {
					if tok.status != http.StatusOK {
						t.Errorf("token = %d %s, want 200", tok.status, tok.raw)
					}
				} else {
					wantError(t, tok, http.StatusBadRequest, tt.token, "")
				}
				// Never twice.
				time.Sleep(time.Hour)
				synctest.Wait()
				n := 0
				for _, c := range site.calls() {
					if c.authReqID == id {
						n++
					}
				}
				if n != 1 {
					t.Errorf("%d notifications for the request after an hour, want 1", n)
				}
			})
		})
	}
}

// TestPingWithCibaClient waits for the notification with the ciba
// package's handler, then asks for the token once.
func TestPingWithCibaClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const token = "cnt-Zm9vYmFyYmF6cXV4cXV1eA"
		ready := make(chan string, 1)
		p := genericInfo()
		e := newPenv(t, p, cibatest.Config{})
		e.b.SetFetchClient(&http.Client{Transport: handlerTransport{ciba.NewPingHandler(token, func(id string) { ready <- id })}})
		if err := e.b.RegisterClient(cibatest.Client{ID: pingClientID, JWKS: publicSet(t, e.key), DeliveryMode: cibatest.DeliveryPing, NotificationEndpoint: notifyURL}); err != nil {
			t.Fatal(err)
		}
		c, err := ciba.New(t.Context(), ciba.Config{Issuer: p.issuer, ClientID: pingClientID, Key: e.clientKey(), Profile: ciba.Generic, HTTPClient: e.hc})
		if err != nil {
			t.Fatal(err)
		}
		in := p.input(p.approve)
		in.ClientNotificationToken = token
		ar, err := c.Authenticate(t.Context(), mustRequest(t, c, in))
		if err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
		start := time.Now()
		select {
		case id := <-ready:
			if id != ar.AuthReqID {
				t.Fatal("notified of another auth_req_id")
			}
		case <-time.After(time.Minute):
			t.Fatal("no notification within a minute")
		}
		if waited := time.Since(start); waited != 4*time.Second {
			t.Errorf("notified after %v, want 4s", waited)
		}
		tok, err := c.Token(t.Context(), ar.AuthReqID)
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		if tok.IDToken.Subject != p.approve || e.b.Polls(ar.AuthReqID) != 1 {
			t.Errorf("sub %q after %d polls, want %s after 1", tok.IDToken.Subject, e.b.Polls(ar.AuthReqID), p.approve)
		}
	})
}

func TestPingDroppedNotification(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const token = "cnt-drop-test-token"
		site := newNotifySite(token)
		e := newPingEnv(t, site, cibatest.Config{})
		e.b.SetDropNotifications(true)
		lost := e.startPing(cibatest.GenericApprove, token)
		time.Sleep(time.Minute)
		synctest.Wait()
		if n, sent := len(site.calls()), e.b.Notifications(); n != 0 || sent != 0 {
			t.Fatalf("dropped: %d notifications arrived, Notifications() = %d; want 0, 0", n, sent)
		}
		// The client that polls anyway still gets its token.
		if tok := e.pingToken(lost); tok.status != http.StatusOK {
			t.Errorf("token after a lost notification = %d %s, want 200", tok.status, tok.raw)
		}
		// Delivery resumes; the lost one is not sent late.
		e.b.SetDropNotifications(false)
		next := e.startPing(cibatest.GenericDecline, token)
		time.Sleep(time.Minute)
		synctest.Wait()
		calls := site.calls()
		if len(calls) != 1 || calls[0].authReqID != next || e.b.Notifications() != 1 {
			t.Errorf("after resuming: %+v, Notifications() = %d; want one for the new request", calls, e.b.Notifications())
		}
	})
}

func TestPingClientNotificationToken(t *testing.T) {
	site := newNotifySite("x")
	e := newPingEnv(t, site, cibatest.Config{})
	for _, tt := range []struct {
		name, token string
		ok          bool
	}{
		{"missing", "", false},
		{"with a space", "two words", false},
		{"with a quote", `a"b`, false},
		{"too long", string(make([]byte, 1025)), false},
		{"only padding", "==", false},
		{"b64token with padding", "abc-._~+/123==", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			form := withSecret(e.p.form(cibatest.GenericManual), pingClientID)
			if tt.token != "" {
				form.Set("client_notification_token", tt.token)
			}
			r := e.post(e.p.authorize, form)
			if tt.ok {
				if r.status != http.StatusOK {
					t.Fatalf("got %d %s, want 200", r.status, r.raw)
				}
				return
			}
			wantError(t, r, http.StatusBadRequest, "invalid_request", "")
		})
	}
	t.Run("a poll client needs none", func(t *testing.T) {
		e.start(e.p.form(cibatest.GenericApprove))
	})
}

func TestPingRegistration(t *testing.T) {
	for _, p := range []string{cibatest.ProfileIdura, cibatest.ProfileAuth0, cibatest.ProfileTransmit} {
		b, err := cibatest.New(cibatest.Config{Issuer: testIssuer, Profile: p, SigningKey: brokerKey()})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.RegisterClient(cibatest.Client{ID: "c", Secret: "s", DeliveryMode: cibatest.DeliveryPing, NotificationEndpoint: notifyURL}); err == nil {
			t.Errorf("%s: RegisterClient of a ping client = nil, want an error (poll only)", p)
		}
	}
	b, err := cibatest.New(cibatest.Config{Issuer: testIssuer, Profile: cibatest.ProfileGeneric, SigningKey: brokerKey()})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []cibatest.Client{
		{ID: "c", Secret: "s", DeliveryMode: cibatest.DeliveryPing},
		{ID: "c", Secret: "s", DeliveryMode: cibatest.DeliveryPing, NotificationEndpoint: "/notify"},
		{ID: "c", Secret: "s", DeliveryMode: cibatest.DeliveryPoll, NotificationEndpoint: notifyURL},
		{ID: "c", Secret: "s", DeliveryMode: "push", NotificationEndpoint: notifyURL},
	} {
		if err := b.RegisterClient(c); err == nil {
			t.Errorf("RegisterClient(mode %q, endpoint %q) = nil, want an error", c.DeliveryMode, c.NotificationEndpoint)
		}
	}
	if err := b.RegisterClient(cibatest.Client{ID: "c", Secret: "s", DeliveryMode: cibatest.DeliveryPing, NotificationEndpoint: notifyURL}); err != nil {
		t.Errorf("RegisterClient of a generic ping client: %v", err)
	}
}

func TestPingClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		site := newNotifySite("cnt")
		e := newPingEnv(t, site, cibatest.Config{})
		e.startPing(cibatest.GenericApprove, "cnt")
		e.b.Close()
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := len(site.calls()); n != 0 {
			t.Errorf("%d notifications after Close, want none", n)
		}
	})
}

// TestPingOverRealHTTP sends the notification over a socket to an
// httptest.Server, outside synctest, with the default fetch client.
func TestPingOverRealHTTP(t *testing.T) {
	type call struct{ method, path, auth, ctype, body string }
	got := make(chan call, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- call{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(body)}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	p := genericInfo()
	e := newPenv(t, p, cibatest.Config{})
	defer e.b.Close()
	if err := e.b.RegisterClient(cibatest.Client{ID: pingClientID, Secret: clientSecret, DeliveryMode: cibatest.DeliveryPing, NotificationEndpoint: srv.URL + "/cb"}); err != nil {
		t.Fatal(err)
	}
	id := e.startPing(p.manual, "real-token")
	v, _ := e.b.RequestForAuthReqID(id)
	if err := e.b.Approve(v.ID, ""); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if c.method != http.MethodPost || c.path != "/cb" || c.auth != "Bearer real-token" ||
			c.ctype != "application/json" || c.body != `{"auth_req_id":"`+id+`"}` {
			t.Errorf("notification %+v, want a JSON POST to /cb with our bearer token and auth_req_id", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10 s")
	}
}
