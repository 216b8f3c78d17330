package cibatest_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ivr/callerverify/ciba/cibatest"
)

// luhnValid checks a number whose last digit is a Luhn check digit: a
// customer number, or the last ten digits of a Swedish personnummer.
func luhnValid(n string) bool {
	sum := 0
	for i := range len(n) {
		d := int(n[len(n)-1-i] - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// mod11OK checks both Norwegian check digits.
func mod11OK(n string) bool {
	check := func(digits string, weights []int) int {
		s := 0
		for i, w := range weights {
			s += int(digits[i]-'0') * w
		}
		k := 11 - s%11
		if k == 11 {
			k = 0
		}
		return k // 10 means no valid number
	}
	k1 := check(n, []int{3, 7, 6, 1, 8, 9, 4, 5, 2})
	k2 := check(n, []int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2})
	return k1 < 10 && k2 < 10 && int(n[9]-'0') == k1 && int(n[10]-'0') == k2
}

func TestChecksumsCatchErrors(t *testing.T) {
	// The validators themselves must be able to fail.
	if !luhnValid("6802020575") || luhnValid("6802020576") {
		t.Error("luhnValid disagrees with Idura's example 196802020575")
	}
	if mod11OK("01010012345") {
		t.Error("mod11OK accepted an invalid number")
	}
}

func TestUsersValid(t *testing.T) {
	scripts := map[string]cibatest.Script{
		cibatest.SEApprove: cibatest.ScriptApproveFast, cibatest.SEApproveSlow: cibatest.ScriptApproveSlow,
		cibatest.SEDecline: cibatest.ScriptDecline, cibatest.SENoAnswer: cibatest.ScriptNoAnswer, cibatest.SEManual: cibatest.ScriptManual,
		cibatest.NOApprove: cibatest.ScriptApproveFast, cibatest.NOApproveSlow: cibatest.ScriptApproveSlow,
		cibatest.NODecline: cibatest.ScriptDecline, cibatest.NONoAnswer: cibatest.ScriptNoAnswer, cibatest.NOManual: cibatest.ScriptManual,
	}
	users := cibatest.Users()
	if len(users) != len(scripts) {
		t.Fatalf("Users() has %d users, want %d", len(users), len(scripts))
	}
	seen := map[string]bool{}
	for _, u := range users {
		n := u.NationalID
		if seen[n] {
			t.Errorf("user %s listed twice", u.GivenName)
		}
		seen[n] = true
		if want, ok := scripts[n]; !ok || u.Script != want {
			t.Errorf("user %s: script %v, want %v", u.GivenName, u.Script, want)
		}
		var date time.Time
		var err error
		switch len(n) {
		case 12:
			date, err = time.Parse("20060102", n[:8])
			if !luhnValid(n[2:]) {
				t.Errorf("Swedish user %s: bad Luhn check digit", u.GivenName)
			}
		case 11:
			date, err = time.Parse("020106", n[:6])
			if date.Year() > 2030 { // two-digit years: individual digits 500-999 can mean 20xx
				date = date.AddDate(-100, 0, 0)
			}
			if !mod11OK(n) {
				t.Errorf("Norwegian user %s: bad mod-11 check digits", u.GivenName)
			}
		default:
			t.Errorf("user %s: %d digits", u.GivenName, len(n))
			continue
		}
		if err != nil {
			t.Errorf("user %s: not a real date: %v", u.GivenName, err)
			continue
		}
		if len(n) == 12 && date.Format(time.DateOnly) != u.BirthDate {
			t.Errorf("user %s: BirthDate %s does not match the number", u.GivenName, u.BirthDate)
		}
		if len(n) == 11 && date.Format("01-02") != u.BirthDate[5:] {
			t.Errorf("user %s: BirthDate %s does not match the number", u.GivenName, u.BirthDate)
		}
	}
}

func TestUsersFor(t *testing.T) {
	if !luhnValid("79927398713") || luhnValid("79927398710") {
		t.Fatal("luhnValid disagrees with the textbook example 79927398713")
	}
	if got, want := cibatest.UsersFor(""), cibatest.Users(); !slices.Equal(got, want) {
		t.Errorf("UsersFor(\"\") differs from Users()")
	}
	if got := cibatest.UsersFor(cibatest.ProfileIdura); !slices.Equal(got, cibatest.Users()) {
		t.Errorf("UsersFor(idura) differs from Users()")
	}
	if got := cibatest.UsersFor("okta"); got != nil {
		t.Errorf("UsersFor(okta) = %v, want nil", got)
	}
	scripts := map[string]map[string]cibatest.Script{
		cibatest.ProfileAuth0: {
			cibatest.Auth0Approve: cibatest.ScriptApproveFast, cibatest.Auth0ApproveSlow: cibatest.ScriptApproveSlow,
			cibatest.Auth0Decline: cibatest.ScriptDecline, cibatest.Auth0NoAnswer: cibatest.ScriptNoAnswer, cibatest.Auth0Manual: cibatest.ScriptManual,
		},
		cibatest.ProfileTransmit: {
			cibatest.TransmitApprove: cibatest.ScriptApproveFast, cibatest.TransmitApproveSlow: cibatest.ScriptApproveSlow,
			cibatest.TransmitDecline: cibatest.ScriptDecline, cibatest.TransmitNoAnswer: cibatest.ScriptNoAnswer, cibatest.TransmitManual: cibatest.ScriptManual,
		},
		cibatest.ProfileGeneric: {
			cibatest.GenericApprove: cibatest.ScriptApproveFast, cibatest.GenericApproveSlow: cibatest.ScriptApproveSlow,
			cibatest.GenericDecline: cibatest.ScriptDecline, cibatest.GenericNoAnswer: cibatest.ScriptNoAnswer, cibatest.GenericManual: cibatest.ScriptManual,
		},
	}
	transmit := map[string][2]string{ // user id -> phone, e-mail
		cibatest.TransmitApprove:     {cibatest.TransmitApprovePhone, cibatest.TransmitApproveEmail},
		cibatest.TransmitApproveSlow: {cibatest.TransmitApproveSlowPhone, cibatest.TransmitApproveSlowEmail},
		cibatest.TransmitDecline:     {cibatest.TransmitDeclinePhone, cibatest.TransmitDeclineEmail},
		cibatest.TransmitNoAnswer:    {cibatest.TransmitNoAnswerPhone, cibatest.TransmitNoAnswerEmail},
		cibatest.TransmitManual:      {cibatest.TransmitManualPhone, cibatest.TransmitManualEmail},
	}
	seen := map[string]bool{}
	for profile, want := range scripts {
		users := cibatest.UsersFor(profile)
		if len(users) != len(want) {
			t.Errorf("%s: %d users, want %d", profile, len(users), len(want))
		}
		for _, u := range users {
			number := strings.TrimPrefix(u.UserID, cibatest.Auth0UserIDPrefix)
			if (profile == cibatest.ProfileAuth0) != strings.HasPrefix(u.UserID, cibatest.Auth0UserIDPrefix) {
				t.Errorf("%s user %s: id %q, want the auth0| prefix exactly at Auth0", profile, u.GivenName, u.UserID)
			}
			if len(number) != 8 || strings.Trim(number, "0123456789") != "" || !luhnValid(number) {
				t.Errorf("%s user %s: %q is not 8 digits with a Luhn check digit", profile, u.GivenName, number)
			}
			if seen[number] {
				t.Errorf("number %s used twice", number)
			}
			seen[number] = true
			if s, ok := want[number]; !ok || s != u.Script {
				t.Errorf("%s user %s: script %v, want %v", profile, u.GivenName, u.Script, s)
			}
			if u.GivenName == "" || u.FamilyName == "" || u.NationalID != "" {
				t.Errorf("%s user %+v: want a name and no national id", profile, u)
			}
			switch profile {
			case cibatest.ProfileTransmit:
				pe := transmit[number]
				if u.Phone != pe[0] || u.Email != pe[1] || !strings.HasPrefix(u.Phone, "+467017406") || !strings.HasSuffix(u.Email, "@example.com") {
					t.Errorf("transmit user %s: phone %q, e-mail %q; want %v, a fiction-range number and @example.com", u.GivenName, u.Phone, u.Email, pe)
				}
			case cibatest.ProfileAuth0:
				if !strings.HasSuffix(u.Email, "@example.com") || u.Phone != "" {
					t.Errorf("auth0 user %s: e-mail %q, phone %q", u.GivenName, u.Email, u.Phone)
				}
			}
		}
	}
}
