package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
)

// Exit codes of ivrd verify.
const (
	exitApproved    = 0
	exitError       = 1
	exitDeclined    = 3
	exitExpired     = 4
	exitUnknownUser = 5
)

// verifyResult is what ivrd verify prints. It holds no full national
// identity number and no token.
type verifyResult struct {
	Status         string            `json:"status"`            // approved, declined, expired, unknown_user, error
	Kind           string            `json:"kind"`              // national_id, customer_number (--user), phone, email
	Country        string            `json:"country,omitempty"` // of a national identity number
	MaskedID       string            `json:"maskedId"`
	PendingStates  []string          `json:"pendingStates"`
	WordPair       string            `json:"wordPair,omitempty"`
	BindingMessage string            `json:"bindingMessage,omitempty"`
	Claims         map[string]string `json:"claims,omitempty"`
	Error          string            `json:"error,omitempty"`
	Timings        verifyTimings     `json:"timings"`
}

type verifyTimings struct {
	AuthorizeMS int64 `json:"authorizeMs"`
	DecisionMS  int64 `json:"decisionMs,omitempty"`
	TotalMS     int64 `json:"totalMs"`
}

// cmdVerify runs one CIBA authentication with the configured broker.
func cmdVerify(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ssn := fs.String("ssn", "", "national identity number (Idura): Swedish personnummer (10 or 12 digits) or Norwegian fødselsnummer (11 digits)")
	user := fs.String("user", "", "the broker's user id (Auth0, Transmit, generic), e.g. auth0|31001019")
	phone := fs.String("phone", "", "the user's phone number, E.164 (Transmit, generic)")
	email := fs.String("email", "", "the user's e-mail address (Transmit, generic)")
	message := fs.String("binding-message", "", "the text the user's app shows; default: ours for Swedish BankID, \"Kod NNNN\" at brokers that show one, none for Norwegian BankID")
	initiator := fs.String("call-initiator", "RP", "Swedish BankID phoneAuth callInitiator: RP (we called) or user (they called)")
	var errs settingErrors
	b := brokerFlags(fs, getenv, &errs)
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	b.validate(&errs)
	target := verifyTarget{message: *message, initiator: *initiator, language: cmp.Or(getenv("IVR_LANGUAGE"), ivr.Swedish)}
	given := 0
	for _, f := range []struct {
		flag, value string
		parse       func(string) (ivr.Identity, error)
	}{
		{"--ssn", *ssn, func(s string) (ivr.Identity, error) {
			n, err := ivr.ParseNationalID(s, time.Now())
			return ivr.NationalIdentity(n), err
		}},
		{"--user", *user, ivr.ParseUserID},
		{"--phone", *phone, ivr.ParsePhone},
		{"--email", *email, ivr.ParseEmail},
	} {
		if f.value == "" {
			continue
		}
		given++
		id, err := f.parse(f.value)
		if err != nil {
			errs.add(f.flag, "%v", err)
			continue
		}
		target.id, target.flag = id, f.flag
	}
	profile, perr := ciba.ProfileByName(b.Profile)
	switch {
	case given == 0:
		errs.add("--ssn", "missing: who to verify: --ssn at Idura; --user, --phone or --email at Auth0, Transmit and generic brokers")
	case given > 1:
		errs.add(target.flag, "give one of --ssn, --user, --phone and --email")
	case perr == nil && !target.id.IsZero() && !slices.Contains(ivr.ProfileKinds(profile), target.id.Kind()):
		errs.add(target.flag, "the %s broker cannot identify a user by %s: use %s", profile.Name, ivr.KindName(target.id.Kind()), verifyFlags(profile))
	}
	if err := errs.err(); err != nil {
		return err
	}
	client, err := newBrokerClient(ctx, *b, nil)
	if err != nil {
		return err
	}
	return runVerify(ctx, client, profile, target, stdout, stderr)
}

// verifyFlags names the flags of ivrd verify that profile p takes.
func verifyFlags(p *ciba.Profile) string {
	var out []string
	for _, k := range ivr.ProfileKinds(p) {
		switch k {
		case store.IDNationalID:
			out = append(out, "--ssn")
		case store.IDCustomer:
			out = append(out, "--user")
		case store.IDPhone:
			out = append(out, "--phone")
		case store.IDEmail:
			out = append(out, "--email")
		}
	}
	return strings.Join(out, ", ")
}

// verifyTarget is who ivrd verify authenticates, and how.
type verifyTarget struct {
	id        ivr.Identity
	flag      string // the flag that named them
	message   string // binding message; "" for the default
	initiator string
	language  string
}

