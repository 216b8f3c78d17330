// Package storetest checks that a store implementation keeps the contract
// of package store, in the spirit of testing/fstest.TestFS: sqlite and
// PostgreSQL run the same suite, unchanged.
//
//	func TestConformance(t *testing.T) {
//		storetest.TestStore(t, func(t *testing.T) store.Store { return open(t) })
//		storetest.TestAgentStore(t, func(t *testing.T) store.AgentStore { return open(t) })
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// Purger is the optional retention method TestStore checks when the
// store has it.
type Purger interface {
	PurgeEnded(ctx context.Context, before time.Time) (int, error)
}

// InFlightCounter is the optional gauge TestStore checks when the store
// has it.
type InFlightCounter interface {
	InFlight(ctx context.Context) (int, error)
}

// TestStore checks that the stores newStore returns behave as the
// store.Store contract says. newStore must return an empty store each call.
// Times are compared at millisecond precision, in UTC.
func TestStore(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("calls", func(t *testing.T) { testCalls(t, newStore) })
	t.Run("verifications", func(t *testing.T) { testVerifications(t, newStore) })
	t.Run("events", func(t *testing.T) { testEvents(t, newStore) })
	t.Run("claiming due verifications", func(t *testing.T) { testClaims(t, newStore) })
	t.Run("next due time", func(t *testing.T) { testNextDue(t, newStore) })
	t.Run("call listings", func(t *testing.T) { testCallFilter(t, newStore) })
	t.Run("purge ended calls", func(t *testing.T) { testPurge(t, newStore) })
	t.Run("rate limits", func(t *testing.T) { testLimits(t, newStore) })
	t.Run("stale calls", func(t *testing.T) { testStaleCalls(t, newStore) })
	t.Run("in-flight count", func(t *testing.T) { testInFlight(t, newStore) })
	t.Run("a canceled context leaves nothing behind", func(t *testing.T) { testCanceled(t, newStore) })
	t.Run("errors hold no row contents", func(t *testing.T) { testErrorsHoldNoRowContents(t, newStore) })
}

// Epoch is a fixed instant with millisecond precision, outside UTC on purpose:
// stores hand times back in UTC.
var Epoch = time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.FixedZone("CET", 3600))

// At is Epoch plus d.
func At(d time.Duration) time.Time { return Epoch.Add(d) }

// NewCall is a call from a Swedish mobile, gathering, created at created.
func NewCall(sid string, created time.Time) *store.Call {
	return &store.Call{
		SID: sid, From: "+46701234567", To: "+46812345678", Language: "sv-SE",
		State: store.CallGathering, Step: 1, LastTwiML: "<Response><Say>Hej</Say></Response>",
		CreatedAt: created, UpdatedAt: created,
	}
}

// NewVerification is a Swedish verification of call sid in status, due at
// next.
func NewVerification(id, sid string, status store.VerificationStatus, next time.Time) *store.Verification {
	return &store.Verification{
		ID: id, CallSID: sid, Country: store.Sweden, Method: "se-bankid", IDKind: store.IDNationalID,
		SealedID: "c2VhbGVkIG51bWJlcg", MaskedID: "********-**39", IDHash: "hmac-abc", Caller: "+46701234567",
		Initiator: "caller", Status: status, AuthReqID: "auth-req-" + id,
		BindingMessage: "Support call", Interval: 5 * time.Second,
		ExpiresAt: At(3 * time.Minute), NextPollAt: next,
		CreatedAt: Epoch, UpdatedAt: Epoch,
	}
}

// NewEvent is a system event of kind on call sid at when.
func NewEvent(sid string, kind string, when time.Time) *store.Event {
	return &store.Event{At: when, CallSID: sid, Kind: store.EventKind(kind), Actor: "system", Detail: kind + " detail"}
}

// UTC is what a store hands back for t: UTC, milliseconds.
func UTC(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Millisecond).UTC()
}

func wantCall(c store.Call) *store.Call {
	c.CreatedAt, c.UpdatedAt, c.EndedAt, c.HandedOffAt = UTC(c.CreatedAt), UTC(c.UpdatedAt), UTC(c.EndedAt), UTC(c.HandedOffAt)
	return &c
}

func wantVerification(v store.Verification) *store.Verification {
	v.ExpiresAt, v.NextPollAt = UTC(v.ExpiresAt), UTC(v.NextPollAt)
	v.CreatedAt, v.UpdatedAt, v.CompletedAt = UTC(v.CreatedAt), UTC(v.UpdatedAt), UTC(v.CompletedAt)
	v.NotifiedAt = UTC(v.NotifiedAt)
	return &v
}

// MustCreateCall stores c and events, or fails the test.
func MustCreateCall(t testing.TB, s store.Store, c *store.Call, events ...*store.Event) {
	t.Helper()
	created, err := s.CreateCall(t.Context(), c, events...)
	if err != nil || !created {
		t.Fatalf("CreateCall(%s) = %v, %v; want true, nil", c.SID, created, err)
	}
}

// MustCreateVerification stores v and events, or fails the test.
func MustCreateVerification(t testing.TB, s store.Store, v *store.Verification, events ...*store.Event) {
	t.Helper()
	if _, err := s.StartVerification(t.Context(), nil, v, nil, events...); err != nil {
		t.Fatalf("StartVerification(%s) = %v", v.ID, err)
	}
}

