package ivr

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"

	"github.com/ivr/callerverify/internal/store"
	"github.com/twilio/twilio-go/twiml"
)

// TwiML timings.
const (
	numberTimeout = "10" // seconds of silence that end the number Gather
	retryTimeout  = "6"  // seconds to press 1 for a retry
	holdPause     = "7"  // one hop of the hold loop: a pause (a key may be pressed meanwhile),
	holdTimeout   = "1"  // then this long for a key: about 8 s a hop
)

// render turns a decision into the TwiML document the caller gets. c is the
// call as stored after the step (its Step numbers the next request); v is
// its current verification, if any.
func (s *Service) render(c *store.Call, d Decision, v *store.Verification) (string, error) {
	lang := c.Language
	if CheckLanguage(lang) != nil {
		lang = s.cfg.Language
	}
	var verbs []twiml.Element
	switch d.Screen {
	case ScreenAskNumber:
		var lines []string
		if d.First {
			lines = append(lines, s.p(lang, pGreeting))
		}
		customer := s.lim.Typed == store.IDCustomer
		if r := problemPrompt(d.Problem, customer); r != "" {
			lines = append(lines, s.p(lang, r), s.p(lang, pTryAgain))
		}
		if customer {
			lines = append(lines, s.p(lang, pAskCustomer))
		} else {
			lines = append(lines, s.p(lang, pAskNumber))
		}
		verbs = append(verbs, gather(stepURL("/twilio/gather", c.Step), numberTimeout, "", say(lang, lines...)))
	case ScreenMenu:
		var lines []string
		if d.First {
			lines = append(lines, s.p(lang, pGreeting))
		}
		if d.Problem != 0 {
			lines = append(lines, s.p(lang, pMenuAgain))
		}
		lines = append(lines, s.p(lang, pMenuCallerID))
		if s.lim.Typed == store.IDCustomer {
			lines = append(lines, s.p(lang, pMenuCustomer))
		}
		verbs = append(verbs, gather(stepURL("/twilio/menu", c.Step), retryTimeout, "1", say(lang, lines...)))
	case ScreenStarting:
		verbs = s.hold(c, d.Hold, say(lang, s.p(lang, pStarting)))
	case ScreenHold:
		return plainHold(holdURL(c.Step, d.Hold)), nil
	case ScreenInstruct, ScreenRepeat:
		verbs = s.hold(c, d.Hold, instructions(lang, d.Country, v)...)
	case ScreenReminder:
		switch code := BindingCode(v); {
		case d.Country == store.Norway && v != nil && v.BindingMessage != "":
			verbs = s.hold(c, d.Hold, say(lang, s.p(lang, pStillWaitingNO)), wordPair(v.BindingMessage), say(lang, s.p(lang, pWordPairHint)))
		case code != "":
			verbs = s.hold(c, d.Hold, say(lang, withCode(s.p(lang, pStillCode), code), s.p(lang, pRepeatHintSE)))
		default:
			verbs = s.hold(c, d.Hold, say(lang, s.p(lang, pStillWaitingSE), s.p(lang, pRepeatHintSE)))
		}
	case ScreenOfferRetry:
		var lines []string
		if k := failureKey(d.Reason); k != "" {
			lines = append(lines, s.p(lang, k))
		}
		lines = append(lines, s.p(lang, pOfferRetry))
		verbs = append(verbs, gather(stepURL("/twilio/retry", c.Step), retryTimeout, "1", say(lang, lines...)))
	case ScreenHandOff:
		var lines []string
		if d.Verified {
			name := ""
			if v != nil {
				name = v.GivenName
				if name == "" {
					name = v.Name
				}
			}
			if name != "" {
				lines = append(lines, prompt(lang, pVerified, name))
			} else {
				lines = append(lines, s.p(lang, pVerifiedNoName))
			}
		} else if k := failureKey(d.Reason); k != "" && !d.Told {
			lines = append(lines, s.p(lang, k))
		}
		lines = append(lines, s.p(lang, pConnecting))
		verbs = append(verbs, say(lang, lines...))
		verbs = append(verbs, s.handOffVerbs(c.SID, v, d.Verified)...)
	default: // ScreenGoodbye
		verbs = append(verbs, say(lang, s.p(lang, pGoodbye)), twiml.VoiceHangup{})
	}
	doc, err := Render(verbs...)
	return string(doc), err
}

