package ivr_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
)

// pingMode configures a generic broker in ping mode; callers type a
// customer number.
func pingMode(c *ivr.Config) {
	c.Mode = ivr.ModePing
	c.Identify = []store.IDKind{store.IDCustomer}
}

// TestPingMode: the broker's notification brings the outcome at once; a
// lost one is caught by the slow safety poll; between them nothing polls.
func TestPingMode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		number   string
		drop     bool          // the broker's notification is lost
		want     string        // what the caller hears at the end
		by       time.Duration // at the latest, from the start of the call
		after    time.Duration // at the earliest
		status   store.VerificationStatus
		notified int // notifications the broker sent
	}{
		{name: "an approval is heard the moment the broker notifies", number: cibatest.GenericApprove,
			want: "Tack, Anna", after: 4 * time.Second, by: 6 * time.Second, status: store.VerApproved, notified: 1},
		{name: "a decline too", number: cibatest.GenericDecline,
			want: "Förfrågan godkändes inte", after: 4 * time.Second, by: 6 * time.Second, status: store.VerDeclined, notified: 1},
		{name: "a lost notification is caught by the safety poll", number: cibatest.GenericApprove, drop: true,
			want: "Tack, Anna", after: ivr.DefaultPingSafetyPoll, by: ivr.DefaultPingSafetyPoll + 2*time.Second, status: store.VerApproved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnvFor(t, ciba.Generic, pingMode)
				e.broker.SetDropNotifications(tc.drop)
				tr := e.call(&caller{numbers: []string{tc.number}})
				heard := -1 * time.Second
				for _, l := range tr.Lines {
					if l.Kind == "say" && strings.Contains(l.Text, tc.want) {
						heard = l.At
						break
					}
				}
				if heard < tc.after || heard > tc.by {
					t.Errorf("heard %q at %v, want from %v to %v:\n%s", tc.want, heard, tc.after, tc.by, tr)
				}
				vs := e.verifications(tr.CallSID)
				v := vs[len(vs)-1]
				if v.Status != tc.status || v.Polls != 1 || v.SlowDowns != 0 {
					t.Errorf("verification %s after %d polls (%d slow_down), want %s after the one poll", v.Status, v.Polls, v.SlowDowns, tc.status)
				}
				if v.NotifyHash == "" {
					t.Error("no notification token was issued")
				}
				if n := e.broker.Notifications(); n != tc.notified {
					t.Errorf("broker sent %d notifications, want %d", n, tc.notified)
				}
			})
		})
	}
}

// notification is one ping notification as the broker sent it.
type notification struct {
	auth string
	body []byte
}

// captured records the broker's notifications on their way to the service.
type captured struct {
	next http.Handler
	mu   sync.Mutex
	got  []notification
}

func (c *captured) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.got = append(c.got, notification{r.Header.Get("Authorization"), body})
	c.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	c.next.ServeHTTP(w, r)
}

// notifyObserver counts notification results.
type notifyObserver struct {
	countingObserver
	mu      sync.Mutex
	results map[string]int
}

func (o *notifyObserver) Notified(result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.results[result]++
}

