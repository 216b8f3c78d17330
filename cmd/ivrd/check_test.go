package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ivr/callerverify/ciba/cibatest"
)

// TestCheckNeedsOnlyTheBrokerSettings: ivrd check reaches the broker with
// the CIBA_* settings alone, says what serve would also need, and explains
// a refused client authentication with what to do about it.
func TestCheckNeedsOnlyTheBrokerSettings(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.pem")
	var jwks bytes.Buffer
	if err := run(t.Context(), []string{"keys", "generate", "--out", keyFile}, mapEnv(nil), strings.NewReader(""), &jwks, &bytes.Buffer{}); err != nil {
		t.Fatalf("keys generate: %v", err)
	}
	// The broker fetches our public keys from a JWKS URL, as from serve's.
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks.Bytes())
	}))
	defer keys.Close()
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	defer srv.Close()
	b, err := cibatest.New(cibatest.Config{Issuer: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = b
	if err := b.RegisterClient(cibatest.Client{ID: "ivr", JWKSURL: keys.URL}); err != nil {
		t.Fatal(err)
	}
	broker := map[string]string{"CIBA_ISSUER": srv.URL, "CIBA_CLIENT_ID": "ivr", "CIBA_CLIENT_KEY": keyFile}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range broker {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr bool
		want    []string
	}{
		{"the broker settings alone", broker, false, []string{"ok    broker discovery", "ok    client authentication accepted",
			"note  ivrd serve would also need", "TWILIO_AUTH_TOKEN", "IVR_DB", "All checks passed."}},
		{"a client the broker does not know", with("CIBA_CLIENT_ID", "someone-else"), true, []string{"FAIL  client authentication",
			"register the JWKS printed by `ivrd keys generate`", "CIBA_CLIENT_ID"}},
		{"a database directory that does not exist", with("IVR_DB", filepath.Join(dir, "nope", "ivr.db")), true, []string{"FAIL  database", "does not exist"}},
		{"a database that works", with("IVR_DB", filepath.Join(dir, "ivr.db")), false, []string{"ok    database"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(t.Context(), []string{"check"}, mapEnv(tt.env), strings.NewReader(""), &out, &errOut)
			if (err != nil) != tt.wantErr {
				t.Errorf("check = %v, want error %v\n%s", err, tt.wantErr, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
	t.Run("no issuer names the setting", func(t *testing.T) {
		err := run(t.Context(), []string{"check"}, mapEnv(map[string]string{"CIBA_CLIENT_ID": "ivr", "CIBA_CLIENT_KEY": keyFile}), strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "CIBA_ISSUER") {
			t.Errorf("check = %v, want an error naming CIBA_ISSUER", err)
		}
	})
}
