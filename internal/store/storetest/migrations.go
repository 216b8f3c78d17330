package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"strings"
	"testing"

	"github.com/ivr/callerverify/internal/store"
)

// TestMigrationsPinned pins every migration of fsys (as store.Migrations
// reads them) to its SHA-256 in shipped, by name: a database that already
// applied one never applies it again, so an edit would reach new
// databases only. A store changes its schema with a new numbered file and
// adds its hash to shipped.
func TestMigrationsPinned(t *testing.T, fsys fs.FS, shipped map[string]string) {
	ms, err := store.Migrations(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < len(shipped) {
		t.Errorf("%d migration files, want at least the %d shipped", len(ms), len(shipped))
	}
	for _, m := range ms {
		sum := sha256.Sum256([]byte(m.SQL))
		want, ok := shipped[m.Name]
		switch {
		case !ok:
			t.Errorf("%s is not pinned: add its sha256 %x here once it ships", m.Name, sum)
		case hex.EncodeToString(sum[:]) != want:
			t.Errorf("%s was edited (sha256 %x, want %s): add a new migration instead", m.Name, sum, want)
		}
	}
}

// MigrationNames is the name of every migration of fsys, in order,
// comma-separated: what a store that applied them all records.
func MigrationNames(t testing.TB, fsys fs.FS) string {
	t.Helper()
	ms, err := store.Migrations(fsys)
	if err != nil || len(ms) == 0 {
		t.Fatalf("migration files: %d, %v", len(ms), err)
	}
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return strings.Join(names, ",")
}
