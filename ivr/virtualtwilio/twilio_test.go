package virtualtwilio_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twilio/twilio-go/client"
	"github.com/twilio/twilio-go/twiml"

	"github.com/ivr/callerverify/ivr"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

const token = "test-auth-token"

// fakeIVR is a tiny IVR: greet, gather a number (re-prompt on silence), hold
// twice, then enqueue. It records every request it accepted.
type fakeIVR struct {
	mu       sync.Mutex
	requests []url.Values // form of each accepted request, by path in paths
	paths    []string
	holds    int
	endless  bool // hold forever
}

func (f *fakeIVR) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /twilio/voice", func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
		f.write(w,
			ivr.SayText("Polly.Astrid", "sv-SE", "Välkommen."),
			f.gather(ivr.SaySSML("Polly.Astrid", "sv-SE", ivr.Text("Tryck ditt personnummer och "), ivr.SayAs{InterpretAs: "characters", Text: "#"}, ivr.Text("."))),
			ivr.SayText("Polly.Astrid", "sv-SE", "Hej då."),
		)
	})
	mux.HandleFunc("POST /twilio/gather", func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
		if r.PostFormValue("Digits") == "" {
			f.write(w, ivr.SayText("Polly.Astrid", "sv-SE", "Vi hörde inget."), f.gather(ivr.SayText("Polly.Astrid", "sv-SE", "Försök igen.")))
			return
		}
		f.write(w, ivr.SayText("Polly.Astrid", "sv-SE", "Vänta."), twiml.VoicePause{Length: "5"}, twiml.VoiceRedirect{Url: "hold?n=1", Method: "POST"})
	})
	mux.HandleFunc("POST /twilio/hold", func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
		f.mu.Lock()
		f.holds++
		done := f.holds > 2 && !f.endless
		f.mu.Unlock()
		if done {
			f.write(w, ivr.SayText("Polly.Astrid", "sv-SE", "Klart."), twiml.VoiceEnqueue{Name: "support"})
			return
		}
		f.write(w, twiml.VoicePause{Length: "5"}, twiml.VoiceRedirect{Url: "/twilio/hold?n=2"})
	})
	mux.HandleFunc("POST /twilio/loop", func(w http.ResponseWriter, r *http.Request) {
		f.write(w, twiml.VoiceRedirect{Url: "/twilio/loop"})
	})
	mux.HandleFunc("POST /twilio/status", func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
	})
	return mux
}

func (f *fakeIVR) gather(prompt twiml.Element) twiml.Element {
	return twiml.VoiceGather{Input: "dtmf", Action: "/twilio/gather", Timeout: "5", FinishOnKey: "#",
		ActionOnEmptyResult: "true", InnerElements: []twiml.Element{prompt}}
}

func (f *fakeIVR) record(r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.PostForm)
	f.paths = append(f.paths, r.URL.Path)
}

func (f *fakeIVR) write(w http.ResponseWriter, verbs ...twiml.Element) {
	b, err := ivr.Render(verbs...)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(b)
}

// setup returns a virtual Twilio calling f behind a real signature checker.
func setup(t *testing.T, f *fakeIVR, base string) *virtualtwilio.Twilio {
	t.Helper()
	sc, err := ivr.NewSignatureChecker(base, token)
	if err != nil {
		t.Fatal(err)
	}
	return &virtualtwilio.Twilio{BaseURL: base, AuthToken: token, HTTPClient: virtualtwilio.HandlerClient(sc.Middleware(f.routes()))}
}

type lineT struct {
	At   time.Duration
	Kind string
	Text string
}

func lines(tr *virtualtwilio.Transcript) []lineT {
	var out []lineT
	for _, l := range tr.Lines {
		out = append(out, lineT{l.At, l.Kind, l.Text})
	}
	return out
}

func TestCallFullFlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeIVR{}
		tw := setup(t, f, "http://127.0.0.1:8080")
		var heard []string
		keys := []string{"", "196802020575#"}
		tr, err := tw.Call(t.Context(), virtualtwilio.Caller{Keys: func(h string) string {
			heard = append(heard, h)
			k := keys[0]
			keys = keys[1:]
			return k
		}})
		if err != nil {
			t.Fatalf("Call: %v\n%s", err, tr)
		}
		s := time.Second
		want := []lineT{
			{0, "say", "Välkommen."},
			{0, "say", "Tryck ditt personnummer och #."},
			{0, "gather", "Tryck ditt personnummer och #."},
			{5 * s, "say", "Vi hörde inget."},
			{5 * s, "say", "Försök igen."},
			{5 * s, "gather", "Försök igen."},
			{5 * s, "press", "**********75#"},
			{5 * s, "say", "Vänta."},
			{5 * s, "pause", "5s"},
			{10 * s, "redirect", "hold?n=1"},
			{10 * s, "pause", "5s"},
			{15 * s, "redirect", "/twilio/hold?n=2"},
			{15 * s, "pause", "5s"},
			{20 * s, "redirect", "/twilio/hold?n=2"},
			{20 * s, "say", "Klart."},
			{20 * s, "enqueue", "support"},
		}
		if got := lines(tr); !reflect.DeepEqual(got, want) {
			t.Errorf("transcript:\n%s\nwant %v", tr, want)
		}
		if tr.Outcome != "enqueued:support" || tr.Duration != 20*s || tr.Requests != 7 {
			t.Errorf("outcome %q duration %s requests %d", tr.Outcome, tr.Duration, tr.Requests)
		}
		if l := tr.Lines[0]; l.Voice != "Polly.Astrid" || l.Language != "sv-SE" {
			t.Errorf("voice/language %q/%q", l.Voice, l.Language)
		}
		if want := []string{"Välkommen. Tryck ditt personnummer och #.", "Vi hörde inget. Försök igen."}; !reflect.DeepEqual(heard, want) {
			t.Errorf("Keys heard %q, want %q", heard, want)
		}
		if !strings.HasPrefix(tr.CallSID, "CA") || len(tr.CallSID) != 34 {
			t.Errorf("CallSid %q", tr.CallSID)
		}

		wantPaths := []string{"/twilio/voice", "/twilio/gather", "/twilio/gather", "/twilio/hold", "/twilio/hold", "/twilio/hold", "/twilio/status"}
		if !reflect.DeepEqual(f.paths, wantPaths) {
			t.Fatalf("the IVR accepted %v, want %v", f.paths, wantPaths)
		}
		for i, p := range f.requests {
			if p.Get("CallSid") != tr.CallSID || p.Get("From") != "+46701234567" || p.Get("To") != "+46812345678" ||
				p.Get("Direction") != "inbound" || p.Get("ApiVersion") != "2010-04-01" || !strings.HasPrefix(p.Get("AccountSid"), "AC") {
				t.Errorf("request %d params %v", i, p)
			}
		}
		status := func(i int) string { return f.requests[i].Get("CallStatus") }
		if status(0) != "ringing" || status(1) != "in-progress" || status(5) != "in-progress" || status(6) != "completed" {
			t.Errorf("CallStatus sequence wrong: %s %s %s %s", status(0), status(1), status(5), status(6))
		}
		if g := f.requests[1]; g.Get("Digits") != "" || !g.Has("Digits") || g.Get("FinishedOnKey") != "" {
			t.Errorf("empty gather sent %v", g)
		}
		if g := f.requests[2]; g.Get("Digits") != "196802020575" || g.Get("FinishedOnKey") != "#" {
			t.Errorf("gather sent Digits=%q FinishedOnKey=%q", g.Get("Digits"), g.Get("FinishedOnKey"))
		}
		if d := f.requests[6].Get("CallDuration"); d != "20" {
			t.Errorf("CallDuration = %q, want 20", d)
		}
		if strings.Contains(tr.String(), "196802020575") {
			t.Error("the transcript shows the number pressed")
		}
	})
}

func TestCallGatherSilenceFallsThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mux := http.NewServeMux()
		mux.HandleFunc("/twilio/voice", func(w http.ResponseWriter, r *http.Request) {
			b, _ := ivr.Render(twiml.VoiceGather{Action: "/x", Timeout: "7", InnerElements: []twiml.Element{ivr.SayText("v", "en-US", "Press.")}},
				ivr.SayText("v", "en-US", "Goodbye."), twiml.VoiceHangup{})
			w.Write(b)
		})
		mux.HandleFunc("/twilio/status", func(http.ResponseWriter, *http.Request) {})
		tw := &virtualtwilio.Twilio{BaseURL: "http://127.0.0.1", AuthToken: token, HTTPClient: virtualtwilio.HandlerClient(mux)}
		tr, err := tw.Call(t.Context(), virtualtwilio.Caller{}) // nil Keys: silent
		if err != nil {
			t.Fatal(err)
		}
		want := []lineT{{0, "say", "Press."}, {0, "gather", "Press."}, {7 * time.Second, "say", "Goodbye."}, {7 * time.Second, "hangup", ""}}
		if got := lines(tr); !reflect.DeepEqual(got, want) || tr.Outcome != "hangup" {
			t.Errorf("got %v (%s), want %v", got, tr.Outcome, want)
		}
	})
}

func TestCallCallerHangsUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeIVR{endless: true}
		tw := setup(t, f, "http://127.0.0.1:8080")
		tr, err := tw.Call(t.Context(), virtualtwilio.Caller{Keys: func(string) string { return "01010750160#" }, HangUpAfter: 12 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if tr.Outcome != "caller-hung-up" || tr.Duration != 12*time.Second {
			t.Errorf("outcome %q after %s", tr.Outcome, tr.Duration)
		}
		last := f.requests[len(f.requests)-1]
		if last.Get("CallStatus") != "completed" || last.Get("CallDuration") != "12" {
			t.Errorf("status callback %v", last)
		}
	})
}

func TestCallEndsOnErrors(t *testing.T) {
	tests := []struct {
		name      string
		tw        func(h http.Handler) *virtualtwilio.Twilio
		voicePath string
		want      string
	}{
		{"wrong auth token gets 403", func(h http.Handler) *virtualtwilio.Twilio {
			return &virtualtwilio.Twilio{BaseURL: "http://127.0.0.1:8080", AuthToken: "wrong", HTTPClient: virtualtwilio.HandlerClient(h)}
		}, "", "status 403"},
		{"signed for another base URL gets 403", func(h http.Handler) *virtualtwilio.Twilio {
			return &virtualtwilio.Twilio{BaseURL: "http://localhost:8080", AuthToken: token, HTTPClient: virtualtwilio.HandlerClient(h)}
		}, "", "status 403"},
		{"unknown path gets 404", func(h http.Handler) *virtualtwilio.Twilio {
			return &virtualtwilio.Twilio{BaseURL: "http://127.0.0.1:8080", AuthToken: token, HTTPClient: virtualtwilio.HandlerClient(h)}
		}, "/nope", "status 404"},
		{"endless redirects hit MaxSteps", func(h http.Handler) *virtualtwilio.Twilio {
			return &virtualtwilio.Twilio{BaseURL: "http://127.0.0.1:8080", AuthToken: token, HTTPClient: virtualtwilio.HandlerClient(h)}
		}, "/twilio/loop", "after 200 requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sc, err := ivr.NewSignatureChecker("http://127.0.0.1:8080", token)
				if err != nil {
					t.Fatal(err)
				}
				tw := tt.tw(sc.Middleware((&fakeIVR{}).routes()))
				tw.VoicePath = tt.voicePath
				tr, err := tw.Call(t.Context(), virtualtwilio.Caller{})
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
				if tr == nil || tr.CallSID == "" {
					t.Errorf("no transcript with the error")
				}
			})
		})
	}
}

func TestCallRejectsBadTwiML(t *testing.T) {
	for name, body := range map[string]string{
		"not xml":          "hello",
		"wrong root":       "<Foo/>",
		"unclosed":         "<Response><Say>hi</Response>",
		"unsupported verb": "<Response><Record/></Response>",
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/xml")
					fmt.Fprint(w, body)
				})
				tw := &virtualtwilio.Twilio{BaseURL: "http://127.0.0.1", AuthToken: token, HTTPClient: virtualtwilio.HandlerClient(h)}
				if _, err := tw.Call(t.Context(), virtualtwilio.Caller{}); err == nil {
					t.Error("bad TwiML accepted")
				}
			})
		})
	}
}

