package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// cmdCheck checks what it can of a deployment without starting an
// authentication: the broker settings, then the broker itself (discovery,
// its JWKS, a signed client assertion it accepts), and the database when
// IVR_DB is set. It needs only the CIBA_* settings; the rest of what
// `ivrd serve` needs is reported, not required.
func cmdCheck(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var errs settingErrors
	b := brokerFlags(fs, getenv, &errs)
	dbURL := fs.String("db", getenv("IVR_DB"), "also check this database: a sqlite file or a postgres:// URL (IVR_DB)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	b.validate(&errs)
	if err := errs.err(); err != nil {
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
	step("broker settings (CIBA_*)", nil)

	client, err := newBrokerClient(ctx, *b, nil)
	step("broker discovery at "+b.Issuer, err)
	if err == nil {
		md := client.Metadata()
		fmt.Fprintf(stdout, "      bc-authorize: %s\n      token:        %s\n", md.BackchannelAuthenticationEndpoint, md.TokenEndpoint)
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		step("broker JWKS", client.RefreshJWKS(cctx))
		step("client authentication accepted by the broker", clientAuthRemedy(client.CheckClientAuth(cctx)))
		cancel()
	}
	if *dbURL != "" {
		step("database "+redactURL(*dbURL), func() error {
			db, err := openDatabase(ctx, *dbURL)
			if err != nil {
				return err
			}
			defer db.Close()
			return db.Ping(ctx)
		}())
	}
	// What else serve would need, said but not required: a broker check
	// can run before Twilio or the database are set up.
	if _, err := loadServe(getenv, args, io.Discard); err != nil {
		fmt.Fprintf(stdout, "note  ivrd serve would also need:\n      %s\n",
			strings.ReplaceAll(strings.TrimPrefix(err.Error(), "invalid configuration:\n  "), "\n  ", "\n      "))
	}
	if !ok {
		return exitCode(1)
	}
	fmt.Fprintln(stdout, "All checks passed.")
	return nil
}
