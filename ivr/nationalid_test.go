package ivr_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
)

// testNow is a fixed "today" for all parsing tests.
var testNow = time.Date(2026, 11, 21, 20, 0, 0, 0, time.UTC)

// seCheck returns the Luhn check digit of a personnummer's nine digits
// (written independently of the package's implementation).
func seCheck(nine string) string {
	sum := 0
	for i, r := range nine {
		v := int(r-'0') * (2 - i%2)
		sum += v/10 + v%10
	}
	return strconv.Itoa((10 - sum%10) % 10)
}

// se completes a 10-digit personnummer from its first nine digits.
func se(nine string) string { return nine + seCheck(nine) }

// noChecks returns both check digits of a fødselsnummer's first nine digits,
// or ok false when the first or second digit does not exist.
func noChecks(nine string) (string, bool) {
	ctl := func(s string, w []int) int {
		sum := 0
		for i := range s {
			sum += int(s[i]-'0') * w[i]
		}
		return (11 - sum%11) % 11 // 11 → 0; 10 means "no check digit"
	}
	k1 := ctl(nine, []int{3, 7, 6, 1, 8, 9, 4, 5, 2})
	if k1 == 10 {
		return "", false
	}
	k2 := ctl(nine+strconv.Itoa(k1), []int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2})
	if k2 == 10 {
		return "", false
	}
	return strconv.Itoa(k1) + strconv.Itoa(k2), true
}

// no completes an 11-digit fødselsnummer: the first individual number at or
// after the given one (in nine) for which check digits exist.
func no(t *testing.T, nine string) string {
	t.Helper()
	ind, _ := strconv.Atoi(nine[6:9])
	for i := 0; i < 100; i++ {
		n := nine[:6] + fmt.Sprintf("%03d", ind+i)
		if k, ok := noChecks(n); ok {
			return n + k
		}
	}
	t.Fatalf("no check digits for %s", nine)
	return ""
}

func TestParseNationalIDValid(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		country store.Country
		digits  string
	}{
		{"Swedish 12 digits (Skatteverket's example)", "198112189876", store.Sweden, "198112189876"},
		{"Swedish 10 digits expand to 1900s", "8112189876", store.Sweden, "198112189876"},
		{"Swedish with dash and spaces", " 811218-9876 ", store.Sweden, "198112189876"},
		{"Swedish with stars and hash", "*19811218*9876#", store.Sweden, "198112189876"},
		{"Swedish 10 digits leap day 2000", "0002291235", store.Sweden, "200002291235"},
		{"Swedish 10 digits earlier this year stays in 2000s", "2601011238", store.Sweden, "202601011238"},
		{"Swedish 10 digits born today stays in 2000s", se("261121123"), store.Sweden, "20" + se("261121123")},
		{"Swedish 10 digits tomorrow goes back a century", se("261122123"), store.Sweden, "19" + se("261122123")},
		{"Swedish 10 digits 99 is the 1900s", "9901011230", store.Sweden, "199901011230"},
		{"Swedish 12 digits 1968", "196802020575", store.Sweden, "196802020575"},
		{"samordningsnummer 10 digits", "7010632383", store.Sweden, "197010632383"},
		{"samordningsnummer 12 digits", "197010632383", store.Sweden, "197010632383"},
		{"samordningsnummer day 91 is the 31st", se("010191123"), store.Sweden, "20" + se("010191123")},
		{"Norwegian born 2007 (individual 501)", "01010750160", store.Norway, "01010750160"},
		{"Norwegian born 1950", "15085012344", store.Norway, "15085012344"},
		{"Norwegian born 1900", "01010001095", store.Norway, "01010001095"},
		{"Norwegian born 1999", "31129912319", store.Norway, "31129912319"},
		{"Norwegian born 1960 (individual 900)", "01016090073", store.Norway, "01016090073"},
		{"Norwegian leap day 2000", "29020050088", store.Norway, "29020050088"},
		{"Norwegian born 2025", "01012550185", store.Norway, "01012550185"},
		{"Norwegian D-number", "41010750154", store.Norway, "41010750154"},
		{"Norwegian with separators", "010107-50160", store.Norway, "01010750160"},
		{"Norwegian D-number day 71", no(t, "711299123"), store.Norway, no(t, "711299123")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := ivr.ParseNationalID(tt.input, testNow)
			if err != nil {
				t.Fatalf("ParseNationalID: %v", err)
			}
			if id.Country() != tt.country || id.Digits() != tt.digits {
				t.Errorf("got %s/%s, want %s/%s", id.Country(), id.Digits(), tt.country, tt.digits)
			}
			if id.IsZero() {
				t.Error("IsZero() = true for a parsed number")
			}
			again, err := ivr.ParseNationalID(id.Digits(), testNow)
			if err != nil || !again.Equal(id) {
				t.Errorf("re-parsing the canonical digits: %v, equal=%v", err, again.Equal(id))
			}
		})
	}
}