// MustEvents returns the events of call sid, or fails the test.
func MustEvents(t *testing.T, s store.Store, sid string) []store.Event {
	t.Helper()
	evs, err := s.Events(t.Context(), sid)
	if err != nil {
		t.Fatalf("Events(%s): %v", sid, err)
	}
	return evs
}

func kinds(evs []store.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, string(e.Kind))
	}
	return out
}

func testCalls(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("a created call reads back as written, times in UTC at ms precision", func(t *testing.T) {
		s := newStore(t)
		c := NewCall("CA1", Epoch.Add(123456*time.Nanosecond)) // sub-millisecond part is dropped
		c.NumberAttempts, c.VerifyAttempts, c.VerificationID, c.Outcome = 2, 1, "v1", "unverified"
		c.Reason, c.HandedOffAt, c.Identify = store.ReasonDeclined, At(30*time.Second), store.IDCustomer
		c.EndedAt = At(time.Minute)
		orig := *c
		MustCreateCall(t, s, c)
		got, err := s.Call(t.Context(), "CA1")
		if err != nil {
			t.Fatalf("Call: %v", err)
		}
		if want := wantCall(orig); *got != *want {
			t.Errorf("Call =\n%+v\nwant\n%+v", *got, *want)
		}
		if got.CreatedAt.Location() != time.UTC {
			t.Errorf("CreatedAt location = %v, want UTC", got.CreatedAt.Location())
		}
	})

	t.Run("zero times read back as zero", func(t *testing.T) {
		s := newStore(t)
		MustCreateCall(t, s, &store.Call{SID: "CA0", State: store.CallGathering})
		got, err := s.Call(t.Context(), "CA0")
		if err != nil {
			t.Fatalf("Call: %v", err)
		}
		if !got.CreatedAt.IsZero() || !got.UpdatedAt.IsZero() || !got.EndedAt.IsZero() {
			t.Errorf("times = %v %v %v, want all zero", got.CreatedAt, got.UpdatedAt, got.EndedAt)
		}
	})

	t.Run("creating an existing call changes nothing and stores no events", func(t *testing.T) {
		s := newStore(t)
		MustCreateCall(t, s, NewCall("CA1", Epoch), NewEvent("CA1", "call_started", Epoch))
		dup := NewCall("CA1", At(time.Hour))
		dup.State = store.CallHandedOff
		ev := NewEvent("CA1", "duplicate", Epoch)
		created, err := s.CreateCall(t.Context(), dup, ev)
		if err != nil || created {
			t.Fatalf("CreateCall(existing) = %v, %v; want false, nil", created, err)
		}
		if ev.Seq != 0 {
			t.Errorf("Seq of an event not stored = %d, want 0", ev.Seq)
		}
		got, _ := s.Call(t.Context(), "CA1")
		if got.State != store.CallGathering || !got.CreatedAt.Equal(Epoch) {
			t.Errorf("call after duplicate create = %s/%v, want the first one", got.State, got.CreatedAt)
		}
		if k := kinds(MustEvents(t, s, "CA1")); !slices.Equal(k, []string{"call_started"}) {
			t.Errorf("events = %v, want [call_started]", k)
		}
	})

	t.Run("unknown call is ErrNotFound", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Call(t.Context(), "CAnope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Call(unknown) err = %v, want ErrNotFound", err)
		}
		err := s.UpdateCall(t.Context(), NewCall("CAnope", Epoch), NewEvent("CAnope", "x", Epoch))
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UpdateCall(unknown) err = %v, want ErrNotFound", err)
		}
		if evs := MustEvents(t, s, "CAnope"); len(evs) != 0 {
			t.Errorf("events after failed update = %v, want none", kinds(evs))
		}
	})

	t.Run("update stores the call and its events and bumps Version", func(t *testing.T) {
		s := newStore(t)
		c := NewCall("CA1", Epoch)
		MustCreateCall(t, s, c)
		v0 := c.Version
		c.State, c.Step, c.UpdatedAt, c.EndedAt = store.CallEnded, 7, At(time.Minute), At(time.Minute)
		ev := NewEvent("CA1", "call_ended", At(time.Minute))
		if err := s.UpdateCall(t.Context(), c, ev); err != nil {
			t.Fatalf("UpdateCall: %v", err)
		}
		if c.Version != v0+1 {
			t.Errorf("Version after update = %d, want %d", c.Version, v0+1)
		}
		if ev.Seq == 0 {
			t.Error("event Seq not set")
		}
		got, _ := s.Call(t.Context(), "CA1")
		if want := wantCall(*c); *got != *want {
			t.Errorf("Call =\n%+v\nwant\n%+v", *got, *want)
		}
		// A second update from the fresh version works too.
		c.Step = 8
		if err := s.UpdateCall(t.Context(), c); err != nil {
			t.Fatalf("second UpdateCall: %v", err)
		}
		if c.Version != v0+2 {
			t.Errorf("Version after two updates = %d, want %d", c.Version, v0+2)
		}
	})

	t.Run("a stale update is ErrConflict and changes nothing", func(t *testing.T) {
		s := newStore(t)
		MustCreateCall(t, s, NewCall("CA1", Epoch))
		a, _ := s.Call(t.Context(), "CA1")
		b, _ := s.Call(t.Context(), "CA1")
		a.State = store.CallVerifying
		if err := s.UpdateCall(t.Context(), a, NewEvent("CA1", "first", Epoch)); err != nil {
			t.Fatalf("first UpdateCall: %v", err)
		}
		b.State = store.CallHandedOff
		staleVersion := b.Version
		ev := NewEvent("CA1", "second", Epoch)
		if err := s.UpdateCall(t.Context(), b, ev); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale UpdateCall err = %v, want ErrConflict", err)
		}
		if b.Version != staleVersion || ev.Seq != 0 {
			t.Errorf("after conflict Version = %d, Seq = %d; want %d, 0", b.Version, ev.Seq, staleVersion)
		}
		got, _ := s.Call(t.Context(), "CA1")
		if got.State != store.CallVerifying || got.Version != a.Version {
			t.Errorf("stored = %s v%d, want %s v%d", got.State, got.Version, store.CallVerifying, a.Version)
		}
		if k := kinds(MustEvents(t, s, "CA1")); !slices.Equal(k, []string{"first"}) {
			t.Errorf("events = %v, want [first]", k)
		}
	})
}

