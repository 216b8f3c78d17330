package postgres_test

import (
	"testing"

	"github.com/ivr/callerverify/internal/postgres/postgrestest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.TestStore(t, func(t *testing.T) store.Store { return postgrestest.Open(t) })
	storetest.TestAgentStore(t, func(t *testing.T) store.AgentStore { return postgrestest.Open(t) })
}
