package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/internal/netutil"
	"github.com/ivr/callerverify/internal/store"
)

// cmdSim runs the broker simulator on its own: Idura-style BankID, or the
// Auth0, Transmit or generic CIBA broker.
func cmdSim(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8444", "listen address")
	issuer := fs.String("issuer", "", "issuer URL (default http://<listen>)")
	clientID := fs.String("client-id", "ivr", "client ID to register")
	jwksFile := fs.String("client-jwks", "", "file with the client's public JWKS (as printed by ivrd keys generate)")
	jwksURL := fs.String("client-jwks-url", "", "URL of the client's JWKS, e.g. http://127.0.0.1:8080/.well-known/jwks.json")
	interval := fs.Duration("interval", 2*time.Second, "polling interval the broker asks for")
	profile := fs.String("profile", "idura", "the broker simulated: "+strings.Join(ciba.ProfileNames, ", "))
	notify := fs.String("client-notification-endpoint", "", "ping mode (generic only): the client's notification endpoint, e.g. http://127.0.0.1:8080/ciba/notify")
	allowRemote := fs.Bool("allow-remote", false, "listen on a non-loopback address too (the /sim API approves requests without authentication)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	p, err := ciba.ProfileByName(*profile)
	if err != nil {
		return fmt.Errorf("sim: --profile: %w", err)
	}
	secret := getenv("SIM_CLIENT_SECRET")
	if *jwksFile == "" && *jwksURL == "" && secret == "" {
		return errors.New("sim: register the client's key with --client-jwks FILE or --client-jwks-url URL (or set SIM_CLIENT_SECRET)")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("sim: listen: %w", err)
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !netutil.IsLoopbackHost(host) {
		if !*allowRemote {
			ln.Close()
			return fmt.Errorf("sim: --listen %s is not a loopback address: anyone who reaches it can approve BankID requests through its unauthenticated /sim API; pass --allow-remote if that is what you want", *listen)
		}
		fmt.Fprintf(stderr, "warning: the simulator listens on %s, beyond this machine; its /sim API approves requests without authentication\n", ln.Addr())
	}
	if *issuer == "" {
		*issuer = "http://" + ln.Addr().String()
	}
	b, err := cibatest.New(cibatest.Config{Issuer: *issuer, Interval: *interval, Profile: p.Name})
	if err != nil {
		ln.Close()
		return fmt.Errorf("sim: %w", err)
	}
	client := cibatest.Client{ID: *clientID, JWKSURL: *jwksURL, Secret: secret}
	if *notify != "" {
		client.DeliveryMode, client.NotificationEndpoint = cibatest.DeliveryPing, *notify
	}
	if *jwksFile != "" {
		if client.JWKS, err = os.ReadFile(*jwksFile); err != nil {
			ln.Close()
			return fmt.Errorf("sim: --client-jwks: %w", err)
		}
	}
	if err := b.RegisterClient(client); err != nil {
		ln.Close()
		if client.JWKS != nil {
			return fmt.Errorf("sim: --client-jwks %s: not the public JWK Set that ivrd keys generate prints: %w", *jwksFile, err)
		}
		return fmt.Errorf("sim: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	fmt.Fprintf(stdout, "%s CIBA broker simulator at %s (client %q)\n\n", simName(p.Name), *issuer, *clientID)
	printTestUsers(stdout, p.Name)
	cred := "CIBA_CLIENT_KEY=ivrd-signing-key.pem"
	if secret != "" {
		cred = "CIBA_CLIENT_SECRET=$SIM_CLIENT_SECRET"
	}
	who := map[string]string{
		cibatest.ProfileIdura:    "--ssn " + cibatest.SEApprove,
		cibatest.ProfileAuth0:    "--user " + cibatest.Auth0UserIDPrefix + cibatest.Auth0Approve,
		cibatest.ProfileTransmit: "--phone " + cibatest.TransmitApprovePhone,
		cibatest.ProfileGeneric:  "--user " + cibatest.GenericApprove,
	}[p.Name]
	fmt.Fprintf(stdout, "\nTry: CIBA_PROFILE=%s CIBA_ISSUER=%s CIBA_CLIENT_ID=%s %s ivrd verify %s\n", p.Name, *issuer, *clientID, cred, who)
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	return serveUntilDone(ctx, srv, ln, log)
}

// printTestUsers lists the simulator's scripted users.
func printTestUsers(w io.Writer, profile string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	switch profile {
	case "", cibatest.ProfileIdura:
		fmt.Fprintln(tw, "Test users\tnumber\tbehaviour")
	case cibatest.ProfileTransmit:
		fmt.Fprintln(tw, "Test users\tcustomer number\tphone\te-mail\tbehaviour")
	default:
		fmt.Fprintln(tw, "Test users\tcustomer number\tbehaviour")
	}
	for _, u := range demoUsers(profile) {
		switch {
		case u.country == string(store.Norway):
			fmt.Fprintf(tw, "  %s (Norwegian BankID)\t%s\t%s\n", u.name, u.number, u.script)
		case u.country != "":
			fmt.Fprintf(tw, "  %s (Swedish BankID)\t%s\t%s\n", u.name, u.number, u.script)
		case profile == cibatest.ProfileTransmit:
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", u.name, u.number, u.phone, u.email, u.script)
		default:
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", u.name, u.number, u.script)
		}
	}
	tw.Flush()
}

// serveUntilDone serves on ln until ctx ends, then shuts down gracefully.
func serveUntilDone(ctx context.Context, srv *http.Server, ln net.Listener, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return err
	}
	<-errc
	return nil
}

func simName(profile string) string {
	switch profile {
	case cibatest.ProfileAuth0:
		return "Auth0-style (Guardian push)"
	case cibatest.ProfileTransmit:
		return "Transmit/Mosaic-style (login link)"
	case cibatest.ProfileGeneric:
		return "Generic (CIBA Core)"
	}
	return "Idura-style BankID"
}