// TestPingNotificationRefusals: the endpoint is on the internet; only the
// token issued with a request, once, for that request, moves anything.
func TestPingNotificationRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		obs := &notifyObserver{countingObserver: countingObserver{n: map[store.LimitScope]int{}}, results: map[string]int{}}
		e := newEnvFor(t, ciba.Generic, pingMode, func(c *ivr.Config) { c.Observer = obs })
		capt := &captured{next: e.svc.NotifyHandler()}
		e.notify.set(capt)

		sid := testSID("ping refusals")
		e.post("/twilio/voice", params(sid))
		e.post("/twilio/gather?s=1", params(sid, "Digits", cibatest.GenericManual+"#"))
		synctest.Wait()
		reqs := e.broker.Requests()
		if len(reqs) != 1 {
			t.Fatalf("%d broker requests, want 1", len(reqs))
		}
		before := e.verifications(sid)[0]

		send := func(auth, body string) int {
			t.Helper()
			r := httptest.NewRequest(http.MethodPost, ivr.NotifyPath, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			if auth != "" {
				r.Header.Set("Authorization", auth)
			}
			w := httptest.NewRecorder()
			e.svc.NotifyHandler().ServeHTTP(w, r)
			return w.Code
		}
		// Before the broker notifies: made-up tokens move nothing.
		id := before.ID
		body := `{"auth_req_id":"` + before.AuthReqID + `"}`
		for _, tc := range []struct {
			name, auth, body string
			want             int
		}{
			{"no bearer token", "", body, http.StatusUnauthorized},
			{"not a bearer token", "Basic aXZyOnNlY3JldA==", body, http.StatusUnauthorized},
			{"a token never issued", "Bearer v_000000000000000000000000.bm9wZQ", body, http.StatusUnauthorized},
			{"the verification's id with a made-up MAC", "Bearer " + id + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", body, http.StatusUnauthorized},
			{"the verification's id alone", "Bearer " + id, body, http.StatusUnauthorized},
			{"a body that is not a notification", "Bearer " + id + ".x", `{"nope":1}`, http.StatusBadRequest},
		} {
			if got := send(tc.auth, tc.body); got != tc.want {
				t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
			}
		}
		synctest.Wait()
		if v, _ := e.db.Verification(t.Context(), id); v.Polls != 0 || !v.NotifiedAt.IsZero() {
			t.Fatalf("forged notifications moved the verification: %d polls, notified at %v", v.Polls, v.NotifiedAt)
		}

		// The broker's own notification is accepted and polled at once.
		if err := e.broker.Approve(reqs[0].ID, ""); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		capt.mu.Lock()
		got := capt.got
		capt.mu.Unlock()
		if len(got) != 1 || !strings.HasPrefix(got[0].auth, "Bearer "+id+".") {
			t.Fatalf("broker notifications %+v, want one bearing the verification's token", got)
		}
		v, _ := e.db.Verification(t.Context(), id)
		if v.Status != store.VerApproved || v.Polls != 1 || v.NotifiedAt.IsZero() {
			t.Fatalf("after the notification: %s, %d polls, notified %v; want approved after one poll", v.Status, v.Polls, v.NotifiedAt)
		}
		// Replayed, or for another request: refused, and nothing moves.
		if code := send(got[0].auth, string(got[0].body)); code != http.StatusUnauthorized {
			t.Errorf("the notification replayed: status %d, want 401", code)
		}
		if code := send(got[0].auth, `{"auth_req_id":"another-request"}`); code != http.StatusBadRequest {
			t.Errorf("the token for another auth_req_id: status %d, want 400", code)
		}
		synctest.Wait()
		if after, _ := e.db.Verification(t.Context(), id); after.Polls != 1 || after.Version != v.Version {
			t.Errorf("refused notifications changed the verification: %d polls, version %d → %d", after.Polls, v.Version, after.Version)
		}
		obs.mu.Lock()
		defer obs.mu.Unlock()
		want := map[string]int{ivr.NotifyAccepted: 1, ivr.NotifyReused: 1, ivr.NotifyUnknown: 3, ivr.NotifyBad: 4}
		for k, n := range want {
			if obs.results[k] != n {
				t.Errorf("observer: %d %s, want %d (all: %v)", obs.results[k], k, n, obs.results)
			}
		}
	})
}

// TestPingModeNeedsABrokerThatPings: Idura polls only; the service says so.
func TestPingModeNeedsABrokerThatPings(t *testing.T) {
	for _, p := range []*ciba.Profile{ciba.Idura, ciba.Auth0, ciba.Transmit} {
		if err := ivr.CheckMode(p, ivr.ModePing); err == nil || !strings.Contains(err.Error(), "ping") {
			t.Errorf("%s: CheckMode(ping) = %v, want an error", p.Name, err)
		}
	}
	if err := ivr.CheckMode(ciba.Generic, ivr.ModePing); err != nil {
		t.Errorf("generic: CheckMode(ping) = %v", err)
	}
	if err := ivr.CheckMode(ciba.Generic, "push"); err == nil {
		t.Error("push mode accepted")
	}
}
