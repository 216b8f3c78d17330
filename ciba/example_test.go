package ciba_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
)

// Example shows the typical flow: load (here: generate) the client key,
// register its public JWKS at the broker, discover the broker, start a
// Norwegian BankID caller authentication, read the word pair to the caller,
// poll until the ID token is validated, and decode the broker's own claims.
// The broker is the in-process simulator, so the example needs no network.
func Example() {
	ctx := context.Background()

	// The broker (in production: Idura at https://<tenant>.idura.broker).
	broker, err := cibatest.New(cibatest.Config{Issuer: "http://127.0.0.1:8444", Interval: time.Second})
	if err != nil {
		panic(err)
	}

	// Done once: the key is kept (MarshalPrivateKeyPEM) and its public
	// JWKS registered at the broker, or served at a JWKS URL it fetches.
	key, err := ciba.GenerateKey(ciba.RS256) // or ciba.LoadKey("client-key.pem")
	if err != nil {
		panic(err)
	}
	jwks, _ := ciba.PublicJWKS(key)
	_ = broker.RegisterClient(cibatest.Client{ID: "ivr", JWKS: jwks})

	client, err := ciba.New(ctx, ciba.Config{
		Issuer:     broker.Issuer(),
		ClientID:   "ivr",
		Key:        key,
		Profile:    ciba.Idura,
		HTTPClient: broker.HTTPClient(), // production: leave nil
	})
	if err != nil {
		panic(err)
	}

	req, err := ciba.Idura.Request(ciba.RequestInput{Method: "no-bankid", NationalID: cibatest.NOManual})
	if err != nil {
		panic(err)
	}
	fmt.Println(req) // hints are redacted in every printed form
	ar, err := client.Authenticate(ctx, req)
	if err != nil {
		panic(err)
	}
	fmt.Println("word pair to read to the caller:", ar.BindingMessage != "")

	// The caller picks the word pair in the BankID app.
	app := broker.Requests()[0]
	_ = broker.Approve(app.ID, ar.BindingMessage)

	tok, err := client.Poll(ctx, ar, func(state string) { fmt.Println("pending:", state) })
	switch {
	case errors.Is(err, ciba.ErrAccessDenied):
		fmt.Println("declined")
	case errors.Is(err, ciba.ErrExpired):
		fmt.Println("expired")
	case err != nil:
		fmt.Println("error:", err)
	default:
		// The standard claims are fields; the broker's own claims are
		// decoded into a struct of ours.
		var idura struct {
			SocialNo  string `json:"socialno"` // Norwegian national identity number
			GivenName string `json:"given_name"`
			Country   string `json:"country"`
		}
		if err := tok.IDToken.Claims(&idura); err != nil {
			panic(err)
		}
		fmt.Println("verified:", idura.Country, idura.GivenName, idura.SocialNo == cibatest.NOManual)
	}
	// Output:
	// ciba.AuthRequest{scope=openid ssn login_hint=[redacted] acr_values=urn:grn:authn:no:bankid authorization_details=[{"type":"customerServiceCall.v1"}]}
	// word pair to read to the caller: true
	// verified: NO Sigrid true
}
