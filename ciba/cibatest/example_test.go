package cibatest_test

import (
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
