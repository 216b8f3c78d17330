package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// cmdCheck validates the serve configuration and reaches the eID broker —
// discovery, its JWKS, and a signed client assertion it accepts — without
// starting an authentication.
func cmdCheck(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	cfg, err := loadServe(getenv, args, stderr)
	if err != nil || cfg == nil {
		return err
	}
	ok := true
	step := func(name string, err error) {
		if err != nil {
			ok = false
			fmt.Fprintf(stdout, "FAIL  %s: %v\n", name, err)
			return
		}
		fmt.Fprintf(stdout, "ok    %s\n", name)
	}
	step("configuration", nil)

	dbErr := func() error {
		db, err := openDatabase(ctx, cfg.DBPath)
		if err != nil {
			return err
		}
		defer db.Close()
		return db.Ping(ctx)
	}()
	step("database "+redactURL(cfg.DBPath), dbErr)

	client, err := newBrokerClient(ctx, cfg.Broker, nil)
	step("broker discovery at "+cfg.Broker.Issuer, err)
	if err == nil {
		md := client.Metadata()
		fmt.Fprintf(stdout, "      bc-authorize: %s\n      token:        %s\n", md.BackchannelAuthenticationEndpoint, md.TokenEndpoint)
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		step("broker JWKS", client.RefreshJWKS(cctx))
		step("client authentication accepted by the broker", client.CheckClientAuth(cctx))
		cancel()
	}
	if !ok {
		return exitCode(1)
	}
	fmt.Fprintln(stdout, "All checks passed.")
	return nil
}
