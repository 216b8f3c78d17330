package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// Pinger is the readiness check a store has for /readyz: a real query and
// a write, within ctx.
type Pinger interface {
	Ping(ctx context.Context) error
}

// TestPingUntilClose checks that s's Ping works until s is closed, and
// fails after. It closes s.
func TestPingUntilClose(t *testing.T, s interface {
	Pinger
	Close() error
}) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	s.Close()
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping after Close succeeded")
	}
}

// TestPingWithWritesBlocked checks that Ping fails, and within its
// context's deadline, while block holds back every write of s (as another
// process holding a lock does), that reads still work meanwhile, and that
// Ping works again once block's release is called.
func TestPingWithWritesBlocked(t *testing.T, s interface {
	store.Store
	Pinger
}, block func() (release func())) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping on a healthy store: %v", err)
	}
	release := block()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Ping(ctx)
	took := time.Since(start)
	if err == nil {
		t.Fatal("Ping succeeded while writes are blocked")
	}
	t.Logf("Ping while blocked: %v after %v", err, took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("Ping took %v; it must give up near its context's deadline", took)
	}
	// Reads still work: the failure is the write, which is the point.
	if _, err := s.Call(t.Context(), "CAnone"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("read while writes are blocked: %v", err)
	}
	release()
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping after the block was released: %v", err)
	}
}
