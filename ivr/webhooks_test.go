package ivr_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

func params(sid string, kv ...string) url.Values {
	v := url.Values{"CallSid": {sid}, "AccountSid": {"AC00000000000000000000000000000000"}, "From": {"+46701234567"}, "To": {"+46812345678"}, "CallStatus": {"in-progress"}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// post sends a signed webhook and returns status and body.
func (e *env) post(path string, p url.Values) (int, string) {
	e.t.Helper()
	resp, err := e.tw.Post(e.t.Context(), path, p)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestForgedSignature(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		hc := virtualtwilio.HandlerClient(e.svc.Handler())
		body := params(testSID("forged")).Encode()
		for _, tc := range []struct{ name, sig string }{
			{"missing", ""},
			{"wrong token", virtualtwilio.Sign("not-the-token", publicURL+"/twilio/voice", params(testSID("forged")))},
			{"other params", virtualtwilio.Sign(authToken, publicURL+"/twilio/voice", params(testSID("other")))},
		} {
			func() {
				req, _ := http.NewRequest(http.MethodPost, publicURL+"/twilio/voice", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if tc.sig != "" {
					req.Header.Set("X-Twilio-Signature", tc.sig)
				}
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s signature: status %d, want 403", tc.name, resp.StatusCode)
				}
			}()
		}
		if _, err := e.db.Call(context.Background(), testSID("forged")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a forged request stored a call (err %v)", err)
		}
		if n := len(e.pub.all()); n != 0 {
			t.Errorf("%d events published for forged requests", n)
		}
	})
}

func TestRetriedWebhooksAreNotAppliedTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		sid := testSID("retry0000000000000000000000000001")
		code, greet := e.post("/twilio/voice", params(sid))
		if code != 200 || !strings.Contains(greet, `/twilio/gather?s=1`) {
			t.Fatalf("voice: %d %s", code, greet)
		}
		// Twilio retries the voice request: same answer, one call.
		if _, again := e.post("/twilio/voice", params(sid)); again != greet {
			t.Errorf("retried voice answered differently:\n%s\n%s", greet, again)
		}
		// A wrong number, then the same request again (a Twilio retry).
		_, first := e.post("/twilio/gather?s=1", params(sid, "Digits", "123"))
		_, second := e.post("/twilio/gather?s=1", params(sid, "Digits", "123"))
		if first != second {
			t.Errorf("retried gather answered differently:\n%s\n%s", first, second)
		}
		c := e.storedCall(sid)
		if c.NumberAttempts != 1 || c.Step != 2 {
			t.Errorf("after a retried wrong number: attempts %d step %d, want 1 and 2", c.NumberAttempts, c.Step)
		}
		// A valid number, sent twice: one verification.
		_, v1 := e.post("/twilio/gather?s=2", params(sid, "Digits", cibatest.SEApprove))
		_, v2 := e.post("/twilio/gather?s=2", params(sid, "Digits", cibatest.SEApprove))
		if v1 != v2 || !strings.Contains(v1, "Öppna BankID-appen") {
			t.Errorf("valid number answers:\n%s\n%s", v1, v2)
		}
		// A stale step for the old gather does not restart anything.
		_, stale := e.post("/twilio/gather?s=1", params(sid, "Digits", "999"))
		if stale != v1 {
			t.Errorf("stale gather answered %s, want the stored answer", stale)
		}
		if n := len(e.broker.Requests()); n != 1 {
			t.Errorf("%d broker requests, want 1", n)
		}
		if n := countKind(e.eventKinds(sid), store.EventNumberInvalid); n != 1 {
			t.Errorf("%d number_invalid events, want 1", n)
		}
		// Twilio falls back (say a webhook timed out): apology, agents, and
		// the audit trail says so.
		if _, fb := e.post("/twilio/fallback", params(sid, "ErrorCode", "11205")); !strings.Contains(fb, "<Enqueue") {
			t.Errorf("fallback: %s", fb)
		}
		if n := countKind(e.eventKinds(sid), store.EventFallback); n != 1 {
			t.Errorf("%d fallback events, want 1", n)
		}
		// Duplicate and out-of-order status callbacks are harmless.
		for _, st := range []string{"completed", "completed", "in-progress", "busy"} {
			if code, _ := e.post("/twilio/status", params(sid, "CallStatus", st)); code != 200 {
				t.Errorf("status %s: %d", st, code)
			}
		}
		if n := countKind(e.eventKinds(sid), store.EventCallEnded); n != 1 {
			t.Errorf("%d call_ended events, want 1", n)
		}
		// After the end, any hop hangs up.
		_, after := e.post("/twilio/hold?s=3&a=1&n=0", params(sid))
		if !strings.Contains(after, "<Hangup/>") {
			t.Errorf("hold after the end: %s", after)
		}
		synctest.Wait()
		e.checkEnded(sid)
	})
}

