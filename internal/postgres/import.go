package postgres

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Table is the rows Import copies into one table of the store: values
// named by Columns, each an int64, a string or any value pgx encodes for
// the column. An int64 for a timestamptz column is unix milliseconds, 0
// for "not set", as the sqlite store keeps times.
type Table struct {
	Name    string
	Columns []string
	Rows    iter.Seq2[[]any, error]
}

// ErrNotEmpty is Import's refusal of a store that holds data already.
var ErrNotEmpty = errors.New("the database holds data already")

// Import copies tables, in the order given (a table before those that
// refer to it), into the store, in one transaction: all of them or,
// on any error, nothing. It refuses (ErrNotEmpty) when one of those tables
// holds a row, and fails on a table or column the store's schema does not
// have, so that nothing is dropped on the way. Values are kept as they
// are, identity columns too (the events keep their Seqs, and the sequence
// continues after the highest). It returns the rows copied per table.
// Writers to these tables wait for it; nothing else should run on the
// store meanwhile.
func (db *DB) Import(ctx context.Context, tables []Table) (map[string]int64, error) {
	counts := make(map[string]int64, len(tables))
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if len(tables) == 0 {
			return nil
		}
		names := make([]string, len(tables))
		for i, t := range tables {
			names[i] = pgx.Identifier{t.Name}.Sanitize()
		}
		cols := make([]map[string]column, len(tables))
		for i, t := range tables {
			var err error
			if cols[i], err = tableColumns(ctx, tx, t.Name); err != nil {
				return err
			}
		}
		// Writers wait (readers do not) until the copy commits or is undone.
		if _, err := tx.Exec(ctx, "LOCK TABLE "+strings.Join(names, ", ")+" IN EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("lock tables: %w", err)
		}
		for i, t := range tables {
			var full bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+names[i]+")").Scan(&full); err != nil {
				return fmt.Errorf("%s: %w", t.Name, err)
			}
			if full {
				return fmt.Errorf("%w (table %s)", ErrNotEmpty, t.Name)
			}
		}
		for i, t := range tables {
			src := &rowSource{table: t, cols: make([]column, len(t.Columns))}
			for j, c := range t.Columns {
				col, ok := cols[i][c]
				if !ok {
					return fmt.Errorf("column %s.%s is not in the PostgreSQL schema: is this ivrd older than the data?", t.Name, c)
				}
				src.cols[j] = col
			}
			n, err := tx.CopyFrom(ctx, pgx.Identifier{t.Name}, t.Columns, src)
			src.close()
			if err != nil {
				return fmt.Errorf("copy %s: %w", t.Name, err)
			}
			counts[t.Name] = n
			for _, c := range src.cols {
				if !c.identity {
					continue
				}
				// The next value follows the highest copied (or starts
				// over at 1 when none was).
				q := `SELECT setval(pg_get_serial_sequence($1, $2), coalesce(max(` + pgx.Identifier{c.name}.Sanitize() + `), 1), max(` +
					pgx.Identifier{c.name}.Sanitize() + `) IS NOT NULL) FROM ` + names[i]
				if _, err := tx.Exec(ctx, q, names[i], c.name); err != nil {
					return fmt.Errorf("%s: continue the sequence of %s: %w", t.Name, c.name, err)
				}
			}
		}
		// The poller's queue is derived from the verifications: it is
		// not a table Import copies.
		if _, err := tx.Exec(ctx, qQueueOrphans); err != nil {
			return fmt.Errorf("queue the verifications in flight: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: import: %w", err)
	}
	return counts, nil
}

// column is a column of the store's schema.
type column struct {
	name     string
	typ      string // information_schema's data_type
	identity bool
}

// tableColumns returns the columns of a table of the store's schema by
// name; a table the schema does not have is an error.
func tableColumns(ctx context.Context, tx pgx.Tx, table string) (map[string]column, error) {
	rows, err := tx.Query(ctx, `SELECT column_name, data_type, is_identity = 'YES' FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1`, table)
	if err != nil {
		return nil, fmt.Errorf("%s: columns: %w", table, err)
	}
	cols := map[string]column{}
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.typ, &c.identity); err != nil {
			rows.Close()
			return nil, fmt.Errorf("%s: columns: %w", table, err)
		}
		cols[c.name] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: columns: %w", table, err)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("table %s is not in the PostgreSQL schema: is this ivrd older than the data?", table)
	}
	return cols, nil
}

// rowSource is a Table's rows as pgx.CopyFrom reads them, times converted.
type rowSource struct {
	table Table
	cols  []column
	next  func() ([]any, error, bool)
	stop  func()
	row   []any
	err   error
}

func (s *rowSource) Next() bool {
	if s.next == nil {
		s.next, s.stop = iter.Pull2(s.table.Rows)
	}
	row, err, ok := s.next()
	if !ok || err != nil {
		s.err = err
		s.stop()
		return false
	}
	if len(row) != len(s.cols) {
		s.err = fmt.Errorf("%s: a row of %d values for %d columns", s.table.Name, len(row), len(s.cols))
		s.stop()
		return false
	}
	for i, c := range s.cols {
		if ms, ok := row[i].(int64); ok && c.typ == "timestamp with time zone" {
			var t time.Time
			if ms != 0 {
				t = time.UnixMilli(ms).UTC()
			}
			row[i] = stamp(t)
		}
	}
	s.row = row
	return true
}

func (s *rowSource) Values() ([]any, error) { return s.row, nil }

// close ends the pull on the rows, if it began.
func (s *rowSource) close() {
	if s.stop != nil {
		s.stop()
	}
}

func (s *rowSource) Err() error { return s.err }
