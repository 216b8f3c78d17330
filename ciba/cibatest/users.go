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
	// acknowledgement at 2 s, identification at 4 s) or 4 s (NO).
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

// User is a BankID user known to the broker.
type User struct {
	// NationalID is a 12-digit Swedish personnummer (YYYYMMDDNNNC) or an
	// 11-digit Norwegian fødselsnummer (DDMMYYIIIKK); its length decides the
	// country.
	NationalID string
	GivenName  string
	FamilyName string
	BirthDate  string // YYYY-MM-DD
	Script     Script
}

// Built-in test users: valid numbers (real dates, correct check digits)
// made up for this simulator, one per script and country.
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

// Users returns the built-in test users. Each call returns a new slice.
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
