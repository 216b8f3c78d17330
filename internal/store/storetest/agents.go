package storetest

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

func testAgents(t *testing.T, newStore func(t *testing.T) store.AgentStore) {
	db := newStore(t)
	ctx := t.Context()
	alice := store.Agent{Name: "alice", PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA", CreatedAt: Epoch}
	bob := store.Agent{Name: "bob", PasswordHash: "$argon2id$bob", CreatedAt: At(time.Minute)}
	for _, a := range []store.Agent{bob, alice} {
		if err := db.CreateAgent(ctx, a); err != nil {
			t.Fatalf("CreateAgent(%s): %v", a.Name, err)
		}
	}

	t.Run("an agent reads back as written, in UTC", func(t *testing.T) {
		got, err := db.Agent(ctx, "alice")
		want := alice
		want.CreatedAt = UTC(want.CreatedAt)
		if err != nil || got != want {
			t.Errorf("Agent(alice) = %+v, %v; want %+v", got, err, want)
		}
	})
	t.Run("a taken name is ErrExists", func(t *testing.T) {
		err := db.CreateAgent(ctx, store.Agent{Name: "alice", PasswordHash: "other"})
		if !errors.Is(err, store.ErrExists) {
			t.Errorf("CreateAgent(alice again) err = %v, want ErrExists", err)
		}
		if got, _ := db.Agent(ctx, "alice"); got.PasswordHash != alice.PasswordHash {
			t.Error("duplicate create changed the stored hash")
		}
	})
	t.Run("an unknown agent is ErrNotFound", func(t *testing.T) {
		if _, err := db.Agent(ctx, "mallory"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Agent(unknown) err = %v, want ErrNotFound", err)
		}
		if err := db.DeleteAgent(ctx, "mallory"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteAgent(unknown) err = %v, want ErrNotFound", err)
		}
	})
	t.Run("agents are listed by name", func(t *testing.T) {
		got, err := db.Agents(ctx)
		if err != nil {
			t.Fatalf("Agents: %v", err)
		}
		var names []string
		for _, a := range got {
			names = append(names, a.Name)
		}
		if !slices.Equal(names, []string{"alice", "bob"}) {
			t.Errorf("Agents = %v, want [alice bob]", names)
		}
	})
}

func testSessions(t *testing.T, newStore func(t *testing.T) store.AgentStore) {
	ctx := t.Context()
	setup := func(t *testing.T) store.AgentStore {
		db := newStore(t)
		for _, name := range []string{"alice", "bob"} {
			if err := db.CreateAgent(ctx, store.Agent{Name: name, PasswordHash: "h", CreatedAt: Epoch}); err != nil {
				t.Fatalf("CreateAgent: %v", err)
			}
		}
		for _, s := range []store.Session{
			{ID: "s-alice-1", Agent: "alice", CSRFToken: "csrf1", CreatedAt: Epoch, ExpiresAt: At(time.Hour)},
			{ID: "s-alice-2", Agent: "alice", CSRFToken: "csrf2", CreatedAt: Epoch, ExpiresAt: At(2 * time.Hour)},
			{ID: "s-bob", Agent: "bob", CSRFToken: "csrf3", CreatedAt: Epoch, ExpiresAt: At(3 * time.Hour)},
		} {
			if err := db.CreateSession(ctx, s); err != nil {
				t.Fatalf("CreateSession(%s): %v", s.ID, err)
			}
		}
		return db
	}
	exists := func(t *testing.T, s store.AgentStore, ids ...string) []string {
		t.Helper()
		var found []string
		for _, id := range ids {
			switch _, err := s.Session(ctx, id); {
			case err == nil:
				found = append(found, id)
			case !errors.Is(err, store.ErrNotFound):
				t.Fatalf("Session(%s): %v", id, err)
			}
		}
		return found
	}
	all := []string{"s-alice-1", "s-alice-2", "s-bob"}

	t.Run("a session reads back as written", func(t *testing.T) {
		s := setup(t)
		got, err := s.Session(ctx, "s-alice-1")
		want := store.Session{ID: "s-alice-1", Agent: "alice", CSRFToken: "csrf1", CreatedAt: UTC(Epoch), ExpiresAt: UTC(At(time.Hour)), LastUsedAt: UTC(Epoch)}
		if err != nil || got != want {
			t.Errorf("Session = %+v, %v; want %+v", got, err, want)
		}
	})
	t.Run("a session for an unknown agent is ErrNotFound", func(t *testing.T) {
		s := setup(t)
		err := s.CreateSession(ctx, store.Session{ID: "s-x", Agent: "mallory", ExpiresAt: At(time.Hour)})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CreateSession(unknown agent) err = %v, want ErrNotFound", err)
		}
	})
	t.Run("a taken session ID is ErrExists", func(t *testing.T) {
		s := setup(t)
		err := s.CreateSession(ctx, store.Session{ID: "s-bob", Agent: "alice", ExpiresAt: At(time.Hour)})
		if !errors.Is(err, store.ErrExists) {
			t.Errorf("CreateSession(taken ID) err = %v, want ErrExists", err)
		}
	})
	t.Run("deleting an agent deletes its sessions only", func(t *testing.T) {
		s := setup(t)
		if err := s.DeleteAgent(ctx, "alice"); err != nil {
			t.Fatalf("DeleteAgent: %v", err)
		}
		if got := exists(t, s, all...); !slices.Equal(got, []string{"s-bob"}) {
			t.Errorf("sessions left = %v, want [s-bob]", got)
		}
		if _, err := s.Agent(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Agent(deleted) err = %v, want ErrNotFound", err)
		}
	})
	t.Run("a session's last use moves forward only", func(t *testing.T) {
		s := setup(t)
		if err := s.TouchSession(ctx, "s-alice-1", At(10*time.Minute)); err != nil {
			t.Fatalf("TouchSession: %v", err)
		}
		if err := s.TouchSession(ctx, "s-alice-1", At(5*time.Minute)); err != nil {
			t.Fatalf("TouchSession: %v", err)
		}
		got, _ := s.Session(ctx, "s-alice-1")
		if !got.LastUsedAt.Equal(UTC(At(10 * time.Minute))) {
			t.Errorf("LastUsedAt = %v, want %v", got.LastUsedAt, At(10*time.Minute))
		}
		if err := s.TouchSession(ctx, "s-nope", Epoch); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("TouchSession(unknown) = %v, want ErrNotFound", err)
		}
	})
	t.Run("logout deletes one session and a second logout is no error", func(t *testing.T) {
		s := setup(t)
		for range 2 {
			if err := s.DeleteSession(ctx, "s-alice-1"); err != nil {
				t.Fatalf("DeleteSession: %v", err)
			}
		}
		if got := exists(t, s, all...); !slices.Equal(got, []string{"s-alice-2", "s-bob"}) {
			t.Errorf("sessions left = %v, want [s-alice-2 s-bob]", got)
		}
	})

	tests := []struct {
		name string
		now  time.Time
		n    int
		left []string
	}{
		{"before any expiry nothing goes", At(time.Hour - time.Millisecond), 0, all},
		{"a session expires at its ExpiresAt", At(time.Hour), 1, []string{"s-alice-2", "s-bob"}},
		{"later, more expire", At(150 * time.Minute), 2, []string{"s-bob"}},
		{"at the end all are gone", At(24 * time.Hour), 3, nil},
	}
	for _, tt := range tests {
		t.Run("expiry: "+tt.name, func(t *testing.T) {
			s := setup(t)
			n, err := s.DeleteExpiredSessions(ctx, tt.now)
			if err != nil || n != tt.n {
				t.Errorf("DeleteExpiredSessions = %d, %v; want %d, nil", n, err, tt.n)
			}
			if got := exists(t, s, all...); !slices.Equal(got, tt.left) {
				t.Errorf("sessions left = %v, want %v", got, tt.left)
			}
		})
	}
}

