package ivr

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/twilio/twilio-go/twiml"
)

// TwiML rendering.
//
// Verbs are twilio-go's structs (twiml.VoiceGather, twiml.VoiceRedirect,
// twiml.VoicePause, twiml.VoiceEnqueue, twiml.VoiceDial, twiml.VoiceHangup,
// twiml.VoicePlay, twiml.VoiceSay …). SSML inside a <Say> uses the types below
// (twilio-go's own SSML structs render capitalised tag names that Twilio
// rejects, twilio/twilio-go#220), and Text for plain text between them.
//
// Render is our own small serialiser of twiml.Element trees rather than
// twiml.Voice: twilio-go (etree) can only put text before an element's
// children, so "Press <say-as>1</say-as> to repeat." cannot be expressed, and
// it writes attributes in random order. Render writes each element's text,
// then its children in order (Text children in place), with attributes
// sorted by name, so its output is byte-stable and golden files can be
// compared as text. Attribute names follow twilio-go's rule (first letter
// lower-cased; empty values omitted; typed fields override
// OptionalAttributes).

// maxTwiML is Twilio's limit on a TwiML document (error 11750).
const maxTwiML = 64 << 10

// Text is plain text inside a <Say> or an SSML element, written where it
// stands among its siblings. It is XML-escaped. Only Render understands it:
// do not pass it to twiml.Voice.
type Text string

func (t Text) GetName() string                                 { return "" }
func (t Text) GetText() string                                 { return string(t) }
func (t Text) GetAttr() (map[string]string, map[string]string) { return nil, nil }
func (t Text) GetInnerElements() []twiml.Element               { return nil }

// SayAs is <say-as interpret-as="…">text</say-as>; InterpretAs is e.g.
// "characters" (digit by digit), "digits", "cardinal", "date".
type SayAs struct {
	InterpretAs string
	Format      string // optional, for dates: "ymd", "dmy", …
	Text        string
}

func (s SayAs) GetName() string { return "say-as" }
func (s SayAs) GetText() string { return s.Text }
func (s SayAs) GetAttr() (map[string]string, map[string]string) {
	return nil, map[string]string{"interpret-as": s.InterpretAs, "format": s.Format}
}
func (s SayAs) GetInnerElements() []twiml.Element { return nil }

// Break is <break time="700ms"/> (or strength="strong").
type Break struct {
	Time     string // "700ms", "1s"
	Strength string // "none", "x-weak", "weak", "medium", "strong", "x-strong"
}

func (b Break) GetName() string { return "break" }
func (b Break) GetText() string { return "" }
func (b Break) GetAttr() (map[string]string, map[string]string) {
	return nil, map[string]string{"time": b.Time, "strength": b.Strength}
}
func (b Break) GetInnerElements() []twiml.Element { return nil }

// Prosody is <prosody rate="slow">text parts…</prosody>: Text first, then
// Parts in order.
type Prosody struct {
	Rate   string // "x-slow", "slow", "medium", "fast", "x-fast" or "80%"
	Pitch  string
	Volume string
	Text   string
	Parts  []twiml.Element
}

func (p Prosody) GetName() string { return "prosody" }
func (p Prosody) GetText() string { return p.Text }
func (p Prosody) GetAttr() (map[string]string, map[string]string) {
	return nil, map[string]string{"rate": p.Rate, "pitch": p.Pitch, "volume": p.Volume}
}
func (p Prosody) GetInnerElements() []twiml.Element { return p.Parts }

// S is a sentence, <s>…</s>: Text first, then Parts.
type S struct {
	Text  string
	Parts []twiml.Element
}

func (s S) GetName() string                                 { return "s" }
func (s S) GetText() string                                 { return s.Text }
func (s S) GetAttr() (map[string]string, map[string]string) { return nil, nil }
func (s S) GetInnerElements() []twiml.Element               { return s.Parts }

// P is a paragraph, <p>…</p>: Text first, then Parts.
type P struct {
	Text  string
	Parts []twiml.Element
}

func (p P) GetName() string                                 { return "p" }
func (p P) GetText() string                                 { return p.Text }
func (p P) GetAttr() (map[string]string, map[string]string) { return nil, nil }
func (p P) GetInnerElements() []twiml.Element               { return p.Parts }

// SayText is <Say voice language>text</Say>.
func SayText(voice, language, text string) twiml.Element {
	return twiml.VoiceSay{Voice: voice, Language: language, Message: text}
}

