package agentui

import (
	"context"
	"errors"
	"time"
)

// Store errors. Implementations translate their own errors into these.
var (
	ErrNotFound = errors.New("agentui: not found")
	ErrExists   = errors.New("agentui: already exists")
)

// Agent is a person who may use the dashboard.
type Agent struct {
	Name         string
	PasswordHash string // a PHC-style encoded password hash, never the password
	CreatedAt    time.Time
}

// Session is a logged-in agent's server-side session. ID is a hash of the
// cookie's token, so a copy of the database does not hold usable cookies.
type Session struct {
	ID        string
	Agent     string
	CSRFToken string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AgentStore persists agents and their sessions.
type AgentStore interface {
	CreateAgent(ctx context.Context, a Agent) error // ErrExists when the name is taken
	Agent(ctx context.Context, name string) (Agent, error)
	Agents(ctx context.Context) ([]Agent, error)
	DeleteAgent(ctx context.Context, name string) error // also deletes the agent's sessions

	CreateSession(ctx context.Context, s Session) error
	Session(ctx context.Context, id string) (Session, error)
	DeleteSession(ctx context.Context, id string) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
}
