package ivr_test

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

// unknownCustomer is a customer number with a valid Luhn check digit that
// no simulated broker knows.
const unknownCustomer = "12345674"

// TestBrokers runs whole calls at Auth0 and Transmit/Mosaic: the caller
// types a customer number (or, at Transmit, asks for the request on the
// phone they call from), hears the code the request shows, and approves,
// declines, lets it expire, or is unknown.
func TestBrokers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		profile *ciba.Profile
		from    string
		caller  caller
		want    []string // said to the caller, in order
		status  store.VerificationStatus
		kind    store.IDKind
	}{
		{name: "auth0: approved in Guardian", profile: ciba.Auth0, caller: caller{numbers: []string{cibatest.Auth0Approve}},
			want: []string{"kundnummer", "Guardian-appen", "koden", "Tack, Maria"}, status: store.VerApproved, kind: store.IDCustomer},
		{name: "auth0: declined", profile: ciba.Auth0, caller: caller{numbers: []string{cibatest.Auth0Decline}},
			want: []string{"Förfrågan godkändes inte", "Du kopplas nu"}, status: store.VerDeclined, kind: store.IDCustomer},
		{name: "auth0: not answered expires on our own clock, not as Auth0's access_denied", profile: ciba.Auth0, caller: caller{numbers: []string{cibatest.Auth0NoAnswer}},
			want: []string{"Tiden för identifieringen gick ut"}, status: store.VerExpired, kind: store.IDCustomer},
		{name: "auth0: unknown user", profile: ciba.Auth0, caller: caller{numbers: []string{unknownCustomer}},
			want: []string{"Vi hittar ingen användare"}, status: store.VerUnknownUser, kind: store.IDCustomer},
		{name: "auth0: a customer number with a wrong check digit is asked again", profile: ciba.Auth0, caller: caller{numbers: []string{"31001018", cibatest.Auth0Approve}},
			want: []string{"Kundnumret stämmer inte", "Tack, Maria"}, status: store.VerApproved, kind: store.IDCustomer},
		{name: "transmit: customer number, approved on the link's page", profile: ciba.Transmit, from: "anonymous", caller: caller{numbers: []string{cibatest.TransmitApprove}},
			want: []string{"kundnummer", "sms med en länk", "Tack, Johan"}, status: store.VerApproved, kind: store.IDCustomer},
		{name: "transmit: the phone they call from", profile: ciba.Transmit, from: cibatest.TransmitApprovePhone, caller: caller{menu: []string{"1"}},
			want: []string{"telefonen du ringer från", "sms med en länk", "Tack, Johan"}, status: store.VerApproved, kind: store.IDCallerID},
		{name: "transmit: the menu, then a customer number", profile: ciba.Transmit, from: cibatest.TransmitDeclinePhone, caller: caller{menu: []string{"2"}, numbers: []string{cibatest.TransmitApprove}},
			want: []string{"Tryck 2", "kundnummer", "Tack, Johan"}, status: store.VerApproved, kind: store.IDCustomer},
		{name: "transmit: declined", profile: ciba.Transmit, from: cibatest.TransmitDeclinePhone, caller: caller{menu: []string{"1"}},
			want: []string{"Förfrågan godkändes inte"}, status: store.VerDeclined, kind: store.IDCallerID},
		{name: "transmit: expired", profile: ciba.Transmit, from: "anonymous", caller: caller{numbers: []string{cibatest.TransmitNoAnswer}},
			want: []string{"Tiden för identifieringen gick ut"}, status: store.VerExpired, kind: store.IDCustomer},
		{name: "transmit: unknown user", profile: ciba.Transmit, from: "anonymous", caller: caller{numbers: []string{unknownCustomer}},
			want: []string{"Vi hittar ingen användare"}, status: store.VerUnknownUser, kind: store.IDCustomer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnvFor(t, tc.profile)
				c := tc.caller
				tr := e.call(&c, func(ic *virtualtwilio.Caller) {
					if tc.from != "" {
						ic.From = tc.from
					}
				})
				said, at := sayLines(tr), 0
				for _, w := range tc.want {
					i := strings.Index(said[at:], w)
					if i < 0 {
						t.Fatalf("the caller did not hear %q (after what came before):\n%s", w, tr)
					}
					at += i
				}
				if strings.Contains(said, "BankID") {
					t.Errorf("a %s caller heard of BankID:\n%s", tc.profile.Name, tr)
				}
				vs := e.verifications(tr.CallSID)
				if len(vs) == 0 {
					t.Fatal("no verification")
				}
				v := vs[len(vs)-1]
				if v.Status != tc.status || v.IDKind != tc.kind {
					t.Errorf("verification %s by %s, want %s by %s", v.Status, v.IDKind, tc.status, tc.kind)
				}
				if tc.status == store.VerApproved {
					if code := strings.TrimPrefix(v.BindingMessage, "Kod "); len(code) != 4 || !strings.Contains(said, code) {
						t.Errorf("binding message %q: the caller was not read its code", v.BindingMessage)
					}
				}
				e.checkEnded(tr.CallSID)
			})
		})
	}
}

