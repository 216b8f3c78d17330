package ivr_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ivr/callerverify/ivr"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

// docsParams is the worked example of Twilio's webhook security page.
var docsParams = url.Values{
	"CallSid": {"CA1234567890ABCDE"},
	"Caller":  {"+14158675310"},
	"Digits":  {"1234"},
	"From":    {"+14158675310"},
	"To":      {"+18005551212"},
}

const docsSignature = "L/OH5YylLD5NRKLltdqwSvS0BnU="

func TestSignRequestDocsVector(t *testing.T) {
	if got := virtualtwilio.Sign("12345", "https://example.com/myapp.php?foo=1&bar=2", docsParams); got != docsSignature {
		t.Errorf("SignRequest = %s, want %s", got, docsSignature)
	}
}

// echo is the downstream handler: it records that it ran and echoes Digits
// from the already parsed form.
type echo struct{ calls int }

func (e *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.calls++
	io.WriteString(w, "ok "+r.FormValue("Digits")+" "+r.PostFormValue("CallSid"))
}

func TestSignatureMiddleware(t *testing.T) {
	const token = "12345"
	form := docsParams.Encode()
	tests := []struct {
		name      string
		publicURL string
		method    string
		target    string // request-target as sent to us
		body      string
		sig       string // "" for no header
		want      int
	}{
		{"docs vector behind a proxy", "https://example.com", "POST", "/myapp.php?foo=1&bar=2", form, docsSignature, 200},
		{"docs vector with explicit :443", "https://example.com:443", "POST", "/myapp.php?foo=1&bar=2", form, docsSignature, 200},
		{"upper-case host in config", "https://EXAMPLE.com", "POST", "/myapp.php?foo=1&bar=2", form, docsSignature, 200},
		{"path prefix of the public URL", "https://example.com/ivr/", "POST", "/twilio/voice?step=2",
			form, virtualtwilio.Sign(token, "https://example.com/ivr/twilio/voice?step=2", docsParams), 200},
		{"path prefix not stripped", "https://example.com/ivr", "POST", "/ivr/twilio/voice",
			form, virtualtwilio.Sign(token, "https://example.com/ivr/twilio/voice", docsParams), 200},
		{"path prefix signed without it", "https://example.com/ivr", "POST", "/twilio/voice",
			form, virtualtwilio.Sign(token, "https://example.com/twilio/voice", docsParams), 403},
		{"raw query kept as sent", "https://example.com", "POST", "/v?b=2&a=%2F+x",
			form, virtualtwilio.Sign(token, "https://example.com/v?b=2&a=%2F+x", docsParams), 200},
		{"re-encoded query fails", "https://example.com", "POST", "/v?b=2&a=%2F+x",
			form, virtualtwilio.Sign(token, "https://example.com/v?a=%2F+x&b=2", docsParams), 403},
		{"query params are not form params", "https://example.com", "POST", "/v?Digits=9",
			form, virtualtwilio.Sign(token, "https://example.com/v?Digits=9", docsParams), 200},
		{"tampered param", "https://example.com", "POST", "/myapp.php?foo=1&bar=2",
			strings.Replace(form, "Digits=1234", "Digits=1235", 1), docsSignature, 403},
		{"extra param", "https://example.com", "POST", "/myapp.php?foo=1&bar=2", form + "&X=1", docsSignature, 403},
		{"tampered query", "https://example.com", "POST", "/myapp.php?foo=1&bar=3", form, docsSignature, 403},
		{"missing signature", "https://example.com", "POST", "/myapp.php?foo=1&bar=2", form, "", 403},
		{"garbage signature", "https://example.com", "POST", "/myapp.php?foo=1&bar=2", form, "not base64!", 403},
		{"signed with another token", "https://example.com", "POST", "/v",
			form, virtualtwilio.Sign("other", "https://example.com/v", docsParams), 403},
		{"signed for http, checked for https", "https://example.com", "POST", "/v",
			form, virtualtwilio.Sign(token, "http://example.com/v", docsParams), 403},
		{"http on loopback", "http://127.0.0.1:8080", "POST", "/twilio/voice",
			form, virtualtwilio.Sign(token, "http://127.0.0.1:8080/twilio/voice", docsParams), 200},
		{"GET validates the URL alone", "https://example.com", "GET", "/v?CallSid=CA1&Digits=12", "",
			virtualtwilio.Sign(token, "https://example.com/v?CallSid=CA1&Digits=12", nil), 200},
		{"GET with query tampered", "https://example.com", "GET", "/v?CallSid=CA1&Digits=13", "",
			virtualtwilio.Sign(token, "https://example.com/v?CallSid=CA1&Digits=12", nil), 403},
		{"oversized body", "https://example.com", "POST", "/v", "Digits=" + strings.Repeat("1", 70<<10), "x", 413},
		{"malformed form", "https://example.com", "POST", "/v", "a=%zz", "x", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := ivr.NewSignatureChecker(tt.publicURL, token)
			if err != nil {
				t.Fatal(err)
			}
			next := &echo{}
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			r := httptest.NewRequest(tt.method, tt.target, body)
			if tt.method == "POST" {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tt.sig != "" {
				r.Header.Set("X-Twilio-Signature", tt.sig)
			}
			w := httptest.NewRecorder()
			sc.Middleware(next).ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tt.want)
			}
			if tt.want != 200 {
				if next.calls != 0 {
					t.Error("the next handler ran for a rejected request")
				}
				return
			}
			if next.calls != 1 {
				t.Fatalf("next handler ran %d times", next.calls)
			}
			if tt.method == "POST" && w.Body.String() != "ok 1234 CA1234567890ABCDE" {
				t.Errorf("next handler saw %q, want the form", w.Body.String())
			}
		})
	}
}

