package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

const (
	testAccount = "AC0123456789abcdef0123456789abcdef"
	testToken   = "0123456789abcdef0123456789abcdef"
)

// fakeTwilio is the part of Twilio's REST API that configure uses.
type fakeTwilio struct {
	mu      sync.Mutex
	numbers map[string]map[string]string // PN sid -> resource fields
	updates []url.Values
}

func (f *fakeTwilio) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	user, pass, ok := r.BasicAuth()
	if !ok || user != testAccount || pass != testToken {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]any{"code": 20003, "message": "Authenticate", "status": 401})
		return
	}
	prefix := "/2010-04-01/Accounts/" + testAccount + "/IncomingPhoneNumbers"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == prefix+".json":
		var list []map[string]string
		for _, n := range f.numbers {
			if strings.Contains(n["phone_number"], r.URL.Query().Get("PhoneNumber")) {
				list = append(list, n)
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"incoming_phone_numbers": list, "next_page_uri": nil})
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, prefix+"/"):
		sid := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, prefix+"/"), ".json")
		n, ok := f.numbers[sid]
		if !ok {
			http.NotFound(w, r)
			return
		}
		r.ParseForm()
		f.updates = append(f.updates, r.PostForm)
		for k, v := range map[string]string{"VoiceUrl": "voice_url", "VoiceMethod": "voice_method", "VoiceFallbackUrl": "voice_fallback_url",
			"VoiceFallbackMethod": "voice_fallback_method", "StatusCallback": "status_callback", "StatusCallbackMethod": "status_callback_method",
			"VoiceApplicationSid": "voice_application_sid", "TrunkSid": "trunk_sid"} {
			if vs, ok := r.PostForm[k]; ok {
				n[v] = vs[0]
			}
		}
		json.NewEncoder(w).Encode(n)
	default:
		http.NotFound(w, r)
	}
}

// redirect sends every request to the fake, whatever host twilio-go aims at.
type redirect struct{ to *url.URL }

func (rt redirect) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = rt.to.Scheme, rt.to.Host
	return http.DefaultTransport.RoundTrip(r)
}

func TestTwilioConfigure(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		app         string
		wantErr     string
		wantUpdate  bool
		wantOut     []string
		wantWarning string
	}{
		{name: "sets the three webhooks", args: []string{"--number", "+46812345678"}, wantUpdate: true,
			wantOut: []string{"voice_url", "-> https://ivr.example.com/twilio/voice", "/twilio/status", "Updated."}},
		{name: "dry run changes nothing", args: []string{"--number", "+46812345678", "--dry-run"},
			wantOut: []string{"-> https://ivr.example.com/twilio/fallback", "Dry run"}},
		{name: "warns about a bound TwiML app", args: []string{"--number", "+46812345678"}, app: "AP00000000000000000000000000000001", wantUpdate: true,
			wantWarning: "bound to TwiML app AP00000000000000000000000000000001"},
		{name: "unbinds the TwiML app on request", args: []string{"--number", "+46812345678", "--unbind"}, app: "AP00000000000000000000000000000001", wantUpdate: true,
			wantOut: []string{"voice_application_sid", "-> (none)"}},
		{name: "unknown number", args: []string{"--number", "+46899999999"}, wantErr: "is not a phone number of account"},
		{name: "malformed number", args: []string{"--number", "08-123"}, wantErr: "--number: must be an E.164"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeTwilio{numbers: map[string]map[string]string{
				"PN01": {"sid": "PN01", "phone_number": "+46812345678", "voice_url": "https://old.example.com/voice", "voice_method": "POST", "voice_application_sid": tt.app},
			}}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			u, _ := url.Parse(srv.URL)
			getenv := mapEnv(map[string]string{"TWILIO_ACCOUNT_SID": testAccount, "TWILIO_AUTH_TOKEN": testToken, "IVR_PUBLIC_URL": "https://ivr.example.com"})
			var out, errOut bytes.Buffer
			err := cmdTwilio(t.Context(), append([]string{"configure"}, tt.args...), getenv, &out, &errOut, &http.Client{Transport: redirect{u}})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("configure: %v\nstderr: %s", err, errOut.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if tt.wantWarning != "" && !strings.Contains(errOut.String(), tt.wantWarning) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantWarning, errOut.String())
			}
			if got := len(fake.updates) > 0; got != tt.wantUpdate {
				t.Fatalf("updated = %v, want %v", got, tt.wantUpdate)
			}
			if tt.wantUpdate {
				n := fake.numbers["PN01"]
				if n["voice_url"] != "https://ivr.example.com/twilio/voice" || n["status_callback"] != "https://ivr.example.com/twilio/status" ||
					n["voice_fallback_url"] != "https://ivr.example.com/twilio/fallback" || n["status_callback_method"] != "POST" {
					t.Errorf("number after update = %v", n)
				}
				if strings.Contains(strings.Join(tt.args, " "), "--unbind") && n["voice_application_sid"] != "" {
					t.Errorf("voice_application_sid = %q, want it cleared", n["voice_application_sid"])
				}
			}
		})
	}
}

func mapEnv(m map[string]string) env { return func(k string) string { return m[k] } }

// TestTwilioConfigureErrorsSayWhatToDo: Twilio out of reach, or refusing
// the credentials, is said in words an operator acts on.
func TestTwilioConfigureErrorsSayWhatToDo(t *testing.T) {
	fake := &fakeTwilio{numbers: map[string]map[string]string{}}
	srv := httptest.NewServer(fake)
	u, _ := url.Parse(srv.URL)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL, _ := url.Parse(down.URL)
	down.Close() // nothing listens there any more
	defer srv.Close()
	for _, tt := range []struct {
		name  string
		token string
		to    *url.URL
		want  []string
		not   string
	}{
		{"unreachable", "ffffeeeeddddccccbbbbaaaa99998888", downURL, []string{"cannot reach Twilio's REST API", "network"}, "look up"},
		{"wrong token", "0000000000000000000000000000000f", u, []string{"refused the credentials", "TWILIO_AUTH_TOKEN"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			getenv := mapEnv(map[string]string{"TWILIO_ACCOUNT_SID": testAccount, "TWILIO_AUTH_TOKEN": tt.token, "IVR_PUBLIC_URL": "https://ivr.example.com"})
			err := cmdTwilio(t.Context(), []string{"configure", "--number", "+46812345678"}, getenv, &bytes.Buffer{}, &bytes.Buffer{}, &http.Client{Transport: redirect{tt.to}})
			if err == nil {
				t.Fatal("configure succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tt.not != "" && strings.Contains(err.Error(), tt.not) {
				t.Errorf("error %q says %q", err, tt.not)
			}
			if strings.Contains(err.Error(), tt.token) {
				t.Errorf("the error shows the auth token: %v", err)
			}
		})
	}
}
