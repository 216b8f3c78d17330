package ivr_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

// TestNationalIDsNeverReachTheDatabaseFiles is the finding of the security
// review: the number column was cleared when a verification ended, but
// sqlite kept the old pages, so after a few calls the full numbers were in
// ivr.db-wal, in free pages of ivr.db, and in every backup. Now the number
// is sealed before it is stored; this runs calls of every kind and scans
// every byte of every database file, and of a backup, for the numbers.
func TestNationalIDsNeverReachTheDatabaseFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		numbers := []string{cibatest.SEApprove, cibatest.SEDecline, cibatest.NOApprove, cibatest.NODecline, cibatest.SEManual}
		e.call(&caller{numbers: []string{cibatest.SEApprove}})
		e.call(&caller{numbers: []string{cibatest.SEDecline, cibatest.NOApprove}, retries: []string{"1"}})
		e.call(&caller{numbers: []string{cibatest.NODecline}})
		e.call(&caller{numbers: []string{cibatest.SEManual}}, func(c *virtualtwilio.Caller) { c.HangUpAfter = 20 * time.Second })
		sid := agentCall(e, "at rest")
		if _, err := e.svc.StartAgentVerification(t.Context(), sid, store.IDNationalID, cibatest.SEApprove, "alice"); err != nil {
			t.Fatal(err)
		}
		<-time.After(10 * time.Second)
		synctest.Wait()

		backup := filepath.Join(t.TempDir(), "backup.db")
		if err := e.db.Backup(t.Context(), backup); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(e.dbPath + "*")
		files = append(files, backup)
		if len(files) < 3 {
			t.Fatalf("database files %v: want the database, its write-ahead log and a backup at least", files)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range numbers {
				forms := []string{n}
				if len(n) == 12 {
					forms = append(forms, n[2:]) // the 10-digit form
				}
				for _, form := range forms {
					if i := bytes.Index(b, []byte(form)); i >= 0 {
						t.Errorf("%s holds a national identity number at byte %d", filepath.Base(f), i)
					}
				}
			}
		}
	})
}
