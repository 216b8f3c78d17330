package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestPersonnummerAreValidAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for i := range 5000 {
		p := personnummer(i)
		if len(p) != 12 || seen[p] {
			t.Fatalf("personnummer(%d): got a duplicate or malformed number (len %d)", i, len(p))
		}
		seen[p] = true
		if luhn(p[2:11]) != int(p[11]-'0') {
			t.Fatalf("personnummer(%d): check digit wrong", i)
		}
	}
}

func TestMix(t *testing.T) {
	m, err := parseMix("approve=70,decline=20,noanswer=10")
	if err != nil {
		t.Fatal(err)
	}
	var got [3]int
	for i := range 100 {
		got[m.of(i)]++
	}
	if got != [3]int{70, 20, 10} {
		t.Errorf("outcomes of 100 users = %v, want [70 20 10]", got)
	}
	for _, bad := range []string{"approve=50", "approve=70,decline=20,noanswer=20", "yes=100", "approve=x"} {
		if _, err := parseMix(bad); err == nil {
			t.Errorf("parseMix(%q): got no error", bad)
		}
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	if _, err := parseRun([]string{"--host", "10.0.0.1"}, io.Discard); err == nil {
		t.Error("--host 10.0.0.1: got no error, want a refusal")
	}
}

// TestSmoke builds ivrd and runs 20 calls against it: every call must end
// with the outcome its user chose, and no event may be missing.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ivrd and runs it for ~15 s")
	}
	out := filepath.Join(t.TempDir(), "report.json")
	args := []string{"run", "--calls", "20", "--concurrency", "20", "--dashboards", "2", "--expiry", "6s",
		"--decide-after", "1s-2s", "--key-alg", "ES256", "--json", out}
	if err := run(t.Context(), args, t.Output(), t.Output()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep runReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	L := rep.Losses
	if L.CallsPlaced != 20 || L.CallErrors != 0 || L.NotEnqueued != 0 || L.WrongOutcome != 0 || L.VerMissing != 0 || L.VerNotFinal != 0 {
		t.Errorf("calls: got %+v, want 20 placed and no errors", L)
	}
	if L.EventsStored == 0 || L.EventsMissing != 0 || L.DashDisconnects != 0 {
		t.Errorf("events: %d stored, %d missing at dashboards, %d disconnects; want none missing", L.EventsStored, L.EventsMissing, L.DashDisconnects)
	}
	if rep.ApprovalToDash.N == 0 || rep.ApprovalToEar.N == 0 {
		t.Errorf("no end-to-end figures: %+v %+v", rep.ApprovalToDash, rep.ApprovalToEar)
	}
}
