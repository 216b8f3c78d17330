package ivr_test

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

func TestSwedishApprove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c := &caller{numbers: []string{cibatest.SEApprove}}
		tr := e.call(c)

		if tr.Outcome != "enqueued:support" {
			t.Errorf("outcome %q, want enqueued:support", tr.Outcome)
		}
		heard := c.all() + "\n" + sayLines(tr)
		for _, want := range []string{"Välkommen", "Öppna BankID-appen", "Tack, Astrid"} {
			if !strings.Contains(heard, want) {
				t.Errorf("caller never heard %q", want)
			}
		}
		checkVoices(t, tr)
		// Approval at 6 s after bc-authorize; polls every 2 s; the poll
		// that learns it interrupts the hold at once: the caller hears it
		// within 8 s, and a little more for the interrupt.
		pressed := lineAt(tr, "press")
		if at := saidAt(tr, "Tack, Astrid"); at < 0 || at-pressed > 8500*time.Millisecond {
			t.Errorf("verified said %v after the number, want within 8.5s", at-pressed)
		}
		e.checkEnded(tr.CallSID)
		call := e.storedCall(tr.CallSID)
		if call.Outcome != store.OutcomeVerified {
			t.Errorf("call outcome %q, want verified", call.Outcome)
		}
		vs := e.verifications(tr.CallSID)
		if len(vs) != 1 || vs[0].Status != store.VerApproved || vs[0].Name != "Astrid Lindqvist" || vs[0].Country != store.Sweden {
			t.Fatalf("verifications = %+v, want one approved for Astrid", vs)
		}
		if vs[0].Initiator != "caller" || vs[0].MaskedID != "********-**87" {
			t.Errorf("initiator %q masked %q", vs[0].Initiator, vs[0].MaskedID)
		}
		reqs := e.broker.Requests()
		if len(reqs) != 1 || reqs[0].CallInitiator != "user" || reqs[0].BindingMessage == "" {
			t.Errorf("broker requests = %+v, want one phoneAuth with callInitiator user and a binding message", reqs)
		}

		// The dashboard saw the Swedish sub-states, in order.
		var pend []string
		var states []string
		for _, ev := range e.pub.all() {
			if ev.Call == nil || ev.Call.CallSID != tr.CallSID {
				t.Fatalf("event %s without the call view", ev.Kind)
			}
			states = append(states, ev.Call.State)
			if ev.Kind == store.EventPendingUpdate {
				pend = append(pend, ev.Call.Verification.Pending)
			}
		}
		// The first poll comes an interval after the start, when the
		// scripted user has already opened the app.
		wantPend := []string{"awaiting user request acknowledgement", "awaiting user identification"}
		if strings.Join(pend, "|") != strings.Join(wantPend, "|") {
			t.Errorf("published pending sub-states %q, want %q", pend, wantPend)
		}
		for _, want := range []string{store.ViewRinging, store.ViewStarting, store.ViewAwaitingBankID, store.ViewVerified, store.ViewEnded} {
			if !contains(states, want) {
				t.Errorf("published states %q lack %q", states, want)
			}
		}
		kinds := e.eventKinds(tr.CallSID)
		for _, k := range []store.EventKind{store.EventCallStarted, store.EventNumberAccepted, store.EventVerification, store.EventPending, store.EventApproved, store.EventHandedOff, store.EventCallEnded} {
			if countKind(kinds, k) != 1 {
				t.Errorf("stored events %q: want one %s", kinds, k)
			}
		}
	})
}

