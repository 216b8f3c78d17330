package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ivr/callerverify/ciba"
)

// cmdKeys: ivrd keys generate [--alg RS256] [--out FILE] [--force]
func cmdKeys(_ context.Context, args []string, stdout, stderr io.Writer) error {
	const use = "usage: ivrd keys generate [--alg RS256|PS256|ES256] [--out FILE] [--force]"
	switch {
	case len(args) > 0 && isHelp(args[0]):
		fmt.Fprintln(stdout, use)
		return nil
	case len(args) == 0 || args[0] != "generate":
		fmt.Fprintln(stderr, use)
		return exitCode(2)
	}
	fs := flag.NewFlagSet("keys generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	alg := fs.String("alg", "RS256", "signing algorithm: RS256 (Idura documents only this), PS256 or ES256")
	out := fs.String("out", "ivrd-signing-key.pem", "where to write the private key (mode 0600)")
	force := fs.Bool("force", false, "overwrite an existing key file")
	if err := fs.Parse(args[1:]); err != nil {
		return flagError(err)
	}
	key, err := ciba.GenerateKey(*alg)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	pemBytes, err := ciba.MarshalPrivateKeyPEM(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if *force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(*out, flags, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists already: pass --force to overwrite it, or --out another file", *out)
	}
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	// --force over an existing file keeps its mode: make it private again.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write key: %w", err)
	}
	if _, err := f.Write(pemBytes); err != nil {
		f.Close()
		return fmt.Errorf("write key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	jwks, err := ciba.PublicJWKS(key)
	if err != nil {
		return fmt.Errorf("public JWKS: %w", err)
	}
	fmt.Fprintf(stderr, "Wrote the private key to %s (keep it secret; set CIBA_CLIENT_KEY=%s).\n", *out, *out)
	fmt.Fprintln(stderr, "Register this public JWKS at the broker (Idura: Application > OpenID Connect > Client JWKS),")
	fmt.Fprintln(stderr, "or point the broker at https://<IVR_PUBLIC_URL>/.well-known/jwks.json once ivrd serve runs:")
	_, err = stdout.Write(append(jwks, '\n'))
	return err
}
