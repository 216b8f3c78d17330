package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ivr/callerverify/ciba/cibatest"
)

// TestDemoCall runs `ivrd demo --call` end to end: the real binary's wiring,
// real HTTP on loopback, the simulator broker, signed webhooks. It takes the
// simulator's scripted time (a few seconds), not a sleep.
func TestDemoCall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs whole calls in real time")
	}
	tests := []struct {
		name     string
		profile  string
		number   string
		language string
		wantCode int
		want     []string
	}{
		{"Swedish caller approves", "idura", cibatest.SEApprove, "sv-SE", 0, []string{"BankID", "Astrid", "Outcome: verified"}},
		{"Norwegian caller hears the word pair and approves", "idura", cibatest.NOApprove, "nb-NO", 0, []string{"Kari", "Outcome: verified"}},
		{"Swedish caller declines", "idura", cibatest.SEDecline, "en-US", 1, []string{"Outcome: unverified"}},
		{"Auth0: a customer number, approved in Guardian", "auth0", cibatest.Auth0Approve, "en-US", 0, []string{"customer number", "Guardian app", "Maria", "Outcome: verified"}},
		{"Auth0: declined in Guardian", "auth0", cibatest.Auth0Decline, "en-US", 1, []string{"wasn't approved", "Outcome: unverified"}},
		{"Transmit: the phone they call from", "transmit", cibatest.TransmitApprovePhone, "en-US", 0, []string{"press 1", "text message with a link", "Johan", "Outcome: verified"}},
		{"Transmit: a customer number", "transmit", cibatest.TransmitApprove, "sv-SE", 0, []string{"kundnummer", "Johan", "Outcome: verified"}},
		{"generic CIBA: a customer number", "generic", cibatest.GenericApprove, "en-US", 0, []string{"customer number", "Anna", "Outcome: verified"}},
		{"generic CIBA in ping mode: the broker notifies", "generic --mode ping", cibatest.GenericApprove, "en-US", 0, []string{"Anna", "Outcome: verified"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			var out, errOut bytes.Buffer
			err := run(ctx, append([]string{"demo", "--listen", "127.0.0.1:0", "--language", tt.language, "--call", tt.number, "--profile"}, strings.Fields(tt.profile)...), mapEnv(nil), strings.NewReader(""), &out, &errOut)
			code := 0
			if err != nil {
				var ec exitCode
				if !errors.As(err, &ec) {
					t.Fatalf("demo --call: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
				}
				code = int(ec)
			}
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d\n%s", code, tt.wantCode, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("transcript lacks %q:\n%s", w, out.String())
				}
			}
			if !strings.HasPrefix(tt.number, "+") && strings.Contains(out.String()+errOut.String(), tt.number) {
				t.Errorf("the full number appears in the output")
			}
		})
	}
}