func testVerifications(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("a created verification reads back as written", func(t *testing.T) {
		s := newStore(t)
		v := NewVerification("v1", "CA1", store.VerPending, At(5*time.Second))
		v.Pending, v.Polls, v.SlowDowns, v.Failures = "outstandingTransaction", 3, 1, 2
		v.Interval = 7500 * time.Millisecond
		v.NotifyHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
		orig := *v
		ev := NewEvent("CA1", "verification_started", Epoch)
		ev.VerificationID = "v1"
		MustCreateVerification(t, s, v, ev)
		got, err := s.Verification(t.Context(), "v1")
		if err != nil {
			t.Fatalf("Verification: %v", err)
		}
		if want := wantVerification(orig); *got != *want {
			t.Errorf("Verification =\n%+v\nwant\n%+v", *got, *want)
		}
		evs := MustEvents(t, s, "CA1")
		if len(evs) != 1 || evs[0].VerificationID != "v1" || evs[0].Seq != ev.Seq || ev.Seq == 0 {
			t.Errorf("events = %+v, want the one with Seq %d", evs, ev.Seq)
		}
	})

	t.Run("a duplicate ID is ErrConflict and stores no events", func(t *testing.T) {
		s := newStore(t)
		MustCreateVerification(t, s, NewVerification("v1", "CA1", store.VerStarting, Epoch))
		dup := NewVerification("v1", "CA2", store.VerStarting, Epoch)
		_, err := s.StartVerification(t.Context(), nil, dup, nil, NewEvent("CA1", "dup", Epoch))
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate StartVerification err = %v, want ErrConflict", err)
		}
		if evs := MustEvents(t, s, "CA1"); len(evs) != 0 {
			t.Errorf("events = %v, want none", kinds(evs))
		}
	})

	t.Run("unknown verification is ErrNotFound", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Verification(t.Context(), "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Verification(unknown) err = %v, want ErrNotFound", err)
		}
		if err := s.UpdateVerification(t.Context(), NewVerification("nope", "CA1", store.VerPending, Epoch)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UpdateVerification(unknown) err = %v, want ErrNotFound", err)
		}
	})

	t.Run("finishing stores the emptied sealed number and bumps Version", func(t *testing.T) {
		s := newStore(t)
		v := NewVerification("v1", "CA1", store.VerPending, Epoch)
		MustCreateVerification(t, s, v)
		v0 := v.Version
		v.Status, v.SealedID, v.CompletedAt = store.VerApproved, "", At(time.Minute)
		v.Subject, v.Name, v.GivenName, v.FamilyName = "sub-1", "Tess Testsson", "Tess", "Testsson"
		v.Method, v.IDKind, v.NotifyHash, v.NotifiedAt = "guardian", store.IDCustomer, "hash", At(59*time.Second)
		if err := s.UpdateVerification(t.Context(), v, NewEvent("CA1", "verified", At(time.Minute))); err != nil {
			t.Fatalf("UpdateVerification: %v", err)
		}
		if v.Version != v0+1 {
			t.Errorf("Version = %d, want %d", v.Version, v0+1)
		}
		got, _ := s.Verification(t.Context(), "v1")
		if want := wantVerification(*v); *got != *want {
			t.Errorf("Verification =\n%+v\nwant\n%+v", *got, *want)
		}
		if got.SealedID != "" {
			t.Error("sealed number still stored after it was emptied")
		}
	})

	t.Run("a stale update is ErrConflict and changes nothing", func(t *testing.T) {
		s := newStore(t)
		MustCreateVerification(t, s, NewVerification("v1", "CA1", store.VerPending, Epoch))
		a, _ := s.Verification(t.Context(), "v1")
		b, _ := s.Verification(t.Context(), "v1")
		a.Polls = 1
		if err := s.UpdateVerification(t.Context(), a); err != nil {
			t.Fatalf("UpdateVerification: %v", err)
		}
		b.Status = store.VerDeclined
		ev := NewEvent("CA1", "declined", Epoch)
		if err := s.UpdateVerification(t.Context(), b, ev); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale UpdateVerification err = %v, want ErrConflict", err)
		}
		got, _ := s.Verification(t.Context(), "v1")
		if got.Status != store.VerPending || got.Polls != 1 {
			t.Errorf("stored = %s polls %d, want pending polls 1", got.Status, got.Polls)
		}
		if evs := MustEvents(t, s, "CA1"); len(evs) != 0 || ev.Seq != 0 {
			t.Errorf("events = %v (Seq %d), want none", kinds(evs), ev.Seq)
		}
	})
}

