package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestLoadServe(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, []byte("placeholder"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("tokfromfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := map[string]string{
		"IVR_PUBLIC_URL":     "https://ivr.example.com",
		"IVR_DB":             filepath.Join(dir, "ivr.db"),
		"IVR_HASH_KEY":       "000102030405060708090a0b0c0d0e0f",
		"TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
		"TWILIO_AUTH_TOKEN":  "tok",
		"CIBA_ISSUER":        "https://bank.idura.broker",
		"CIBA_CLIENT_ID":     "urn:my:application:identifier:1",
		"CIBA_CLIENT_KEY":    keyFile,
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range good {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr []string // every setting named in the error
	}{
		{name: "a complete configuration starts", env: good},
		{name: "everything missing names every setting", env: map[string]string{},
			wantErr: []string{"IVR_PUBLIC_URL", "IVR_DB", "IVR_HASH_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "CIBA_ISSUER", "CIBA_CLIENT_ID", "CIBA_CLIENT_KEY"}},
		{name: "plain http public URL off loopback", env: with("IVR_PUBLIC_URL", "http://ivr.example.com"), wantErr: []string{"IVR_PUBLIC_URL", "must be https"}},
		{name: "http on loopback is accepted", env: with("IVR_PUBLIC_URL", "http://127.0.0.1:8080", "CIBA_ISSUER", "http://localhost:8444")},
		{name: "unknown language", env: with("IVR_LANGUAGE", "no-NO"), wantErr: []string{"IVR_LANGUAGE", "nb-NO"}},
		{name: "unknown profile", env: with("CIBA_PROFILE", "okta"), wantErr: []string{"CIBA_PROFILE"}},
		{name: "key and secret both set", env: with("CIBA_CLIENT_SECRET", "s"), wantErr: []string{"CIBA_CLIENT_SECRET", "only one"}},
		{name: "unreadable key file", env: with("CIBA_CLIENT_KEY", filepath.Join(dir, "nope.pem")), wantErr: []string{"CIBA_CLIENT_KEY", "cannot read"}},
		{name: "bad listen address", env: with("IVR_LISTEN", "8080"), wantErr: []string{"IVR_LISTEN"}},
		{name: "bad dial number", env: with("IVR_DIAL_NUMBER", "0812345"), wantErr: []string{"IVR_DIAL_NUMBER"}},
		{name: "bad account SID", env: with("TWILIO_ACCOUNT_SID", "SK123"), wantErr: []string{"TWILIO_ACCOUNT_SID"}},
		{name: "no account SID: webhooks are checked against it", env: with("TWILIO_ACCOUNT_SID", ""), wantErr: []string{"TWILIO_ACCOUNT_SID"}},
		{name: "short hash key", env: with("IVR_HASH_KEY", "abcd"), wantErr: []string{"IVR_HASH_KEY"}},
		{name: "no hash key: it is no longer derived from the Twilio token", env: with("IVR_HASH_KEY", ""), wantErr: []string{"IVR_HASH_KEY", "missing"}},
		{name: "the auth token from a file", env: with("TWILIO_AUTH_TOKEN", "", "TWILIO_AUTH_TOKEN_FILE", tokenFile)},
		{name: "a secret and its file both set", env: with("TWILIO_AUTH_TOKEN_FILE", tokenFile), wantErr: []string{"TWILIO_AUTH_TOKEN", "only one"}},
		{name: "an unreadable secret file", env: with("TWILIO_AUTH_TOKEN", "", "IVR_HASH_KEY", "", "IVR_HASH_KEY_FILE", filepath.Join(dir, "nope")), wantErr: []string{"IVR_HASH_KEY_FILE", "TWILIO_AUTH_TOKEN"}},
		{name: "bad rate limit", env: with("IVR_RATE_LIMIT_WITHHELD", "lots"), wantErr: []string{"IVR_RATE_LIMIT_WITHHELD", "N/DURATION"}},
		{name: "bad log level", env: with("IVR_LOG_LEVEL", "loud"), wantErr: []string{"IVR_LOG_LEVEL"}},
		{name: "an auth token twilio-go would refuse", env: with("TWILIO_AUTH_TOKEN", "tok-en"), wantErr: []string{"TWILIO_AUTH_TOKEN", "letters and digits"}},
		{name: "a virtual Twilio's REST API", env: with("TWILIO_API_URL", "http://127.0.0.1:9999")},
		{name: "a Twilio REST API over plain http elsewhere", env: with("TWILIO_API_URL", "http://twilio.example"), wantErr: []string{"TWILIO_API_URL"}},
		{name: "bad trusted proxy", env: with("IVR_TRUSTED_PROXIES", "10.0.0.0/8,nginx"), wantErr: []string{"IVR_TRUSTED_PROXIES", "nginx"}},
		{name: "admin listener on the public port", env: with("IVR_ADMIN_LISTEN", ":8080"), wantErr: []string{"IVR_ADMIN_LISTEN"}},
		{name: "flags set rate limits", env: good, args: []string{"--rate-limit-global", "50/1m"}},
		{name: "Auth0 with customer numbers", env: with("CIBA_PROFILE", "auth0", "IVR_CUSTOMER_DIGITS", "8", "IVR_CUSTOMER_CHECK", "luhn", "IVR_CUSTOMER_USER_ID", "auth0|{digits}")},
		{name: "Transmit by caller id and customer number", env: with("CIBA_PROFILE", "transmit", "CIBA_CLIENT_KEY", "", "CIBA_CLIENT_SECRET", "s", "IVR_IDENTIFY", "caller_id, customer_number")},
		{name: "Idura cannot identify by caller id", env: with("IVR_IDENTIFY", "caller_id"), wantErr: []string{"IVR_IDENTIFY", "idura", "national_id"}},
		{name: "Auth0 cannot take national identity numbers", env: with("CIBA_PROFILE", "auth0", "IVR_IDENTIFY", "national_id"), wantErr: []string{"IVR_IDENTIFY", "auth0", "customer_number"}},
		{name: "an unknown way to identify", env: with("CIBA_PROFILE", "transmit", "IVR_IDENTIFY", "voiceprint"), wantErr: []string{"IVR_IDENTIFY", "voiceprint"}},
		{name: "two typed ways at once", env: with("CIBA_PROFILE", "generic", "IVR_IDENTIFY", "national_id,customer_number"), wantErr: []string{"IVR_IDENTIFY"}},
		{name: "ping mode at a broker that pings", env: with("CIBA_PROFILE", "generic", "CIBA_MODE", "ping")},
		{name: "ping mode at Idura, which polls only", env: with("CIBA_MODE", "ping"), wantErr: []string{"CIBA_MODE", "idura", "poll"}},
		{name: "push mode", env: with("CIBA_PROFILE", "generic", "CIBA_MODE", "push"), wantErr: []string{"CIBA_MODE", "push"}},
		{name: "bad customer number length", env: with("IVR_CUSTOMER_DIGITS", "12-6"), wantErr: []string{"IVR_CUSTOMER_DIGITS"}},
		{name: "bad check digit scheme", env: with("IVR_CUSTOMER_CHECK", "crc32"), wantErr: []string{"IVR_CUSTOMER_CHECK", "luhn"}},
		{name: "a user id template without the number", env: with("IVR_CUSTOMER_USER_ID", "auth0|"), wantErr: []string{"IVR_CUSTOMER_USER_ID", "{digits}"}},
		{name: "bad poll concurrency", env: with("IVR_POLL_CONCURRENCY", "0"), wantErr: []string{"IVR_POLL_CONCURRENCY"}},
		{name: "bad retention", env: with("IVR_RETENTION", "soon"), wantErr: []string{"IVR_RETENTION"}},
		{name: "flags override the environment", env: with("IVR_LANGUAGE", "xx"), args: []string{"--language", "nb-NO"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadServe(mapEnv(tt.env), tt.args, io.Discard)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("loadServe: %v", err)
				}
				if len(cfg.HashKey) < 16 {
					t.Errorf("hash key of %d bytes", len(cfg.HashKey))
				}
				return
			}
			if err == nil {
				t.Fatalf("loadServe succeeded, want an error naming %v", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "tok") && tt.env["TWILIO_AUTH_TOKEN"] == "tok" && strings.Contains(err.Error(), "=tok") {
				t.Errorf("error leaks the auth token: %v", err)
			}
		})
	}
}

func TestRedactAttr(t *testing.T) {
	tests := []struct{ key, in, want string }{
		{"msg", "number 196802020575 rejected", "number **********75 rejected"},
		{"digits", "1234", "[redacted]"},
		{"call_sid", "CA0123456789abcdef0123456789abcdef", "CA0123456789abcdef0123456789abcdef"},
		{"state", "verifying", "verifying"},
		{"from", "+46701234567", "+*********67"},
	}
	for _, tt := range tests {
		got := redactAttr(nil, slog.String(tt.key, tt.in))
		if got.Value.String() != tt.want {
			t.Errorf("redact %s=%q = %q, want %q", tt.key, tt.in, got.Value.String(), tt.want)
		}
	}
}

// TestEverySettingHasAFlag: the README promises a flag for every setting
// but the secrets; serve -h names each setting's variable.
func TestEverySettingHasAFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var help bytes.Buffer
	if _, err := loadServe(mapEnv(nil), []string{"-h"}, &help); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]bool{"TWILIO_AUTH_TOKEN": true, "CIBA_CLIENT_SECRET": true, "IVR_HASH_KEY": true}
	settings := regexp.MustCompile("(?m)^\\| `((?:IVR|CIBA|TWILIO)_[A-Z_]+)` \\|").FindAllStringSubmatch(string(readme), -1)
	if len(settings) < 20 {
		t.Fatalf("found %d settings in the README's table", len(settings))
	}
	for _, m := range settings {
		if !secrets[m[1]] && !strings.Contains(help.String(), "("+m[1]+")") {
			t.Errorf("%s has no flag in serve -h", m[1])
		}
	}
}
