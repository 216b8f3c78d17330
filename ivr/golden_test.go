package ivr

// Golden TwiML per language. This test is in package ivr because it renders
// screens directly, without driving a call to each of them. Render writes
// attributes sorted, so documents compare as text; each is also parsed to
// check its structure. Rewrite the files with: go test ./ivr -run Golden -update

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestGoldenTwiML(t *testing.T) {
	started := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	seV := &store.Verification{ID: "v_se", CallSID: "CAgolden", Country: store.Sweden, MaskedID: "********-**87", Status: store.VerPending, Initiator: "caller", CreatedAt: started}
	noV := &store.Verification{ID: "v_no", CallSID: "CAgolden", Country: store.Norway, MaskedID: "******-***15", Status: store.VerPending, BindingMessage: "Frekk Julekos", Initiator: "caller", CreatedAt: started}
	okV := &store.Verification{ID: "v_ok", CallSID: "CAgolden", Country: store.Sweden, MaskedID: "********-**87", Status: store.VerApproved, Name: "Astrid Lindqvist", GivenName: "Astrid", Initiator: "caller", CreatedAt: started}

	type screen struct {
		name string
		cfg  func(*Config)
		d    Decision
		v    *store.Verification
	}
	screens := []screen{
		{name: "greeting", d: Decision{Screen: ScreenAskNumber, First: true}},
		{name: "wrong_length", d: Decision{Screen: ScreenAskNumber, Problem: ReasonLength}},
		{name: "wrong_checksum", d: Decision{Screen: ScreenAskNumber, Problem: ReasonChecksum}},
		{name: "wrong_date", d: Decision{Screen: ScreenAskNumber, Problem: ReasonDate}},
		{name: "no_digits", d: Decision{Screen: ScreenAskNumber, Problem: ReasonEmpty}},
		{name: "starting", d: Decision{Screen: ScreenStarting, Hold: HoldState{Hops: 1}}, v: seV},
		{name: "hold", d: Decision{Screen: ScreenHold, Hold: HoldState{Announced: true, Hops: 4}}, v: seV},
		{name: "open_bankid_se", d: Decision{Screen: ScreenInstruct, Country: store.Sweden, Hold: HoldState{Announced: true}}, v: seV},
		{name: "word_pair_no", d: Decision{Screen: ScreenInstruct, Country: store.Norway, Hold: HoldState{Announced: true}}, v: noV},
		{name: "reminder_no", d: Decision{Screen: ScreenReminder, Country: store.Norway, Hold: HoldState{Announced: true}}, v: noV},
		{name: "reminder_se", d: Decision{Screen: ScreenReminder, Country: store.Sweden, Hold: HoldState{Announced: true}}, v: seV},
		{name: "declined_retry", d: Decision{Screen: ScreenOfferRetry, Reason: store.ReasonDeclined}},
		{name: "broker_down_retry", d: Decision{Screen: ScreenOfferRetry, Reason: store.ReasonFailed}},
		{name: "unknown_user_retry", d: Decision{Screen: ScreenOfferRetry, Reason: store.ReasonUnknownUser}},
		{name: "expired_unverified", d: Decision{Screen: ScreenHandOff, Reason: store.ReasonExpired}},
		{name: "too_many_unverified", d: Decision{Screen: ScreenHandOff, Reason: store.ReasonInvalidNumber}},
		{name: "rate_limited_unverified", d: Decision{Screen: ScreenHandOff, Reason: store.ReasonRateLimited}},
		{name: "verified_enqueue", d: Decision{Screen: ScreenHandOff, Verified: true}, v: okV},
		{name: "verified_task", cfg: func(c *Config) { c.WorkflowSID = "WW0123456789abcdef0123456789abcdef" }, d: Decision{Screen: ScreenHandOff, Verified: true}, v: okV},
		{name: "verified_dial", cfg: func(c *Config) { c.DialNumber = "+46812345000" }, d: Decision{Screen: ScreenHandOff, Verified: true}, v: okV},
		{name: "goodbye", d: Decision{Screen: ScreenGoodbye}},
	}
	brokenSSMLTag := regexp.MustCompile(`<(SayAs|Break|Prosody|Emphasis|Lang|P|S|W|Sub|Phoneme)[ />]`)

	for _, lang := range []string{Swedish, Norwegian, English} {
		t.Run(lang, func(t *testing.T) {
			var out strings.Builder
			for _, sc := range screens {
				cfg := Config{PublicURL: "https://ivr.example.com", Language: lang, AgentQueue: "support"}
				if sc.cfg != nil {
					sc.cfg(&cfg)
				}
				s := &Service{cfg: cfg}
				c := &store.Call{SID: "CAgolden", Language: lang, Step: 7}
				doc, err := s.render(c, sc.d, sc.v)
				if err != nil {
					t.Fatalf("%s: render: %v", sc.name, err)
				}
				checkDoc(t, sc.name, doc, brokenSSMLTag)
				out.WriteString("== " + sc.name + "\n" + doc + "\n")
			}
			s := &Service{cfg: Config{PublicURL: "https://ivr.example.com", Language: lang, AgentQueue: "support"}}
			for name, doc := range map[string]string{"fallback": s.fallbackTwiML("CAgolden")} {
				checkDoc(t, name, doc, brokenSSMLTag)
			}
			out.WriteString("== fallback\n" + s.fallbackTwiML("CAgolden") + "\n")
			w1, _ := s.whisperTwiML(&store.Call{SID: "CAgolden"}, okV)
			w2, _ := s.whisperTwiML(&store.Call{SID: "CAgolden"}, seV)
			out.WriteString("== whisper_verified\n" + w1 + "\n== whisper_unverified\n" + w2 + "\n")

			path := filepath.Join("testdata", "screens."+lang+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got := out.String(); got != string(want) {
				t.Errorf("TwiML for %s differs from %s (rerun with -update if intended):\n%s", lang, path, diffLines(string(want), got))
			}
		})
	}
}

// checkDoc parses doc and checks the rules every document obeys: it parses,
// every <Say> names its voice and language, SSML tags are lower-case, no
// Gather lacks actionOnEmptyResult, and every action carries its step.
func checkDoc(t *testing.T, name, doc string, broken *regexp.Regexp) {
	t.Helper()
	r, err := virtualtwilio.ParseTwiML([]byte(doc))
	if err != nil {
		t.Fatalf("%s: TwiML does not parse: %v\n%s", name, err, doc)
	}
	if broken.MatchString(doc) {
		t.Errorf("%s: capitalised SSML tag:\n%s", name, doc)
	}
	for _, say := range r.Find("Say") {
		if say.Attr("voice") == "" || say.Attr("language") == "" {
			t.Errorf("%s: <Say> without voice or language", name)
		}
		if voices[say.Attr("language")] != say.Attr("voice") {
			t.Errorf("%s: <Say> voice %q for language %q", name, say.Attr("voice"), say.Attr("language"))
		}
	}
	for _, g := range r.Find("Gather") {
		if g.Attr("actionOnEmptyResult") != "true" || g.Attr("input") != "dtmf" {
			t.Errorf("%s: <Gather> must be dtmf with actionOnEmptyResult", name)
		}
		if !strings.Contains(g.Attr("action"), "s=7") {
			t.Errorf("%s: <Gather action=%q> lacks the step", name, g.Attr("action"))
		}
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("- " + wl + "\n+ " + gl + "\n")
		}
	}
	return b.String()
}

// TestPlainHoldIsRendered: the hold hop written out is the document the
// renderer makes of the same verbs.
func TestPlainHoldIsRendered(t *testing.T) {
	s := &Service{}
	for _, tt := range []struct {
		step int
		h    HoldState
	}{
		{step: 4, h: HoldState{}},
		{step: 7, h: HoldState{Announced: true, Hops: 4}},
		{step: 1234, h: HoldState{Announced: true, Hops: 99}},
	} {
		c := &store.Call{Step: tt.step}
		want, err := Render(s.hold(c, tt.h)...)
		if err != nil {
			t.Fatal(err)
		}
		if got := plainHold(holdURL(tt.step, tt.h)); got != string(want) {
			t.Errorf("step %d %+v:\n got %s\nwant %s", tt.step, tt.h, got, want)
		}
	}
}
