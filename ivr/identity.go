package ivr

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/internal/store"
)

// Identity is what identifies a caller at the broker, parsed and checked: a
// national identity number (Idura's BankID), a customer number typed on
// the keypad, the number the caller calls from, or a phone number or
// e-mail address an agent types. The broker's login hint is built from it.
//
// Every printed form is masked, as NationalID's are; Value is the only way
// to the full identifier, for the login hint and for sealing it.
type Identity struct {
	p *identity
}

type identity struct {
	kind  store.IDKind
	nid   NationalID // IDNationalID
	value string     // canonical: the digits of a customer number, E.164, a lower-case e-mail address
}

// NationalIdentity is n as an Identity.
func NationalIdentity(n NationalID) Identity {
	return Identity{&identity{kind: store.IDNationalID, nid: n, value: n.Digits()}}
}

// IsZero reports whether i holds nothing.
func (i Identity) IsZero() bool { return i.p == nil }

// Kind says what the identifier is.
func (i Identity) Kind() store.IDKind {
	if i.p == nil {
		return ""
	}
	return i.p.kind
}

// Value returns the full identifier. Never log it.
func (i Identity) Value() string {
	if i.p == nil {
		return ""
	}
	return i.p.value
}

// NationalID returns the national identity number, zero for other kinds.
func (i Identity) NationalID() NationalID {
	if i.p == nil {
		return NationalID{}
	}
	return i.p.nid
}

// Country is the country of a national identity number, "" otherwise.
func (i Identity) Country() store.Country { return i.NationalID().Country() }

// Masked shows only what an agent needs to tell identifiers apart: the
// last two digits of a number, the first letter and domain of an e-mail
// address.
func (i Identity) Masked() string {
	switch i.Kind() {
	case store.IDNationalID:
		return i.p.nid.Masked()
	case store.IDCallerID, store.IDPhone:
		return MaskPhone(i.p.value)
	case store.IDEmail:
		local, domain, _ := strings.Cut(i.p.value, "@")
		r, _ := utf8.DecodeRuneInString(local)
		return string(r) + "***@" + domain
	case store.IDCustomer:
		v := i.p.value
		return strings.Repeat("*", len(v)-2) + v[len(v)-2:]
	}
	return ""
}

// Hash returns a keyed hash of the identifier (hex HMAC-SHA256): a stable
// reference to it at rest, for the per-identifier rate limit. A national
// identity number hashes as NationalID.Hash does.
func (i Identity) Hash(key []byte) string {
	if i.Kind() == store.IDNationalID {
		return i.p.nid.Hash(key)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(string(i.Kind()) + "\x00" + i.Value()))
	return hex.EncodeToString(m.Sum(nil))
}

// String returns Masked.
func (i Identity) String() string { return i.Masked() }

// GoString masks too.
func (i Identity) GoString() string { return "ivr.Identity(" + strconv.Quote(i.Masked()) + ")" }

// Format keeps every fmt verb masked, as NationalID's does.
func (i Identity) Format(f fmt.State, verb rune) { formatMasked(f, verb, "ivr.Identity", i.Masked()) }

// LogValue logs the masked form.
func (i Identity) LogValue() slog.Value { return slog.StringValue(i.Masked()) }

// MarshalJSON encodes the masked form.
func (i Identity) MarshalJSON() ([]byte, error) { return json.Marshal(i.Masked()) }

// CustomerRules say what a customer number looks like and which user at the
// broker it names.
type CustomerRules struct {
	// MinDigits and MaxDigits bound its length; defaults 6 and 12.
	MinDigits, MaxDigits int
	// Check is a check-digit scheme its last digit follows: "luhn",
	// "mod11", or "" (or "none") for none.
	Check string
	// Template names the broker's user: "{digits}" is replaced by the
	// number, e.g. "auth0|{digits}" for an Auth0 user id; default
	// "{digits}".
	Template string
}

// Check-digit schemes of customer numbers.
var checkSchemes = []string{"", "none", "luhn", "mod11"}

func (r CustomerRules) orDefault() CustomerRules {
	if r.MinDigits <= 0 {
		r.MinDigits = 6
	}
	if r.MaxDigits <= 0 {
		r.MaxDigits = 12
	}
	if r.Template == "" {
		r.Template = "{digits}"
	}
	return r
}

