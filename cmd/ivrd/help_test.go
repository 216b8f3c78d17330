package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestEveryCommandHelpExitsZero: asking a command for its usage is not an
// error, and the usage is printed.
func TestEveryCommandHelpExitsZero(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the output
	}{
		{[]string{"-h"}, "ivrd serve"},
		{[]string{"help"}, "ivrd serve"},
		{[]string{"serve", "-h"}, "IVR_PUBLIC_URL"},
		{[]string{"check", "-h"}, "CIBA_ISSUER"},
		{[]string{"demo", "-h"}, "-call"},
		{[]string{"sim", "-h"}, "-allow-remote"},
		{[]string{"verify", "-h"}, "-email"},
		{[]string{"verify", "--help"}, "-user"},
		{[]string{"keys", "-h"}, "keys generate"},
		{[]string{"keys", "generate", "-h"}, "-alg"},
		{[]string{"twilio", "-h"}, "twilio configure"},
		{[]string{"twilio", "configure", "-h"}, "-number"},
		{[]string{"agents", "-h"}, "agents add"},
		{[]string{"agents", "add", "-h"}, "-db"},
		{[]string{"healthcheck", "-h"}, "-url"},
		{[]string{"version"}, "ivrd "},
		{[]string{"--version"}, "go1."},
		{[]string{"migrate", "-h"}, "-from"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			empty := func(string) string { return "" }
			if err := run(context.Background(), tt.args, empty, strings.NewReader(""), &out, &out); err != nil {
				t.Fatalf("run = %v, want nil (exit 0)\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("output has no %q:\n%s", tt.want, out.String())
			}
		})
	}
}

// TestHelpListsEveryCommand: the usage names every command run knows.
func TestHelpListsEveryCommand(t *testing.T) {
	for _, cmd := range []string{"serve", "demo", "sim", "verify", "check", "twilio configure", "keys generate", "agents add", "healthcheck", "version", "migrate"} {
		if !strings.Contains(usage, "ivrd "+cmd) {
			t.Errorf("usage does not mention ivrd %s", cmd)
		}
	}
}
