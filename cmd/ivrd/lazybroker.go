package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ivr/callerverify/ciba"
)

// lazyBroker is the eID broker as the IVR sees it. Discovery may fail at
// start-up (the broker is down, DNS is late); the service starts anyway,
// /readyz says not ready, and every attempt to use the broker fails as a
// transport error — which the IVR turns into "we could not reach BankID" —
// until discovery succeeds in the background.
type lazyBroker struct {
	client atomic.Pointer[ciba.Client]
}

func (l *lazyBroker) get() (*ciba.Client, error) {
	c := l.client.Load()
	if c == nil {
		return nil, fmt.Errorf("eID broker not discovered yet: %w", ciba.ErrTransport)
	}
	return c, nil
}

// Issuer is the issuer discovery found, "" before it has succeeded.
func (l *lazyBroker) Issuer() string {
	if c := l.client.Load(); c != nil {
		return c.Issuer()
	}
	return ""
}

// Ready reports whether discovery has succeeded.
func (l *lazyBroker) Ready() bool { return l.client.Load() != nil }

// Authenticate implements ivr.Authenticator.
func (l *lazyBroker) Authenticate(ctx context.Context, req ciba.AuthRequest) (*ciba.AuthResponse, error) {
	c, err := l.get()
	if err != nil {
		return nil, err
	}
	return c.Authenticate(ctx, req)
}

// Token implements ivr.Authenticator.
func (l *lazyBroker) Token(ctx context.Context, authReqID string) (*ciba.TokenResponse, error) {
	c, err := l.get()
	if err != nil {
		return nil, err
	}
	return c.Token(ctx, authReqID)
}

// discover runs discovery until it succeeds or ctx ends, backing off from
// 1 s to 1 min between attempts.
func (l *lazyBroker) discover(ctx context.Context, b BrokerConfig, hc *http.Client, log *slog.Logger) {
	delay := time.Second
	for {
		c, err := newBrokerClient(ctx, b, hc)
		if err == nil {
			l.client.Store(c)
			log.Info("eID broker discovered", "issuer", c.Issuer())
			return
		}
		log.Error("eID broker discovery failed; retrying", "err", err, "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Minute)
	}
}
