package ivr

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/internal/store"
)

// RequestOptions qualify an authentication request beyond the identity.
type RequestOptions struct {
	// Language of the binding message's words.
	Language string
	// CallInitiator is who rang whom (Idura's Swedish phoneAuth): "user"
	// when the caller rang the support line, "RP" when an agent starts it.
	CallInitiator string
	// Code is the short code a binding message carries at brokers that
	// show one to the user (Auth0, Transmit, generic): the IVR reads it out
	// so the caller can check the request is ours.
	Code string
}

// BuildRequest is the authentication request for identity id at a broker
// with profile p: method, login hint, binding message, scopes, channel.
// Idura's Swedish BankID gets our fixed binding message (the app shows it)
// and the call initiator; Norwegian BankID none (the app shows a word pair)
// but the ssn scope (Idura releases socialno only with it, and without it
// the token cannot be matched to the number typed). Other brokers get a
// binding message with o.Code and, for a customer number, the user id
// rules make of it.
func BuildRequest(p *ciba.Profile, id Identity, rules CustomerRules, o RequestOptions) (ciba.RequestInput, error) {
	var in ciba.RequestInput
	if !contains(ProfileKinds(p), id.Kind()) {
		return in, fmt.Errorf("the %s broker cannot identify a caller by %s", p.Name, id.Kind())
	}
	switch id.Kind() {
	case store.IDNationalID:
		in.NationalID = id.Value()
		switch id.Country() {
		case store.Sweden:
			in.Method = "se-bankid"
			in.CallInitiator = o.CallInitiator
			in.BindingMessage = prompt(o.Language, pBinding, "")
		case store.Norway:
			in.Method = "no-bankid"
			in.Scopes = []string{"ssn"}
		}
		return in, nil
	case store.IDCustomer:
		in.UserID = rules.UserID(id.Value())
	case store.IDCallerID, store.IDPhone:
		in.Phone = id.Value()
	case store.IDEmail:
		in.Email = id.Value()
	}
	in.Method = p.DefaultMethod
	m, _ := p.Method(in.Method)
	if !m.BindingMessage.Forbidden && o.Code != "" {
		in.BindingMessage = bindingText(o.Language, o.Code)
	}
	if p.RequestContext {
		in.Channel = "sms"
		if id.Kind() == store.IDEmail {
			in.Channel = "email"
		}
	}
	return in, nil
}

// bindingText is the binding message with a code: plain ASCII letters,
// digits and a space, which every broker's rules accept ("Kod 4821").
func bindingText(lang, code string) string {
	return prompt(lang, pBindingCode, "") + " " + code
}

// NewCode is a random four-digit code for a binding message.
func NewCode() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(10000))
	return fmt.Sprintf("%04d", n.Int64())
}

// BindingCode is the code in a verification's binding message, "" when it
// carries none (Idura).
func BindingCode(v *store.Verification) string {
	if v == nil || v.IDKind == store.IDNationalID || v.Country != "" {
		return ""
	}
	if i := strings.LastIndexByte(v.BindingMessage, ' '); i >= 0 {
		return v.BindingMessage[i+1:]
	}
	return ""
}

// Errors of matching an ID token to the identity asked for.
var (
	errTokenMismatch = errors.New("verified identity differs from the one entered")
	errTokenMissing  = errors.New("ID token carries no national identity number")
)

// MatchToken checks that the person in an ID token's claims is id, as the
// IVR does before it calls a caller verified: see matchToken.
func MatchToken(c *ciba.Claims, id Identity, rules CustomerRules) error {
	return matchToken(c, id.Kind(), id.Value(), rules)
}

// matchToken checks that the person the broker verified is the one asked
// for, by kind: the national identity number claim (ssn, socialno) equals
// the number typed; the subject is the user id a customer number names;
// a phone number or e-mail address claim, when the token has one, equals
// the one used (the broker sent the request to its owner).
func matchToken(c *ciba.Claims, kind store.IDKind, value string, rules CustomerRules) error {
	switch kind {
	case store.IDNationalID:
		err := c.MatchNationalID(value)
		if errors.Is(err, ciba.ErrNationalIDMissing) {
			return errTokenMissing
		}
		if err != nil {
			return errTokenMismatch
		}
	case store.IDCustomer:
		if c.Subject != rules.UserID(value) {
			return errTokenMismatch
		}
	case store.IDCallerID, store.IDPhone:
		if got, ok := c.Raw["phone_number"].(string); ok && got != value {
			return errTokenMismatch
		}
	case store.IDEmail:
		if got, ok := c.Raw["email"].(string); ok && !strings.EqualFold(got, value) {
			return errTokenMismatch
		}
	}
	return nil
}