func testEvents(t *testing.T, newStore func(t *testing.T) store.Store) {
	s := newStore(t)
	c := NewCall("CA1", Epoch)
	e1, e2 := NewEvent("CA1", "call_started", Epoch), NewEvent("CA1", "digits", At(time.Second))
	MustCreateCall(t, s, c, e1, e2)
	MustCreateCall(t, s, NewCall("CA2", Epoch), NewEvent("CA2", "other_call", Epoch))
	e3 := NewEvent("CA1", "note", At(2*time.Second))
	e3.Call = &store.CallView{CallSID: "CA1", State: "verifying"} // not stored
	if err := s.AppendEvent(t.Context(), e3); err != nil {
		t.Fatalf("AppendEvent: %v", err)
	}
	c.State = store.CallVerifying
	e4 := NewEvent("CA1", "verifying", At(3*time.Second))
	if err := s.UpdateCall(t.Context(), c, e4); err != nil {
		t.Fatalf("UpdateCall: %v", err)
	}

	seqs := []int64{e1.Seq, e2.Seq, e3.Seq, e4.Seq}
	for i, seq := range seqs {
		if seq == 0 || i > 0 && seq <= seqs[i-1] {
			t.Errorf("Seqs = %v, want non-zero and increasing", seqs)
			break
		}
	}
	got := MustEvents(t, s, "CA1")
	want := []store.Event{*e1, *e2, *e3, *e4}
	for i := range want {
		want[i].At, want[i].Call = UTC(want[i].At), nil
	}
	if !slices.EqualFunc(got, want, func(a, b store.Event) bool { return a == b }) {
		t.Errorf("Events(CA1) =\n%+v\nwant\n%+v", got, want)
	}
	if evs := MustEvents(t, s, "CAnone"); len(evs) != 0 {
		t.Errorf("Events(unknown) = %v, want none", evs)
	}
}

func testClaims(t *testing.T, newStore func(t *testing.T) store.Store) {
	seed := func(t *testing.T, now time.Time) store.Store {
		s := newStore(t)
		for _, v := range []*store.Verification{
			NewVerification("late", "CA1", store.VerPending, now.Add(-10*time.Second)),
			NewVerification("future", "CA5", store.VerPending, now.Add(time.Millisecond)),
			NewVerification("exact", "CA6", store.VerPending, now),
			NewVerification("starting", "CA2", store.VerStarting, now.Add(-20*time.Second)),
			NewVerification("done", "CA3", store.VerApproved, now.Add(-time.Hour)),
			NewVerification("declined", "CA7", store.VerDeclined, now.Add(-time.Hour)),
			NewVerification("cancelled", "CA8", store.VerCancelled, now.Add(-time.Hour)),
			NewVerification("oldest", "CA4", store.VerPending, now.Add(-30*time.Second)),
		} {
			MustCreateVerification(t, s, v)
		}
		return s
	}
	ids := func(vs []*store.Verification) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.ID)
		}
		return out
	}
	now := At(time.Minute)
	const lease = 8 * time.Second // longer than the 5 s interval
	for _, tt := range []struct {
		name  string
		now   time.Time
		limit int
		want  []string
	}{
		{"due ones come earliest first and done ones never", now, 10, []string{"oldest", "starting", "late", "exact"}},
		{"limit cuts from the latest", now, 2, []string{"oldest", "starting"}},
		{"nothing is due before the earliest", now.Add(-31 * time.Second), 10, nil},
		{"a millisecond later the future one is due", now.Add(time.Millisecond), 10, []string{"oldest", "starting", "late", "exact", "future"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := seed(t, now)
			vs, err := s.ClaimDue(t.Context(), "p1", tt.now, lease, tt.limit)
			if err != nil {
				t.Fatalf("ClaimDue: %v", err)
			}
			if got := ids(vs); !slices.Equal(got, tt.want) {
				t.Errorf("ClaimDue(%v, %d) = %v, want %v", tt.now, tt.limit, got, tt.want)
			}
			for _, v := range vs {
				stored, _ := s.Verification(t.Context(), v.ID)
				if *stored != *v || v.LeaseOwner != "p1" || !v.LeaseUntil.Equal(UTC(tt.now.Add(lease))) || v.Version != 1 {
					t.Errorf("claimed %s =\n%+v\nstored\n%+v\nwant leased to p1 until %v, version 1", v.ID, *v, *stored, tt.now.Add(lease))
				}
			}
		})
	}

	t.Run("a leased row is nobody else's until the lease ends or it is updated", func(t *testing.T) {
		s := seed(t, now)
		first, _ := s.ClaimDue(t.Context(), "p1", now, lease, 1)
		if got := ids(first); !slices.Equal(got, []string{"oldest"}) {
			t.Fatalf("first claim %v", got)
		}
		second, _ := s.ClaimDue(t.Context(), "p2", now, lease, 10)
		if got := ids(second); !slices.Equal(got, []string{"starting", "late", "exact"}) {
			t.Errorf("second poller claimed %v, want the others but oldest", got)
		}
		if again, _ := s.ClaimDue(t.Context(), "p2", now.Add(lease-time.Millisecond), lease, 10); !slices.Equal(ids(again), []string{"future"}) {
			t.Errorf("claimed %v before the leases ran out, want only the one never claimed", ids(again))
		}
		// p1 stores its poll: the lease ends and the row is due again later.
		v := first[0]
		v.Polls, v.NextPollAt = 1, now.Add(5*time.Second)
		if err := s.UpdateVerification(t.Context(), v); err != nil {
			t.Fatalf("UpdateVerification: %v", err)
		}
		stored, _ := s.Verification(t.Context(), "oldest")
		if stored.LeaseOwner != "" || !stored.LeaseUntil.IsZero() {
			t.Errorf("after the update the lease is %q until %v, want none", stored.LeaseOwner, stored.LeaseUntil)
		}
		if got, _ := s.ClaimDue(t.Context(), "p2", now.Add(5*time.Second), lease, 10); !slices.Equal(ids(got), []string{"oldest"}) {
			t.Errorf("at its next poll time: claimed %v, want oldest", ids(got))
		}
		// A lost lease: p2 died holding three rows; once it runs out they
		// are claimable, by then later than the interval after its poll.
		if got, _ := s.ClaimDue(t.Context(), "p3", now.Add(lease), lease, 10); !slices.Equal(ids(got), []string{"starting", "late", "exact"}) {
			t.Errorf("after p2's leases ran out: claimed %v", ids(got))
		}
	})

	// A time that is not set is the zero time, before every other: a store
	// that keeps it as NULL must still compare it so.
	t.Run("a verification with no next poll time is due at once", func(t *testing.T) {
		s := newStore(t)
		v := NewVerification("unset", "CA1", store.VerStarting, time.Time{})
		MustCreateVerification(t, s, v)
		if next, ok, err := s.NextDue(t.Context(), now); err != nil || !ok || !next.IsZero() {
			t.Errorf("NextDue = %v, %v, %v; want the zero time, true, nil", next, ok, err)
		}
		if got, _ := s.ClaimDue(t.Context(), "p1", now, lease, 10); !slices.Equal(ids(got), []string{"unset"}) {
			t.Errorf("claimed %v, want the one with no next poll time", ids(got))
		}
	})

	t.Run("a lease lasts at least the verification's interval", func(t *testing.T) {
		s := newStore(t)
		v := NewVerification("slow", "CA1", store.VerPending, now)
		v.Interval = 20 * time.Second // after slow_downs
		MustCreateVerification(t, s, v)
		got, _ := s.ClaimDue(t.Context(), "p1", now, lease, 10)
		if len(got) != 1 || !got[0].LeaseUntil.Equal(UTC(now.Add(20*time.Second))) {
			t.Errorf("lease %v, want the 20 s interval", got)
		}
	})

	t.Run("pollers claiming at once never share a row", func(t *testing.T) {
		TestClaimsAtOnce(t, 40, newStore(t))
	})
}

