package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ivr/callerverify/internal/postgres"
	"github.com/ivr/callerverify/internal/sqlite"
	"github.com/ivr/callerverify/internal/store"
)

// database is what ivrd needs of a store: sqlite (a file path in IVR_DB,
// one instance) or PostgreSQL (a postgres:// URL, any number of instances).
type database interface {
	store.Store
	store.AgentStore
	// Ping checks that the database answers and takes writes.
	Ping(ctx context.Context) error
	// InFlight counts the verifications starting or pending.
	InFlight(ctx context.Context) (int, error)
	// PurgeEnded deletes calls that ended before before, with their
	// verifications and events.
	PurgeEnded(ctx context.Context, before time.Time) (int, error)
	Close() error
}

var (
	_ database        = (*sqlite.DB)(nil)
	_ database        = (*postgres.DB)(nil)
	_ store.EventFeed = (*postgres.DB)(nil)
)

// isPostgresURL reports whether IVR_DB names a PostgreSQL database rather
// than a sqlite file.
func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// openDatabase opens the store IVR_DB names and migrates it.
func openDatabase(ctx context.Context, dsn string) (database, error) {
	if isPostgresURL(dsn) {
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", redactURL(dsn), err)
		}
		return db, nil
	}
	if dir := filepath.Dir(dsn); dir != "." {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("the directory %s does not exist: create it (and give the service's user write access) or choose another path", dir)
		}
	}
	return sqlite.Open(ctx, dsn)
}

// checkDatabaseSetting reports what is wrong with an IVR_DB value itself.
func checkDatabaseSetting(dsn string) error {
	if !isPostgresURL(dsn) {
		return nil
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return errors.New("not a PostgreSQL URL such as postgres://ivr@db.internal:5432/ivr?sslmode=verify-full")
	}
	return nil
}

// redactURL is a database URL fit for logs and error messages: without its
// password.
func redactURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "the PostgreSQL URL"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