// Validate reports what is wrong with the rules, naming the field.
func (r CustomerRules) Validate() error {
	r = r.orDefault()
	switch {
	case r.MinDigits > r.MaxDigits || r.MaxDigits > 32:
		return fmt.Errorf("customer number length %d-%d: want MIN-MAX digits, at most 32", r.MinDigits, r.MaxDigits)
	case !strings.Contains(r.Template, "{digits}"):
		return fmt.Errorf("customer number template %q: must contain {digits}", r.Template)
	}
	for _, c := range checkSchemes {
		if r.Check == c {
			return nil
		}
	}
	return fmt.Errorf("customer number check %q: use luhn, mod11 or none", r.Check)
}

// UserID is the broker's user id the customer number digits name.
func (r CustomerRules) UserID(digits string) string {
	return strings.ReplaceAll(r.orDefault().Template, "{digits}", digits)
}

// Parse reads a customer number as typed (spaces, '-', '*' and '#' are
// ignored) and checks its length and check digit. Errors are
// *InvalidIDError: ReasonEmpty, ReasonLength, ReasonChecksum.
func (r CustomerRules) Parse(input string) (Identity, error) {
	r = r.orDefault()
	var b strings.Builder
	for _, c := range input {
		switch {
		case c >= '0' && c <= '9':
			b.WriteRune(c)
		case c == ' ' || c == '-' || c == '*' || c == '#':
		default:
			return Identity{}, invalidKind(store.IDCustomer, ReasonLength)
		}
	}
	d := b.String()
	switch {
	case d == "":
		return Identity{}, invalidKind(store.IDCustomer, ReasonEmpty)
	case len(d) < r.MinDigits || len(d) > r.MaxDigits:
		return Identity{}, invalidKind(store.IDCustomer, ReasonLength)
	}
	body, check := []byte(d[:len(d)-1]), int(d[len(d)-1]-'0')
	switch r.Check {
	case "luhn":
		if luhn(body) != check {
			return Identity{}, invalidKind(store.IDCustomer, ReasonChecksum)
		}
	case "mod11":
		if mod11(body, mod11Weights(len(body))) != check {
			return Identity{}, invalidKind(store.IDCustomer, ReasonChecksum)
		}
	}
	return Identity{&identity{kind: store.IDCustomer, value: d}}, nil
}

// CallerIdentity is the number a caller calls from, when it identifies
// them: a usable E.164 number (not withheld, not one of the numbers Twilio
// substitutes for a withheld one).
func CallerIdentity(from string) (Identity, bool) {
	if callerKey(from) == store.WithheldCaller {
		return Identity{}, false
	}
	return Identity{&identity{kind: store.IDCallerID, value: from}}, true
}

// ParseUserID reads a broker user id given in full (ivrd verify --user):
// an Auth0 user id such as "auth0|31001019", a Transmit user id. It is an
// identity of kind customer number whose user id, with the default
// CustomerRules template, is the id itself.
func ParseUserID(input string) (Identity, error) {
	s := strings.TrimSpace(input)
	switch {
	case s == "":
		return Identity{}, invalidKind(store.IDCustomer, ReasonEmpty)
	case len(s) < 3 || len(s) > 255 || strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r == 0x7f }):
		return Identity{}, invalidKind(store.IDCustomer, ReasonLength)
	}
	return Identity{&identity{kind: store.IDCustomer, value: s}}, nil
}

// ParsePhone reads a phone number an agent typed: E.164 (spaces and '-'
// ignored).
func ParsePhone(input string) (Identity, error) {
	s := strings.NewReplacer(" ", "", "-", "", "(", "", ")", "").Replace(strings.TrimSpace(input))
	if s == "" {
		return Identity{}, invalidKind(store.IDPhone, ReasonEmpty)
	}
	if callerKey(s) == store.WithheldCaller {
		return Identity{}, invalidKind(store.IDPhone, ReasonLength)
	}
	return Identity{&identity{kind: store.IDPhone, value: s}}, nil
}

