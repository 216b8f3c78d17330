package sqlite

import "context"

// AppliedMigrations lists the migrations table, for tests.
func AppliedMigrations(ctx context.Context, db *DB) ([]string, error) {
	rows, err := db.r.db.QueryContext(ctx, "SELECT name FROM migrations ORDER BY name")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}
