package ivr

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// NationalID is a caller's Swedish personnummer (or samordningsnummer) or
// Norwegian fødselsnummer (or D-number), parsed and checked by
// ParseNationalID.
//
// Every printed form is masked: String, GoString, Format (all verbs), LogValue,
// MarshalJSON and MarshalText show only the last two digits. Digits is the
// only way to get the full number; only code building the login hint or
// storing the in-flight verification calls it.
//
// The number sits behind a pointer so that a NationalID held in an unexported
// field of a struct printed with %+v (where fmt cannot call methods) shows an
// address, not the digits. Compare NationalIDs with Equal, not ==.
type NationalID struct {
	p *nationalID
}

type nationalID struct {
	country store.Country
	digits  string // canonical: SE 12 digits, NO 11 digits
}

// IDReason says why a national identity number was rejected. The caller-facing
// prompt is chosen from it.
type IDReason int

const (
	ReasonEmpty    IDReason = iota + 1 // nothing was entered
	ReasonLength                       // not 10, 11 or 12 digits (or not digits at all)
	ReasonDate                         // the birth date part is not a real, past date
	ReasonChecksum                     // a check digit is wrong
)

// String returns the reason in words.
func (r IDReason) String() string {
	switch r {
	case ReasonEmpty:
		return "empty"
	case ReasonLength:
		return "wrong length"
	case ReasonDate:
		return "invalid date"
	case ReasonChecksum:
		return "wrong check digit"
	default:
		return "invalid"
	}
}

// InvalidIDError reports a rejected identifier: a national identity
// number, a customer number, a phone number or an e-mail address. Its text
// never contains what was entered.
//
// ParseNationalID returns a *InvalidIDError; errors.As works with a target of
// type **InvalidIDError or *InvalidIDError.
type InvalidIDError struct {
	// Kind is what was being read; "" means a national identity number.
	Kind   store.IDKind
	Reason IDReason
}

func (e InvalidIDError) Error() string {
	return "ivr: " + KindName(cmp.Or(e.Kind, store.IDNationalID)) + ": " + e.Reason.String()
}

// As lets errors.As fill a value target (var e InvalidIDError; errors.As(err, &e)).
func (e *InvalidIDError) As(target any) bool {
	if t, ok := target.(*InvalidIDError); ok {
		*t = *e
		return true
	}
	return false
}

func invalid(r IDReason) error { return &InvalidIDError{Reason: r} }

func invalidKind(k store.IDKind, r IDReason) error { return &InvalidIDError{Kind: k, Reason: r} }

// ParseNationalID parses what a caller typed by DTMF. Spaces, '-', '*', '+'
// and '#' are ignored. 12 and 10 digits are read as a Swedish personnummer
// (YYYYMMDDNNNC, YYMMDDNNNC; day+60 is a samordningsnummer), 11 digits as a
// Norwegian fødselsnummer (DDMMYYIIIKK; day+40 is a D-number). A 10-digit
// number gets the most recent century that does not put the birth date after
// now. The birth date must be a real date not after now.
func ParseNationalID(input string, now time.Time) (NationalID, error) {
	digits := make([]byte, 0, 12)
	for i := 0; i < len(input); i++ {
		c := input[i]
		switch {
		case c >= '0' && c <= '9':
			if len(digits) == 12 {
				return NationalID{}, invalid(ReasonLength)
			}
			digits = append(digits, c)
		case c == ' ' || c == '-' || c == '*' || c == '+' || c == '#' || c == '\t':
		default:
			return NationalID{}, invalid(ReasonLength)
		}
	}
	switch len(digits) {
	case 0:
		return NationalID{}, invalid(ReasonEmpty)
	case 10:
		return parseSwedish10(digits, now)
	case 12:
		return parseSwedish12(digits, now)
	case 11:
		return parseNorwegian(digits, now)
	default:
		return NationalID{}, invalid(ReasonLength)
	}
}

// num reads a run of ASCII digits as a number.
func num(b []byte) int {
	n := 0
	for _, c := range b {
		n = n*10 + int(c-'0')
	}
	return n
}

