package cibatest

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// Script is how a test user answers a request, counted from the moment the
// request was created.
type Script int

const (
	// ScriptManual waits for Open, Acknowledge, Approve or Decline (the Go
	// methods or the /sim HTTP API) until the request expires.
	ScriptManual Script = iota
	// ScriptApproveFast approves after 6 s (SE: first interaction at 0 s,
	// acknowledgement at 2 s, identification at 4 s) or 4 s (NO and the
	// auth0, transmit and generic profiles).
	ScriptApproveFast
	// ScriptApproveSlow approves after 60 s (SE: acknowledgement at 20 s,
	// identification at 40 s).
	ScriptApproveSlow
	// ScriptDecline declines after 4 s (SE: acknowledgement at 2 s).
	ScriptDecline
	// ScriptNoAnswer never opens the app: the request expires.
	ScriptNoAnswer
)

// String names the script.
func (s Script) String() string {
	switch s {
	case ScriptManual:
		return "manual"
	case ScriptApproveFast:
		return "approve-fast"
	case ScriptApproveSlow:
		return "approve-slow"
	case ScriptDecline:
		return "decline"
	case ScriptNoAnswer:
		return "no-answer"
	}
	return "unknown"
}

// User is a user known to the broker: a BankID user (idura profile) found
// by NationalID, or a user of the other profiles found by UserID, Phone or
// Email.
type User struct {
	// NationalID is a 12-digit Swedish personnummer (YYYYMMDDNNNC) or an
	// 11-digit Norwegian fødselsnummer (DDMMYYIIIKK); its length decides the
	// country. Idura users only.
	NationalID string
	// UserID is the user's id at an auth0, transmit or generic broker:
	// Auth0's "auth0|<customer number>", or the plain customer number.
	UserID string
	// Phone is an E.164 number ("+46701740611") and Email an address, by
	// which a Transmit user can be named too; Email is also an Auth0 and
	// generic ID token claim.
	Phone      string
	Email      string
	GivenName  string
	FamilyName string
	BirthDate  string // YYYY-MM-DD
	Script     Script
}

// key is the user's identity for superseding: the first identifier set.
func (u User) key() string {
	switch {
	case u.NationalID != "":
		return HintSSN + ":" + u.NationalID
	case u.UserID != "":
		return HintUserID + ":" + u.UserID
	case u.Phone != "":
		return HintPhone + ":" + u.Phone
	}
	return HintEmail + ":" + strings.ToLower(u.Email)
}

func (u User) name() string { return strings.TrimSpace(u.GivenName + " " + u.FamilyName) }

// Built-in test users of the idura profile: valid numbers (real dates,
// correct check digits) made up for this simulator, one per script and
// country.
const (
	SEApprove     = "198503122387" // approves after 6 s
	SEApproveSlow = "197208014576" // approves after 60 s
	SEDecline     = "199005286639" // declines after 4 s
	SENoAnswer    = "196411178129" // never answers
	SEManual      = "200109060194" // waits for the sim API

	NOApprove     = "15038541215" // approves after 4 s
	NOApproveSlow = "02077241216" // approves after 60 s
	NODecline     = "28119041386" // declines after 4 s
	NONoAnswer    = "17116441284" // never answers
	NOManual      = "06090151388" // waits for the sim API
)