// ParseEmail reads an e-mail address an agent typed.
func ParseEmail(input string) (Identity, error) {
	s := strings.ToLower(strings.TrimSpace(input))
	local, domain, ok := strings.Cut(s, "@")
	switch {
	case s == "":
		return Identity{}, invalidKind(store.IDEmail, ReasonEmpty)
	case !ok || local == "" || !strings.Contains(domain, ".") || len(s) > 254 ||
		strings.ContainsAny(s, " \t<>()[],;:\"\\") || strings.Count(s, "@") != 1:
		return Identity{}, invalidKind(store.IDEmail, ReasonLength)
	}
	return Identity{&identity{kind: store.IDEmail, value: s}}, nil
}

// ProfileKinds are the identifiers a broker profile can take, from its
// login hint: Idura only national identity numbers (sub:ssn), Auth0 only
// user ids (iss_sub), a plain-hint broker (Transmit, generic) user ids,
// phone numbers and e-mail addresses.
func ProfileKinds(p *ciba.Profile) []store.IDKind {
	switch p.LoginHint {
	case ciba.HintSubSSN:
		return []store.IDKind{store.IDNationalID}
	case ciba.HintIssSub:
		return []store.IDKind{store.IDCustomer}
	}
	return []store.IDKind{store.IDCustomer, store.IDCallerID, store.IDPhone, store.IDEmail}
}

// IVRKinds are the ways a caller can be identified in the IVR.
var IVRKinds = []store.IDKind{store.IDNationalID, store.IDCustomer, store.IDCallerID}

// CheckIdentify reports whether profile p can serve the ways ways of
// identifying callers (IVR_IDENTIFY): each must be one the IVR offers and
// the profile takes, with at most one typed way (national identity number
// or customer number).
func CheckIdentify(p *ciba.Profile, ways []store.IDKind) error {
	if len(ways) == 0 {
		return fmt.Errorf("no way to identify callers: use %s", kindList(ProfileKinds(p), IVRKinds))
	}
	typed := 0
	for _, w := range ways {
		if !contains(IVRKinds, w) {
			return fmt.Errorf("%q is not a way the IVR identifies callers: use %s", w, kindList(IVRKinds, nil))
		}
		if !contains(ProfileKinds(p), w) {
			return fmt.Errorf("the %s broker cannot identify a caller by %s: use %s", p.Name, w, kindList(ProfileKinds(p), IVRKinds))
		}
		if w != store.IDCallerID {
			typed++
		}
	}
	if typed > 1 {
		return fmt.Errorf("at most one of %s and %s", store.IDNationalID, store.IDCustomer)
	}
	return nil
}

// DefaultIdentify is how callers are identified with profile p unless
// configured: by national identity number at Idura, by customer number
// elsewhere, and at a plain-hint broker also by the number they call from.
func DefaultIdentify(p *ciba.Profile) []store.IDKind {
	switch p.LoginHint {
	case ciba.HintSubSSN:
		return []store.IDKind{store.IDNationalID}
	case ciba.HintIssSub:
		return []store.IDKind{store.IDCustomer}
	}
	return []store.IDKind{store.IDCallerID, store.IDCustomer}
}

// AgentKinds are the identifiers an agent can verify a caller with at
// profile p: the number they are calling from is not one (the agent types
// the number the caller reads out).
func AgentKinds(p *ciba.Profile) []store.IDKind {
	var out []store.IDKind
	for _, k := range ProfileKinds(p) {
		if k != store.IDCallerID {
			out = append(out, k)
		}
	}
	return out
}

func contains(ks []store.IDKind, k store.IDKind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// kindList names the kinds of a that b has too (all of a when b is nil).
func kindList(a, b []store.IDKind) string {
	var s []string
	for _, k := range a {
		if b == nil || contains(b, k) {
			s = append(s, string(k))
		}
	}
	return strings.Join(s, ", ")
}

// KindName names an identifier kind in words, for error texts and logs.
func KindName(k store.IDKind) string {
	switch k {
	case store.IDNationalID:
		return "national identity number"
	case store.IDCustomer:
		return "customer number"
	case store.IDCallerID:
		return "caller id"
	case store.IDPhone:
		return "phone number"
	case store.IDEmail:
		return "e-mail address"
	}
	return string(k)
}