func TestNorwegianApprove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *ivr.Config) { c.Language = ivr.Norwegian })
		c := &caller{numbers: []string{cibatest.NOApprove}}
		tr := e.call(c)

		if tr.Outcome != "enqueued:support" {
			t.Errorf("outcome %q, want enqueued:support", tr.Outcome)
		}
		reqs := e.broker.Requests()
		if len(reqs) != 1 || reqs[0].Country != "NO" {
			t.Fatalf("broker requests = %+v", reqs)
		}
		pair := reqs[0].BindingMessage
		if pair == "" {
			t.Fatal("no word pair at the broker")
		}
		heard := sayLines(tr)
		if n := strings.Count(heard, pair); n < 2 {
			t.Errorf("word pair %q heard %d times, want it read at least twice", pair, n)
		}
		for _, want := range []string{"Velkommen", "velg ordparet", "Takk, Kari"} {
			if !strings.Contains(heard, want) {
				t.Errorf("caller never heard %q", want)
			}
		}
		// The word pair is read in a Norwegian voice.
		for _, l := range tr.Lines {
			if l.Kind == "say" && strings.Contains(l.Text, pair) && (l.Voice != "Polly.Ida-Neural" || l.Language != "nb-NO") {
				t.Errorf("word pair read by %s/%s", l.Voice, l.Language)
			}
		}
		checkVoices(t, tr)
		e.checkEnded(tr.CallSID)
		var wordPairState bool
		for _, ev := range e.pub.all() {
			if ev.Call.State == store.ViewWordPair && ev.Call.Verification.WordPair == pair {
				wordPairState = true
			}
		}
		if !wordPairState {
			t.Error("the dashboard never saw the word_pair state with the word pair")
		}
	})
}

func TestNorwegianWordPairRepeatedOnKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *ivr.Config) { c.Language = ivr.English })
		pressed := false
		c := &caller{numbers: []string{cibatest.NONoAnswer}} // NOManual is born after the bubble's year 2000
		tr, err := e.tw.Call(t.Context(), virtualtwilio.Caller{
			Keys: func(heard string) string {
				if k := c.keys(heard); k != "" {
					return k
				}
				if !pressed && strings.Contains(heard, "Press any key") {
					pressed = true
					return "5"
				}
				return ""
			},
			HangUpAfter: 40 * time.Second,
		})
		if err != nil {
			t.Fatalf("call: %v\n%s", err, tr)
		}
		t.Logf("transcript:\n%s", tr)
		reqs := e.broker.Requests()
		if len(reqs) != 1 {
			t.Fatalf("broker requests %+v", reqs)
		}
		pair := reqs[0].BindingMessage
		if n := strings.Count(sayLines(tr), pair); n < 4 {
			t.Errorf("word pair heard %d times, want twice at first and twice on the key press\n%s", n, tr)
		}
		e.checkEnded(tr.CallSID)
	})
}

func TestDeclineRetryThenUnverified(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c := &caller{numbers: []string{cibatest.SEDecline, cibatest.SEDecline}, retries: []string{"1"}}
		tr := e.call(c)

		if tr.Outcome != "enqueued:support" {
			t.Errorf("outcome %q, want enqueued:support", tr.Outcome)
		}
		heard := sayLines(tr)
		if n := strings.Count(heard, "Identifieringen avbröts i BankID"); n != 2 {
			t.Errorf("decline told %d times, want 2", n)
		}
		if n := strings.Count(heard, "Tryck 1 för att försöka igen"); n != 1 {
			t.Errorf("retry offered %d times, want exactly once", n)
		}
		if !strings.Contains(heard, "Du kopplas nu till en medarbetare") {
			t.Error("caller not told they go to an agent")
		}
		e.checkEnded(tr.CallSID)
		call := e.storedCall(tr.CallSID)
		if call.Outcome != store.OutcomeUnverified || call.VerifyAttempts != 2 {
			t.Errorf("call outcome %q after %d verifications, want unverified after 2", call.Outcome, call.VerifyAttempts)
		}
		vs := e.verifications(tr.CallSID)
		if len(vs) != 2 || vs[0].Status != store.VerDeclined || vs[1].Status != store.VerDeclined {
			t.Errorf("verifications = %v, want two declined", statuses(vs))
		}
	})
}

func TestExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c := &caller{numbers: []string{cibatest.SENoAnswer}}
		tr := e.call(c, func(ic *virtualtwilio.Caller) { ic.MaxSteps = 400 })

		heard := sayLines(tr)
		if !strings.Contains(heard, "Tiden för identifieringen gick ut") {
			t.Errorf("caller not told of the expiry")
		}
		pressed := lineAt(tr, "press")
		if at := saidAt(tr, "Tiden för identifieringen"); at-pressed > 125*time.Second {
			t.Errorf("expiry told %v after the number; the request lives 120 s", at-pressed)
		}
		if tr.Outcome != "enqueued:support" {
			t.Errorf("outcome %q", tr.Outcome)
		}
		e.checkEnded(tr.CallSID)
		vs := e.verifications(tr.CallSID)
		if len(vs) != 1 || vs[0].Status != store.VerExpired {
			t.Errorf("verifications = %v, want one expired", statuses(vs))
		}
	})
}

func TestUnknownUser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *ivr.Config) { c.Language = ivr.English })
		c := &caller{numbers: []string{unknownSE}}
		tr := e.call(c)
		heard := sayLines(tr)
		if !strings.Contains(heard, "couldn't find a BankID for that number") {
			t.Errorf("caller not told the number is unknown")
		}
		if !strings.Contains(heard, "Press 1 to try again") {
			t.Errorf("no retry offered")
		}
		e.checkEnded(tr.CallSID)
		vs := e.verifications(tr.CallSID)
		if len(vs) != 1 || vs[0].Status != store.VerUnknownUser {
			t.Errorf("verifications = %v, want one unknown_user", statuses(vs))
		}
	})
}

func TestWrongNumberTwiceThenRight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		bad := cibatest.SEApprove[:11] + string(rune('0'+(cibatest.SEApprove[11]-'0'+1)%10))
		c := &caller{numbers: []string{"12345", bad, cibatest.SEApprove}}
		tr := e.call(c)
		heard := sayLines(tr)
		for _, want := range []string{"fel antal siffror", "Numret stämmer inte", "Tack, Astrid"} {
			if !strings.Contains(heard, want) {
				t.Errorf("caller never heard %q", want)
			}
		}
		if tr.Outcome != "enqueued:support" {
			t.Errorf("outcome %q", tr.Outcome)
		}
		e.checkEnded(tr.CallSID)
		kinds := e.eventKinds(tr.CallSID)
		if countKind(kinds, store.EventNumberInvalid) != 2 {
			t.Errorf("events %q: want two number_invalid", kinds)
		}
		if e.storedCall(tr.CallSID).Outcome != store.OutcomeVerified {
			t.Error("call not verified")
		}
	})
}

func TestSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c := &caller{}
		tr := e.call(c)
		heard := sayLines(tr)
		if n := strings.Count(heard, "Jag hörde inga siffror"); n != 2 {
			t.Errorf("'no digits' said %d times, want 2 (then a hand-off)", n)
		}
		if !strings.Contains(heard, "Vi kunde tyvärr inte ta emot ditt personnummer") {
			t.Error("caller not told why they are handed off")
		}
		if tr.Outcome != "enqueued:support" {
			t.Errorf("outcome %q, want an agent", tr.Outcome)
		}
		e.checkEnded(tr.CallSID)
		if c := e.storedCall(tr.CallSID); c.Outcome != store.OutcomeUnverified {
			t.Errorf("outcome %q", c.Outcome)
		}
		if len(e.broker.Requests()) != 0 {
			t.Error("the broker was asked without a number")
		}
	})
}

func TestHangUpMidWaitStopsPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c := &caller{numbers: []string{cibatest.SENoAnswer}}
		tr := e.call(c, func(ic *virtualtwilio.Caller) { ic.HangUpAfter = 20 * time.Second })
		if tr.Outcome != "caller-hung-up" {
			t.Fatalf("outcome %q", tr.Outcome)
		}
		synctest.Wait()
		req := e.broker.Requests()[0]
		polls := e.broker.Polls(req.ID)
		if polls == 0 {
			t.Fatal("never polled")
		}
		<-time.After(30 * time.Second) // fake time: the poller would have polled ~15 times
		synctest.Wait()
		if got := e.broker.Polls(req.ID); got != polls {
			t.Errorf("polls went from %d to %d after the hang-up", polls, got)
		}
		e.checkEnded(tr.CallSID)
		vs := e.verifications(tr.CallSID)
		if len(vs) != 1 || vs[0].Status != store.VerCancelled {
			t.Errorf("verifications = %v, want cancelled", statuses(vs))
		}
	})
}

func TestRestartMidVerification(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c := &caller{numbers: []string{cibatest.SEApproveSlow}}
		done := e.callAsync(c)
		<-time.After(20 * time.Second) // mid-wait: approval comes at 60 s
		before := e.broker.Polls(e.broker.Requests()[0].ID)
		e.restart()
		tr := <-done
		if !strings.Contains(sayLines(tr), "Tack, Bengt") {
			t.Error("the outcome did not reach the caller after the restart")
		}
		if after := e.broker.Polls(e.broker.Requests()[0].ID); after <= before {
			t.Errorf("no polls after the restart (%d before, %d after)", before, after)
		}
		e.checkEnded(tr.CallSID)
	})
}

func TestBrokerUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.broker.SetOutage(cibatest.Outage{Status: 503})
		c := &caller{numbers: []string{cibatest.SEApprove}}
		tr := e.call(c)
		heard := sayLines(tr)
		if !strings.Contains(heard, "Vi når tyvärr inte BankID just nu") {
			t.Error("caller not told the broker is down")
		}
		if tr.Outcome != "enqueued:support" {
			t.Errorf("outcome %q, want an agent", tr.Outcome)
		}
		e.checkEnded(tr.CallSID)
		if c := e.storedCall(tr.CallSID); c.Outcome != store.OutcomeUnverified {
			t.Errorf("outcome %q, want unverified", c.Outcome)
		}
	})
}

func TestBrokerDownWhilePolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c := &caller{numbers: []string{cibatest.SEApproveSlow}}
		done := e.callAsync(c, func(ic *virtualtwilio.Caller) { ic.MaxSteps = 400 })
		<-time.After(10 * time.Second)
		e.broker.SetOutage(cibatest.Outage{Status: 503})
		tr := <-done
		if !strings.Contains(sayLines(tr), "Vi når tyvärr inte BankID just nu") {
			t.Error("caller not told the broker is down")
		}
		vs := e.verifications(tr.CallSID)
		if len(vs) != 1 || vs[0].Status != store.VerFailed || vs[0].Failures == 0 {
			t.Errorf("verifications = %v, want failed after transport failures", statuses(vs))
		}
	})
}

func sayLines(tr *virtualtwilio.Transcript) string {
	var b strings.Builder
	for _, l := range tr.Lines {
		if l.Kind == "say" {
			b.WriteString(l.Text + "\n")
		}
	}
	return b.String()
}

func lineAt(tr *virtualtwilio.Transcript, kind string) time.Duration {
	for _, l := range tr.Lines {
		if l.Kind == kind {
			return l.At
		}
	}
	return 0
}

// checkVoices checks that every <Say> names a voice and its language.
func checkVoices(t *testing.T, tr *virtualtwilio.Transcript) {
	t.Helper()
	want := map[string]string{"sv-SE": "Polly.Elin-Neural", "nb-NO": "Polly.Ida-Neural", "en-US": "Polly.Joanna-Neural"}
	for _, l := range tr.Lines {
		if l.Kind == "say" && want[l.Language] != l.Voice {
			t.Errorf("say %q with voice %q language %q", l.Text, l.Voice, l.Language)
		}
	}
}

func statuses(vs []*store.Verification) []store.VerificationStatus {
	var out []store.VerificationStatus
	for _, v := range vs {
		out = append(out, v.Status)
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
