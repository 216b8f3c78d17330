package ivr_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/twilio/twilio-go/twiml"

	"github.com/ivr/callerverify/ivr"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

func render(t *testing.T, verbs ...twiml.Element) (string, *virtualtwilio.Response) {
	t.Helper()
	b, err := ivr.Render(verbs...)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	// Well-formed for a plain XML decoder as well.
	dec := xml.NewDecoder(bytes.NewReader(b))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("output is not well-formed XML: %v\n%s", err, b)
		}
	}
	doc, err := virtualtwilio.ParseTwiML(b)
	if err != nil {
		t.Fatalf("ParseTwiML: %v\n%s", err, b)
	}
	return string(b), doc
}

// shape is a node reduced to name, attributes and ordered children, for
// comparing structure.
type shape struct {
	Name     string
	Attrs    map[string]string
	Text     string // text nodes only
	Children []shape
}

func shapeOf(n *virtualtwilio.Node) shape {
	s := shape{Name: n.Name}
	if n.Name == "" {
		s.Text = n.Text
		return s
	}
	if len(n.Attrs) > 0 {
		s.Attrs = n.Attrs
	}
	for _, c := range n.Children {
		s.Children = append(s.Children, shapeOf(c))
	}
	return s
}

func text(s string) shape { return shape{Text: s} }

func TestRenderSayMixedContentInOrder(t *testing.T) {
	out, doc := render(t,
		ivr.SaySSML("Polly.Astrid", "sv-SE",
			ivr.Text("Tryck "),
			ivr.SayAs{InterpretAs: "characters", Text: "1"},
			ivr.Text(" för att höra orden igen."),
			ivr.Break{Time: "700ms"},
			ivr.Prosody{Rate: "slow", Text: "blå & grønn", Parts: []twiml.Element{ivr.Break{Time: "1s"}, ivr.Text("hav <ø>")}},
			ivr.S{Text: "Slutt."},
			ivr.P{Parts: []twiml.Element{ivr.Text("Ja")}},
		),
	)
	want := shape{Name: "Say", Attrs: map[string]string{"voice": "Polly.Astrid", "language": "sv-SE"}, Children: []shape{
		text("Tryck "),
		{Name: "say-as", Attrs: map[string]string{"interpret-as": "characters"}, Children: []shape{text("1")}},
		text(" för att höra orden igen."),
		{Name: "break", Attrs: map[string]string{"time": "700ms"}},
		{Name: "prosody", Attrs: map[string]string{"rate": "slow"}, Children: []shape{
			text("blå & grønn"), {Name: "break", Attrs: map[string]string{"time": "1s"}}, text("hav <ø>"),
		}},
		{Name: "s", Children: []shape{text("Slutt.")}},
		{Name: "p", Children: []shape{text("Ja")}},
	}}
	if len(doc.Verbs) != 1 {
		t.Fatalf("got %d verbs, want 1:\n%s", len(doc.Verbs), out)
	}
	if got := shapeOf(doc.Verbs[0]); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v\n%s", got, want, out)
	}
	if got, want := doc.Verbs[0].Text, "Tryck 1 för att höra orden igen. blå & grønn hav <ø> Slutt. Ja"; got != want {
		t.Errorf("flattened text %q, want %q", got, want)
	}
	for _, raw := range []string{"&amp;", "&lt;ø&gt;", "å", "ø", `<say-as interpret-as="characters">1</say-as>`, `<break time="700ms"/>`} {
		if !strings.Contains(out, raw) {
			t.Errorf("output lacks %s:\n%s", raw, out)
		}
	}
	if !strings.HasPrefix(out, `<?xml version="1.0" encoding="UTF-8"?><Response><Say `) {
		t.Errorf("unexpected start: %s", out)
	}
}

func TestRenderVerbs(t *testing.T) {
	out, doc := render(t,
		twiml.VoiceGather{
			Input: "dtmf", Action: "/twilio/voice?step=2&x=1", Method: "POST", Timeout: "10", FinishOnKey: "#",
			ActionOnEmptyResult: "true",
			InnerElements:       []twiml.Element{ivr.SayText("Polly.Liv", "nb-NO", "Tast fødselsnummeret ditt & trykk firkant.")},
		},
		twiml.VoicePause{Length: "5"},
		twiml.VoicePlay{Url: "https://example.com/hold.mp3", Loop: "1"},
		twiml.VoiceRedirect{Url: "/twilio/voice?step=3", Method: "POST"},
		twiml.VoiceEnqueue{Name: "support"},
		twiml.VoiceDial{InnerElements: []twiml.Element{twiml.VoiceNumber{PhoneNumber: "+46812345678"}}},
		twiml.VoiceHangup{},
	)
	if got, want := doc.Names(), []string{"Gather", "Pause", "Play", "Redirect", "Enqueue", "Dial", "Hangup"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("verbs %v, want %v", got, want)
	}
	g := doc.Verbs[0]
	wantAttrs := map[string]string{"input": "dtmf", "action": "/twilio/voice?step=2&x=1", "method": "POST", "timeout": "10",
		"finishOnKey": "#", "actionOnEmptyResult": "true"}
	if !reflect.DeepEqual(g.Attrs, wantAttrs) {
		t.Errorf("Gather attrs %v, want %v", g.Attrs, wantAttrs)
	}
	says := g.Find("Say")
	if len(says) != 1 || says[0].Text != "Tast fødselsnummeret ditt & trykk firkant." || says[0].Attr("language") != "nb-NO" {
		t.Errorf("nested Say = %+v", says)
	}
	if doc.Verbs[1].Attr("length") != "5" || doc.Verbs[3].Text != "/twilio/voice?step=3" || doc.Verbs[4].Text != "support" {
		t.Errorf("Pause/Redirect/Enqueue wrong:\n%s", out)
	}
	if n := doc.Verbs[5].Find("Number"); len(n) != 1 || n[0].Text != "+46812345678" {
		t.Errorf("Dial number wrong:\n%s", out)
	}
	if !strings.Contains(out, `action="/twilio/voice?step=2&amp;x=1"`) || !strings.Contains(out, "<Hangup/>") {
		t.Errorf("escaping or empty element wrong:\n%s", out)
	}
}

