package cibatest

import (
	"strings"
	"unicode"
)

// Kinds of login hint (Request.HintType), which are also the kinds of
// identifier a User is found by.
const (
	HintSSN    = "ssn"     // Idura sub:ssn:<national id>
	HintUserID = "user_id" // Auth0 iss_sub sub, a Transmit user_id, a generic user id
	HintPhone  = "phone"   // Transmit: an E.164 phone number
	HintEmail  = "email"   // Transmit: an e-mail address
)

// maxHint bounds a plain login hint, in bytes.
const maxHint = 256

// userKey is the index key of an identifier of one kind.
func userKey(kind, value string) string {
	if kind == HintEmail {
		value = strings.ToLower(value)
	}
	return kind + ":" + value
}

// AddUser registers u under each identifier it has (NationalID, UserID,
// Phone, Email), replacing any user registered under the same one.
func (b *Broker) AddUser(u User) {
	b.mu.Lock()
	b.addUserLocked(u)
	b.mu.Unlock()
}

func (b *Broker) addUserLocked(u User) {
	for _, id := range []struct{ kind, v string }{
		{HintSSN, u.NationalID}, {HintUserID, u.UserID}, {HintPhone, u.Phone}, {HintEmail, u.Email},
	} {
		if id.v != "" {
			b.users[userKey(id.kind, id.v)] = u
		}
	}
}

// maskHint masks a login hint for the /sim view: a national id as today
// ("********-**75"), a phone keeping its country code, the next two digits
// and the last two ("+46 70 *** ** 67"), an e-mail keeping the first
// character and the domain ("a***@example.com"), a user id keeping an Auth0
// connection prefix and the last two characters ("auth0|******19").
func maskHint(kind, value string) string {
	switch kind {
	case HintSSN:
		return mask(value)
	case HintPhone:
		return maskPhone(value)
	case HintEmail:
		return maskEmail(value)
	}
	return maskUserID(value)
}

func maskPhone(p string) string {
	digits := strings.TrimPrefix(p, "+")
	if len(digits) < 8 {
		return "+" + strings.Repeat("*", max(len(digits)-2, 0)) + digits[max(len(digits)-2, 0):]
	}
	cc := 2
	if digits[0] == '1' || digits[0] == '7' { // NANP and Russia/Kazakhstan
		cc = 1
	}
	head, mid, tail := digits[:cc+2], digits[cc+2:len(digits)-2], digits[len(digits)-2:]
	var groups []string
	for len(mid) > 0 {
		n := min(3, len(mid))
		groups = append(groups, strings.Repeat("*", n))
		mid = mid[n:]
	}
	return "+" + head[:cc] + " " + head[cc:] + " " + strings.Join(groups, " ") + " " + tail
}

func maskEmail(e string) string {
	at := strings.LastIndexByte(e, '@')
	if at < 1 {
		return "***"
	}
	first := []rune(e[:at])[0]
	return string(first) + "***" + e[at:]
}

func maskUserID(id string) string {
	prefix := ""
	if i := strings.IndexByte(id, '|'); i >= 0 {
		prefix, id = id[:i+1], id[i+1:]
	}
	r := []rune(id)
	if len(r) <= 2 {
		return prefix + strings.Repeat("*", len(r))
	}
	return prefix + strings.Repeat("*", len(r)-2) + string(r[len(r)-2:])
}

// validPhone reports whether p is an E.164 number: "+", then 7 to 15
// digits, the first not 0.
func validPhone(p string) bool {
	d, ok := strings.CutPrefix(p, "+")
	return ok && len(d) >= 7 && len(d) <= 15 && d[0] != '0' && allDigits(d)
}

// validEmail is a plausibility check: one "@" with text on both sides, a
// dot in the domain, no spaces or control characters.
func validEmail(e string) bool {
	local, domain, ok := strings.Cut(e, "@")
	return ok && local != "" && len(domain) >= 3 && strings.Contains(domain, ".") &&
		!strings.Contains(domain, "@") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".") &&
		!strings.ContainsFunc(e, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

// validUserID is a plain user id: printable, no spaces, at most maxHint.
func validUserID(id string) bool {
	return id != "" && len(id) <= maxHint &&
		!strings.ContainsFunc(id, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) })
}
