package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

func TestLimitCheck(t *testing.T) {
	full := store.Limit{Scope: store.LimitNumber, Key: "h1", Max: 3, Window: time.Minute}
	over := full
	over.Override = true
	off := full
	off.Max = 0
	for _, tt := range []struct {
		name           string
		l              store.Limit
		n              int
		wantOverridden bool
		wantRefused    bool
	}{
		{"room for one more", full, 2, false, false},
		{"full refuses", full, 3, false, true},
		{"past full refuses", full, 4, false, true},
		{"full but an override goes ahead, reported", over, 3, true, false},
		{"an override with room is not reported", over, 2, false, false},
		{"a limit that is off never refuses", off, 100, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			overridden, err := tt.l.Check(tt.n)
			le, refused := errors.AsType[*store.LimitError](err)
			if overridden != tt.wantOverridden || refused != tt.wantRefused || (err != nil && !refused) {
				t.Fatalf("Check(%d) = %t, %v; want overridden %t, refused %t", tt.n, overridden, err, tt.wantOverridden, tt.wantRefused)
			}
			if refused && le.Limit != tt.l {
				t.Errorf("LimitError names %+v, want %+v", le.Limit, tt.l)
			}
		})
	}
}

func TestDefaultLimits(t *testing.T) {
	for _, tt := range []struct {
		name      string
		got, want int
	}{
		{"calls, asked for none", store.CallsLimit(0), store.DefaultCallsLimit},
		{"calls, asked for a negative number", store.CallsLimit(-1), store.DefaultCallsLimit},
		{"calls, asked for 5", store.CallsLimit(5), 5},
		{"due, asked for none", store.DueLimit(0), store.DefaultDueLimit},
		{"due, asked for 7", store.DueLimit(7), 7},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}