// runVerify runs one authentication, tells the operator on stderr what is
// happening while the user decides, and prints the outcome as JSON.
func runVerify(ctx context.Context, client *ciba.Client, profile *ciba.Profile, t verifyTarget, stdout, stderr io.Writer) error {
	res, code := verifyOnce(ctx, client, profile, t, stderr)
	if res.Status == "error" && (strings.Contains(res.Error, "invalid_client") || strings.Contains(res.Error, "unauthorized_client")) {
		fmt.Fprintln(stderr, strings.TrimSpace(strings.TrimPrefix(clientAuthRemedy(ciba.ErrInvalidClient).Error(), ciba.ErrInvalidClient.Error())))
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return err
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

func verifyOnce(ctx context.Context, client *ciba.Client, profile *ciba.Profile, t verifyTarget, progress io.Writer) (verifyResult, int) {
	start := time.Now()
	id := t.id
	res := verifyResult{Kind: string(id.Kind()), MaskedID: id.Masked(), PendingStates: []string{}}
	if id.Kind() == store.IDNationalID {
		res.Country = string(id.Country())
	}
	in, err := ivr.BuildRequest(profile, id, ivr.CustomerRules{}, ivr.RequestOptions{
		Language: t.language, CallInitiator: t.initiator, Code: ivr.NewCode(),
	})
	if err != nil {
		return fail(res, start, err)
	}
	if t.message != "" && in.BindingMessage != "" {
		in.BindingMessage = t.message
	}
	res.BindingMessage = in.BindingMessage
	req, err := client.Request(in)
	if err != nil {
		return fail(res, start, err)
	}
	ar, err := client.Authenticate(ctx, req)
	res.Timings.AuthorizeMS = time.Since(start).Milliseconds()
	if err != nil {
		return fail(res, start, err)
	}
	res.WordPair = ar.BindingMessage
	fmt.Fprintf(progress, "Sent to %s for %s; waiting up to %s for the user to answer in %s.\n",
		client.Issuer(), id.Masked(), ar.ExpiresIn.Round(time.Second), ivr.MethodName(in.Method, id.Country()))
	switch {
	case ar.BindingMessage != "":
		fmt.Fprintf(progress, "The user picks this word pair in the app: %s\n", ar.BindingMessage)
	case in.BindingMessage != "":
		fmt.Fprintf(progress, "The app shows: %s\n", in.BindingMessage)
	}
	tok, err := client.Poll(ctx, ar, func(desc string) {
		if desc == "" {
			desc = "authorization_pending"
		}
		if n := len(res.PendingStates); n == 0 || res.PendingStates[n-1] != desc {
			res.PendingStates = append(res.PendingStates, desc)
			fmt.Fprintf(progress, "  %5.1fs  %s\n", time.Since(start).Seconds(), desc)
		}
	})
	res.Timings.DecisionMS = time.Since(start).Milliseconds()
	var c ivr.TokenClaims
	if err == nil {
		c, err = ivr.MatchToken(tok.IDToken, id, ivr.CustomerRules{})
	}
	if err != nil {
		return fail(res, start, err)
	}
	res.Status = "approved"
	res.Claims = map[string]string{
		"sub": tok.IDToken.Subject, "name": c.Name, "given_name": c.GivenName, "family_name": c.FamilyName,
		"country": c.Country, "identityscheme": c.IdentityScheme, "birthdate": c.BirthDate,
		"email": c.Email, "phone_number": c.PhoneNumber,
	}
	if id.Kind() == store.IDNationalID {
		res.Claims["national_id"] = id.Masked()
	}
	for k, v := range res.Claims {
		if v == "" {
			delete(res.Claims, k)
		}
	}
	res.Timings.TotalMS = time.Since(start).Milliseconds()
	return res, exitApproved
}

func fail(res verifyResult, start time.Time, err error) (verifyResult, int) {
	res.Timings.TotalMS = time.Since(start).Milliseconds()
	res.Error = err.Error()
	switch {
	case errors.Is(err, ciba.ErrAccessDenied):
		res.Status = "declined"
		return res, exitDeclined
	case errors.Is(err, ciba.ErrExpired), errors.Is(err, ciba.ErrExpiredToken):
		res.Status = "expired"
		return res, exitExpired
	case errors.Is(err, ciba.ErrUnknownUserID):
		res.Status = "unknown_user"
		return res, exitUnknownUser
	default:
		res.Status = "error"
		return res, exitError
	}
}
