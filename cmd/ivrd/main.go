// Command ivrd is the caller-verification IVR: Twilio voice webhooks, BankID
// (or another CIBA broker) through OpenID Connect CIBA, and a live agent
// dashboard, in one binary.
//
// Usage:
//
//	ivrd serve                     run the service (config from the environment)
//	ivrd demo                      everything on one machine, no accounts
//	ivrd sim                       a standalone CIBA broker simulator
//	ivrd verify --ssn N            one CIBA authentication, outcome as JSON
//	ivrd check                     the broker settings, checked against the broker
//	ivrd twilio configure          point a Twilio number at the service
//	ivrd keys generate             a private_key_jwt signing key and its public JWKS
//	ivrd agents add|list|remove    dashboard accounts
//	ivrd healthcheck               /healthz of a running ivrd
//	ivrd version                   the build
//	ivrd migrate --from F --to URL copy a sqlite database into PostgreSQL
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			os.Exit(int(ec))
		}
		fmt.Fprintln(os.Stderr, "ivrd:", err)
		os.Exit(1)
	}
}

// exitCode ends the program with a status and no further message (the
// command has printed what it had to say).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// flagError is what a command returns when its flags do not parse: success
// for -h (the usage was asked for and printed), exit status 2 otherwise (the
// flag package has printed what was wrong, and the usage).
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return exitCode(2)
}

// isHelp reports whether arg asks for a command's usage.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// env reads the environment; tests pass a map's lookup instead of os.Getenv.
type env func(string) string

const usage = `ivrd — caller verification with BankID (or Auth0, Mosaic, any CIBA broker) over Twilio voice

Usage:
  ivrd serve                    run the service; configuration from the environment (see README)
  ivrd demo [--profile P] [--call WHO]
                                the whole product on one machine with embedded defaults
  ivrd sim [--profile P]        a standalone CIBA broker simulator (Idura BankID, Auth0, Transmit, generic)
  ivrd verify --ssn N | --user ID | --phone N | --email A
                                one CIBA authentication against CIBA_ISSUER; the outcome as JSON
  ivrd check                    check the broker settings and reach the broker (no authentication started)
  ivrd twilio configure --number +46...
                                point a Twilio number's webhooks at IVR_PUBLIC_URL
  ivrd keys generate            write a private_key_jwt signing key and print its public JWKS
  ivrd agents add NAME          add a dashboard agent (password from stdin or prompted)
  ivrd agents list|remove NAME  manage dashboard agents
  ivrd healthcheck              ask a running ivrd for /healthz (the container's HEALTHCHECK)
  ivrd version                  the build's version and commit
  ivrd migrate --from FILE --to URL
                                copy the sqlite database into an empty PostgreSQL one (several instances)

Run "ivrd COMMAND -h" for a command's flags.
`

func run(ctx context.Context, args []string, getenv env, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitCode(2)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, getenv, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, rest, getenv, stdout, stderr)
	case "sim":
		return cmdSim(ctx, rest, getenv, stdout, stderr)
	case "verify":
		return cmdVerify(ctx, rest, getenv, stdout, stderr)
	case "keys":
		return cmdKeys(ctx, rest, stdout, stderr)
	case "twilio":
		return cmdTwilio(ctx, rest, getenv, stdout, stderr, nil)
	case "agents":
		return cmdAgents(ctx, rest, getenv, stdin, stdout, stderr)
	case "check":
		return cmdCheck(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, rest, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(ctx, rest, getenv, stdout)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, readBuildInfo())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "ivrd: unknown command %q\n\n%s", cmd, usage)
		return exitCode(2)
	}
}
