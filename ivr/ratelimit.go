package ivr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// RateLimit allows at most Max verifications to start within any Window.
type RateLimit struct {
	Max    int           // 0 means the default; negative means no limit
	Window time.Duration // 0 means the default (10 min)
}

// Default rate limits: a caller who mistypes, declines and retries stays
// well inside them; a flood of BankID requests to one person does not.
var (
	DefaultRateLimitNumber = RateLimit{Max: 3, Window: 10 * time.Minute}
	DefaultRateLimitCaller = RateLimit{Max: 5, Window: 10 * time.Minute}
)

func (l RateLimit) orDefault(def RateLimit) RateLimit {
	if l.Max == 0 {
		l.Max = def.Max
	}
	if l.Window <= 0 {
		l.Window = def.Window
	}
	return l
}

// ErrRateLimited matches every *RateLimitError (errors.Is).
var ErrRateLimited = errors.New("ivr: too many verifications")

// RateLimitError is returned by StartAgentVerification when a verification
// would break a rate limit. It names the limit, never the number or caller.
type RateLimitError struct {
	Scope LimitScope
	Limit RateLimit
}

// LimitScope names a rate limit.
type LimitScope string

// The rate limits.
const (
	LimitNumber LimitScope = "number" // verifications per national identity number
	LimitCaller LimitScope = "caller" // verifications per caller id
)

func (e *RateLimitError) Error() string {
	what := "this national identity number"
	if e.Scope == LimitCaller {
		what = "this caller id"
	}
	return fmt.Sprintf("ivr: too many verifications for %s: at most %d within %s; try again later", what, e.Limit.Max, e.Limit.Window)
}

// Is makes a *RateLimitError match ErrRateLimited.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

func rateLimitDetail(scope LimitScope) string {
	if scope == LimitCaller {
		return "verification not started: too many recently from this caller id"
	}
	return "verification not started: too many recently for this national identity number"
}

// checkRateLimits reports the limit that starting a verification for id on
// a call from from would break, or nil. The counts come from the store, so
// they hold across restarts. Call it with s.startMu held until the
// verification is stored, so that concurrent starts cannot all slip under
// a limit together.
func (s *Service) checkRateLimits(ctx context.Context, id NationalID, from string, now time.Time) (*RateLimitError, error) {
	if l := s.cfg.RateLimitNumber; l.Max > 0 {
		n, err := s.store.CountVerificationsByID(ctx, id.Hash(s.cfg.HashKey), now.Add(-l.Window))
		if err != nil {
			return nil, fmt.Errorf("rate limit: %w", err)
		}
		if n >= l.Max {
			return &RateLimitError{Scope: LimitNumber, Limit: l}, nil
		}
	}
	if l := s.cfg.RateLimitCaller; l.Max > 0 && !withheld(from) {
		n, err := s.store.CountVerificationsByCaller(ctx, from, now.Add(-l.Window))
		if err != nil {
			return nil, fmt.Errorf("rate limit: %w", err)
		}
		if n >= l.Max {
			return &RateLimitError{Scope: LimitCaller, Limit: l}, nil
		}
	}
	return nil, nil
}

// withheld reports whether from is no caller id at all: empty, a word such
// as "anonymous" or "unknown", or one of the numbers Twilio substitutes for
// a withheld, restricted or unknown CLI. All such callers would share one
// bucket, and a flood from one of them would lock out every caller who
// hides their number; the per-number limit still protects the person whose
// number is entered.
func withheld(from string) bool {
	if !strings.ContainsAny(from, "0123456789") {
		return true
	}
	switch from {
	case "+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253":
		return true
	}
	return false
}
