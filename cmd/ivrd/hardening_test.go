package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startCommand runs ivrd with args and env in the background until the
// test ends, and returns once ready reports what it printed is enough.
func startCommand(t *testing.T, args []string, env map[string]string, ready func(stdout, stderr string) bool) (stdout, stderr *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, mapEnv(env), strings.NewReader(""), stdout, stderr) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !ready(stdout.String(), stderr.String()) {
		select {
		case err := <-done:
			t.Fatalf("ivrd %s exited: %v\n%s\n%s", args[0], err, stdout, stderr)
		case <-deadline:
			t.Fatalf("ivrd %s not ready:\n%s\n%s", args[0], stdout, stderr)
		case <-tick.C:
		}
	}
	return stdout, stderr
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if host != "" {
		req.Host = host
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDemoChecksTheHost: without it a page elsewhere could point a name of
// its own at 127.0.0.1 (DNS rebinding) and reach the demo agent's one-click
// login and the demo auth token.
func TestDemoChecksTheHost(t *testing.T) {
	out, _ := startCommand(t, []string{"demo", "--listen", "127.0.0.1:0"}, nil, func(stdout, _ string) bool {
		return strings.Contains(stdout, "Agent dashboard")
	})
	base := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(out.String())
	for _, tc := range []struct {
		name, host string
		want       int
	}{
		{"a rebinding name", "evil.example:" + base[strings.LastIndex(base, ":")+1:], http.StatusMisdirectedRequest},
		{"another port", "127.0.0.1:1", http.StatusMisdirectedRequest},
		{"the demo's own address", "", http.StatusFound},
		{"localhost at its port", "localhost:" + base[strings.LastIndex(base, ":")+1:], http.StatusFound},
	} {
		for _, path := range []string{"/demo/login", "/demo/api/config"} {
			code, body := get(t, base+path, tc.host)
			want := tc.want
			if path == "/demo/api/config" && want == http.StatusFound {
				want = http.StatusOK
			}
			if code != want {
				t.Errorf("%s %s: %d, want %d", tc.name, path, code, want)
			}
			if code == http.StatusMisdirectedRequest && strings.Contains(body, demoAuthToken) {
				t.Errorf("%s: the demo token leaked", tc.name)
			}
		}
	}
}

// TestSimListensOnLoopbackUnlessTold: its approve API has no
// authentication, and it bound any address without a word.
func TestSimListensOnLoopbackUnlessTold(t *testing.T) {
	env := map[string]string{"SIM_CLIENT_SECRET": "s"}
	err := run(t.Context(), []string{"sim", "--listen", "0.0.0.0:0"}, mapEnv(env), strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--allow-remote") || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("sim on 0.0.0.0: %v, want a refusal that names --allow-remote", err)
	}
	_, stderr := startCommand(t, []string{"sim", "--listen", "0.0.0.0:0", "--allow-remote"}, env, func(stdout, _ string) bool {
		return strings.Contains(stdout, "simulator at")
	})
	if !strings.Contains(stderr.String(), "warning") {
		t.Errorf("no warning for a remote simulator:\n%s", stderr)
	}
}

// TestSimNamesABadJWKSFile: a file that is not a JWK Set is named, with
// what it should hold.
func TestSimNamesABadJWKSFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "client.jwks")
	if err := os.WriteFile(path, []byte("{bad"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(t.Context(), []string{"sim", "--listen", "127.0.0.1:0", "--client-jwks", path}, mapEnv(nil), strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "ivrd keys generate") {
		t.Errorf("sim with a bad JWKS file: %v, want an error naming the file and what it should hold", err)
	}
}

func TestKeyFilesArePrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	warnReadableKey(path, newLogger(&logs, slog.LevelInfo))
	if !strings.Contains(logs.String(), "CIBA_CLIENT_KEY is readable by group or others") {
		t.Errorf("no warning for a 0644 key file:\n%s", logs.String())
	}
	if err := run(t.Context(), []string{"keys", "generate", "--out", path, "--force"}, mapEnv(nil), strings.NewReader(""), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("keys generate --force over a 0644 file left mode %v, want 0600", st.Mode().Perm())
	}
	logs.Reset()
	warnReadableKey(path, newLogger(&logs, slog.LevelInfo))
	if logs.Len() != 0 {
		t.Errorf("warning for a 0600 key file: %s", logs.String())
	}
}

// TestMetricsOnTheAdminListener: /metrics was public behind the README's
// proxy.
func TestMetricsOnTheAdminListener(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pem")
	if err := run(t.Context(), []string{"keys", "generate", "--out", key}, mapEnv(nil), strings.NewReader(""), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	public, admin := freeAddr(t), freeAddr(t)
	env := map[string]string{
		"IVR_LISTEN": public, "IVR_ADMIN_LISTEN": admin, "IVR_PUBLIC_URL": "http://" + public,
		"IVR_DB": filepath.Join(dir, "ivr.db"), "IVR_HASH_KEY": "000102030405060708090a0b0c0d0e0f",
		"TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000", "TWILIO_AUTH_TOKEN": "tok",
		"CIBA_ISSUER": "http://127.0.0.1:1", "CIBA_CLIENT_ID": "ivr", "CIBA_CLIENT_KEY": key,
	}
	startCommand(t, []string{"serve"}, env, func(_, stderr string) bool {
		return strings.Contains(stderr, `"msg":"serving"`)
	})
	if code, _ := get(t, "http://"+public+"/metrics", ""); code != http.StatusNotFound {
		t.Errorf("/metrics on the public listener: %d, want 404", code)
	}
	if code, body := get(t, "http://"+admin+"/metrics", ""); code != http.StatusOK || !strings.Contains(body, "ivr_rate_limited_total") && !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics on the admin listener: %d", code)
	}
	for _, base := range []string{public, admin} {
		if code, _ := get(t, "http://"+base+"/healthz", ""); code != http.StatusOK {
			t.Errorf("/healthz on %s: %d", base, code)
		}
	}
	if code, _ := get(t, "http://"+admin+"/agent/", ""); code != http.StatusNotFound {
		t.Errorf("the dashboard on the admin listener: %d, want 404", code)
	}
}