func testNextDue(t *testing.T, newStore func(t *testing.T) store.Store) {
	s := newStore(t)
	now := Epoch
	if next, ok, err := s.NextDue(t.Context(), now); err != nil || ok || !next.IsZero() {
		t.Errorf("NextDue(empty) = %v, %v, %v; want zero, false, nil", next, ok, err)
	}
	MustCreateVerification(t, s, NewVerification("done", "CA1", store.VerExpired, At(-time.Hour)))
	if _, ok, err := s.NextDue(t.Context(), now); err != nil || ok {
		t.Errorf("NextDue(only finished) = %v, %v; want false, nil", ok, err)
	}
	MustCreateVerification(t, s, NewVerification("b", "CA2", store.VerPending, At(10*time.Second)))
	a := NewVerification("a", "CA3", store.VerPending, At(5*time.Second))
	MustCreateVerification(t, s, a)
	if next, ok, err := s.NextDue(t.Context(), now); err != nil || !ok || !next.Equal(At(5*time.Second)) || next.Location() != time.UTC {
		t.Errorf("NextDue = %v, %v, %v; want %v (UTC), true, nil", next, ok, err, UTC(At(5*time.Second)))
	}
	// a is claimed at its time: its lease (8 s) ends after b is due.
	if got, _ := s.ClaimDue(t.Context(), "p1", At(5*time.Second), 8*time.Second, 10); len(got) != 1 {
		t.Fatalf("claim: %d rows", len(got))
	}
	if next, ok, err := s.NextDue(t.Context(), At(5*time.Second)); err != nil || !ok || !next.Equal(At(10*time.Second)) {
		t.Errorf("NextDue with a leased = %v, %v, %v; want b at %v", next, ok, err, At(10*time.Second))
	}
	b, _ := s.Verification(t.Context(), "b")
	b.Status = store.VerApproved
	if err := s.UpdateVerification(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if next, ok, err := s.NextDue(t.Context(), At(5*time.Second)); err != nil || !ok || !next.Equal(At(13*time.Second)) {
		t.Errorf("NextDue with only a leased one = %v, %v, %v; want its lease's end %v", next, ok, err, At(13*time.Second))
	}
}

func testCallFilter(t *testing.T, newStore func(t *testing.T) store.Store) {
	s := newStore(t)
	// live: L1 (oldest) .. L3 (newest); ended: E1 ended at +1m, E2 at +2m, E3 at +3m.
	for i := 1; i <= 3; i++ {
		MustCreateCall(t, s, NewCall(fmt.Sprintf("L%d", i), At(time.Duration(i)*time.Second)))
		c := NewCall(fmt.Sprintf("E%d", i), At(-time.Hour))
		c.State, c.EndedAt = store.CallEnded, At(time.Duration(i)*time.Minute)
		MustCreateCall(t, s, c)
	}
	tests := []struct {
		name string
		f    store.CallFilter
		want []string
	}{
		{"live calls newest first", store.CallFilter{Live: true}, []string{"L3", "L2", "L1"}},
		{"live calls limited", store.CallFilter{Live: true, Limit: 2}, []string{"L3", "L2"}},
		{"ended since a time, latest ended first", store.CallFilter{EndedSince: At(2 * time.Minute)}, []string{"E3", "E2"}},
		{"ended since the zero time is every ended call", store.CallFilter{}, []string{"E3", "E2", "E1"}},
		{"ended, limited", store.CallFilter{EndedSince: At(-time.Hour), Limit: 1}, []string{"E3"}},
		{"ended since after the last is empty", store.CallFilter{EndedSince: At(3*time.Minute + time.Millisecond)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, err := s.Calls(t.Context(), tt.f)
			if err != nil {
				t.Fatalf("Calls: %v", err)
			}
			var sids []string
			for _, c := range calls {
				sids = append(sids, c.SID)
			}
			if !slices.Equal(sids, tt.want) {
				t.Errorf("Calls(%+v) = %v, want %v", tt.f, sids, tt.want)
			}
		})
	}
	t.Run("the default limit is 200", func(t *testing.T) {
		s := newStore(t)
		for i := range 201 {
			MustCreateCall(t, s, NewCall(fmt.Sprintf("CA%03d", i), At(time.Duration(i)*time.Second)))
		}
		calls, err := s.Calls(t.Context(), store.CallFilter{Live: true})
		if err != nil {
			t.Fatalf("Calls: %v", err)
		}
		if len(calls) != 200 || calls[0].SID != "CA200" {
			t.Errorf("Calls(live) = %d calls starting %s, want 200 starting CA200", len(calls), calls[0].SID)
		}
	})
}

func testPurge(t *testing.T, newStore func(t *testing.T) store.Store) {
	s := newStore(t)
	p, ok := s.(Purger)
	if !ok {
		t.Skip("store has no PurgeEnded")
	}
	cutoff := At(time.Hour)
	add := func(sid string, ended time.Time) {
		c := NewCall(sid, Epoch)
		c.EndedAt = ended
		MustCreateCall(t, s, c, NewEvent(sid, "call_started", Epoch))
		MustCreateVerification(t, s, NewVerification("v-"+sid, sid, store.VerApproved, Epoch), NewEvent(sid, "verified", Epoch))
	}
	add("old", cutoff.Add(-time.Millisecond))
	add("older", cutoff.Add(-time.Hour))
	add("edge", cutoff) // ended exactly at the cutoff: kept
	add("recent", cutoff.Add(time.Minute))
	add("live", time.Time{})

	n, err := p.PurgeEnded(t.Context(), cutoff)
	if err != nil || n != 2 {
		t.Fatalf("PurgeEnded = %d, %v; want 2, nil", n, err)
	}
	for _, sid := range []string{"old", "older"} {
		if _, err := s.Call(t.Context(), sid); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Call(%s) after purge err = %v, want ErrNotFound", sid, err)
		}
		if _, err := s.Verification(t.Context(), "v-"+sid); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Verification(v-%s) after purge err = %v, want ErrNotFound", sid, err)
		}
		if evs := MustEvents(t, s, sid); len(evs) != 0 {
			t.Errorf("Events(%s) after purge = %v, want none", sid, kinds(evs))
		}
	}
	for _, sid := range []string{"edge", "recent", "live"} {
		if _, err := s.Call(t.Context(), sid); err != nil {
			t.Errorf("Call(%s) after purge: %v", sid, err)
		}
		if _, err := s.Verification(t.Context(), "v-"+sid); err != nil {
			t.Errorf("Verification(v-%s) after purge: %v", sid, err)
		}
		if evs := MustEvents(t, s, sid); len(evs) != 2 {
			t.Errorf("Events(%s) after purge = %v, want 2", sid, kinds(evs))
		}
	}
	if n, err := p.PurgeEnded(t.Context(), cutoff); err != nil || n != 0 {
		t.Errorf("second PurgeEnded = %d, %v; want 0, nil", n, err)
	}

	// Stores purge in batches of a few hundred calls: this is several.
	t.Run("many calls are purged batch after batch", func(t *testing.T) {
		s := newStore(t)
		p := s.(Purger)
		const n = 1201
		for i := range n {
			c := NewCall(fmt.Sprintf("CA%d", i), Epoch)
			c.EndedAt = At(time.Minute)
			MustCreateCall(t, s, c, NewEvent(c.SID, "call_started", Epoch))
		}
		MustCreateCall(t, s, NewCall("live", Epoch))
		got, err := p.PurgeEnded(t.Context(), At(time.Hour))
		if err != nil || got != n {
			t.Fatalf("PurgeEnded = %d, %v; want %d, nil", got, err, n)
		}
		left, err := s.Calls(t.Context(), store.CallFilter{Limit: 2000})
		if err != nil || len(left) != 0 {
			t.Errorf("ended calls left = %d, %v; want 0", len(left), err)
		}
		if evs := MustEvents(t, s, "CA1200"); len(evs) != 0 {
			t.Errorf("events of a purged call left: %d", len(evs))
		}
		if _, err := s.Call(t.Context(), "live"); err != nil {
			t.Errorf("live call after purge: %v", err)
		}
	})
}

