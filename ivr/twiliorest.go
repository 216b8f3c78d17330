package ivr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/twilio/twilio-go"
	twclient "github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"
)

// TwilioCalls redirects live calls through Twilio's REST API (twilio-go's
// UpdateCall with a Url): the CallUpdater of production.
type TwilioCalls struct {
	rest *twilio.RestClient
}

// NewTwilioCalls returns a CallUpdater for the account. apiURL is the REST
// API's base (TWILIO_API_URL): "" for Twilio's own, or another base such as
// a virtual Twilio's, to which every request is sent instead. hc, when not
// nil, sends the requests; its Timeout bounds each attempt (twilio-go's
// calls take no context), default a few seconds.
func NewTwilioCalls(accountSID, authToken, apiURL string, hc *http.Client) (*TwilioCalls, error) {
	if hc == nil {
		hc = &http.Client{Timeout: interruptTimeout}
	}
	if apiURL != "" {
		u, err := url.Parse(apiURL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, fmt.Errorf("ivr: Twilio API URL %q is not an absolute http(s) URL", apiURL)
		}
		cp := *hc
		cp.Transport = rebase{to: u, next: cmpTransport(hc.Transport)}
		hc = &cp
	}
	c := &twclient.Client{Credentials: twclient.NewCredentials(accountSID, authToken), HTTPClient: hc}
	c.SetAccountSid(accountSID)
	return &TwilioCalls{rest: twilio.NewRestClientWithParams(twilio.ClientParams{Client: c})}, nil
}

// Redirect points the call at url (POST). A call that is no longer in
// progress gives ErrCallGone.
func (t *TwilioCalls) Redirect(ctx context.Context, callSID, url string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := t.rest.Api.UpdateCall(callSID, (&api.UpdateCallParams{}).SetUrl(url).SetMethod(http.MethodPost))
	if te, ok := errors.AsType[*twclient.TwilioRestError](err); ok {
		// 20404: no such call; 21220: the call is not in progress.
		if te.Status == http.StatusNotFound || te.Code == 20404 || te.Code == 21220 {
			return ErrCallGone
		}
		return fmt.Errorf("ivr: Twilio update call: error %d (HTTP %d): %s", te.Code, te.Status, te.Message)
	}
	if err != nil {
		return fmt.Errorf("ivr: Twilio update call: %w", err)
	}
	return nil
}

// rebase sends every request to another base URL (TWILIO_API_URL), keeping
// path and query.
type rebase struct {
	to   *url.URL
	next http.RoundTripper
}

func (r rebase) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host = r.to.Scheme, r.to.Host
	out.URL.Path = strings.TrimSuffix(r.to.Path, "/") + req.URL.Path
	out.Host = r.to.Host
	return r.next.RoundTrip(out)
}

func cmpTransport(t http.RoundTripper) http.RoundTripper {
	if t == nil {
		return http.DefaultTransport
	}
	return t
}