// hold is one hop of the hold loop: whatever is said and a pause, inside a
// one-key Gather so any key asks for a repeat; with no key Twilio comes back
// (actionOnEmptyResult) about eight seconds later. The hop is long and
// cheap because the caller does not wait for it to hear what happened: the
// poller interrupts the hold through Twilio's REST API the moment it learns
// an outcome (see interrupt). The hop is the safety net when that fails.
func (s *Service) hold(c *store.Call, h HoldState, said ...twiml.Element) []twiml.Element {
	u := holdURL(c.Step, h)
	return []twiml.Element{
		gather(u, holdTimeout, "1", append(said, twiml.VoicePause{Length: holdPause})...),
		twiml.VoiceRedirect{Url: u, Method: "POST"},
	}
}

// plainHold is the document of a hold hop with nothing said, the one most
// webhooks get: Render(s.hold(c, h)...) written out (TestPlainHoldIsRendered),
// because rendering it through twilio-go's attribute maps was a quarter
// of a hop's CPU.
func plainHold(u string) string {
	u = strings.ReplaceAll(u, "&", "&amp;") // holdURL has no other markup
	return `<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="` + u +
		`" actionOnEmptyResult="true" input="dtmf" method="POST" numDigits="1" timeout="` + holdTimeout +
		`"><Pause length="` + holdPause + `"/></Gather><Redirect method="POST">` + u + `</Redirect></Response>`
}

// gather reads keys while inner plays and posts them to action, or posts
// nothing when none is pressed within timeout seconds: silence is a step of
// the call too. numDigits "" reads keys up to '#'.
func gather(action, timeout, numDigits string, inner ...twiml.Element) twiml.VoiceGather {
	g := twiml.VoiceGather{
		Input:               "dtmf",
		NumDigits:           numDigits,
		Timeout:             timeout,
		ActionOnEmptyResult: "true",
		Action:              action,
		Method:              "POST",
		InnerElements:       inner,
	}
	if numDigits == "" {
		g.FinishOnKey = "#"
	}
	return g
}

// instructions tell the caller what to do: in the BankID app, confirm the
// call (Sweden) or pick the word pair, read twice (Norway); elsewhere,
// approve the request in the broker's app or link, which shows the code
// read out here.
func instructions(lang string, country store.Country, v *store.Verification) []twiml.Element {
	if code := BindingCode(v); code != "" {
		key := pApproveCode
		switch v.Method {
		case "guardian":
			key = pGuardian
		case "link":
			key = pMosaicLink
		}
		return []twiml.Element{say(lang, withCode(prompt(lang, key, ""), code), prompt(lang, pRepeatHintSE, ""))}
	}
	if country == store.Norway && v != nil && v.BindingMessage != "" {
		return []twiml.Element{
			say(lang, prompt(lang, pWordPairIntro, "")),
			wordPair(v.BindingMessage),
			say(lang, prompt(lang, pWordPairRepeat, "")),
			wordPair(v.BindingMessage),
			say(lang, prompt(lang, pWordPairHint, "")),
		}
	}
	return []twiml.Element{say(lang, prompt(lang, pOpenBankIDSE, ""), prompt(lang, pRepeatHintSE, ""))}
}

// wordPair reads the Norwegian word pair in a Norwegian voice whatever the
// call's language (the words are Norwegian), slowly, with a pause between
// the words.
func wordPair(pair string) twiml.Element {
	words := strings.Fields(pair)
	var parts []twiml.Element
	for i, w := range words {
		if i > 0 {
			parts = append(parts, Break{Time: "700ms"})
		}
		parts = append(parts, Text(w))
	}
	return SaySSML(voices[Norwegian], Norwegian,
		Break{Time: "300ms"},
		Prosody{Rate: "slow", Parts: parts},
		Break{Time: "500ms"},
	)
}

// say is one <Say> in lang's voice; sentences are separated by a short
// break, and "[1]" in a sentence is read as the key "1" (say-as).
func say(lang string, lines ...string) twiml.Element {
	var parts []twiml.Element
	for i, l := range lines {
		if i > 0 {
			parts = append(parts, Break{Time: "300ms"})
		}
		parts = append(parts, keys(l)...)
	}
	return SaySSML(voices[lang], lang, parts...)
}

// keys splits text around "[k]" markers, reading k character by character.
func keys(text string) []twiml.Element {
	var out []twiml.Element
	for {
		i := strings.Index(text, "[")
		j := strings.Index(text, "]")
		if i < 0 || j < i {
			break
		}
		if i > 0 {
			out = append(out, Text(text[:i]))
		}
		out = append(out, SayAs{InterpretAs: "characters", Text: text[i+1 : j]})
		text = text[j+1:]
	}
	if text != "" {
		out = append(out, Text(text))
	}
	return out
}

