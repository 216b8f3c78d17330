package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/postgres/postgrestest"
	"github.com/ivr/callerverify/internal/sqlite"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/internal/store/storetest"
)

// TestMigrateCopiesTheSqliteFileIntoPostgreSQL fills a sqlite file through
// the store, with a purge leaving a gap in the event seqs, copies it with
// ivrd migrate, and reads everything back from PostgreSQL: calls,
// verifications (leases, ping fields), events with their seqs, agents,
// sessions and login failures, equal; new events continue after the last
// seq. A second copy into the same database is refused and changes nothing.
func TestMigrateCopiesTheSqliteFileIntoPostgreSQL(t *testing.T) {
	dbURL := postgrestest.Schema(t, postgrestest.URL(t))
	file := filepath.Join(t.TempDir(), "ivr.db")
	ctx := t.Context()
	src, err := sqlite.Open(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	// A call that ended long ago, purged: its events' seqs are gone.
	old := storetest.NewCall("CAold", storetest.At(-48*time.Hour))
	storetest.MustCreateCall(t, src, old, storetest.NewEvent("CAold", "call_started", old.CreatedAt))
	old.State, old.EndedAt = store.CallEnded, storetest.At(-47*time.Hour)
	if err := src.UpdateCall(ctx, old, storetest.NewEvent("CAold", "call_ended", old.EndedAt)); err != nil {
		t.Fatal(err)
	}
	if n, err := src.PurgeEnded(ctx, storetest.At(-time.Hour)); err != nil || n != 1 {
		t.Fatalf("PurgeEnded = %d, %v", n, err)
	}
	// A call handed off verified and ended, and a live one with a
	// verification leased by a poller.
	done := storetest.NewCall("CAdone", storetest.At(0))
	storetest.MustCreateCall(t, src, done, storetest.NewEvent("CAdone", "call_started", storetest.At(0)))
	vd := storetest.NewVerification("vdone", "CAdone", store.VerApproved, time.Time{})
	vd.Name, vd.GivenName, vd.FamilyName, vd.Subject, vd.SealedID = "Elsa Svensson", "Elsa", "Svensson", "sub-1", ""
	vd.CompletedAt, vd.Polls, vd.NotifyHash, vd.NotifiedAt = storetest.At(20*time.Second), 4, "f00d", storetest.At(19*time.Second)
	storetest.MustCreateVerification(t, src, vd, storetest.NewEvent("CAdone", "verification_approved", storetest.At(20*time.Second)))
	done.State, done.Outcome, done.VerificationID, done.Step = store.CallEnded, store.OutcomeVerified, "vdone", 4
	done.HandedOffAt, done.EndedAt, done.Identify = storetest.At(21*time.Second), storetest.At(5*time.Minute), store.IDNationalID
	if err := src.UpdateCall(ctx, done, storetest.NewEvent("CAdone", "handed_off", done.HandedOffAt), storetest.NewEvent("CAdone", "call_ended", done.EndedAt)); err != nil {
		t.Fatal(err)
	}
	live := storetest.NewCall("CAlive", storetest.At(time.Minute))
	storetest.MustCreateCall(t, src, live, storetest.NewEvent("CAlive", "call_started", live.CreatedAt))
	vl := storetest.NewVerification("vlive", "CAlive", store.VerPending, storetest.At(time.Minute))
	storetest.MustCreateVerification(t, src, vl, storetest.NewEvent("CAlive", "verification_pending", storetest.At(time.Minute)))
	if _, err := src.ClaimDue(ctx, "host-1", storetest.At(2*time.Minute), 8*time.Second, 10); err != nil {
		t.Fatal(err)
	}
	if err := src.CreateAgent(ctx, store.Agent{Name: "alice", PasswordHash: "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA", CreatedAt: storetest.At(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	sess := store.Session{ID: "sess-hash", Agent: "alice", CSRFToken: "csrf", CreatedAt: storetest.At(0), ExpiresAt: storetest.At(8 * time.Hour), LastUsedAt: storetest.At(time.Minute)}
	if err := src.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := src.AddLoginFailure(ctx, []string{"bob", "ip:192.0.2.1"}, storetest.At(-time.Hour), storetest.At(0)); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	args := []string{"migrate", "--from", file, "--to", dbURL}
	if err := run(ctx, args, func(string) string { return "" }, strings.NewReader(""), &out, &out); err != nil {
		t.Fatalf("ivrd migrate: %v\n%s", err, out.String())
	}
	t.Logf("ivrd migrate said: %s", out.String())
	for _, want := range []string{"2 calls", "2 verifications", "6 events", "1 agents", "1 agent sessions", "2 login failures"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("ivrd migrate said %q; want it to name %q", out.String(), want)
		}
	}

	dst := postgrestest.OpenURL(t, dbURL)
	for _, sid := range []string{"CAdone", "CAlive"} {
		c1, err1 := src.Call(ctx, sid)
		c2, err2 := dst.Call(ctx, sid)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(c1, c2) {
			t.Errorf("call %s: sqlite %+v (%v), PostgreSQL %+v (%v)", sid, c1, err1, c2, err2)
		}
		e1, e2 := storetest.MustEvents(t, src, sid), storetest.MustEvents(t, dst, sid)
		if !reflect.DeepEqual(e1, e2) {
			t.Errorf("events of %s: sqlite %+v, PostgreSQL %+v", sid, e1, e2)
		}
	}
	if _, err := dst.Call(ctx, "CAold"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the purged call: %v, want not found", err)
	}
	for _, id := range []string{"vdone", "vlive"} {
		v1, err1 := src.Verification(ctx, id)
		v2, err2 := dst.Verification(ctx, id)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(v1, v2) {
			t.Errorf("verification %s: sqlite %+v (%v), PostgreSQL %+v (%v)", id, v1, err1, v2, err2)
		}
	}
	if v, _ := dst.Verification(ctx, "vlive"); v == nil || v.LeaseOwner != "host-1" {
		t.Errorf("the lease was not copied: %+v", v)
	}
	a1, _ := src.Agents(ctx)
	a2, err := dst.Agents(ctx)
	if err != nil || !reflect.DeepEqual(a1, a2) {
		t.Errorf("agents: sqlite %+v, PostgreSQL %+v (%v)", a1, a2, err)
	}
	if s2, err := dst.Session(ctx, "sess-hash"); err != nil || !reflect.DeepEqual(s2, mustSession(t, src, "sess-hash")) {
		t.Errorf("session: PostgreSQL %+v (%v), want %+v", s2, err, sess)
	}
	keys := []string{"bob", "ip:192.0.2.1"}
	f1, _ := src.LoginFailures(ctx, keys, storetest.At(-time.Hour))
	f2, err := dst.LoginFailures(ctx, keys, storetest.At(-time.Hour))
	if err != nil || len(f2) != 2 || !reflect.DeepEqual(f1, f2) {
		t.Errorf("login failures: sqlite %+v, PostgreSQL %+v (%v)", f1, f2, err)
	}

	// The event log goes on after the last copied seq.
	last := storetest.MustEvents(t, src, "CAlive")
	e := storetest.NewEvent("CAlive", "call_status", storetest.At(3*time.Minute))
	if err := dst.AppendEvent(ctx, e); err != nil {
		t.Fatal(err)
	}
	if want := last[len(last)-1].Seq + 1; e.Seq != want {
		t.Errorf("the first event after the copy got seq %d, want %d", e.Seq, want)
	}

	// Copying again is refused, and changes nothing.
	out.Reset()
	err = run(ctx, args, func(string) string { return "" }, strings.NewReader(""), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "holds data already") {
		t.Errorf("a second ivrd migrate into the same database = %v, want a refusal", err)
	}
	if evs := storetest.MustEvents(t, dst, "CAlive"); len(evs) != len(last)+1 {
		t.Errorf("after the refused copy CAlive has %d events, want %d", len(evs), len(last)+1)
	}
}

func mustSession(t *testing.T, s store.AgentStore, id string) store.Session {
	t.Helper()
	sess, err := s.Session(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

// TestMigrateRefusesBadArguments: a missing file is named and not created;
// a target that is not a PostgreSQL URL is refused before anything opens.
func TestMigrateRefusesBadArguments(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.db")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, "--from: missing"},
		{"a missing file", []string{"--from", missing, "--to", "postgres://ivr@127.0.0.1:1/ivr"}, "no such file"},
		{"a file as target", []string{"--from", missing, "--to", "other.db"}, "--to: not a postgres:// URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"migrate"}, tt.args...), func(string) string { return "" }, strings.NewReader(""), &out, &out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ivrd migrate %v = %v, want an error naming %q", tt.args, err, tt.want)
			}
		})
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ivrd migrate created the missing --from file (%v)", err)
	}
}
