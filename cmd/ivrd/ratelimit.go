package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ivr/callerverify/ivr"
)

// parseRateLimit reads a rate-limit setting: "N/DURATION" (at most N
// verifications within DURATION, e.g. "3/10m" or "20/1d"), or "off".
func parseRateLimit(s string) (ivr.RateLimit, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "off") {
		return ivr.RateLimit{Max: -1}, nil
	}
	n, w, ok := strings.Cut(s, "/")
	if !ok {
		return ivr.RateLimit{}, fmt.Errorf("want N/DURATION such as 3/10m, or off: %q", s)
	}
	max, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || max < 1 || max > 1_000_000 {
		return ivr.RateLimit{}, fmt.Errorf("the count must be a whole number from 1 (or the limit off): %q", s)
	}
	window, err := parseDays(strings.TrimSpace(w))
	if err != nil || window < time.Second || window > 31*24*time.Hour {
		return ivr.RateLimit{}, errors.New("the window must be a duration from 1s to 31d, such as 10m or 1h: " + strconv.Quote(s))
	}
	return ivr.RateLimit{Max: max, Window: window}, nil
}

// formatRateLimit is the setting's form of l, for flag defaults.
func formatRateLimit(l ivr.RateLimit) string {
	if l.Max < 0 {
		return "off"
	}
	d := l.Window.String() // "10m0s", "1h0m0s"
	if strings.HasSuffix(d, "m0s") {
		d = strings.TrimSuffix(d, "0s")
	}
	if strings.HasSuffix(d, "h0m") {
		d = strings.TrimSuffix(d, "0m")
	}
	return strconv.Itoa(l.Max) + "/" + d
}