// Test users of the auth0, transmit and generic profiles. Their numbers are
// 8 digits, the last a Luhn check digit over the first seven, so a service can
// check a typed number. They answer like the Norwegian users: approve after
// 4 s (slow: 60 s), decline after 4 s, never, or by hand.
const (
	// Auth0 customer numbers; the Auth0 user id is "auth0|" + number.
	Auth0Approve     = "31001019" // approves after 4 s
	Auth0ApproveSlow = "31002025" // approves after 60 s
	Auth0Decline     = "31003031" // declines after 4 s
	Auth0NoAnswer    = "31004047" // never answers
	Auth0Manual      = "31005051" // waits for the sim API

	// Transmit (Mosaic) user ids, and the users' phones and e-mails, by
	// each of which a request can name them. The phones are in the range
	// Sweden's PTS reserves for fiction (070-1740605 to 070-1740699).
	TransmitApprove          = "52001013" // approves after 4 s
	TransmitApprovePhone     = "+46701740611"
	TransmitApproveEmail     = "johan.andersson@example.com"
	TransmitApproveSlow      = "52002029" // approves after 60 s
	TransmitApproveSlowPhone = "+46701740622"
	TransmitApproveSlowEmail = "karin.berg@example.com"
	TransmitDecline          = "52003035" // declines after 4 s
	TransmitDeclinePhone     = "+46701740633"
	TransmitDeclineEmail     = "oskar.dahl@example.com"
	TransmitNoAnswer         = "52004041" // never answers
	TransmitNoAnswerPhone    = "+46701740644"
	TransmitNoAnswerEmail    = "maja.ekstrom@example.com"
	TransmitManual           = "52005055" // waits for the sim API
	TransmitManualPhone      = "+46701740655"
	TransmitManualEmail      = "nils.forsberg@example.com"

	// Generic (CIBA Core) user ids.
	GenericApprove     = "73001018" // approves after 4 s
	GenericApproveSlow = "73002024" // approves after 60 s
	GenericDecline     = "73003030" // declines after 4 s
	GenericNoAnswer    = "73004046" // never answers
	GenericManual      = "73005050" // waits for the sim API
)

// Auth0UserIDPrefix is the prefix of the Auth0 test users' ids (their
// database connection): "auth0|" + customer number.
const Auth0UserIDPrefix = "auth0|"

// UsersFor returns the built-in test users of a profile: Users for
// ProfileIdura (or ""), nil for an unknown profile. Each call returns a new
// slice.
func UsersFor(profile string) []User {
	switch profile {
	case "", ProfileIdura:
		return Users()
	case ProfileAuth0:
		a := func(n, given, family, email string, s Script) User {
			return User{UserID: Auth0UserIDPrefix + n, Email: email, GivenName: given, FamilyName: family, Script: s}
		}
		return []User{
			a(Auth0Approve, "Maria", "Garcia", "maria.garcia@example.com", ScriptApproveFast),
			a(Auth0ApproveSlow, "James", "Carter", "james.carter@example.com", ScriptApproveSlow),
			a(Auth0Decline, "Priya", "Patel", "priya.patel@example.com", ScriptDecline),
			a(Auth0NoAnswer, "Liam", "Murphy", "liam.murphy@example.com", ScriptNoAnswer),
			a(Auth0Manual, "Chloe", "Martin", "chloe.martin@example.com", ScriptManual),
		}
	case ProfileTransmit:
		return []User{
			{UserID: TransmitApprove, Phone: TransmitApprovePhone, Email: TransmitApproveEmail, GivenName: "Johan", FamilyName: "Andersson", Script: ScriptApproveFast},
			{UserID: TransmitApproveSlow, Phone: TransmitApproveSlowPhone, Email: TransmitApproveSlowEmail, GivenName: "Karin", FamilyName: "Berg", Script: ScriptApproveSlow},
			{UserID: TransmitDecline, Phone: TransmitDeclinePhone, Email: TransmitDeclineEmail, GivenName: "Oskar", FamilyName: "Dahl", Script: ScriptDecline},
			{UserID: TransmitNoAnswer, Phone: TransmitNoAnswerPhone, Email: TransmitNoAnswerEmail, GivenName: "Maja", FamilyName: "Ekström", Script: ScriptNoAnswer},
			{UserID: TransmitManual, Phone: TransmitManualPhone, Email: TransmitManualEmail, GivenName: "Nils", FamilyName: "Forsberg", Script: ScriptManual},
		}
	case ProfileGeneric:
		return []User{
			{UserID: GenericApprove, GivenName: "Anna", FamilyName: "Virtanen", Script: ScriptApproveFast},
			{UserID: GenericApproveSlow, GivenName: "Mikko", FamilyName: "Korhonen", Script: ScriptApproveSlow},
			{UserID: GenericDecline, GivenName: "Laura", FamilyName: "Nieminen", Script: ScriptDecline},
			{UserID: GenericNoAnswer, GivenName: "Jussi", FamilyName: "Mäkinen", Script: ScriptNoAnswer},
			{UserID: GenericManual, GivenName: "Aino", FamilyName: "Laine", Script: ScriptManual},
		}
	}
	return nil
}