func testInFlight(t *testing.T, newStore func(t *testing.T) store.Store) {
	s := newStore(t)
	c, ok := s.(InFlightCounter)
	if !ok {
		t.Skip("store has no InFlight")
	}
	for i, st := range []store.VerificationStatus{store.VerStarting, store.VerPending, store.VerApproved, store.VerCancelled, store.VerPending} {
		MustCreateVerification(t, s, NewVerification(fmt.Sprintf("v%d", i), fmt.Sprintf("CA%d", i), st, At(time.Second)))
	}
	if n, err := c.InFlight(t.Context()); err != nil || n != 3 {
		t.Fatalf("InFlight = %d, %v; want 3, nil", n, err)
	}
}

// testCanceled checks that a write whose context is canceled stores
// nothing, sets no Seq, and does not hold up the next write.
func testCanceled(t *testing.T, newStore func(t *testing.T) store.Store) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ev := NewEvent("CA1", "call_started", Epoch)
	if _, err := s.CreateCall(ctx, NewCall("CA1", Epoch), ev); err == nil {
		t.Fatal("CreateCall with a canceled context succeeded")
	}
	if ev.Seq != 0 {
		t.Errorf("Seq = %d after a failed write, want 0", ev.Seq)
	}
	if _, err := s.Call(t.Context(), "CA1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Call after canceled create err = %v, want ErrNotFound", err)
	}
	if _, err := s.CreateCall(t.Context(), NewCall("CA1", Epoch)); err != nil {
		t.Errorf("CreateCall after a canceled one: %v", err)
	}
}