func TestSignatureRejectionsSayWhy(t *testing.T) {
	sc, err := ivr.NewSignatureChecker("https://example.com", "12345")
	if err != nil {
		t.Fatal(err)
	}
	for sig, want := range map[string]string{"": "missing X-Twilio-Signature", "AAAA": "invalid X-Twilio-Signature"} {
		r := httptest.NewRequest("POST", "/v", strings.NewReader("Digits=196802020575"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if sig != "" {
			r.Header.Set("X-Twilio-Signature", sig)
		}
		w := httptest.NewRecorder()
		sc.Middleware(&echo{}).ServeHTTP(w, r)
		if got := strings.TrimSpace(w.Body.String()); got != want || w.Code != 403 {
			t.Errorf("%d %q, want 403 %q", w.Code, got, want)
		}
	}
}

func TestNewSignatureChecker(t *testing.T) {
	tests := []struct {
		url, token string
		ok         bool
	}{
		{"https://ivr.example.com", "t", true},
		{"https://ivr.example.com:8443/prefix", "t", true},
		{"http://127.0.0.1:8080", "t", true},
		{"http://127.1.2.3", "t", true},
		{"http://localhost:8080", "t", true},
		{"http://[::1]:8080", "t", true},
		{"http://ivr.example.com", "t", false},
		{"http://10.0.0.1:8080", "t", false},
		{"http://localhost.example.com", "t", false},
		{"ftp://ivr.example.com", "t", false},
		{"ivr.example.com", "t", false},
		{"/twilio", "t", false},
		{"", "t", false},
		{"https://ivr.example.com?x=1", "t", false},
		{"https://ivr.example.com", "", false},
	}
	for _, tt := range tests {
		_, err := ivr.NewSignatureChecker(tt.url, tt.token)
		if (err == nil) != tt.ok {
			t.Errorf("NewSignatureChecker(%q, %q) error = %v, want ok=%v", tt.url, tt.token, err, tt.ok)
		}
		if err != nil && tt.token != "" && !strings.Contains(err.Error(), "IVR_PUBLIC_URL") {
			t.Errorf("error %q does not name IVR_PUBLIC_URL", err)
		}
	}
}

func TestNewSignatureCheckerKeepsSecretsOutOfErrors(t *testing.T) {
	_, err := ivr.NewSignatureChecker("http://user:s3cret@ivr.example.com", "tok3n")
	if err == nil {
		t.Fatal("http non-loopback accepted")
	}
	if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "tok3n") {
		t.Errorf("error leaks a secret: %v", err)
	}
}

func BenchmarkSignatureMiddleware(b *testing.B) {
	sc, err := ivr.NewSignatureChecker("https://example.com", "12345")
	if err != nil {
		b.Fatal(err)
	}
	h := sc.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	body := docsParams.Encode()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/myapp.php?foo=1&bar=2", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("X-Twilio-Signature", docsSignature)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