func TestParseNationalIDInvalid(t *testing.T) {
	// A prefix whose first Norwegian check digit would be 10 (remainder 1).
	var noFirstImpossible string
	for ind := 100; ind < 500; ind++ {
		n := fmt.Sprintf("150850%03d", ind)
		sum := 0
		for i, w := range []int{3, 7, 6, 1, 8, 9, 4, 5, 2} {
			sum += int(n[i]-'0') * w
		}
		if sum%11 == 1 {
			noFirstImpossible = n
			break
		}
	}
	if noFirstImpossible == "" {
		t.Fatal("found no impossible prefix")
	}
	valid := "01010750160"
	wrongK2 := valid[:10] + strconv.Itoa((int(valid[10]-'0')+1)%10)
	wrongK1 := valid[:9] + strconv.Itoa((int(valid[9]-'0')+1)%10) + valid[10:]

	tests := []struct {
		name   string
		input  string
		reason ivr.IDReason
	}{
		{"nothing", "", ivr.ReasonEmpty},
		{"only separators", " *-# ", ivr.ReasonEmpty},
		{"too short", "12345", ivr.ReasonLength},
		{"nine digits", "811218987", ivr.ReasonLength},
		{"thirteen digits", "1981121898760", ivr.ReasonLength},
		{"very long", strings.Repeat("1", 1000), ivr.ReasonLength},
		{"letters", "81121A9876", ivr.ReasonLength},
		{"Swedish wrong check digit", "8112189875", ivr.ReasonChecksum},
		{"Swedish 12 wrong check digit", "198112189871", ivr.ReasonChecksum},
		{"Swedish swapped digits", "8112189867", ivr.ReasonChecksum},
		{"Swedish month 13", se("811318987"), ivr.ReasonDate},
		{"Swedish month 00", se("810018987"), ivr.ReasonDate},
		{"Swedish day 00", se("811200987"), ivr.ReasonDate},
		{"Swedish day 32", se("811232987"), ivr.ReasonDate},
		{"Swedish day 60", se("811260987"), ivr.ReasonDate},
		{"samordningsnummer day 92", se("811292987"), ivr.ReasonDate},
		{"Swedish April 31", se("810431987"), ivr.ReasonDate},
		{"Swedish 29 February in a common year", se("810229987"), ivr.ReasonDate},
		{"Swedish 29 February 1900", "19" + se("000229123"), ivr.ReasonDate},
		{"Swedish 12 digits in the future", "20" + se("270101123"), ivr.ReasonDate},
		{"Swedish 12 digits tomorrow", "20" + se("261122123"), ivr.ReasonDate},
		{"Swedish 12 digits too old", "18" + se("500101123"), ivr.ReasonDate},
		{"Swedish 10 digits 29 February 2025", se("250229123"), ivr.ReasonDate},
		{"Norwegian wrong second check digit", wrongK2, ivr.ReasonChecksum},
		{"Norwegian wrong first check digit", wrongK1, ivr.ReasonChecksum},
		{"Norwegian first check digit impossible", noFirstImpossible + "00", ivr.ReasonChecksum},
		{"Norwegian day 32", no(t, "320150123"), ivr.ReasonDate},
		{"Norwegian day 72", no(t, "720150123"), ivr.ReasonDate},
		{"Norwegian month 13", no(t, "011350123"), ivr.ReasonDate},
		{"Norwegian 30 February", no(t, "300250123"), ivr.ReasonDate},
		{"Norwegian individual 750-899 with year 40-99 has no century", no(t, "010150800"), ivr.ReasonDate},
		{"Norwegian individual 500-749 with year 40-53 has no century", no(t, "010145600"), ivr.ReasonDate},
		{"Norwegian born in the future", no(t, "010127500"), ivr.ReasonDate},
		{"Norwegian born 1885 is too old", "01018560026", ivr.ReasonDate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := ivr.ParseNationalID(tt.input, testNow)
			if err == nil {
				t.Fatalf("ParseNationalID accepted it as %s", id)
			}
			var ie *ivr.InvalidIDError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v (%T) is not an *InvalidIDError", err, err)
			}
			if ie.Reason != tt.reason {
				t.Errorf("reason = %v, want %v", ie.Reason, tt.reason)
			}
			var iv ivr.InvalidIDError
			if !errors.As(err, &iv) || iv.Reason != tt.reason {
				t.Errorf("errors.As to a value: %v, reason %v", errors.As(err, &iv), iv.Reason)
			}
			if !id.IsZero() {
				t.Error("a rejected number is not the zero NationalID")
			}
			if regexp.MustCompile(`[0-9]`).MatchString(err.Error()) {
				t.Errorf("error text %q has digits", err)
			}
		})
	}
}

