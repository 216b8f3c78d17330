package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ivr/callerverify/internal/postgres"
	"github.com/ivr/callerverify/internal/sqlite"
	"github.com/ivr/callerverify/internal/store"
)

// isPostgres reports whether --db names a PostgreSQL database.
func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// checkDB refuses a --db that is neither empty (sqlite) nor a PostgreSQL
// URL on loopback.
func checkDB(db string) error {
	if db == "" {
		return nil
	}
	u, err := url.Parse(db)
	if err != nil || !isPostgres(db) {
		return fmt.Errorf("--db: want a postgres:// URL (or nothing for a sqlite file)")
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--db %s: ivrload runs on loopback only", host)
	}
	return nil
}

// runDatabase is IVR_DB for a run: a sqlite file in dir, or a new schema
// in the PostgreSQL database dbURL (the returned URL selects it with
// search_path). drop removes the schema and everything in it.
func runDatabase(ctx context.Context, dbURL, dir string) (db string, drop func() error, err error) {
	if dbURL == "" {
		return filepath.Join(dir, "ivr.db"), func() error { return nil }, nil
	}
	schema := "ivrload_" + randomHex(6)
	if err := execSQL(ctx, dbURL, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("--db: create a schema for the run: %w", err)
	}
	u, _ := url.Parse(dbURL)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return execSQL(ctx, dbURL, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	}
	return u.String(), drop, nil
}

// execSQL runs one statement on a connection of its own (the URL's pool
// settings, which only a pool understands, left out).
func execSQL(ctx context.Context, dbURL, sql string) error {
	if u, err := url.Parse(dbURL); err == nil {
		q := u.Query()
		for k := range q {
			if strings.HasPrefix(k, "pool_") {
				q.Del(k)
			}
		}
		u.RawQuery = q.Encode()
		dbURL = u.String()
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// checkStore is what the checks after a run read from the service's store.
type checkStore interface {
	Call(ctx context.Context, sid string) (*store.Call, error)
	Verification(ctx context.Context, id string) (*store.Verification, error)
	Events(ctx context.Context, callSID string) ([]store.Event, error)
	Close() error
}

// openStore opens the run's store for the checks.
func openStore(ctx context.Context, db string) (checkStore, error) {
	if isPostgres(db) {
		pg, err := postgres.Open(ctx, db)
		if err != nil {
			return nil, err
		}
		return pg, nil
	}
	lite, err := sqlite.Open(ctx, db)
	if err != nil {
		return nil, err
	}
	return lite, nil
}
