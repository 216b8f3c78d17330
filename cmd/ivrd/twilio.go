package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/ivr/callerverify/ivr"
	"github.com/twilio/twilio-go"
	twclient "github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"
)

// cmdTwilio: ivrd twilio configure --number +46… [--dry-run] [--unbind]
func cmdTwilio(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer, hc *http.Client) error {
	const use = "usage: ivrd twilio configure --number +46... [--dry-run] [--unbind]"
	switch {
	case len(args) > 0 && isHelp(args[0]):
		fmt.Fprintln(stdout, use)
		return nil
	case len(args) == 0 || args[0] != "configure":
		fmt.Fprintln(stderr, use)
		return exitCode(2)
	}
	fs := flag.NewFlagSet("twilio configure", flag.ContinueOnError)
	fs.SetOutput(stderr)
	number := fs.String("number", "", "the Twilio phone number to point at this service, E.164 (+46…)")
	publicURL := fs.String("public-url", getenv("IVR_PUBLIC_URL"), "public https base URL of this service (IVR_PUBLIC_URL)")
	dryRun := fs.Bool("dry-run", false, "show what would change, change nothing")
	unbind := fs.Bool("unbind", false, "also detach a TwiML app or SIP trunk bound to the number (Twilio ignores the voice URLs while one is)")
	if err := fs.Parse(args[1:]); err != nil {
		return flagError(err)
	}
	sid, token := getenv("TWILIO_ACCOUNT_SID"), getenv("TWILIO_AUTH_TOKEN")
	var errs settingErrors
	if !isE164(*number) {
		errs.add("--number", "must be an E.164 phone number such as +46812345678")
	}
	if *publicURL == "" {
		errs.add("IVR_PUBLIC_URL", "missing: the public https URL Twilio should call")
	} else if u, err := url.Parse(*publicURL); err != nil || u.Scheme != "https" || u.Host == "" {
		if err := checkBaseURL(*publicURL); err != nil {
			errs.add("IVR_PUBLIC_URL", "%v", err)
		} else {
			fmt.Fprintf(stderr, "warning: %s is not https: Twilio cannot reach a loopback address\n", *publicURL)
		}
	}
	if !ivr.ValidAccountSID(sid) {
		errs.add("TWILIO_ACCOUNT_SID", "missing or malformed: your account SID, AC followed by 32 hex digits")
	}
	if token == "" {
		errs.add("TWILIO_AUTH_TOKEN", "missing: the account's auth token")
	}
	if err := errs.err(); err != nil {
		return err
	}

	base := strings.TrimRight(*publicURL, "/")
	want := numberConfig{
		VoiceURL:             base + "/twilio/voice",
		VoiceMethod:          "POST",
		VoiceFallbackURL:     base + "/twilio/fallback",
		VoiceFallbackMethod:  "POST",
		StatusCallback:       base + "/twilio/status",
		StatusCallbackMethod: "POST",
	}
	c := &twclient.Client{Credentials: twclient.NewCredentials(sid, token), HTTPClient: hc}
	c.SetAccountSid(sid)
	rest := twilio.NewRestClientWithParams(twilio.ClientParams{Client: c})

	one := 1
	nums, err := rest.Api.ListIncomingPhoneNumber(&api.ListIncomingPhoneNumberParams{PhoneNumber: number, Limit: &one, PageSize: &one})
	if err != nil {
		return twilioErr("look up "+*number, err)
	}
	var pn *api.ApiV2010IncomingPhoneNumber
	for i := range nums {
		if str(nums[i].PhoneNumber) == *number {
			pn = &nums[i]
		}
	}
	if pn == nil {
		return fmt.Errorf("%s is not a phone number of account %s", *number, sid)
	}
	have := numberConfig{
		VoiceURL: str(pn.VoiceUrl), VoiceMethod: str(pn.VoiceMethod),
		VoiceFallbackURL: str(pn.VoiceFallbackUrl), VoiceFallbackMethod: str(pn.VoiceFallbackMethod),
		StatusCallback: str(pn.StatusCallback), StatusCallbackMethod: str(pn.StatusCallbackMethod),
		VoiceApplicationSID: str(pn.VoiceApplicationSid), TrunkSID: str(pn.TrunkSid),
	}
	if *unbind {
		want.VoiceApplicationSID, want.TrunkSID = "", ""
	} else {
		want.VoiceApplicationSID, want.TrunkSID = have.VoiceApplicationSID, have.TrunkSID
	}
	fmt.Fprintf(stdout, "Phone number %s (%s)\n", *number, str(pn.Sid))
	changed := printDiff(stdout, have, want)
	if have.VoiceApplicationSID != "" && !*unbind {
		fmt.Fprintf(stderr, "warning: the number is bound to TwiML app %s: Twilio ignores its voice URLs until it is detached (run again with --unbind)\n", have.VoiceApplicationSID)
	}
	if have.TrunkSID != "" && !*unbind {
		fmt.Fprintf(stderr, "warning: the number is bound to SIP trunk %s: Twilio ignores its voice URLs until it is detached (run again with --unbind)\n", have.TrunkSID)
	}
	switch {
	case !changed:
		fmt.Fprintln(stdout, "Nothing to change.")
		return nil
	case *dryRun:
		fmt.Fprintln(stdout, "Dry run: nothing changed.")
		return nil
	}
	p := &api.UpdateIncomingPhoneNumberParams{}
	p.SetVoiceUrl(want.VoiceURL).SetVoiceMethod(want.VoiceMethod).
		SetVoiceFallbackUrl(want.VoiceFallbackURL).SetVoiceFallbackMethod(want.VoiceFallbackMethod).
		SetStatusCallback(want.StatusCallback).SetStatusCallbackMethod(want.StatusCallbackMethod)
	if *unbind && have.VoiceApplicationSID != "" {
		p.SetVoiceApplicationSid("")
	}
	if *unbind && have.TrunkSID != "" {
		p.SetTrunkSid("")
	}
	got, err := rest.Api.UpdateIncomingPhoneNumber(str(pn.Sid), p)
	if err != nil {
		return twilioErr("update "+*number, err)
	}
	if str(got.VoiceUrl) != want.VoiceURL || str(got.StatusCallback) != want.StatusCallback {
		return errors.New("twilio accepted the update but reports other URLs: check the number in the Twilio Console")
	}
	fmt.Fprintln(stdout, "Updated.")
	return nil
}