func TestPostSignsLikeTwilio(t *testing.T) {
	for _, base := range []string{"http://127.0.0.1:8080", "https://ivr.example.com", "https://ivr.example.com:8443/prefix"} {
		t.Run(base, func(t *testing.T) {
			f := &fakeIVR{}
			sc, err := ivr.NewSignatureChecker(base, token)
			if err != nil {
				t.Fatal(err)
			}
			h := sc.Middleware(f.routes())
			if strings.HasSuffix(base, "/prefix") { // the app is mounted below the prefix
				h = http.StripPrefix("/prefix", h)
			}
			tw := &virtualtwilio.Twilio{BaseURL: base, AuthToken: token, HTTPClient: virtualtwilio.HandlerClient(h)}
			resp, err := tw.Post(t.Context(), "/twilio/status?x=%2F&y=1", url.Values{"CallSid": {"CA1"}, "CallStatus": {"completed"}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || len(f.requests) != 1 || f.requests[0].Get("CallSid") != "CA1" {
				t.Errorf("status %d, accepted %v", resp.StatusCode, f.requests)
			}
		})
	}
}

// TestSignAsTwilioDocuments: Twilio's documented example, and twilio-go's
// validator (which the service checks with) accepts it.
func TestSignAsTwilioDocuments(t *testing.T) {
	p := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675310"}, "Digits": {"1234"}, "From": {"+14158675310"}, "To": {"+18005551212"}}
	u := "https://example.com/myapp.php?foo=1&bar=2"
	got := virtualtwilio.Sign("12345", u, p)
	if got != "L/OH5YylLD5NRKLltdqwSvS0BnU=" {
		t.Errorf("Sign = %s, want Twilio's documented signature", got)
	}
	params := map[string]string{}
	for k := range p {
		params[k] = p.Get(k)
	}
	v := client.NewRequestValidator("12345")
	if !v.Validate(u, params, got) {
		t.Error("twilio-go's validator refuses the signature")
	}
}

// TestCallOverRealHTTP runs outside a bubble against a real loopback server,
// as `ivrd demo --call` does.
func TestCallOverRealHTTP(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /twilio/voice", func(w http.ResponseWriter, r *http.Request) {
		b, _ := ivr.Render(twiml.VoiceGather{Action: "gather", NumDigits: "1"}, twiml.VoiceHangup{})
		w.Write(b)
	})
	mux.HandleFunc("POST /twilio/gather", func(w http.ResponseWriter, r *http.Request) {
		b, _ := ivr.Render(ivr.SayText("v", "sv-SE", "Du tryckte "+r.PostFormValue("Digits")+"."), twiml.VoiceEnqueue{Name: "q"})
		w.Write(b)
	})
	mux.HandleFunc("POST /twilio/status", func(http.ResponseWriter, *http.Request) {})
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	defer srv.Close()
	sc, err := ivr.NewSignatureChecker(srv.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		sc.Middleware(mux).ServeHTTP(w, r)
	})
	tw := &virtualtwilio.Twilio{BaseURL: srv.URL, AuthToken: token, HTTPClient: srv.Client()}
	tr, err := tw.Call(t.Context(), virtualtwilio.Caller{Keys: func(string) string { return "7" }})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/twilio/voice", "/twilio/gather", "/twilio/status"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("paths %v, want %v", paths, want)
	}
	if tr.Outcome != "enqueued:q" || tr.Lines[len(tr.Lines)-2].Text != "Du tryckte 7." {
		t.Errorf("transcript:\n%s", tr)
	}
}

func TestParseTwiML(t *testing.T) {
	doc, err := virtualtwilio.ParseTwiML([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Gather action="/g" numDigits="1"><Say voice="Polly.Liv" language="nb-NO">Trykk <say-as interpret-as="characters">1</say-as> for <prosody rate="slow">blå<break time="1s"/>hval</prosody>.</Say></Gather>
  <Say><lang xml:lang="en-US">hi</lang></Say>
</Response>`))
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.Names(); !reflect.DeepEqual(got, []string{"Gather", "Say"}) {
		t.Fatalf("verbs %v", got)
	}
	say := doc.Verbs[0].Elements()[0]
	if say.Text != "Trykk 1 for blå hval." || say.Attr("voice") != "Polly.Liv" {
		t.Errorf("Say text %q attrs %v", say.Text, say.Attrs)
	}
	if n := doc.Find("say-as"); len(n) != 1 || n[0].Attr("interpret-as") != "characters" {
		t.Errorf("say-as %v", n)
	}
	if n := doc.Find("lang"); len(n) != 1 || n[0].Attr("xml:lang") != "en-US" {
		t.Errorf("lang %+v", n)
	}
	for _, bad := range []string{"", "<Response>", "<Other/>", "<Response/><Response/>", "<Response><Say></Response>"} {
		if _, err := virtualtwilio.ParseTwiML([]byte(bad)); err == nil {
			t.Errorf("ParseTwiML(%q) accepted", bad)
		}
	}
}

// BenchmarkCall measures a whole short call (voice, gather, status) through
// the signature checker, in-process.
func BenchmarkCall(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /twilio/voice", func(w http.ResponseWriter, r *http.Request) {
		out, _ := ivr.Render(twiml.VoiceGather{Action: "/twilio/gather", NumDigits: "1",
			InnerElements: []twiml.Element{ivr.SayText("Polly.Astrid", "sv-SE", "Tryck en siffra.")}})
		w.Write(out)
	})
	mux.HandleFunc("POST /twilio/gather", func(w http.ResponseWriter, r *http.Request) {
		out, _ := ivr.Render(ivr.SayText("Polly.Astrid", "sv-SE", "Tack."), twiml.VoiceEnqueue{Name: "support"})
		w.Write(out)
	})
	mux.HandleFunc("POST /twilio/status", func(http.ResponseWriter, *http.Request) {})
	sc, err := ivr.NewSignatureChecker("http://127.0.0.1:8080", token)
	if err != nil {
		b.Fatal(err)
	}
	tw := &virtualtwilio.Twilio{BaseURL: "http://127.0.0.1:8080", AuthToken: token, HTTPClient: virtualtwilio.HandlerClient(sc.Middleware(mux))}
	for b.Loop() {
		tr, err := tw.Call(b.Context(), virtualtwilio.Caller{Keys: func(string) string { return "1" }})
		if err != nil || tr.Outcome != "enqueued:support" {
			b.Fatal(err, tr)
		}
	}
}
