package ivr_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/internal/sqlite"
	"github.com/ivr/callerverify/ivr"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

// pendingBroker answers every bc-authorize at once and every token request
// with authorization_pending: verifications stay pending for as long as a
// benchmark needs.
type pendingBroker struct{ n atomic.Int64 }

func (b *pendingBroker) Authenticate(context.Context, ciba.AuthRequest) (*ciba.AuthResponse, error) {
	id := b.n.Add(1)
	return &ciba.AuthResponse{AuthReqID: "bench-" + strconv.FormatInt(id, 10), ExpiresIn: 15 * time.Minute, Interval: time.Second}, nil
}

func (b *pendingBroker) Token(context.Context, string) (*ciba.TokenResponse, error) {
	return nil, ciba.ErrAuthorizationPending
}

const benchToken = "bench-auth-token"

// holdBench is a service on sqlite with calls waiting in the hold loop.
type holdBench struct {
	h     http.Handler
	holds []holdReq // one hold request per call
}

type holdReq struct {
	target string
	form   url.Values
	sig    string
}

// newHoldBench stores n calls whose verification is pending and returns
// the hold request each call's Twilio would send next.
func newHoldBench(b *testing.B, n int) *holdBench {
	b.Helper()
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "ivr.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	const base = "http://127.0.0.1:8080"
	off := ivr.RateLimit{Max: -1} // a thousand callers at once are the point here
	svc, err := ivr.NewService(ivr.Config{PublicURL: base, TwilioAuthToken: benchToken, AccountSID: accountSID, HashKey: make([]byte, 32), Language: "en-US",
		RateLimitNumber: off, RateLimitCaller: off, RateLimitWithheld: off, RateLimitGlobal: off},
		db, &pendingBroker{}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(svc.Close)
	hb := &holdBench{h: svc.Handler()}
	post := func(path string, form url.Values) *virtualtwilio.Response {
		req := httptest.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", virtualtwilio.Sign(benchToken, base+path, form))
		w := httptest.NewRecorder()
		hb.h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%s: status %d", path, w.Code)
		}
		doc, err := virtualtwilio.ParseTwiML(w.Body.Bytes())
		if err != nil {
			b.Fatal(err)
		}
		return doc
	}
	for i := range n {
		form := url.Values{"CallSid": {fmt.Sprintf("CA%032x", i+1)}, "AccountSid": {accountSID}, "From": {fmt.Sprintf("+4670%07d", i)}, "To": {"+46812345678"}, "CallStatus": {"in-progress"}}
		doc := post("/twilio/voice", form)
		action := doc.Find("Gather")[0].Attr("action")
		form.Set("Digits", benchPNR(i))
		doc = post(action, form)
		r := doc.Find("Redirect")
		if len(r) == 0 {
			b.Fatalf("call %d: no hold loop after the number: %v %q", i, doc.Names(), doc.Verbs[0].Text)
		}
		hold := strings.TrimSpace(r[0].Text)
		form.Del("Digits")
		form.Set("Digits", "")
		hb.holds = append(hb.holds, holdReq{target: base + hold, form: form, sig: virtualtwilio.Sign(benchToken, base+hold, form)})
	}
	return hb
}

// benchPNR is a valid personnummer for call i (1950 on, serial 001–999).
func benchPNR(i int) string {
	day := time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i/999)
	ten := fmt.Sprintf("%s%03d", day.Format("060102"), i%999+1)
	sum := 0
	for j := 0; j < len(ten); j++ {
		d := int(ten[j]-'0') * (2 - j%2)
		sum += d/10 + d%10
	}
	return day.Format("2006") + ten[2:] + strconv.Itoa((10-sum%10)%10)
}

// BenchmarkHoldLoop1000 is one hold-loop hop, answered from state, with
// 1,000 calls waiting and all cores sending hops for random calls; compare
// with BenchmarkBareTwiML (the same request to a handler returning fixed
// TwiML). Run with -cpuprofile to see where a hop's time goes.
func BenchmarkHoldLoop1000(b *testing.B) {
	hb := newHoldBench(b, 1000)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			hr := hb.holds[int(next.Add(1))%len(hb.holds)]
			req := httptest.NewRequest(http.MethodPost, hr.target, strings.NewReader(hr.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Twilio-Signature", hr.sig)
			w.code = 0
			hb.h.ServeHTTP(w, req)
			if w.code != http.StatusOK {
				b.Fatalf("hold: status %d", w.code)
			}
		}
	})
}

// BenchmarkBareTwiML is the floor for BenchmarkHoldLoop1000: the same
// request to virtualtwilio.Bare, a bare net/http handler that checks the
// signature as the service does and answers fixed TwiML. Issue 13's bound: a hop at most 1.5× this.
func BenchmarkBareTwiML(b *testing.B) {
	const doc = `<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/twilio/hold?s=4&amp;a=1&amp;n=3" actionOnEmptyResult="true" input="dtmf" method="POST" numDigits="1" timeout="1"><Pause length="7"/></Gather><Redirect method="POST">/twilio/hold?s=4&amp;a=1&amp;n=3</Redirect></Response>`
	h := virtualtwilio.Bare("http://127.0.0.1:8080", benchToken, doc)
	// The parameters a hold hop carries (newHoldBench's form).
	form := url.Values{"CallSid": {fmt.Sprintf("CA%032x", 1)}, "AccountSid": {accountSID}, "From": {"+46700000000"}, "To": {"+46812345678"}, "CallStatus": {"in-progress"}, "Digits": {""}}
	target := "http://127.0.0.1:8080/twilio/hold?s=4&a=1&n=3"
	sig := virtualtwilio.Sign(benchToken, target, form)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Twilio-Signature", sig)
			w.code = 0
			h.ServeHTTP(w, req)
			if w.code != http.StatusOK {
				b.Fatalf("bare: status %d", w.code)
			}
		}
	})
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(c int) {
	if w.code == 0 {
		w.code = c
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}