// realDate reports whether y-m-d exists in the calendar.
func realDate(y, m, d int) bool {
	if m < 1 || m > 12 || d < 1 {
		return false
	}
	return d <= time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// afterToday reports whether y-m-d is after now's calendar date.
func afterToday(y, m, d int, now time.Time) bool {
	ny, nm, nd := now.Date()
	if y != ny {
		return y > ny
	}
	if m != int(nm) {
		return m > int(nm)
	}
	return d > nd
}

// checkBirthDate accepts a real date that is not in the future and at most
// 130 years back.
func checkBirthDate(y, m, d int, now time.Time) bool {
	return realDate(y, m, d) && !afterToday(y, m, d, now) && y >= now.Year()-130
}

// swedishDay undoes the samordningsnummer offset.
func swedishDay(d int) int {
	if d > 60 {
		return d - 60
	}
	return d
}

func parseSwedish10(d []byte, now time.Time) (NationalID, error) {
	yy, m, day := num(d[0:2]), num(d[2:4]), swedishDay(num(d[4:6]))
	if m < 1 || m > 12 || day < 1 || day > 31 {
		return NationalID{}, invalid(ReasonDate)
	}
	y := now.Year()/100*100 + yy
	if afterToday(y, m, day, now) {
		y -= 100
	}
	full := make([]byte, 0, 12)
	full = append(full, byte('0'+y/1000), byte('0'+y/100%10))
	full = append(full, d...)
	return parseSwedish12(full, now)
}

func parseSwedish12(d []byte, now time.Time) (NationalID, error) {
	y, m, day := num(d[0:4]), num(d[4:6]), num(d[6:8])
	if day > 60 {
		day -= 60
	} else if day > 31 {
		return NationalID{}, invalid(ReasonDate)
	}
	if !checkBirthDate(y, m, day, now) {
		return NationalID{}, invalid(ReasonDate)
	}
	if luhn(d[2:11]) != int(d[11]-'0') {
		return NationalID{}, invalid(ReasonChecksum)
	}
	return NationalID{&nationalID{country: store.Sweden, digits: string(d)}}, nil
}

// The weights of a fødselsnummer's two check digits (the second are
// mod11Weights(10), written out as Skatteetaten gives them).
var (
	noWeights1 = [...]int{3, 7, 6, 1, 8, 9, 4, 5, 2}
	noWeights2 = [...]int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2}
)

// norwegianYear derives the full birth year from the two-digit year and the
// individual number (Skatteetaten's ranges).
func norwegianYear(yy, ind int) (int, bool) {
	switch {
	case ind <= 499:
		return 1900 + yy, true
	case ind >= 500 && ind <= 749 && yy >= 54:
		return 1800 + yy, true
	case ind >= 500 && yy <= 39:
		return 2000 + yy, true
	case ind >= 900 && yy >= 40:
		return 1900 + yy, true
	}
	return 0, false
}

func parseNorwegian(d []byte, now time.Time) (NationalID, error) {
	day, m, yy, ind := num(d[0:2]), num(d[2:4]), num(d[4:6]), num(d[6:9])
	if day > 40 {
		day -= 40 // D-number
	}
	y, ok := norwegianYear(yy, ind)
	if !ok || day > 31 || !checkBirthDate(y, m, day, now) {
		return NationalID{}, invalid(ReasonDate)
	}
	k1 := mod11(d[0:9], noWeights1[:])
	if k1 < 0 || k1 != int(d[9]-'0') {
		return NationalID{}, invalid(ReasonChecksum)
	}
	k2 := mod11(d[0:10], noWeights2[:])
	if k2 < 0 || k2 != int(d[10]-'0') {
		return NationalID{}, invalid(ReasonChecksum)
	}
	return NationalID{&nationalID{country: store.Norway, digits: string(d)}}, nil
}

// IsZero reports whether n holds no number.
func (n NationalID) IsZero() bool { return n.p == nil }

// Country returns the issuing country, or "" for the zero value.
func (n NationalID) Country() store.Country {
	if n.p == nil {
		return ""
	}
	return n.p.country
}

