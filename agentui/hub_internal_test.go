package agentui

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
	"github.com/ivr/callerverify/internal/store"
)

func discard(ch chan []byte) (n int) {
	for range ch {
		n++
	}
	return n
}

// drainNow receives what ch holds without waiting, and reports whether ch
// is closed.
func drainNow(ch chan []byte) (n int, closed bool) {
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return n, true
			}
			n++
		default:
			return n, false
		}
	}
}

func TestHubDropsASlowClientOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewHub(testLog(t))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { h.Run(ctx); close(done) }()

		slow := &client{send: make(chan []byte, 3)} // nobody reads it
		fast := &client{send: make(chan []byte, 3)}
		got := make(chan int)
		go func() { got <- discard(fast.send) }()
		h.register <- slow
		h.register <- fast
		for i := range 10 {
			h.Publish(t.Context(), store.Event{Seq: int64(i), CallSID: "CA1"})
			synctest.Wait() // let the fast client keep up
		}
		if n := h.Clients(); n != 1 {
			t.Errorf("Clients() = %d, want 1 (the slow one dropped)", n)
		}
		if n, closed := drainNow(slow.send); n != 3 || !closed { // the snapshot and two events
			t.Errorf("slow client got %d messages, closed=%v; want 3 then closed", n, closed)
		}
		if slow.closeCode != websocket.CloseTryAgainLater {
			t.Errorf("slow client close code %d, want %d", slow.closeCode, websocket.CloseTryAgainLater)
		}
		cancel()
		<-done
		if n := <-got; n != 11 {
			t.Errorf("fast client got %d messages, want 11 (snapshot and 10 events)", n)
		}
	})
}

func TestHubResyncsWhenItsQueueOverflows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewHub(testLog(t))
		h.events = make(chan store.Event, 1)
		now := time.Now()
		// Run has not started: the queue holds one event, the next is dropped.
		h.Publish(t.Context(), store.Event{Seq: 1, CallSID: "CA1", Call: &store.CallView{CallSID: "CA1", State: "gathering", UpdatedAt: now}})
		h.Publish(t.Context(), store.Event{Seq: 2, CallSID: "CA1", Call: &store.CallView{CallSID: "CA1", State: "verified", UpdatedAt: now.Add(time.Second)}})
		if h.Dropped() != 1 {
			t.Fatalf("Dropped() = %d, want 1", h.Dropped())
		}
		calls := &stubCalls{live: []store.CallView{{CallSID: "CA1", State: "verified", UpdatedAt: now.Add(time.Second)}}}
		h.attach(source{calls: calls, keep: time.Hour, now: time.Now})

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { h.Run(ctx); close(done) }()
		c := &client{send: make(chan []byte, 16)}
		h.register <- c
		synctest.Wait()
		cancel()
		<-done
		var msgs []string
		for m := range c.send {
			msgs = append(msgs, string(m))
		}
		// Whatever order Run took the ready channels in, no message may show
		// the stale state after the reload, and the last one shows verified.
		for i, m := range msgs {
			if contains(m, `"state":"gathering"`) {
				t.Errorf("message %d shows the stale state: %s", i, m)
			}
		}
		if len(msgs) == 0 || !contains(msgs[len(msgs)-1], `"state":"verified"`) {
			t.Errorf("messages = %q, want the last to show CA1 verified", msgs)
		}
	})
}

func TestHubForgetsEndedCallsAfterTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewHub(testLog(t))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { h.Run(ctx); close(done) }()
		ended := time.Now()
		h.Publish(t.Context(), store.Event{CallSID: "CA1", Call: &store.CallView{CallSID: "CA1", State: "ended", EndedAt: &ended, UpdatedAt: ended}})
		h.Publish(t.Context(), store.Event{CallSID: "CA2", Call: &store.CallView{CallSID: "CA2", State: "gathering", UpdatedAt: ended}})
		time.Sleep(defaultKeep + sweepEvery) // fake time inside the bubble
		c := &client{send: make(chan []byte, 1)}
		h.register <- c
		snap := string(<-c.send)
		if contains(snap, "CA1") || !contains(snap, "CA2") {
			t.Errorf("snapshot after the window = %s, want CA2 only", snap)
		}
		cancel()
		<-done
	})
}

type stubCalls struct{ live []store.CallView }

func (s *stubCalls) LiveCalls(context.Context) ([]store.CallView, error) { return s.live, nil }
func (s *stubCalls) RecentCalls(context.Context, time.Time) ([]store.CallView, error) {
	return nil, nil
}
func (s *stubCalls) Timeline(context.Context, string) ([]store.Event, error) { return nil, nil }
func (s *stubCalls) StartAgentVerification(context.Context, string, store.IDKind, string, string) (*store.Verification, error) {
	return nil, store.ErrNotFound
}

func TestHubRetriesAFailedLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewHub(testLog(t))
		calls := &flakyCalls{fails: 1, live: []store.CallView{{CallSID: "CA1", State: "gathering", UpdatedAt: time.Now()}}}
		h.attach(source{calls: calls, keep: time.Hour, now: time.Now})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { h.Run(ctx); close(done) }()
		c := &client{send: make(chan []byte, 4)}
		h.register <- c
		if snap := string(<-c.send); contains(snap, "CA1") {
			t.Fatalf("first snapshot %s has CA1 although the load failed", snap)
		}
		time.Sleep(sweepEvery)
		synctest.Wait()
		if snap := string(<-c.send); !contains(snap, "CA1") {
			t.Errorf("snapshot after the retry = %s, want CA1", snap)
		}
		cancel()
		<-done
	})
}

type flakyCalls struct {
	stubCalls
	fails int
	live  []store.CallView
}

func (f *flakyCalls) LiveCalls(context.Context) ([]store.CallView, error) {
	if f.fails > 0 {
		f.fails--
		return nil, errors.New("store down")
	}
	return f.live, nil
}
