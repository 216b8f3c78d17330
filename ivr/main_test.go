package ivr_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/ivr"
)

// suiteLogs collects the log output of every test in the package, so
// TestMain can check that no national identity number was ever logged.
var suiteLogs lockedBuffer

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger is the logger every test gives the code under test: it writes
// to the test's output and to the suite-wide buffer scanned in TestMain.
func testLogger(t testing.TB) *slog.Logger {
	w := io.MultiWriter(&suiteLogs, t.Output())
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestMain(m *testing.M) {
	code := m.Run()
	if leaks := nationalIDsIn(suiteLogs.String()); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d log line(s) contain a full national identity number:\n", len(leaks))
		for _, l := range leaks {
			fmt.Fprintln(os.Stderr, "  "+l)
		}
		code = 1
	}
	os.Exit(code)
}

var (
	digitRun = regexp.MustCompile(`\d{10,12}`)
	// twilioSID is a Twilio SID: its 32 hex digits can hold a run of
	// decimal digits that happens to parse as a national identity number.
	twilioSID = regexp.MustCompile(`\b[A-Z]{2}[0-9a-f]{32}\b`)
)

// nationalIDsIn returns the lines of logs that hold a test user's number or
// any run of 10–12 digits that parses as a valid national identity number.
func nationalIDsIn(logs string) []string {
	var known []string
	for _, u := range cibatest.Users() {
		known = append(known, u.NationalID, u.NationalID[2:]) // SE 12 and 10 digit forms too
	}
	known = append(known, unknownSE)
	now := time.Now()
	var bad []string
	for line := range strings.Lines(logs) {
		scan := twilioSID.ReplaceAllString(line, "SID")
		hit := false
		for _, k := range known {
			if len(k) >= 10 && strings.Contains(line, k) {
				hit = true
			}
		}
		for _, run := range digitRun.FindAllString(scan, -1) {
			if _, err := ivr.ParseNationalID(run, now); err == nil {
				hit = true
			}
		}
		if hit {
			bad = append(bad, strings.TrimSpace(line))
		}
	}
	return bad
}

func TestLeakCheckFindsNumbers(t *testing.T) {
	logs := "time=x level=INFO msg=ok call_sid=CA1\n" +
		"level=INFO msg=oops number=" + cibatest.SEApprove + "\n" +
		"level=INFO msg=oops2 n=" + cibatest.NOApprove[:6] + "-" + cibatest.NOApprove[6:] + " other=" + unknownSE + "\n" +
		"level=INFO msg=sid call_sid=CAe1005122591f97f991914d7c96852040\n" // a SID, not a number
	got := nationalIDsIn(logs)
	if len(got) != 2 {
		t.Errorf("nationalIDsIn found %d lines, want 2: %q", len(got), got)
	}
}

// testSID is a call SID shaped like Twilio's ("CA" and 32 hex digits),
// the same for the same name: webhooks with any other CallSid are refused.
func testSID(name string) string {
	h := sha256.Sum256([]byte(name))
	return "CA" + hex.EncodeToString(h[:16])
}
