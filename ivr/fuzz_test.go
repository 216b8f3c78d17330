package ivr_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/internal/sqlite"
	"github.com/ivr/callerverify/ivr"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

var fuzzRoutes = []string{"/twilio/voice", "/twilio/gather", "/twilio/hold", "/twilio/retry", "/twilio/status",
	"/twilio/fallback", "/twilio/whisper", "/twilio/after", "/twilio/nope", "/"}

// FuzzWebhook sends correctly signed Twilio webhooks with arbitrary routes,
// queries and form bodies to the real handler on a real store. Whatever
// arrives, the answer is valid TwiML with 200, or a 4xx; never a panic, a
// 5xx, or a national identity number echoed back.
//
//	go test ./ivr -run '^$' -fuzz FuzzWebhook -fuzztime 60s
func FuzzWebhook(f *testing.F) {
	db, err := sqlite.Open(f.Context(), filepath.Join(f.TempDir(), "ivr.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	svc, err := ivr.NewService(ivr.Config{
		PublicURL:       publicURL,
		TwilioAuthToken: authToken,
		AccountSID:      accountSID,
		HashKey:         []byte("0123456789abcdef0123456789abcdef"),
		RateLimitNumber: ivr.RateLimit{Max: -1},
		RateLimitCaller: ivr.RateLimit{Max: -1},
	}, db, &scriptedBroker{}, nil, testLogger(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(svc.Close)
	h := svc.Handler()

	base := params(testSID("fuzz0000000000000000000000000001"))
	seed := func(route int, query string, kv ...string) {
		p := url.Values{}
		for k, v := range base {
			p[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Set(kv[i], kv[i+1])
		}
		f.Add(uint8(route), query, p.Encode())
	}
	seed(0, "")
	seed(1, "s=1", "Digits", cibatest.SEApprove)
	seed(1, "s=1", "Digits", "12345")
	seed(1, "s=2", "Digits", cibatest.NOApprove, "FinishedOnKey", "#")
	seed(2, "s=2&a=1&n=3")
	seed(2, "s=2&a=0&n=99999999999999999999", "Digits", "7")
	seed(3, "s=3", "Digits", "1")
	seed(4, "", "CallStatus", "completed")
	seed(4, "", "CallStatus", "in-progress")
	seed(5, "", "ErrorCode", "11205")
	seed(6, "call="+testSID("fuzz0000000000000000000000000001"))
	seed(7, "", "QueueResult", "bridged")
	seed(7, "", "DialCallStatus", "no-answer")
	f.Add(uint8(1), "s=1", "CallSid=bad+sid!&Digits=1")
	f.Add(uint8(2), "s=%zz", "CallSid=%zz")
	f.Add(uint8(0), "", "")
	f.Add(uint8(1), "s=1;a=1", "CallSid=CA1&CallSid=CA2&Digits="+strings.Repeat("9", 300))

	f.Fuzz(func(t *testing.T, route uint8, query, body string) {
		path := fuzzRoutes[int(route)%len(fuzzRoutes)]
		target := publicURL + path
		if query != "" {
			target += "?" + query
		}
		u, err := url.Parse(target)
		if err != nil || u.Host != "127.0.0.1:8080" || u.Path != path || strings.ContainsFunc(u.RequestURI(), func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return // not a request line an HTTP server would pass on
		}
		req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
		if err != nil {
			return
		}
		req.RequestURI = u.RequestURI()
		req.RemoteAddr = "127.0.0.1:1234"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		form, perr := url.ParseQuery(body)
		req.Header.Set("X-Twilio-Signature", virtualtwilio.Sign(authToken, publicURL+req.URL.RequestURI(), form))

		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		resp := w.Result()
		got := w.Body.String()
		switch {
		case resp.StatusCode == http.StatusOK:
			if ct := resp.Header.Get("Content-Type"); ct != "application/xml" {
				t.Errorf("200 with content type %q", ct)
			}
			if _, err := virtualtwilio.ParseTwiML([]byte(got)); err != nil {
				t.Errorf("200 with a body that is not TwiML (%v):\n%s", err, got)
			}
			if perr != nil {
				t.Errorf("a body that is no form was answered 200")
			}
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
		default:
			t.Errorf("status %d for %s %q: %s", resp.StatusCode, path, body, got)
		}
		for _, run := range digitRun.FindAllString(got, -1) {
			if _, err := ivr.ParseNationalID(run, time.Now()); err == nil {
				t.Errorf("the answer echoes a national identity number:\n%s", got)
			}
		}
	})
}
