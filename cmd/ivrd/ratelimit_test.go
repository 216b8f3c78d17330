package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivr/callerverify/ivr"
)

func TestParseRateLimit(t *testing.T) {
	good := map[string]ivr.RateLimit{
		"3/10m":   {Max: 3, Window: 10 * time.Minute},
		" 5 / 1h": {Max: 5, Window: time.Hour},
		"20/1d":   {Max: 20, Window: 24 * time.Hour},
		"off":     {Max: -1},
		"OFF":     {Max: -1},
	}
	for in, want := range good {
		if got, err := parseRateLimit(in); err != nil || got != want {
			t.Errorf("parseRateLimit(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "3", "0/10m", "-1/10m", "x/10m", "3/", "3/soon", "3/0s", "3/400d", "3/10m/1"} {
		if got, err := parseRateLimit(in); err == nil {
			t.Errorf("parseRateLimit(%q) = %+v, want an error", in, got)
		}
	}
	for _, l := range []ivr.RateLimit{ivr.DefaultRateLimitNumber, ivr.DefaultRateLimitCaller, {Max: 7, Window: 90 * time.Minute}, {Max: 2, Window: time.Hour}, {Max: -1}} {
		s := formatRateLimit(l)
		if got, err := parseRateLimit(s); err != nil || got != l {
			t.Errorf("formatRateLimit(%+v) = %q, which parses as %+v, %v", l, s, got, err)
		}
	}
	if s := formatRateLimit(ivr.DefaultRateLimitNumber); s != "3/10m" {
		t.Errorf("default shown as %q, want 3/10m", s)
	}
}

func TestLoadServeRateLimits(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, []byte("placeholder"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(kv ...string) map[string]string {
		m := map[string]string{
			"IVR_PUBLIC_URL":    "https://ivr.example.com",
			"IVR_DB":            filepath.Join(dir, "ivr.db"),
			"TWILIO_AUTH_TOKEN": "tok",
			"CIBA_ISSUER":       "https://bank.idura.broker",
			"CIBA_CLIENT_ID":    "client",
			"CIBA_CLIENT_KEY":   keyFile,
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}

	cfg, err := loadServe(mapEnv(env()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RateLimitNumber != ivr.DefaultRateLimitNumber || cfg.RateLimitCaller != ivr.DefaultRateLimitCaller {
		t.Errorf("defaults %+v %+v", cfg.RateLimitNumber, cfg.RateLimitCaller)
	}
	cfg, err = loadServe(mapEnv(env("IVR_RATE_LIMIT_NUMBER", "2/1h", "IVR_RATE_LIMIT_CALLER", "off")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RateLimitNumber != (ivr.RateLimit{Max: 2, Window: time.Hour}) || cfg.RateLimitCaller.Max >= 0 {
		t.Errorf("from the environment: %+v %+v", cfg.RateLimitNumber, cfg.RateLimitCaller)
	}
	cfg, err = loadServe(mapEnv(env("IVR_RATE_LIMIT_NUMBER", "2/1h")), []string{"--rate-limit-number", "4/30m"})
	if err != nil || cfg.RateLimitNumber != (ivr.RateLimit{Max: 4, Window: 30 * time.Minute}) {
		t.Errorf("flag over the environment: %+v, %v", cfg, err)
	}
	_, err = loadServe(mapEnv(env("IVR_RATE_LIMIT_NUMBER", "lots", "IVR_RATE_LIMIT_CALLER", "5/never")), nil)
	if err == nil {
		t.Fatal("bad rate limits accepted")
	}
	for _, name := range []string{"IVR_RATE_LIMIT_NUMBER", "IVR_RATE_LIMIT_CALLER", "3/10m"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not mention %s:\n%v", name, err)
		}
	}
}