// TestAgentStore checks that the stores newStore returns keep agents and
// their sessions as the store.AgentStore contract says. newStore must
// return an empty store each call.
func TestAgentStore(t *testing.T, newStore func(t *testing.T) store.AgentStore) {
	t.Run("agents", func(t *testing.T) { testAgents(t, newStore) })
	t.Run("sessions", func(t *testing.T) { testSessions(t, newStore) })
	t.Run("login failures", func(t *testing.T) { testLoginFailures(t, newStore) })
}

func testLoginFailures(t *testing.T, newStore func(t *testing.T) store.AgentStore) {
	ctx := t.Context()
	s := newStore(t)
	window := 15 * time.Minute
	add := func(now time.Time, keys ...string) {
		t.Helper()
		if err := s.AddLoginFailure(ctx, keys, now.Add(-window), now); err != nil {
			t.Fatalf("AddLoginFailure: %v", err)
		}
	}
	add(Epoch, "name:alice", "ip:10.0.0.1")
	add(At(time.Minute), "name:alice", "ip:10.0.0.2")
	add(At(2*time.Minute), "name:alice")
	add(At(-time.Hour), "name:bob") // long ago
	got, err := s.LoginFailures(ctx, []string{"name:alice", "ip:10.0.0.1", "ip:10.0.0.2", "name:bob", "name:nobody"}, At(2*time.Minute).Add(-window))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]store.LoginFailures{
		"name:alice":  {Count: 3, Last: UTC(At(2 * time.Minute))},
		"ip:10.0.0.1": {Count: 1, Last: UTC(Epoch)},
		"ip:10.0.0.2": {Count: 1, Last: UTC(At(time.Minute))},
	}
	if !maps.Equal(got, want) {
		t.Errorf("LoginFailures = %v, want %v (bob's are too old)", got, want)
	}
	// A failure long after the last one starts the count again.
	add(At(time.Hour), "name:alice")
	got, _ = s.LoginFailures(ctx, []string{"name:alice"}, At(time.Hour).Add(-window))
	if got["name:alice"].Count != 1 {
		t.Errorf("count after a quiet spell = %d, want 1", got["name:alice"].Count)
	}
	if err := s.ClearLoginFailures(ctx, "name:alice", "ip:10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.LoginFailures(ctx, []string{"name:alice", "ip:10.0.0.1", "ip:10.0.0.2"}, Epoch.Add(-window))
	if _, ok := got["name:alice"]; ok || len(got) != 1 {
		t.Errorf("after clearing: %v, want only ip:10.0.0.2", got)
	}
}
