package ivr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// RateLimit allows at most Max verifications to start within any Window.
// Its text form, for settings and flags, is "N/DURATION" (at most N within
// DURATION, e.g. "3/10m" or "20/1d") or "off".
type RateLimit struct {
	Max    int           // 0 means the default; negative means no limit
	Window time.Duration // 0 means the default
}

// Default rate limits. A caller who mistypes, declines and retries stays
// well inside them; a flood of BankID requests to one person, from one
// caller id, from withheld numbers or from one agent's session does not,
// and the global cap keeps the broker bill bounded.
var (
	DefaultRateLimitNumber   = RateLimit{Max: 3, Window: 10 * time.Minute}
	DefaultRateLimitCaller   = RateLimit{Max: 5, Window: 10 * time.Minute}
	DefaultRateLimitWithheld = RateLimit{Max: 3, Window: 10 * time.Minute}
	DefaultRateLimitAgent    = RateLimit{Max: 10, Window: 10 * time.Minute}
	DefaultRateLimitGlobal   = RateLimit{Max: 120, Window: time.Minute}
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

// Off reports whether the limit is turned off.
func (l RateLimit) Off() bool { return l.Max < 0 }

// UnmarshalText reads "N/DURATION" (DURATION as time.ParseDuration, or
// whole days such as "1d") or "off".
func (l *RateLimit) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if strings.EqualFold(s, "off") {
		*l = RateLimit{Max: -1}
		return nil
	}
	n, w, ok := strings.Cut(s, "/")
	if !ok {
		return fmt.Errorf("want N/DURATION such as 3/10m, or off: %q", s)
	}
	max, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || max < 1 || max > 1_000_000 {
		return fmt.Errorf("the count must be a whole number from 1 (or the limit off): %q", s)
	}
	window, err := ParseDays(strings.TrimSpace(w))
	if err != nil || window < time.Second || window > 31*24*time.Hour {
		return fmt.Errorf("the window must be a duration from 1s to 31d, such as 10m or 1h: %q", s)
	}
	*l = RateLimit{Max: max, Window: window}
	return nil
}

// MarshalText writes the limit as UnmarshalText reads it ("3/10m", "off").
func (l RateLimit) MarshalText() ([]byte, error) {
	if l.Off() {
		return []byte("off"), nil
	}
	d := l.Window.String() // "10m0s", "1h0m0s"
	d = strings.TrimSuffix(d, "0s")
	if strings.HasSuffix(d, "h0m") {
		d = strings.TrimSuffix(d, "0m")
	}
	if d == "" {
		d = "0s"
	}
	return []byte(strconv.Itoa(l.Max) + "/" + d), nil
}

// String says the limit in words: "at most 5 in 10 minutes", "off".
func (l RateLimit) String() string {
	if l.Off() {
		return "off"
	}
	return fmt.Sprintf("at most %d in %s", l.Max, Words(l.Window))
}

// ParseDays is time.ParseDuration that also accepts whole days ("90d").
func ParseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d < 0 || d > 100*365 {
			return 0, fmt.Errorf("not a number of days: %q", s)
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// Words says a duration the way people do: "10 minutes", "1 hour",
// "90 seconds", "2 days".
func Words(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.FormatInt(n, 10) + " " + one + "s"
	}
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return unit(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return unit(int64(d/time.Minute), "minute")
	}
	return unit(int64(d.Round(time.Second)/time.Second), "second")
}

// ErrRateLimited matches every *RateLimitError (errors.Is).
var ErrRateLimited = errors.New("ivr: too many verifications")

// RateLimitError is returned by StartAgentVerification when a verification
// would break a rate limit. It names the limit, never the number or caller.
type RateLimitError struct {
	Scope store.LimitScope
	Limit RateLimit
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("ivr: too many BankID requests %s recently (%s); try again later", scopeWords(e.Scope), e.Limit)
}

// Is makes a *RateLimitError match ErrRateLimited.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// scopeWords names what a limit counts, for people.
func scopeWords(scope store.LimitScope) string {
	switch scope {
	case store.LimitNumber:
		return "for this national identity number"
	case store.LimitCaller:
		return "from this caller id"
	case store.LimitWithheld:
		return "from withheld numbers"
	case store.LimitAgent:
		return "by this agent"
	}
	return "in all"
}

func rateLimitDetail(scope store.LimitScope) string {
	return "verification not started: too many " + scopeWords(scope) + " recently"
}

// limits are the rate limits a verification started for id by initiator
// on call c must pass. A caller's own start passes the limits of the
// number, of the caller id (or the withheld bucket) and the global cap; an
// agent's passes their own limit and the global cap, and goes past the
// number's limit (they are talking to the person, who must not be locked
// out of help by strangers' calls), which is recorded.
func (s *Service) limits(idHash, callerKey, initiator string) []store.Limit {
	var out []store.Limit
	add := func(scope store.LimitScope, key string, l RateLimit, override bool) {
		if !l.Off() {
			out = append(out, store.Limit{Scope: scope, Key: key, Max: l.Max, Window: l.Window, Override: override})
		}
	}
	agent := initiator != "caller"
	add(store.LimitNumber, idHash, s.cfg.RateLimitNumber, agent)
	switch {
	case agent:
		add(store.LimitAgent, initiator, s.cfg.RateLimitAgent, false)
	case callerKey == store.WithheldCaller:
		add(store.LimitWithheld, callerKey, s.cfg.RateLimitWithheld, false)
	default:
		add(store.LimitCaller, callerKey, s.cfg.RateLimitCaller, false)
	}
	add(store.LimitGlobal, "", s.cfg.RateLimitGlobal, false)
	return out
}

// limitOf is the configured limit a store.Limit came from.
func limitOf(l store.Limit) RateLimit { return RateLimit{Max: l.Max, Window: l.Window} }

// callerKey is the rate-limit key of a caller id: the number itself when it
// tells one caller from another, else store.WithheldCaller. Withheld,
// anonymous, unknown and malformed caller ids, and the numbers Twilio
// substitutes for them, all share that one strict bucket, so that hiding
// the number gives no way around the per-caller limit.
func callerKey(from string) string {
	if len(from) < 8 || len(from) > 16 || from[0] != '+' {
		return store.WithheldCaller
	}
	for i := 1; i < len(from); i++ {
		if from[i] < '0' || from[i] > '9' {
			return store.WithheldCaller
		}
	}
	switch from {
	case "+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253":
		return store.WithheldCaller
	}
	return from
}