// SaySSML is a <Say> whose content is parts in order: Text, SayAs, Break,
// Prosody, S, P.
//
//	SaySSML("Polly.Astrid", "sv-SE", Text("Tryck "), SayAs{InterpretAs: "characters", Text: "1"}, Text(" för att höra igen."))
func SaySSML(voice, language string, parts ...twiml.Element) twiml.Element {
	return twiml.VoiceSay{Voice: voice, Language: language, InnerElements: parts}
}

// brokenSSML are the tag names twilio-go's SSML structs render; Twilio
// rejects them.
var brokenSSML = []string{"SayAs", "Break", "Prosody", "Emphasis", "Lang", "P", "S", "W", "Sub", "Phoneme"}

// Render writes a whole TwiML document, <Response> with verbs in order.
// It fails on a nil element, an invalid element or attribute name, one of
// twilio-go's malformed SSML structs, or a document over Twilio's 64 KB.
func Render(verbs ...twiml.Element) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	if len(verbs) == 0 {
		b.WriteString("<Response/>")
		return b.Bytes(), nil
	}
	b.WriteString("<Response>")
	for _, v := range verbs {
		if _, ok := v.(Text); ok {
			return nil, errors.New("twiml: text outside a verb")
		}
		if err := renderElement(&b, v, 0); err != nil {
			return nil, err
		}
	}
	b.WriteString("</Response>")
	if b.Len() > maxTwiML {
		return nil, fmt.Errorf("twiml: document of %d bytes exceeds Twilio's 64 KB", b.Len())
	}
	return b.Bytes(), nil
}

func renderElement(b *bytes.Buffer, e twiml.Element, depth int) error {
	if e == nil {
		return errors.New("twiml: nil element")
	}
	if depth > 16 {
		return errors.New("twiml: elements nested too deep")
	}
	if t, ok := e.(Text); ok {
		escape(b, string(t))
		return nil
	}
	name := e.GetName()
	if !validName(name) {
		return fmt.Errorf("twiml: invalid element name %q", name)
	}
	if slices.Contains(brokenSSML, name) {
		return fmt.Errorf("twiml: twilio-go's %s renders a tag Twilio rejects; use the ivr SSML types", name)
	}
	// Attributes in name order (twilio-go's maps have none); a parameter
	// wins over an option of the same name.
	opt, params := e.GetAttr()
	var buf [12]attr
	attrs := buf[:0]
	for _, m := range []map[string]string{opt, params} {
		for k, v := range m {
			if v == "" {
				continue
			}
			if k == "" {
				return fmt.Errorf("twiml: empty attribute name on <%s>", name)
			}
			if c := k[0]; 'A' <= c && c <= 'Z' {
				k = string(c+'a'-'A') + k[1:]
			}
			if !validName(k) {
				return fmt.Errorf("twiml: invalid attribute name %q on <%s>", k, name)
			}
			if i := slices.IndexFunc(attrs, func(a attr) bool { return a.k == k }); i >= 0 {
				attrs[i].v = v
				continue
			}
			attrs = append(attrs, attr{k, v})
		}
	}
	slices.SortFunc(attrs, func(a, b attr) int { return strings.Compare(a.k, b.k) })
	b.WriteByte('<')
	b.WriteString(name)
	for _, a := range attrs {
		b.WriteByte(' ')
		b.WriteString(a.k)
		b.WriteString(`="`)
		escape(b, a.v)
		b.WriteByte('"')
	}
	text, inner := e.GetText(), e.GetInnerElements()
	if text == "" && len(inner) == 0 {
		b.WriteString("/>")
		return nil
	}
	b.WriteString(">")
	escape(b, text)
	for _, c := range inner {
		if err := renderElement(b, c, depth+1); err != nil {
			return err
		}
	}
	b.WriteString("</")
	b.WriteString(name)
	b.WriteByte('>')
	return nil
}

type attr struct{ k, v string }

// escape writes s XML-escaped; characters XML cannot carry become U+FFFD.
// Plain ASCII without markup characters, most of a hold hop's document, is
// written as it is.
func escape(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f || c == '"' || c == '\'' || c == '&' || c == '<' || c == '>':
			_ = xml.EscapeText(b, []byte(s)) // a bytes.Buffer does not fail
			return
		}
	}
	b.WriteString(s)
}

// validName accepts the XML names TwiML and SSML use: a letter or '_' first,
// then letters, digits, '-', '_', '.', and ':'.
func validName(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for i, r := range s {
		switch {
		case unicode.IsLetter(r) || r == '_':
		case i > 0 && (unicode.IsDigit(r) || r == '-' || r == '.' || r == ':'):
		default:
			return false
		}
	}
	return true
}