func TestUnknownCallOnLaterRoute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		for _, path := range []string{"/twilio/hold?s=4&a=1&n=2", "/twilio/gather?s=9", "/twilio/retry", "/twilio/whisper?call=CAnope"} {
			sid := testSID("unknown" + path)
			code, body := e.post(path, params(sid, "Digits", "5"))
			if code != 200 {
				t.Errorf("%s: status %d", path, code)
			}
			if _, err := virtualtwilio.ParseTwiML([]byte(body)); err != nil {
				t.Errorf("%s: not TwiML: %v", path, err)
			}
			if strings.Contains(path, "whisper") {
				continue
			}
			// Only the voice URL starts a call: a later step of a call we
			// do not know (a replay, a forgery) starts nothing.
			if !strings.Contains(body, "Det här samtalet är avslutat") || !strings.Contains(body, "<Hangup/>") {
				t.Errorf("%s: unknown call not sent off politely: %s", path, body)
			}
			if _, err := e.db.Call(t.Context(), sid); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: a call was created for an unknown CallSid (%v)", path, err)
			}
		}
		if code, _ := e.post("/twilio/status", params(testSID("neverseen"), "CallStatus", "completed")); code != 200 {
			t.Errorf("status for an unknown call: %d", code)
		}
		if code, _ := e.post("/twilio/hold", url.Values{"CallSid": {"bad sid!"}}); code != 400 {
			t.Errorf("malformed CallSid: %d, want 400", code)
		}
	})
}

// downStore fails every call: the store is unreachable.
type downStore struct{ store.Store }

var errDown = errors.New("store down")

func (downStore) CreateCall(context.Context, *store.Call, ...*store.Event) (bool, error) {
	return false, errDown
}
func (downStore) Call(context.Context, string) (*store.Call, error) { return nil, errDown }
func (downStore) AppendEvent(context.Context, *store.Event) error   { return errDown }

func TestStoreDownStillHandsOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		svc, err := ivr.NewService(e.cfg, downStore{}, e.client, nil, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		tw := &virtualtwilio.Twilio{BaseURL: publicURL, AuthToken: authToken, HTTPClient: virtualtwilio.HandlerClient(svc.Handler())}
		for _, path := range []string{"/twilio/fallback", "/twilio/voice", "/twilio/hold?s=2"} {
			resp, err := tw.Post(t.Context(), path, params(testSID("down"), "ErrorCode", "11205"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), "tekniskt fel") || !strings.Contains(string(b), "<Enqueue") {
				t.Errorf("%s with the store down: %d %s", path, resp.StatusCode, b)
			}
		}
	})
}

func TestSlowBrokerFallsBackToHoldLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.broker.SetOutage(cibatest.Outage{Latency: 9 * time.Second}) // bc-authorize takes 9 s
		go func() {
			<-time.After(8 * time.Second) // only the start is slow
			e.broker.SetOutage(cibatest.Outage{})
		}()
		c := &caller{numbers: []string{cibatest.SEApprove}}
		tr, err := e.tw.Call(t.Context(), virtualtwilio.Caller{Keys: c.keys})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("transcript:\n%s", tr)
		for _, v := range e.verifications(tr.CallSID) {
			t.Logf("verification %s: %s %q", v.ID, v.Status, v.Error)
		}
		pressed := lineAt(tr, "press")
		moment := saidAt(tr, "Ett ögonblick")
		if moment < 0 || moment-pressed > 7*time.Second {
			t.Errorf("'one moment' at %v after the number; the webhook must answer within StartWait (6 s)", moment-pressed)
		}
		// The broker answers at 9 s: the hold is interrupted for the
		// instructions then, not at its next hop.
		if open := saidAt(tr, "Öppna BankID-appen"); open < moment || open-pressed > 10*time.Second {
			t.Errorf("instructions at %v after the number ('one moment' at %v), want them when the broker answers, at 9 s", open-pressed, moment-pressed)
		}
		if !strings.Contains(sayLines(tr), "Tack, Astrid") {
			t.Error("not verified after a slow start")
		}
		e.checkEnded(tr.CallSID)
	})
}

func TestStuckStartingFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		ctx := context.Background()
		now := time.Now()
		c := &store.Call{SID: testSID("stuck"), From: "+46701234567", Language: "sv-SE", State: store.CallVerifying, Step: 3, VerificationID: "v_stuck", CreatedAt: now, UpdatedAt: now}
		if _, err := e.db.CreateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
		// A verification whose bc-authorize died with the old process.
		v := &store.Verification{ID: "v_stuck", CallSID: testSID("stuck"), Country: store.Sweden, SealedID: "sealed", MaskedID: "********-**87", IDHash: "h", Initiator: "caller", Status: store.VerStarting, NextPollAt: now.Add(30 * time.Second), CreatedAt: now, UpdatedAt: now}
		if _, err := e.db.StartVerification(ctx, nil, v, nil); err != nil {
			t.Fatal(err)
		}
		e.restart() // the new poller sees it
		<-time.After(31 * time.Second)
		synctest.Wait()
		got, err := e.db.Verification(ctx, "v_stuck")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.VerFailed || got.SealedID != "" {
			t.Errorf("stuck verification: %s, number kept %t; want failed and dropped", got.Status, got.SealedID != "")
		}
		// The caller in the hold loop hears it and is offered a retry.
		_, body := e.post("/twilio/hold?s=3&a=0&n=5", params(testSID("stuck")))
		if !strings.Contains(body, "Vi når tyvärr inte BankID") || !strings.Contains(body, "/twilio/retry?s=4") {
			t.Errorf("hold after a stuck start: %s", body)
		}
	})
}

func TestDialWithWhisper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *ivr.Config) { c.DialNumber = "+46812345000" })
		tr := e.call(&caller{numbers: []string{cibatest.SEApprove}})
		if !strings.HasPrefix(tr.Outcome, "dialed:") || !strings.Contains(tr.Outcome, "+46812345000") {
			t.Errorf("outcome %q, want the agent number dialed", tr.Outcome)
		}
		// Twilio fetches the whisper for the agent's leg (its own CallSid).
		_, body := e.post("/twilio/whisper?call="+tr.CallSID, params(testSID("agentleg")))
		if !strings.Contains(body, "Verifierad kund: Astrid Lindqvist") {
			t.Errorf("whisper: %s", body)
		}
		// The Dial's action ends the call after the conversation, or
		// apologises when nobody answered.
		if _, body := e.post("/twilio/after", params(tr.CallSID, "DialCallStatus", "completed")); !strings.Contains(body, "<Hangup/>") || strings.Contains(body, "<Say") {
			t.Errorf("after a completed dial: %s", body)
		}
		if _, body := e.post("/twilio/after", params(tr.CallSID, "DialCallStatus", "no-answer")); !strings.Contains(body, "ingen svara") {
			t.Errorf("after an unanswered dial: %s", body)
		}
	})
}

func TestEnqueueWithTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *ivr.Config) { c.WorkflowSID = "WW0123456789abcdef0123456789abcdef" })
		c := &caller{numbers: []string{cibatest.SEApprove}}
		tr := e.call(c)
		if !strings.HasPrefix(tr.Outcome, "enqueued:") {
			t.Fatalf("outcome %q", tr.Outcome)
		}
		doc := e.storedCall(tr.CallSID).LastTwiML
		r, err := virtualtwilio.ParseTwiML([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		enq := r.Find("Enqueue")
		if len(enq) != 1 || enq[0].Attr("workflowSid") == "" {
			t.Fatalf("no TaskRouter Enqueue in %s", doc)
		}
		task := r.Find("Task")
		if len(task) != 1 || !strings.Contains(task[0].Text, `"verified":true`) || !strings.Contains(task[0].Text, `"masked_id":"********-**87"`) {
			t.Errorf("task %s", doc)
		}
		if strings.Contains(doc, cibatest.SEApprove) {
			t.Error("the task carries the full national identity number")
		}
	})
}

func TestConcurrentDuplicateGather(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		sid := testSID("dup00000000000000000000000000001")
		e.post("/twilio/voice", params(sid))
		answers := make(chan string, 2)
		for range 2 {
			go func() {
				_, body := e.post("/twilio/gather?s=1", params(sid, "Digits", cibatest.SEApprove))
				answers <- body
			}()
		}
		a, b := <-answers, <-answers
		for _, body := range []string{a, b} {
			if _, err := virtualtwilio.ParseTwiML([]byte(body)); err != nil || !strings.Contains(body, "/twilio/hold?s=2") {
				t.Errorf("answer %s (%v)", body, err)
			}
		}
		if n := len(e.broker.Requests()); n != 1 {
			t.Errorf("%d broker requests for one number sent twice, want 1", n)
		}
		if n := countKind(e.eventKinds(sid), store.EventVerification); n != 1 {
			t.Errorf("%d verifications started, want 1", n)
		}
	})
}

func TestHoldHopOnlyReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		sid := testSID("hold00000000000000000000000000001")
		e.post("/twilio/voice", params(sid))
		// A 10-digit Swedish number is accepted and expanded.
		_, first := e.post("/twilio/gather?s=1", params(sid, "Digits", cibatest.SENoAnswer[2:]))
		if !strings.Contains(first, "Öppna BankID-appen") {
			t.Fatalf("10-digit number: %s", first)
		}
		synctest.Wait()
		before := e.storedCall(sid)
		req := e.broker.Requests()[0]
		polls := e.broker.Polls(req.ID)
		// Hops straight after each other (no time passes): answered from
		// the store, nothing written, the broker never asked.
		for n := 1; n <= 5; n++ {
			code, body := e.post("/twilio/hold?s="+strconv.Itoa(before.Step)+"&a=1&n="+strconv.Itoa(n), params(sid))
			if code != 200 || !strings.Contains(body, `<Gather action="/twilio/hold`) {
				t.Fatalf("hop %d: %d %s", n, code, body)
			}
		}
		after := e.storedCall(sid)
		if after.Version != before.Version {
			t.Errorf("hold hops wrote the call (version %d → %d)", before.Version, after.Version)
		}
		if got := e.broker.Polls(req.ID); got != polls {
			t.Errorf("hold hops polled the broker (%d → %d)", polls, got)
		}
		// A key during the hold repeats the instructions.
		_, body := e.post("/twilio/hold?s="+strconv.Itoa(before.Step)+"&a=1&n=3", params(sid, "Digits", "7"))
		if !strings.Contains(body, "Öppna BankID-appen") {
			t.Errorf("key on hold: %s", body)
		}
		e.post("/twilio/status", params(sid, "CallStatus", "completed"))
		synctest.Wait()
	})
}

