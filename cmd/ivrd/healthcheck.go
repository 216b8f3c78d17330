package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// cmdHealthcheck asks a running ivrd for /healthz; the container image's
// HEALTHCHECK runs it (the image has no shell and no curl).
func cmdHealthcheck(ctx context.Context, args []string, getenv env, stdout io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stdout)
	listen := cmp.Or(getenv("IVR_LISTEN"), ":8080")
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		port = "8080"
	}
	url := fs.String("url", "http://127.0.0.1:"+port+"/healthz", "health URL")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", *url, res.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
