package ivr

import (
	"cmp"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
	errTokenMismatch   = errors.New("verified identity differs from the one entered")
	errTokenMissing    = errors.New("ID token carries no national identity number")
	errTokenUnreadable = errors.New("ID token claims unreadable")
)

// TokenClaims are the claims of a validated ID token that the IVR reads
// besides the standard ones ciba checks: the national identity number as
// Idura names it (ssn in Sweden, socialno in Norway), the OpenID Connect
// phone_number and email, and the person's name, under the OpenID Connect
// names or Idura's older givenname and surname. Every printed form hides
// them.
type TokenClaims struct {
	SSN            string `json:"ssn"`      // Swedish personnummer (Idura)
	SocialNo       string `json:"socialno"` // Norwegian fødselsnummer (Idura)
	PhoneNumber    string `json:"phone_number"`
	Email          string `json:"email"`
	Name           string `json:"name"`
	GivenName      string `json:"given_name"`
	FamilyName     string `json:"family_name"`
	Country        string `json:"country"`        // Idura: "SE", "NO"
	IdentityScheme string `json:"identityscheme"` // Idura: "sebankid", "nobankid-oidc"
	BirthDate      string `json:"birthdate"`
}

// UnmarshalJSON reads the claims, taking Idura's givenname and surname
// where given_name and family_name are absent.
func (c *TokenClaims) UnmarshalJSON(b []byte) error {
	type plain TokenClaims // without this method
	var v struct {
		plain
		IduraGivenName string `json:"givenname"`
		IduraSurname   string `json:"surname"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = TokenClaims(v.plain)
	c.GivenName = cmp.Or(c.GivenName, v.IduraGivenName)
	c.FamilyName = cmp.Or(c.FamilyName, v.IduraSurname)
	return nil
}

// NationalID is the national identity number claim: ssn, else socialno.
func (c TokenClaims) NationalID() string { return cmp.Or(c.SSN, c.SocialNo) }

// String hides every claim but the country and identity scheme.
func (c TokenClaims) String() string {
	return fmt.Sprintf("ivr.TokenClaims{country=%q identityscheme=%q name=[redacted] national_id=[redacted]}", c.Country, c.IdentityScheme)
}

// GoString is String.
func (c TokenClaims) GoString() string { return c.String() }

// Format keeps every fmt verb redacted.
func (c TokenClaims) Format(f fmt.State, verb rune) {
	formatMasked(f, verb, "ivr.TokenClaims", c.String())
}

// LogValue is String, for log/slog.
func (c TokenClaims) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MatchToken checks that the person in a validated ID token is id, as the
// IVR does before it calls a caller verified (see matchToken), and returns
// the token's claims.
func MatchToken(tok *ciba.IDToken, id Identity, rules CustomerRules) (TokenClaims, error) {
	return matchToken(tok, id.Kind(), id.Value(), rules)
}

// matchToken checks that the person the broker verified is the one asked
// for, by kind: the national identity number claim (ssn, socialno) equals
// the number typed; the subject is the user id a customer number names;
// a phone number or e-mail address claim, when the token has one, equals
// the one used (the broker sent the request to its owner).
func matchToken(tok *ciba.IDToken, kind store.IDKind, value string, rules CustomerRules) (TokenClaims, error) {
	var c TokenClaims
	if err := tok.Claims(&c); err != nil {
		return TokenClaims{}, errTokenUnreadable
	}
	switch kind {
	case store.IDNationalID:
		got := c.NationalID()
		if got == "" {
			return c, errTokenMissing
		}
		if !sameNationalID(got, value) {
			return c, errTokenMismatch
		}
	case store.IDCustomer:
		if tok.Subject != rules.UserID(value) {
			return c, errTokenMismatch
		}
	case store.IDCallerID, store.IDPhone:
		if c.PhoneNumber != "" && c.PhoneNumber != value {
			return c, errTokenMismatch
		}
	case store.IDEmail:
		if c.Email != "" && !strings.EqualFold(c.Email, value) {
			return c, errTokenMismatch
		}
	}
	return c, nil
}

// sameNationalID compares two national identity numbers on their digits
// only (so "19680202-0575" equals "196802020575"); a Swedish 10-digit form
// equals the 12-digit one with the same last ten digits.
func sameNationalID(a, b string) bool {
	a, b = digitsOnly(a), digitsOnly(b)
	switch {
	case a == "" || b == "":
		return false
	case a == b:
		return true
	case len(a) == 12 && len(b) == 10:
		return a[2:] == b
	case len(a) == 10 && len(b) == 12:
		return b[2:] == a
	}
	return false
}

func digitsOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}