func TestInvalidIDErrorText(t *testing.T) {
	tests := []struct {
		reason ivr.IDReason
		want   string
	}{
		{ivr.ReasonEmpty, "ivr: national identity number: empty"},
		{ivr.ReasonLength, "ivr: national identity number: wrong length"},
		{ivr.ReasonDate, "ivr: national identity number: invalid date"},
		{ivr.ReasonChecksum, "ivr: national identity number: wrong check digit"},
	}
	for _, tt := range tests {
		if got := (&ivr.InvalidIDError{Reason: tt.reason}).Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// holder has the number in an unexported field, where fmt cannot call its
// methods.
type holder struct {
	id  ivr.NationalID
	ptr *ivr.NationalID
}

// Exported has it in exported fields.
type Exported struct {
	ID  ivr.NationalID
	Ptr *ivr.NationalID
}

func TestNationalIDPrintingIsMasked(t *testing.T) {
	tests := []struct {
		input  string
		masked string
	}{
		{"196802020575", "********-**75"},
		{"7010632383", "********-**83"},
		{"01010750160", "******-***60"},
		{"41010750154", "******-***54"},
	}
	for _, tt := range tests {
		t.Run(tt.masked, func(t *testing.T) {
			id, err := ivr.ParseNationalID(tt.input, testNow)
			if err != nil {
				t.Fatal(err)
			}
			full := id.Digits()
			if id.Masked() != tt.masked || id.String() != tt.masked {
				t.Errorf("Masked/String = %q/%q, want %q", id.Masked(), id.String(), tt.masked)
			}
			var logs bytes.Buffer
			slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "id", id, "ptr", &id)
			slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "id", id, slog.Any("h", holder{id, &id}), slog.Any("e", Exported{id, &id}))
			js, err := json.Marshal(map[string]any{"id": id, "e": Exported{id, &id}})
			if err != nil {
				t.Fatal(err)
			}
			txt, err := id.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			outputs := map[string]string{
				"Print":      fmt.Sprint(id),
				"%v":         fmt.Sprintf("%v", id),
				"%s":         fmt.Sprintf("%s", id),
				"%q":         fmt.Sprintf("%q", id),
				"%#v":        fmt.Sprintf("%#v", id),
				"%+v":        fmt.Sprintf("%+v", id),
				"%x":         fmt.Sprintf("%x", id),
				"%d":         fmt.Sprintf("%d", id),
				"%20s":       fmt.Sprintf("%20s", id),
				"pointer %v": fmt.Sprintf("%v", &id),
				"slice %v":   fmt.Sprintf("%v", []ivr.NationalID{id}),
				"holder %v":  fmt.Sprintf("%v", holder{id, &id}),
				"holder %+v": fmt.Sprintf("%+v", holder{id, &id}),
				"holder %#v": fmt.Sprintf("%#v", holder{id, &id}),
				"export %+v": fmt.Sprintf("%+v", Exported{id, &id}),
				"export %#v": fmt.Sprintf("%#v", Exported{id, &id}),
				"GoString":   id.GoString(),
				"slog":       logs.String(),
				"json":       string(js),
				"text":       string(txt),
				"LogValue":   id.LogValue().String(),
			}
			for name, out := range outputs {
				if strings.Contains(out, full) || strings.Contains(out, full[:8]) || strings.Contains(out, full[len(full)-6:]) {
					t.Errorf("%s leaks the number: %s", name, out)
				}
			}
			for _, name := range []string{"Print", "%v", "%s", "%+v", "pointer %v", "LogValue", "text"} {
				if outputs[name] != tt.masked {
					t.Errorf("%s = %q, want %q", name, outputs[name], tt.masked)
				}
			}
			if want := strconv.Quote(tt.masked); outputs["%q"] != want {
				t.Errorf("%%q = %s, want %s", outputs["%q"], want)
			}
			if want := `ivr.NationalID("` + tt.masked + `")`; outputs["%#v"] != want {
				t.Errorf("%%#v = %s, want %s", outputs["%#v"], want)
			}
			if want := fmt.Sprintf("%20s", tt.masked); outputs["%20s"] != want {
				t.Errorf("%%20s = %q, want %q", outputs["%20s"], want)
			}
			if !strings.Contains(outputs["json"], `"id":"`+tt.masked+`"`) {
				t.Errorf("json = %s, want the masked form", outputs["json"])
			}
		})
	}
}

