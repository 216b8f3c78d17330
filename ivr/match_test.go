package ivr_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/ivr"
)

func TestMatchToken(t *testing.T) {
	national := func(number string) ivr.Identity {
		t.Helper()
		n, err := ivr.ParseNationalID(number, time.Now())
		if err != nil {
			t.Fatalf("ParseNationalID(%s): %v", number, err)
		}
		return ivr.NationalIdentity(n)
	}
	must := func(id ivr.Identity, err error) ivr.Identity {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	se, no := national(cibatest.SEApprove), national(cibatest.NOApprove)
	se10 := cibatest.SEApprove[2:]
	phone := must(ivr.ParsePhone("+46701234567"))
	email := must(ivr.ParseEmail("Chloe.Martin@example.com"))
	user := must(ivr.ParseUserID("auth0|31005051"))
	tests := []struct {
		name    string
		id      ivr.Identity
		claims  string
		wantErr string // "" = match
	}{
		{"Swedish ssn", se, `{"ssn":"` + cibatest.SEApprove + `"}`, ""},
		{"Swedish ssn with a separator", se, `{"ssn":"` + cibatest.SEApprove[:8] + "-" + cibatest.SEApprove[8:] + `"}`, ""},
		{"Swedish ssn in 10 digits", se, `{"ssn":"` + se10 + `"}`, ""},
		{"another Swedish ssn", se, `{"ssn":"` + cibatest.SEDecline + `"}`, "differs"},
		{"Norwegian socialno", no, `{"socialno":"` + cibatest.NOApprove + `"}`, ""},
		{"another Norwegian socialno", no, `{"socialno":"` + cibatest.NOManual + `"}`, "differs"},
		{"ssn before socialno", no, `{"ssn":"` + cibatest.SEApprove + `","socialno":"` + cibatest.NOApprove + `"}`, "differs"},
		{"no national identity number", se, `{"name":"Astrid Lindqvist"}`, "no national identity number"},
		{"empty ssn", se, `{"ssn":""}`, "no national identity number"},
		{"ssn not a string", se, `{"ssn":198503122387}`, "unreadable"},
		{"customer number: the subject", user, `{"sub":"auth0|31005051"}`, ""},
		{"customer number: another subject", user, `{"sub":"auth0|31001019"}`, "differs"},
		{"phone: the same number", phone, `{"phone_number":"+46701234567"}`, ""},
		{"phone: no phone claim", phone, `{}`, ""},
		{"phone: another number", phone, `{"phone_number":"+46709999999"}`, "differs"},
		{"e-mail in another case", email, `{"email":"CHLOE.MARTIN@example.com"}`, ""},
		{"e-mail: no e-mail claim", email, `{}`, ""},
		{"e-mail: another address", email, `{"email":"eve@example.com"}`, "differs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := ciba.NewIDToken([]byte(tt.claims))
			if err != nil {
				t.Fatal(err)
			}
			_, err = ivr.MatchToken(tok, tt.id, ivr.CustomerRules{})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("MatchToken = %v, want a match", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("MatchToken = %v, want an error about %q", err, tt.wantErr)
			}
			if err != nil {
				for _, number := range []string{cibatest.SEApprove, se10, cibatest.NOApprove} {
					if strings.Contains(err.Error(), number) {
						t.Errorf("error %q contains a national identity number", err)
					}
				}
			}
		})
	}
}

func TestTokenClaims(t *testing.T) {
	tok, err := ciba.NewIDToken([]byte(`{"sub":"s","ssn":"` + cibatest.SEApprove + `","name":"Terne Paulsen","givenname":"Terne","surname":"Paulsen","country":"SE","identityscheme":"sebankid"}`))
	if err != nil {
		t.Fatal(err)
	}
	se, _ := ivr.ParseNationalID(cibatest.SEApprove, time.Now())
	c, err := ivr.MatchToken(tok, ivr.NationalIdentity(se), ivr.CustomerRules{})
	if err != nil {
		t.Fatal(err)
	}
	if c.GivenName != "Terne" || c.FamilyName != "Paulsen" || c.Name != "Terne Paulsen" || c.Country != "SE" || c.NationalID() != cibatest.SEApprove {
		t.Errorf("claims = %+v", c)
	}
	// The OpenID Connect names win over Idura's older ones.
	tok, _ = ciba.NewIDToken([]byte(`{"given_name":"A","givenname":"B","family_name":"C","surname":"D"}`))
	var both ivr.TokenClaims
	if err := tok.Claims(&both); err != nil || both.GivenName != "A" || both.FamilyName != "C" {
		t.Errorf("claims = %+v, %v", both, err)
	}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%d", c), fmt.Sprintf("%t", c), c.LogValue().String()} {
		if strings.Contains(s, cibatest.SEApprove) || strings.Contains(s, "Terne") {
			t.Errorf("%q shows personal data", s)
		}
	}
}
