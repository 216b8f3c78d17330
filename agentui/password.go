package agentui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ivr/callerverify/internal/store"
	"golang.org/x/crypto/argon2"
)

// Errors returned by AddAgent and ValidateAgentName.
var (
	ErrInvalidName  = errors.New("agentui: an agent name is 1 to 64 characters: lowercase letters, digits, '.', '_', '-' or '@', starting with a letter or digit")
	ErrWeakPassword = errors.New("agentui: a password is 12 to 1024 characters and differs from the name")
)

// MinPasswordLen is the shortest password AddAgent accepts, in characters.
const MinPasswordLen = 12

// argon2id parameters (OWASP password storage cheat sheet: m=19 MiB, t=2, p=1).
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

var b64 = base64.RawStdEncoding

// HashPassword returns an argon2id hash of pw in PHC string format:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("agentui: hash password: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether pw matches hash, a PHC argon2id string made
// by HashPassword. The comparison is constant time; a malformed hash, or one
// whose parameters are out of a sane range, never matches.
func CheckPassword(hash, pw string) bool {
	p, ok := parsePHC(hash)
	if !ok {
		return false
	}
	key := argon2.IDKey([]byte(pw), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1
}

type phc struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

func parsePHC(s string) (phc, bool) {
	var p phc
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, false
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, false
	}
	var m, t, th uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &th); err != nil {
		return p, false
	}
	// Bounds keep a tampered hash from costing gigabytes or minutes.
	if m < 8 || m > 1<<20 || t < 1 || t > 16 || th < 1 || th > 16 {
		return p, false
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return p, false
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, false
	}
	return phc{memory: m, time: t, threads: uint8(th), salt: salt, key: key}, true
}

// dummyHash is compared against when an agent does not exist, so that a
// login for an unknown name takes as long as one with a wrong password.
var dummyHash = fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
	argon2.Version, argonMemory, argonTime, argonThreads,
	b64.EncodeToString(make([]byte, argonSaltLen)), b64.EncodeToString(make([]byte, argonKeyLen)))

// NormalizeAgentName returns name trimmed and lowercased, and
// ErrInvalidName when it breaks the naming rules.
func NormalizeAgentName(name string) (string, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" || len(name) > 64 {
		return "", ErrInvalidName
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case i > 0 && (r == '.' || r == '_' || r == '-' || r == '@'):
		default:
			return "", ErrInvalidName
		}
	}
	return name, nil
}

// AddAgent creates an agent with a hashed password. The name is normalized
// (NormalizeAgentName); the password must have at least MinPasswordLen
// characters. It returns ErrInvalidName, ErrWeakPassword, or the store's
// error as it is (store.ErrExists when the name is taken).
func AddAgent(ctx context.Context, agents store.AgentStore, name, password string, now time.Time) error {
	name, err := NormalizeAgentName(name)
	if err != nil {
		return err
	}
	if utf8.RuneCountInString(password) < MinPasswordLen || len(password) > 1024 ||
		strings.EqualFold(strings.TrimSpace(password), name) {
		return ErrWeakPassword
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	return agents.CreateAgent(ctx, store.Agent{Name: name, PasswordHash: hash, CreatedAt: now.UTC()})
}
