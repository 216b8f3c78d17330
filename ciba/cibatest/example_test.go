package cibatest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
)

// ExampleNew starts a Norwegian BankID request against an in-process broker,
// with a client secret for brevity (private_key_jwt works the same way with a
// registered JWKS), and approves it as the "BankID app" would.
func ExampleNew() {
	b, err := cibatest.New(cibatest.Config{Issuer: "http://127.0.0.1:8444"})
	if err != nil {
		panic(err)
	}
	if err := b.RegisterClient(cibatest.Client{ID: "demo", Secret: "demo-secret"}); err != nil {
		panic(err)
	}
	hc := b.HTTPClient() // no socket: usable inside synctest bubbles

	post := func(path string, form url.Values) map[string]any {
		form.Set("client_id", "demo")
		form.Set("client_secret", "demo-secret")
		resp, err := hc.PostForm(b.Issuer()+path, form)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return body
	}

	ar := post("/ciba/bc-authorize", url.Values{
		"scope":                 {"openid"},
		"login_hint":            {"sub:ssn:" + cibatest.NOManual},
		"acr_values":            {cibatest.ACRNorwegianBankID},
		"authorization_details": {`[{"type":"customerServiceCall.v1"}]`},
	})
	pair := ar["bindingMessage"].(string)
	fmt.Println("expires_in:", ar["expires_in"], "interval:", ar["interval"], "word pair words:", len(strings.Fields(pair)))

	poll := url.Values{"grant_type": {ciba.GrantType}, "auth_req_id": {ar["auth_req_id"].(string)}}
	fmt.Println(post("/oauth2/token", poll)["error"])

	req := b.Requests()[0] // what the BankID app page shows
	fmt.Println(req.Country, req.MaskedID, req.State)
	if err := b.Approve(req.ID, pair); err != nil {
		panic(err)
	}
	// A real client waits `interval` seconds before polling again.
	tok := post("/oauth2/token", poll)
	fmt.Println(tok["error"], tok["id_token"] != nil)
	// Output:
	// expires_in: 900 interval: 2 word pair words: 2
	// authorization_pending
	// NO ******-***88 pending
	// slow_down false
}

// ExampleNew_auth0 speaks Auth0's CIBA to the ciba client, which finds the
// endpoints by discovery: an iss_sub login hint, a binding message, and the
// ID token of an Auth0 user.
func ExampleNew_auth0() {
	ctx := context.Background()
	b, err := cibatest.New(cibatest.Config{Issuer: "https://tenant.example/", Profile: cibatest.ProfileAuth0})
	if err != nil {
		panic(err)
	}
	if err := b.RegisterClient(cibatest.Client{ID: "ivr", Secret: "ivr-secret"}); err != nil {
		panic(err)
	}
	client, err := ciba.New(ctx, ciba.Config{
		Issuer: b.Issuer(), ClientID: "ivr", Secret: "ivr-secret",
		Profile: ciba.Auth0, HTTPClient: b.HTTPClient(),
	})
	if err != nil {
		panic(err)
	}
	req, err := client.Request(ciba.RequestInput{
		UserID:         cibatest.Auth0UserIDPrefix + cibatest.Auth0Manual,
		BindingMessage: "Call 4711",
	})
	if err != nil {
		panic(err)
	}
	ar, err := client.Authenticate(ctx, req)
	if err != nil {
		panic(err)
	}
	fmt.Println("interval:", ar.Interval)

	view, _ := b.RequestForAuthReqID(ar.AuthReqID) // what the authenticator shows
	fmt.Println(view.Profile, view.MaskedHint, view.Name, view.BindingMessage)
	if err := b.Approve(view.ID, ""); err != nil {
		panic(err)
	}
	tok, err := client.Token(ctx, ar.AuthReqID)
	if err != nil {
		panic(err)
	}
	var claims struct {
		Email string `json:"email"`
	}
	if err := tok.IDToken.Claims(&claims); err != nil {
		panic(err)
	}
	fmt.Println(tok.IDToken.Subject, claims.Email)
	// Output:
	// interval: 5s
	// auth0 auth0|******51 Chloe Martin Call 4711
	// auth0|31005051 chloe.martin@example.com
}
