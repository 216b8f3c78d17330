package sqlite_test

import (
	"os"
	"testing"

	"github.com/ivr/callerverify/internal/store/storetest"
)

// TestShippedMigrationsAreUnchanged pins every shipped migration file.
// Change the schema with a new numbered file and add its hash here.
func TestShippedMigrationsAreUnchanged(t *testing.T) {
	storetest.TestMigrationsPinned(t, os.DirFS("."), map[string]string{
		"0001_init.sql":        "ea4a8be6caf2aa0d210e883df6d76e651d774c19cfe7945d4f855aae0fe155d8",
		"0002_agents.sql":      "53c1a6a6e5e6cc48a2c02e1b37e052add13bbb450a19644e5c568975fc31fc39",
		"0003_rate_limits.sql": "6996e7a8738fc443be45a1e2f99d17382d14ab6e62adc8e25360f5efad67c0b9",
		"0004_call_reason.sql": "b9e0806b9fe1b25f476b3643c895b6cba5ed6894550496778aaade88f8371d16",
		"0005_abuse.sql":       "c9d5912d5abb1698685f94dcfc8fc19b38128c2e5193eb2748dd2d6781218705",
		"0006_instances.sql":   "854c8308687874e54c455a7a0859d62832b126d1d3ae255cffcd9be9fdc461a4",
		"0007_brokers.sql":     "f8498aac41363504818cc965963a1060794553295a01ee570bcde39aba8aad42",
		"0008_ping.sql":        "dac0f3aadce930bf04a6c4ad76296af21342229753478fb199baecb984188877",
	})
}