// Digits returns the full canonical number: 12 digits for Sweden, 11 for
// Norway. It is the only accessor of the full number; never log its result.
func (n NationalID) Digits() string {
	if n.p == nil {
		return ""
	}
	return n.p.digits
}

// Equal reports whether n and o hold the same number.
func (n NationalID) Equal(o NationalID) bool {
	return n.Country() == o.Country() && n.Digits() == o.Digits()
}

// Masked returns the number with all but the last two digits hidden, in the
// country's usual layout: "********-**75" (SE), "******-***75" (NO). The zero
// value gives "".
func (n NationalID) Masked() string {
	d := n.Digits()
	switch len(d) {
	case 12:
		return "********-**" + d[10:]
	case 11:
		return "******-***" + d[9:]
	}
	return ""
}

// String returns Masked.
func (n NationalID) String() string { return n.Masked() }

// GoString masks too: ivr.NationalID("********-**75").
func (n NationalID) GoString() string { return "ivr.NationalID(" + strconv.Quote(n.Masked()) + ")" }

// Format keeps every fmt verb masked: %#v prints GoString, every other verb
// formats the masked string.
func (n NationalID) Format(f fmt.State, verb rune) {
	formatMasked(f, verb, "ivr.NationalID", n.Masked())
}

// formatMasked formats a redacting type of name whose masked form is
// masked: %#v as name("masked"), the string verbs on masked, any other
// verb as a bad verb.
func formatMasked(f fmt.State, verb rune, name, masked string) {
	switch verb {
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, name+"("+strconv.Quote(masked)+")")
			return
		}
		fmt.Fprintf(f, fmt.FormatString(f, 's'), masked)
	case 's', 'q', 'x', 'X':
		fmt.Fprintf(f, fmt.FormatString(f, verb), masked)
	default:
		fmt.Fprintf(f, "%%!%c(%s=%s)", verb, name, masked)
	}
}

// LogValue logs the masked form.
func (n NationalID) LogValue() slog.Value { return slog.StringValue(n.Masked()) }

// MarshalJSON encodes the masked form.
func (n NationalID) MarshalJSON() ([]byte, error) { return json.Marshal(n.Masked()) }

// MarshalText encodes the masked form.
func (n NationalID) MarshalText() ([]byte, error) { return []byte(n.Masked()), nil }

// Hash returns the hex HMAC-SHA256 of the canonical digits under key: a
// stable, non-reversible reference to the number for storage at rest.
func (n NationalID) Hash(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(n.Digits()))
	return hex.EncodeToString(m.Sum(nil))
}

// MaskPhone masks an E.164 number for display, keeping the country code, the
// first two digits of the national number and the last two:
// "+46701234567" gives "+46 70 *** ** 67". Anything else ("anonymous",
// "client:alice", malformed numbers) gives "withheld".
func MaskPhone(e164 string) string {
	if len(e164) < 8 || len(e164) > 16 || e164[0] != '+' || e164[1] == '0' {
		return "withheld"
	}
	d := e164[1:]
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return "withheld"
		}
	}
	cc := countryCodeLen(d)
	nat := d[cc:]
	var b strings.Builder
	b.WriteString("+" + d[:cc] + " ")
	hidden := len(nat) - 2
	if len(nat) >= 7 {
		b.WriteString(nat[:2] + " ")
		hidden -= 2
	}
	for hidden > 0 {
		k := 3
		switch {
		case hidden == 4:
			k = 2
		case hidden < 3:
			k = hidden
		}
		b.WriteString(strings.Repeat("*", k) + " ")
		hidden -= k
	}
	b.WriteString(nat[len(nat)-2:])
	return b.String()
}

// countryCodeLen returns the length of the ITU-T E.164 country code that d
// starts with.
func countryCodeLen(d string) int {
	switch d[0] {
	case '1', '7':
		return 1
	}
	switch d[:2] {
	case "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49",
		"51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66",
		"81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98":
		return 2
	}
	return 3
}