// TestWithheldCallerIDOnlyGoesToAnAgent: when the number they call from is
// the only way, a caller who withholds it is told so and put through.
func TestWithheldCallerIDOnlyGoesToAnAgent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnvFor(t, ciba.Transmit, func(c *ivr.Config) { c.Identify = []store.IDKind{store.IDCallerID} })
		tr := e.call(&caller{}, func(ic *virtualtwilio.Caller) { ic.From = "anonymous" })
		if !strings.Contains(sayLines(tr), "Vi ser inte numret du ringer från") || tr.Outcome != "enqueued:support" {
			t.Errorf("withheld caller:\n%s", tr)
		}
		if c := e.storedCall(tr.CallSID); c.Reason != store.ReasonWithheld {
			t.Errorf("reason %q, want withheld", c.Reason)
		}
		if len(e.broker.Requests()) != 0 {
			t.Error("a request was sent")
		}
	})
}

// TestAgentVerifiesWithWhatTheBrokerTakes: at Transmit an agent verifies a
// caller by customer number, phone or e-mail; a national identity number is
// refused there.
func TestAgentVerifiesWithWhatTheBrokerTakes(t *testing.T) {
	for _, tc := range []struct {
		kind  store.IDKind
		value string
		name  string
	}{
		{store.IDCustomer, cibatest.TransmitApprove, "Johan"},
		{store.IDPhone, cibatest.TransmitApprovePhone, "Johan"},
		{store.IDEmail, cibatest.TransmitApproveEmail, "Johan"},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnvFor(t, ciba.Transmit)
				sid := testSID("agent " + string(tc.kind))
				e.post("/twilio/voice", params(sid, "From", "anonymous"))
				for s := 1; s <= 3; s++ {
					e.post("/twilio/gather?s="+string(rune('0'+s)), params(sid, "Digits", "", "From", "anonymous"))
				}
				v, err := e.svc.StartAgentVerification(t.Context(), sid, tc.kind, tc.value, "alice")
				if err != nil {
					t.Fatal(err)
				}
				if v.IDKind != tc.kind || strings.Contains(v.MaskedID, tc.value) {
					t.Errorf("verification by %s masked %q", v.IDKind, v.MaskedID)
				}
				<-time.After(10 * time.Second)
				synctest.Wait()
				got, _ := e.db.Verification(t.Context(), v.ID)
				if got.Status != store.VerApproved || !strings.Contains(got.Name, tc.name) {
					t.Errorf("agent verification %s for %q", got.Status, got.Name)
				}
				if _, err := e.svc.StartAgentVerification(t.Context(), sid, store.IDNationalID, cibatest.SEApprove, "alice"); err == nil {
					t.Error("a national identity number was accepted at Transmit")
				}
			})
		})
	}
}
