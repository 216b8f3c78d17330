package agentui_test

import (
	"context"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

func (m *memStore) LoginFailures(_ context.Context, keys []string, since time.Time) (map[string]store.LoginFailures, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]store.LoginFailures{}
	for _, k := range keys {
		if f, ok := m.failures[k]; ok && !f.Last.Before(since) {
			out[k] = f
		}
	}
	return out, nil
}

func (m *memStore) AddLoginFailure(_ context.Context, keys []string, since, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		f := m.failures[k]
		if f.Last.Before(since) {
			f.Count = 0
		}
		f.Count++
		f.Last = now
		m.failures[k] = f
	}
	return nil
}

func (m *memStore) ClearLoginFailures(_ context.Context, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.failures, k)
	}
	return nil
}

func (m *memStore) TouchSession(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return store.ErrNotFound
	}
	if at.After(s.LastUsedAt) {
		s.LastUsedAt = at
		m.sessions[id] = s
	}
	return nil
}