// problemPrompt is what the caller hears about a refused number (a
// customer number when customer).
func problemPrompt(r IDReason, customer bool) string {
	switch r {
	case ReasonEmpty:
		return pEmpty
	case ReasonLength:
		if customer {
			return pLengthCustomer
		}
		return pLength
	case ReasonDate:
		return pDate
	case ReasonChecksum:
		if customer {
			return pCheckCustomer
		}
		return pChecksum
	}
	return ""
}

// withCode fills a prompt's {code} with the code's digits, read one by one.
func withCode(text, code string) string { return strings.ReplaceAll(text, "{code}", code) }

func stepURL(path string, step int) string {
	return path + "?s=" + strconv.Itoa(step)
}

func holdURL(step int, h HoldState) string {
	a := "0"
	if h.Announced {
		a = "1"
	}
	return "/twilio/hold?s=" + strconv.Itoa(step) + "&a=" + a + "&n=" + strconv.Itoa(h.Hops)
}

// handOffVerbs put the caller through to agents: <Dial> to DialNumber with a
// whisper telling the agent who is calling, or <Enqueue> (with a TaskRouter
// <Task> carrying the verification when a workflow is configured).
func (s *Service) handOffVerbs(sid string, v *store.Verification, verified bool) []twiml.Element {
	after := "/twilio/after"
	if s.cfg.DialNumber != "" {
		whisper := strings.TrimSuffix(s.cfg.PublicURL, "/") + "/twilio/whisper?call=" + url.QueryEscape(sid)
		return []twiml.Element{twiml.VoiceDial{
			Action: after,
			Method: "POST",
			InnerElements: []twiml.Element{
				twiml.VoiceNumber{PhoneNumber: s.cfg.DialNumber, Url: whisper, Method: "POST"},
			},
		}}
	}
	if s.cfg.WorkflowSID != "" {
		return []twiml.Element{twiml.VoiceEnqueue{
			WorkflowSid:   s.cfg.WorkflowSID,
			Action:        after,
			Method:        "POST",
			InnerElements: []twiml.Element{twiml.VoiceTask{Body: taskJSON(sid, v, verified)}},
		}}
	}
	return []twiml.Element{twiml.VoiceEnqueue{Name: s.cfg.AgentQueue, Action: after, Method: "POST"}}
}

// taskJSON is the TaskRouter task's attributes: what the agent needs to
// know, masked where it is personal.
func taskJSON(sid string, v *store.Verification, verified bool) string {
	t := struct {
		CallSID        string `json:"call_sid"`
		Verified       bool   `json:"verified"`
		Name           string `json:"name,omitempty"`
		Method         string `json:"method,omitempty"`
		MaskedID       string `json:"masked_id,omitempty"`
		VerificationID string `json:"verification_id,omitempty"`
	}{CallSID: sid, Verified: verified}
	if v != nil {
		t.VerificationID = v.ID
		t.Method = MethodName(v.Method, v.Country)
		t.MaskedID = v.MaskedID
		if verified {
			t.Name = v.Name
		}
	}
	b, _ := json.Marshal(t)
	return string(b)
}

// fallbackTwiML is the answer when our own state cannot be used: an apology
// and a hand-off, unverified, in the default language.
func (s *Service) fallbackTwiML(sid string) string {
	lang := s.cfg.Language
	verbs := []twiml.Element{say(lang, prompt(lang, pFallback, ""), prompt(lang, pConnecting, ""))}
	verbs = append(verbs, s.handOffVerbs(sid, nil, false)...)
	doc, err := Render(verbs...)
	if err != nil {
		return emptyResponse
	}
	return string(doc)
}

// goodbyeTwiML answers a webhook for a call we do not know: a polite
// goodbye in the default language, and the end of the call.
func (s *Service) goodbyeTwiML() string {
	doc, err := s.render(&store.Call{Language: s.cfg.Language}, Decision{Screen: ScreenGoodbye}, nil)
	if err != nil {
		return emptyResponse
	}
	return doc
}

// whisperTwiML tells the agent, before the call connects, who is calling.
func (s *Service) whisperTwiML(c *store.Call, v *store.Verification) (string, error) {
	lang := s.cfg.Language
	text := prompt(lang, pWhisperNo, "")
	if c != nil && v != nil && v.Status == store.VerApproved {
		text = prompt(lang, pWhisperOK, v.Name)
	}
	doc, err := Render(say(lang, text))
	return string(doc), err
}