// testErrorsHoldNoRowContents makes every kind of failing call with
// personal data in the rows and checks that no error message repeats it:
// errors are logged, rows are not. A store that is also a
// store.AgentStore has its agent errors checked too.
func testErrorsHoldNoRowContents(t *testing.T, newStore func(t *testing.T) store.Store) {
	s := newStore(t)
	const nid = "199001011239"
	v := NewVerification("v1", "CA1", store.VerPending, Epoch)
	v.IDHash, v.MaskedID = nid, nid // what a careless caller might store
	MustCreateVerification(t, s, v)
	stale := *v
	if err := s.UpdateVerification(t.Context(), v); err != nil {
		t.Fatalf("UpdateVerification: %v", err)
	}
	_, dupErr := s.StartVerification(t.Context(), nil, v, nil)
	errs := []error{
		dupErr,
		s.UpdateVerification(t.Context(), &stale),
	}
	if as, ok := s.(store.AgentStore); ok {
		if err := as.CreateAgent(t.Context(), store.Agent{Name: "alice", PasswordHash: "h"}); err != nil {
			t.Fatal(err)
		}
		errs = append(errs,
			as.CreateAgent(t.Context(), store.Agent{Name: "alice", PasswordHash: "h"}),
			as.CreateSession(t.Context(), store.Session{ID: nid, Agent: "mallory-" + nid}))
	}
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	errs = append(errs, s.UpdateVerification(canceled, v))
	_, err := s.Verification(t.Context(), nid)
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: no error", i)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, nid) || strings.Contains(msg, v.AuthReqID) || strings.Contains(msg, "v1") || strings.Contains(msg, "alice") {
			t.Errorf("case %d: error %q holds row contents", i, msg)
		}
	}
}

