package agentui_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ivr/callerverify/agentui"
	"github.com/ivr/callerverify/internal/store"
)

func TestHashPasswordRoundTrip(t *testing.T) {
	h, err := agentui.HashPassword(testPass)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=") || strings.Contains(h, testPass) {
		t.Errorf("hash %q is not a PHC argon2id string without the password", h)
	}
	h2, _ := agentui.HashPassword(testPass)
	if h == h2 {
		t.Error("two hashes of one password are equal: salt missing")
	}
	tests := []struct {
		name string
		hash string
		pw   string
		want bool
	}{
		{"right password matches", h, testPass, true},
		{"wrong password does not match", h, testPass + "x", false},
		{"empty password does not match", h, "", false},
		{"malformed hash never matches", "$argon2id$v=19$garbage", testPass, false},
		{"other algorithm never matches", strings.Replace(h, "argon2id", "argon2i", 1), testPass, false},
		{"absurd memory cost is refused", strings.Replace(h, "m=19456", "m=99999999", 1), testPass, false},
		{"empty hash never matches", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := agentui.CheckPassword(tt.hash, tt.pw); got != tt.want {
				t.Errorf("CheckPassword = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAddAgent(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		agent    string
		password string
		wantErr  error
		stored   string
	}{
		{"good name and password are stored", "anna", "twelve chars", nil, "anna"},
		{"name is trimmed and lowercased", "  Bertil.K ", "a long enough password", nil, "bertil.k"},
		{"eleven-character password is refused", "cecilia", "elevenchars", agentui.ErrWeakPassword, ""},
		{"password equal to the name is refused", "averylongname", "AVeryLongName", agentui.ErrWeakPassword, ""},
		{"empty name is refused", " ", "twelve chars", agentui.ErrInvalidName, ""},
		{"name with a space is refused", "anna b", "twelve chars", agentui.ErrInvalidName, ""},
		{"name starting with a dot is refused", ".anna", "twelve chars", agentui.ErrInvalidName, ""},
		{"taken name is refused", "taken", "twelve chars", store.ErrExists, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newMemStore()
			if err := agentui.AddAgent(t.Context(), store, "taken", "some password", now); err != nil {
				t.Fatal(err)
			}
			err := agentui.AddAgent(t.Context(), store, tt.agent, tt.password, now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("AddAgent error = %v, want %v", err, tt.wantErr)
			}
			if tt.stored == "" {
				return
			}
			a, err := store.Agent(t.Context(), tt.stored)
			if err != nil {
				t.Fatalf("stored agent %q: %v", tt.stored, err)
			}
			if !agentui.CheckPassword(a.PasswordHash, tt.password) || !a.CreatedAt.Equal(now) {
				t.Errorf("stored agent %+v does not check against its password or time", a)
			}
		})
	}
}