func TestRenderIsStable(t *testing.T) {
	verbs := []twiml.Element{twiml.VoiceGather{Input: "dtmf", Action: "/a", Method: "POST", Timeout: "5", FinishOnKey: "#", NumDigits: "12"}}
	first, _ := render(t, verbs...)
	for range 20 {
		if again, _ := render(t, verbs...); again != first {
			t.Fatalf("output changed between runs:\n%s\n%s", first, again)
		}
	}
	if !strings.Contains(first, `<Gather action="/a" finishOnKey="#" input="dtmf" method="POST" numDigits="12" timeout="5"/>`) {
		t.Errorf("attributes not sorted: %s", first)
	}
}

// TestRenderMatchesTwilioGo: for plain verbs, our output has the same
// structure as twilio-go's own renderer.
func TestRenderMatchesTwilioGo(t *testing.T) {
	verbs := []twiml.Element{
		twiml.VoiceSay{Voice: "Polly.Astrid", Language: "sv-SE", Message: "Hej & välkommen", Loop: "2"},
		twiml.VoiceGather{Action: "/g", Timeout: "8", OptionalAttributes: map[string]string{"Timeout": "3", "hints": "x"},
			InnerElements: []twiml.Element{twiml.VoicePause{Length: "1"}}},
		twiml.VoiceRedirect{Url: "/r?a=1&b=2", Method: "POST"},
		twiml.VoiceDial{CallerId: "+4612345", InnerElements: []twiml.Element{twiml.VoiceClient{Identity: "agent1"}}},
	}
	ours, err := ivr.Render(verbs...)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := twiml.Voice(verbs)
	if err != nil {
		t.Fatal(err)
	}
	a, err := virtualtwilio.ParseTwiML(ours)
	if err != nil {
		t.Fatal(err)
	}
	b, err := virtualtwilio.ParseTwiML([]byte(theirs))
	if err != nil {
		t.Fatal(err)
	}
	for i := range b.Verbs {
		if got, want := shapeOf(a.Verbs[i]), shapeOf(b.Verbs[i]); !reflect.DeepEqual(got, want) {
			t.Errorf("verb %d: ours %+v, twilio-go %+v", i, got, want)
		}
	}
}

func TestRenderEmpty(t *testing.T) {
	out, doc := render(t)
	if out != `<?xml version="1.0" encoding="UTF-8"?><Response/>` || len(doc.Verbs) != 0 {
		t.Errorf("Render() = %s", out)
	}
}

type badName struct{ twiml.VoiceHangup }

func (badName) GetName() string { return "Say><Hangup" }

type badAttr struct{ twiml.VoiceHangup }

func (badAttr) GetAttr() (map[string]string, map[string]string) {
	return map[string]string{`x" y="1`: "v"}, nil
}

func TestRenderRejects(t *testing.T) {
	big := strings.Repeat("å", 40<<10)
	tests := []struct {
		name  string
		verbs []twiml.Element
		want  string
	}{
		{"nil verb", []twiml.Element{nil}, "nil element"},
		{"nil inside Say", []twiml.Element{ivr.SaySSML("v", "sv-SE", nil)}, "nil element"},
		{"text as a verb", []twiml.Element{ivr.Text("hello")}, "text outside a verb"},
		{"twilio-go SayAs", []twiml.Element{ivr.SaySSML("v", "sv-SE", twiml.VoiceSayAs{InterpretAs: "characters", Words: "12"})}, "SayAs"},
		{"twilio-go Break", []twiml.Element{ivr.SaySSML("v", "sv-SE", twiml.VoiceBreak{Time: "1s"})}, "Break"},
		{"element name with markup", []twiml.Element{badName{}}, "invalid element name"},
		{"attribute name with markup", []twiml.Element{badAttr{}}, "invalid attribute name"},
		{"over 64 KB", []twiml.Element{ivr.SayText("v", "sv-SE", big)}, "64 KB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := ivr.Render(tt.verbs...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Render = %q, %v; want an error with %q", out, err, tt.want)
			}
		})
	}
}

func TestRenderInvalidCharacters(t *testing.T) {
	_, doc := render(t, ivr.SayText("v", "sv-SE", "a\x00b\x1bc\"'\n"))
	if got := doc.Verbs[0].Children[0].Text; got != "a\uFFFDb\uFFFDc\"'\n" {
		t.Errorf("text = %q", got)
	}
}

func BenchmarkRender(b *testing.B) {
	verbs := []twiml.Element{
		twiml.VoiceGather{Input: "dtmf", Action: "/twilio/voice?step=2", Timeout: "10", FinishOnKey: "#", ActionOnEmptyResult: "true",
			InnerElements: []twiml.Element{ivr.SaySSML("Polly.Astrid", "sv-SE", ivr.Text("Slå ditt personnummer, tolv siffror, och avsluta med "),
				ivr.SayAs{InterpretAs: "characters", Text: "#"}, ivr.Text("."))}},
		ivr.SayText("Polly.Astrid", "sv-SE", "Vi hörde inget."),
		twiml.VoiceRedirect{Url: "/twilio/voice?step=2", Method: "POST"},
	}
	for b.Loop() {
		if _, err := ivr.Render(verbs...); err != nil {
			b.Fatal(err)
		}
	}
}