// TestReplayedWebhookStartsNothing is the replay attack of the security
// review. Twilio's signature is an HMAC over the URL and each key and value
// run together, so a captured signed gather can be re-split
// (CallSid=<sid>CallStatusin-progress, CallStatus dropped) and keep its
// signature; today that created a new call and a new BankID request, and
// the ghost call never ended.
func TestReplayedWebhookStartsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		tr := e.call(&caller{numbers: []string{cibatest.SEApprove}})
		sid := tr.CallSID
		requests := len(e.broker.Requests())
		signed := func(path string, p url.Values) (int, string) {
			return e.post(path, p)
		}
		captured := params(sid, "Digits", cibatest.SEApprove)
		resplit := url.Values{}
		for k, v := range captured {
			resplit[k] = v
		}
		resplit.Del("CallStatus")
		resplit.Set("CallSid", sid+"CallStatus"+captured.Get("CallStatus"))
		if virtualtwilio.Sign(authToken, publicURL+"/twilio/gather?s=1", captured) != virtualtwilio.Sign(authToken, publicURL+"/twilio/gather?s=1", resplit) {
			t.Fatal("the re-split parameters do not keep the signature: the attack is not reproduced")
		}
		otherAccount := params(testSID("other account"), "AccountSid", "AC11111111111111111111111111111111")
		for _, tc := range []struct {
			name string
			path string
			p    url.Values
			want int
		}{
			{"a re-split CallSid", "/twilio/gather?s=1", resplit, http.StatusBadRequest},
			{"a re-split CallSid on the voice URL", "/twilio/voice", resplit, http.StatusBadRequest},
			{"another Twilio account", "/twilio/voice", otherAccount, http.StatusBadRequest},
			{"the captured gather, replayed after the call ended", "/twilio/gather?s=1", captured, http.StatusOK},
		} {
			code, body := signed(tc.path, tc.p)
			if code != tc.want {
				t.Errorf("%s: status %d (%s), want %d", tc.name, code, strings.TrimSpace(body), tc.want)
			}
			if code == http.StatusOK && !strings.Contains(body, "<Hangup/>") {
				t.Errorf("%s: answered %s, want a goodbye", tc.name, body)
			}
		}
		synctest.Wait()
		if n := len(e.broker.Requests()); n != requests {
			t.Errorf("%d new BankID requests from replays, want none", n-requests)
		}
		live, err := e.svc.LiveCalls(t.Context())
		if err != nil || len(live) != 0 {
			t.Errorf("live calls after the replays: %d (%v), want none", len(live), err)
		}
	})
}

// TestStaleCallsEnd: a call whose status callback never comes (a forged or
// replayed call, a lost callback, a caller who closed the demo tab) is
// ended, so that it leaves the dashboard and falls under retention.
func TestStaleCallsEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		inIVR, withAgent := testSID("stale ivr"), agentCall(e, "stale agent")
		e.post("/twilio/voice", params(inIVR))
		_, _ = e.post("/twilio/gather?s=1", params(inIVR, "Digits", cibatest.SENoAnswer))
		ctx := t.Context()
		if n, err := e.svc.EndStaleCalls(ctx); err != nil || n != 0 {
			t.Fatalf("EndStaleCalls at once = %d, %v; want 0", n, err)
		}
		<-time.After(31 * time.Minute) // past the longest verification
		if n, err := e.svc.EndStaleCalls(ctx); err != nil || n != 1 {
			t.Fatalf("EndStaleCalls after 31 min = %d, %v; want the call left in the IVR", n, err)
		}
		if c := e.storedCall(inIVR); c.State != store.CallEnded || c.Reason != store.ReasonExpired {
			t.Errorf("stale IVR call: %s, reason %q; want ended, expired (its verification ran out)", c.State, c.Reason)
		}
		if c := e.storedCall(withAgent); c.State != store.CallHandedOff {
			t.Errorf("a call with an agent ended after 31 min: %s", c.State)
		}
		<-time.After(4 * time.Hour)
		if n, err := e.svc.EndStaleCalls(ctx); err != nil || n != 1 {
			t.Fatalf("EndStaleCalls after 4 h = %d, %v; want the call with the agent", n, err)
		}
		evs, _ := e.db.Events(ctx, withAgent)
		if last := evs[len(evs)-1]; last.Kind != store.EventCallEnded || last.Actor != "system" {
			t.Errorf("last event %+v, want call_ended by the system", last)
		}
		e.checkEnded(withAgent)
	})
}