// Users returns the built-in test users of the idura profile. Each call
// returns a new slice.
func Users() []User {
	return []User{
		{NationalID: SEApprove, GivenName: "Astrid", FamilyName: "Lindqvist", BirthDate: "1985-03-12", Script: ScriptApproveFast},
		{NationalID: SEApproveSlow, GivenName: "Bengt", FamilyName: "Sjöberg", BirthDate: "1972-08-01", Script: ScriptApproveSlow},
		{NationalID: SEDecline, GivenName: "Cecilia", FamilyName: "Nyström", BirthDate: "1990-05-28", Script: ScriptDecline},
		{NationalID: SENoAnswer, GivenName: "David", FamilyName: "Ek", BirthDate: "1964-11-17", Script: ScriptNoAnswer},
		{NationalID: SEManual, GivenName: "Elsa", FamilyName: "Holm", BirthDate: "2001-09-06", Script: ScriptManual},
		{NationalID: NOApprove, GivenName: "Kari", FamilyName: "Nordmann", BirthDate: "1985-03-15", Script: ScriptApproveFast},
		{NationalID: NOApproveSlow, GivenName: "Ola", FamilyName: "Nordmann", BirthDate: "1972-07-02", Script: ScriptApproveSlow},
		{NationalID: NODecline, GivenName: "Ingrid", FamilyName: "Hansen", BirthDate: "1990-11-28", Script: ScriptDecline},
		{NationalID: NONoAnswer, GivenName: "Per", FamilyName: "Olsen", BirthDate: "1964-11-17", Script: ScriptNoAnswer},
		{NationalID: NOManual, GivenName: "Sigrid", FamilyName: "Bø", BirthDate: "2001-09-06", Script: ScriptManual},
	}
}

// country is "SE" for 12 digits, "NO" for 11, "" otherwise.
func country(nationalID string) string {
	if !allDigits(nationalID) {
		return ""
	}
	switch len(nationalID) {
	case 12:
		return "SE"
	case 11:
		return "NO"
	}
	return ""
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// mask keeps only the last two digits: "********-**75" (SE),
// "******-***75" (NO).
func mask(nationalID string) string {
	n := len(nationalID)
	if n < 4 {
		return strings.Repeat("*", n)
	}
	tail := nationalID[n-2:]
	switch n {
	case 12:
		return "********-**" + tail
	case 11:
		return "******-***" + tail
	}
	return strings.Repeat("*", n-2) + tail
}

// birthDate derives YYYY-MM-DD from the number when the user has none.
func (u User) birthDate() string {
	if u.BirthDate != "" {
		return u.BirthDate
	}
	id := u.NationalID
	var s string
	switch country(id) {
	case "SE":
		s = id[:4] + "-" + id[4:6] + "-" + id[6:8]
	case "NO":
		century := "19"
		if id[6] >= '5' && id[4:6] < "40" {
			century = "20"
		}
		s = century + id[4:6] + "-" + id[2:4] + "-" + id[0:2]
	default:
		return ""
	}
	if _, err := time.Parse(time.DateOnly, s); err != nil {
		return ""
	}
	return s
}

// subject is a stable GUID-like sub for the user at this issuer, shaped like
// Idura's "{bb9c2364-dfae-44f3-bcfd-999053d94f9e}".
func subject(issuer, nationalID string) (sub, nameID string) {
	h := sha256.Sum256([]byte(issuer + "\x00" + nationalID))
	x := hex.EncodeToString(h[:16])
	return "{" + x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32] + "}", x
}
