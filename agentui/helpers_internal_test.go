package agentui

import (
	"log/slog"
	"strings"
	"testing"
)

func testLog(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
