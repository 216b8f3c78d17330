package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ivr/callerverify/ciba"
)

// newBrokerClient loads the client credentials and runs discovery.
func newBrokerClient(ctx context.Context, b BrokerConfig, hc *http.Client) (*ciba.Client, error) {
	profile, err := ciba.ProfileByName(b.Profile)
	if err != nil {
		return nil, fmt.Errorf("CIBA_PROFILE: %w", err)
	}
	cfg := ciba.Config{
		Issuer:     b.Issuer,
		ClientID:   b.ClientID,
		Secret:     b.Secret,
		Audience:   b.Audience,
		Profile:    profile,
		HTTPClient: hc,
	}
	if b.KeyFile != "" {
		key, err := ciba.LoadKey(b.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("CIBA_CLIENT_KEY: %w", err)
		}
		cfg.Key = key
	}
	if cfg.HTTPClient == nil {
		// Keep as many idle connections to the broker as polls can be in
		// flight: the default two per host would make most polls dial
		// (and, against a real broker, shake hands over TLS) anew.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = max(b.PollConcurrency, 8)
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := ciba.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("eID broker at CIBA_ISSUER: %w", err)
	}
	return c, nil
}

// clientAuthRemedy adds to a broker's refusal of our client authentication
// what an operator does about it.
func clientAuthRemedy(err error) error {
	if err == nil || !errors.Is(err, ciba.ErrInvalidClient) && !errors.Is(err, ciba.ErrUnauthorizedClient) {
		return err
	}
	return fmt.Errorf("%w\n      the broker did not accept our client authentication: register the JWKS printed by `ivrd keys generate` "+
		"(or our JWKS URL, IVR_PUBLIC_URL/.well-known/jwks.json) for this client, and check CIBA_CLIENT_ID "+
		"(with a client secret: CIBA_CLIENT_SECRET); CIBA_AUDIENCE if the broker expects another aud", err)
}
