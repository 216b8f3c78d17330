package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ivr/callerverify/ciba/cibatest"
)

// TestVerifyProgress: ivrd verify tells the operator on stderr where the
// request went, how long it may wait (it once printed -2535335h41m), and the
// word pair the moment it is known; the outcome is JSON on stdout.
func TestVerifyProgress(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, key := startSimBroker(t, dir, "ES256", cibatest.Config{}, nil)
	env := map[string]string{"CIBA_ISSUER": b.Issuer(), "CIBA_CLIENT_ID": "ivr", "CIBA_CLIENT_KEY": key}
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"verify", "--ssn", cibatest.NOApprove}, mapEnv(env), strings.NewReader(""), &stdout, &stderr)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, stderr.String())
	}
	var res struct {
		Status   string `json:"status"`
		WordPair string `json:"wordPair"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not the JSON result: %v\n%s", err, stdout.String())
	}
	progress := stderr.String()
	for _, want := range []string{"Sent to " + b.Issuer(), "waiting up to 15m0s", "Norwegian BankID", "word pair in the app: " + res.WordPair} {
		if !strings.Contains(progress, want) {
			t.Errorf("progress has no %q:\n%s", want, progress)
		}
	}
	if res.Status != "approved" || res.WordPair == "" || strings.Contains(progress, cibatest.NOApprove) {
		t.Errorf("result %+v; want approved with the word pair, and no full number on stderr", res)
	}
}
