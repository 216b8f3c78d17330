package store

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
)

// Migration is one change of a store's schema: a file of its migrations
// directory, applied once, in one transaction, and recorded under Name.
// A shipped migration is never edited; a change is a new numbered file.
type Migration struct {
	Name string // the file's name, such as "0001_init.sql"
	SQL  string
}

// Migrations reads a store's migrations, the files migrations/*.sql of
// fsys (its embedded files, or its source directory in tests), in name
// order, which is the order they are applied in.
func Migrations(fsys fs.FS) ([]Migration, error) {
	files, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	slices.Sort(files)
	ms := make([]Migration, len(files))
	for i, f := range files {
		body, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", path.Base(f), err)
		}
		ms[i] = Migration{Name: path.Base(f), SQL: string(body)}
	}
	return ms, nil
}
