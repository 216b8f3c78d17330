package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"strings"
)

// Table is one table of the store as Export reads it: its columns, and its
// rows with a value per column, an int64 for an INTEGER column (times are
// unix milliseconds, 0 for "not set") and a string for a TEXT one.
type Table struct {
	Name    string
	Columns []string
	// Rows yields the rows in rowid order (the events in Seq order); it
	// may be ranged over once, inside Export's fn.
	Rows iter.Seq2[[]any, error]
}

// notExported are the tables that hold no data of the store: the record of
// applied migrations, the readiness probe's row and SQLite's own.
var notExported = map[string]bool{"migrations": true, "write_probe": true}

// Export reads the whole store in one read transaction (a consistent
// snapshot, whatever writes meanwhile) and calls fn with every table that
// holds its data, in the order they were created, which puts a table
// before those that refer to it. For copying the store into another
// (ivrd migrate); the rows are read as fn ranges over them.
func (db *DB) Export(ctx context.Context, fn func(tables []Table) error) error {
	tx, err := db.r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: export: begin: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY rowid`)
	if err != nil {
		return fmt.Errorf("sqlite: export: list tables: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("sqlite: export: list tables: %w", err)
		}
		if !notExported[n] {
			names = append(names, n)
		}
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("sqlite: export: list tables: %w", err)
	}
	tables := make([]Table, 0, len(names))
	for _, name := range names {
		cols, err := columns(ctx, tx, name)
		if err != nil {
			return fmt.Errorf("sqlite: export: %s: %w", name, err)
		}
		tables = append(tables, Table{Name: name, Columns: cols, Rows: tableRows(ctx, tx, name, cols)})
	}
	if err := fn(tables); err != nil {
		return err
	}
	return tx.Commit()
}

// columns returns a table's column names in their order.
func columns(ctx context.Context, tx *sql.Tx, table string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

// tableRows yields the rows of table, in rowid order.
func tableRows(ctx context.Context, tx *sql.Tx, table string, cols []string) iter.Seq2[[]any, error] {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = quote(c)
	}
	q := "SELECT " + strings.Join(quoted, ", ") + " FROM " + quote(table) + " ORDER BY rowid"
	return func(yield func([]any, error) bool) {
		rows, err := tx.QueryContext(ctx, q)
		if err != nil {
			yield(nil, fmt.Errorf("sqlite: export: %s: %w", table, err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				yield(nil, fmt.Errorf("sqlite: export: %s: %w", table, err))
				return
			}
			if !yield(vals, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(nil, fmt.Errorf("sqlite: export: %s: %w", table, err))
		}
	}
}

// quote is an SQL identifier in double quotes.
func quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