// numberConfig is the part of an IncomingPhoneNumber that routes calls.
type numberConfig struct {
	VoiceURL, VoiceMethod                 string
	VoiceFallbackURL, VoiceFallbackMethod string
	StatusCallback, StatusCallbackMethod  string
	VoiceApplicationSID, TrunkSID         string
}

func printDiff(w io.Writer, have, want numberConfig) bool {
	rows := []struct{ name, have, want string }{
		{"voice_url", have.VoiceURL, want.VoiceURL},
		{"voice_method", have.VoiceMethod, want.VoiceMethod},
		{"voice_fallback_url", have.VoiceFallbackURL, want.VoiceFallbackURL},
		{"voice_fallback_method", have.VoiceFallbackMethod, want.VoiceFallbackMethod},
		{"status_callback", have.StatusCallback, want.StatusCallback},
		{"status_callback_method", have.StatusCallbackMethod, want.StatusCallbackMethod},
		{"voice_application_sid", have.VoiceApplicationSID, want.VoiceApplicationSID},
		{"trunk_sid", have.TrunkSID, want.TrunkSID},
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	changed := false
	for _, r := range rows {
		if r.have == r.want {
			if r.have != "" {
				fmt.Fprintf(tw, "  %s\t%s\t(unchanged)\n", r.name, r.have)
			}
			continue
		}
		changed = true
		fmt.Fprintf(tw, "  %s\t%s\t-> %s\n", r.name, cmp.Or(r.have, "(none)"), cmp.Or(r.want, "(none)"))
	}
	tw.Flush()
	return changed
}

// twilioErr keeps Twilio's code and message, never request details.
// twilioErr says what went wrong doing action through Twilio's REST API,
// and what to do about it where that is clear.
func twilioErr(action string, err error) error {
	var te *twclient.TwilioRestError
	var ue *url.Error
	switch {
	case errors.As(err, &te) && te.Status == http.StatusUnauthorized:
		return fmt.Errorf("%s: Twilio refused the credentials (error %d): check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (the account's primary auth token)", action, te.Code)
	case errors.As(err, &te):
		return fmt.Errorf("%s: Twilio error %d (HTTP %d): %s", action, te.Code, te.Status, te.Message)
	case errors.As(err, &ue):
		return fmt.Errorf("cannot reach Twilio's REST API (%s): %v: check this machine's network, DNS and outbound proxy", ue.URL, ue.Err)
	}
	return fmt.Errorf("%s: %w", action, err)
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