func TestNationalIDZero(t *testing.T) {
	var id ivr.NationalID
	if !id.IsZero() || id.Digits() != "" || id.Country() != "" || id.String() != "" {
		t.Errorf("zero value: IsZero=%v Digits=%q Country=%q String=%q", id.IsZero(), id.Digits(), id.Country(), id.String())
	}
	if got := fmt.Sprintf("%v|%#v", id, id); got != `|ivr.NationalID("")` {
		t.Errorf("zero printed as %q", got)
	}
}

func TestNationalIDHash(t *testing.T) {
	id, err := ivr.ParseNationalID("8112189876", testNow)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("k1")
	m := hmac.New(sha256.New, key)
	m.Write([]byte("198112189876"))
	if got, want := id.Hash(key), hex.EncodeToString(m.Sum(nil)); got != want {
		t.Errorf("Hash = %s, want %s", got, want)
	}
	same, _ := ivr.ParseNationalID("19811218-9876", testNow)
	if id.Hash(key) != same.Hash(key) {
		t.Error("the 10- and 12-digit forms hash differently")
	}
	if id.Hash(key) == id.Hash([]byte("k2")) {
		t.Error("Hash ignores the key")
	}
}

func TestMaskPhone(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+46701234567", "+46 70 *** ** 67"},
		{"+4791234567", "+47 91 ** ** 67"},
		{"+14158675310", "+1 41 *** *** 10"},
		{"+358401234567", "+358 40 *** ** 67"}, {"+3584012345678", "+358 40 *** *** 78"},
		{"+4712345", "+47 *** 45"},
		{"anonymous", "withheld"},
		{"unknown", "withheld"},
		{"", "withheld"},
		{"+", "withheld"},
		{"client:alice", "withheld"},
		{"0701234567", "withheld"},
		{"+0701234567", "withheld"},
		{"+46 70 123 45 67", "withheld"},
		{"+1234567890123456", "withheld"},
	}
	for _, tt := range tests {
		if got := ivr.MaskPhone(tt.in); got != tt.want {
			t.Errorf("MaskPhone(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParseNationalID(f *testing.F) {
	for _, s := range []string{"", "198112189876", "8112189876", "01010750160", "41010750154", "7010632383",
		"811218-9876", "*#*", "0002291235", "12345678901234", "29020050088"} {
		f.Add(s)
	}
	digitRuns := regexp.MustCompile(`[0-9]{6,}`)
	f.Fuzz(func(t *testing.T, input string) {
		id, err := ivr.ParseNationalID(input, testNow)
		if err != nil {
			if !id.IsZero() {
				t.Fatal("error with a non-zero NationalID")
			}
			msg := err.Error()
			for _, run := range digitRuns.FindAllString(input, -1) {
				for i := 0; i+6 <= len(run); i++ {
					if strings.Contains(msg, run[i:i+6]) {
						t.Fatalf("error %q contains input digits", msg)
					}
				}
			}
			var ie *ivr.InvalidIDError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T is not an *InvalidIDError", err)
			}
			return
		}
		d := id.Digits()
		if want := map[store.Country]int{store.Sweden: 12, store.Norway: 11}[id.Country()]; len(d) != want {
			t.Fatalf("%s number has %d digits", id.Country(), len(d))
		}
		again, err := ivr.ParseNationalID(d, testNow)
		if err != nil || again.Digits() != d || again.Country() != id.Country() {
			t.Fatalf("canonical digits do not re-parse to themselves: %v", err)
		}
		if strings.Contains(id.String(), d[:len(d)-2]) {
			t.Fatal("String shows more than the last two digits")
		}
	})
}

func BenchmarkParseNationalID(b *testing.B) {
	for _, in := range []string{"8112189876", "198112189876", "01010750160"} {
		b.Run(in[:2]+"…", func(b *testing.B) {
			for b.Loop() {
				if _, err := ivr.ParseNationalID(in, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