func testLimits(t *testing.T, newStore func(t *testing.T) store.Store) {
	ctx := t.Context()
	const window = 10 * time.Minute
	// seed stores finished verifications: the window's counts.
	seed := func(t *testing.T, s store.Store, vs ...*store.Verification) {
		t.Helper()
		for _, v := range vs {
			v.Status = store.VerApproved
			MustCreateVerification(t, s, v)
		}
	}
	ver := func(id, hash, caller, initiator string, created time.Time) *store.Verification {
		v := NewVerification(id, "CA-"+id, store.VerStarting, created)
		v.IDHash, v.Caller, v.Initiator, v.CreatedAt = hash, caller, initiator, created
		return v
	}
	history := []*store.Verification{
		ver("old", "h1", "+46701111111", "caller", At(-20*time.Minute)), // outside the window
		ver("a1", "h1", "+46701111111", "caller", At(-5*time.Minute)),
		ver("a2", "h1", "withheld", "caller", At(-4*time.Minute)),
		ver("a3", "h2", "withheld", "caller", At(-3*time.Minute)),
		ver("a4", "h1", "+46702222222", "agent:alice", At(-2*time.Minute)), // an agent's: counts for the number, not the caller id
	}
	for _, tt := range []struct {
		name     string
		limit    store.Limit
		wantErr  bool
		wantOver bool
	}{
		{"the number's limit, full", store.Limit{Scope: store.LimitNumber, Key: "h1", Max: 3, Window: window}, true, false},
		{"the number's limit, with room", store.Limit{Scope: store.LimitNumber, Key: "h1", Max: 4, Window: window}, false, false},
		{"the number's limit, full, overridden", store.Limit{Scope: store.LimitNumber, Key: "h1", Max: 3, Window: window, Override: true}, false, true},
		{"the number's limit, a longer window reaches the old one", store.Limit{Scope: store.LimitNumber, Key: "h1", Max: 4, Window: time.Hour}, true, false},
		{"another number", store.Limit{Scope: store.LimitNumber, Key: "h3", Max: 1, Window: window}, false, false},
		{"a caller id, full", store.Limit{Scope: store.LimitCaller, Key: "+46701111111", Max: 1, Window: window}, true, false},
		{"a caller id whose only start was an agent's", store.Limit{Scope: store.LimitCaller, Key: "+46702222222", Max: 1, Window: window}, false, false},
		{"the withheld bucket, full", store.Limit{Scope: store.LimitWithheld, Key: store.WithheldCaller, Max: 2, Window: window}, true, false},
		{"the withheld bucket, with room", store.Limit{Scope: store.LimitWithheld, Key: store.WithheldCaller, Max: 3, Window: window}, false, false},
		{"an agent, full", store.Limit{Scope: store.LimitAgent, Key: "agent:alice", Max: 1, Window: window}, true, false},
		{"another agent", store.Limit{Scope: store.LimitAgent, Key: "agent:bob", Max: 1, Window: window}, false, false},
		{"the global cap, full", store.Limit{Scope: store.LimitGlobal, Max: 4, Window: window}, true, false},
		{"the global cap, with room", store.Limit{Scope: store.LimitGlobal, Max: 5, Window: window}, false, false},
		{"a limit that is off", store.Limit{Scope: store.LimitGlobal, Max: 0, Window: window}, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			seed(t, s, history...)
			c := NewCall("CAnew", Epoch)
			MustCreateCall(t, s, c)
			v := ver("new", "h1", "withheld", "caller", Epoch)
			v.CallSID = "CAnew"
			c.VerificationID = v.ID
			over, err := s.StartVerification(ctx, c, v, []store.Limit{tt.limit}, NewEvent("CAnew", "verification_started", Epoch))
			le, isLimit := errors.AsType[*store.LimitError](err)
			switch {
			case tt.wantErr && (!isLimit || le.Limit != tt.limit):
				t.Fatalf("StartVerification err = %v, want a *LimitError for %+v", err, tt.limit)
			case !tt.wantErr && err != nil:
				t.Fatalf("StartVerification err = %v, want nil", err)
			}
			if gotOver := len(over) == 1 && over[0] == tt.limit; gotOver != tt.wantOver || !tt.wantOver && len(over) != 0 {
				t.Errorf("overridden = %+v, want the limit reported: %t", over, tt.wantOver)
			}
			_, verr := s.Verification(ctx, "new")
			stored, _ := s.Call(ctx, "CAnew")
			if tt.wantErr {
				if !errors.Is(verr, store.ErrNotFound) || stored.VerificationID != "" || len(MustEvents(t, s, "CAnew")) != 0 {
					t.Errorf("a refused start stored something: verification err %v, call points at %q", verr, stored.VerificationID)
				}
				return
			}
			if verr != nil || stored.VerificationID != "new" || stored.Version != c.Version {
				t.Errorf("started: verification err %v, call points at %q (version %d, want %d)", verr, stored.VerificationID, stored.Version, c.Version)
			}
		})
	}

	t.Run("a call with a verification in flight gets no second one", func(t *testing.T) {
		s := newStore(t)
		MustCreateVerification(t, s, NewVerification("v1", "CA1", store.VerPending, Epoch))
		_, err := s.StartVerification(ctx, nil, NewVerification("v2", "CA1", store.VerStarting, Epoch), nil)
		if !errors.Is(err, store.ErrInFlight) {
			t.Errorf("second start err = %v, want ErrInFlight", err)
		}
		done, _ := s.Verification(ctx, "v1")
		done.Status = store.VerDeclined
		if err := s.UpdateVerification(ctx, done); err != nil {
			t.Fatal(err)
		}
		if _, err := s.StartVerification(ctx, nil, NewVerification("v2", "CA1", store.VerStarting, Epoch), nil); err != nil {
			t.Errorf("start after the first ended: %v", err)
		}
	})

	t.Run("a moved call stores nothing", func(t *testing.T) {
		s := newStore(t)
		c := NewCall("CA1", Epoch)
		MustCreateCall(t, s, c)
		stale := *c
		c.Step++
		if err := s.UpdateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
		_, err := s.StartVerification(ctx, &stale, NewVerification("v1", "CA1", store.VerStarting, Epoch), nil, NewEvent("CA1", "x", Epoch))
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("start on a moved call err = %v, want ErrConflict", err)
		}
		if _, err := s.Verification(ctx, "v1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the verification was stored: %v", err)
		}
	})

	t.Run("starts at once cannot both slip under a limit", func(t *testing.T) {
		TestStartsAtOnce(t, newStore(t))
	})
}

func testStaleCalls(t *testing.T, newStore func(t *testing.T) store.Store) {
	s := newStore(t)
	ctx := t.Context()
	mk := func(sid string, st store.CallState, created, updated time.Time, ended bool) {
		c := NewCall(sid, created)
		c.State, c.UpdatedAt = st, updated
		if ended {
			c.EndedAt = updated
		}
		MustCreateCall(t, s, c)
	}
	mk("CAidle", store.CallVerifying, At(-2*time.Hour), At(-time.Hour), false)
	mk("CAbusy", store.CallGathering, At(-2*time.Hour), At(-time.Minute), false)
	mk("CAold", store.CallHandedOff, At(-5*time.Hour), At(-5*time.Hour), false)
	mk("CAtalking", store.CallHandedOff, At(-time.Hour), At(-time.Hour), false)
	mk("CAended", store.CallGathering, At(-5*time.Hour), At(-5*time.Hour), true)
	got, err := s.StaleCalls(ctx, At(-30*time.Minute), At(-4*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	var sids []string
	for _, c := range got {
		sids = append(sids, c.SID)
	}
	if want := []string{"CAold", "CAidle"}; !slices.Equal(sids, want) {
		t.Errorf("StaleCalls = %v, want %v (oldest first)", sids, want)
	}
}
