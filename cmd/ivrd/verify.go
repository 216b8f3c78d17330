package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
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
	Status         string            `json:"status"` // approved, declined, expired, unknown_user, error
	Country        string            `json:"country"`
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
	ssn := fs.String("ssn", "", "national identity number: Swedish personnummer (10 or 12 digits) or Norwegian fødselsnummer (11 digits)")
	message := fs.String("binding-message", "Identifiering från kundtjänst", "Swedish BankID: the text shown in the app")
	initiator := fs.String("call-initiator", "RP", "Swedish BankID phoneAuth callInitiator: RP (we called) or user (they called)")
	var errs settingErrors
	b := brokerFlags(fs, getenv, &errs)
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	b.validate(&errs)
	if *ssn == "" {
		errs.add("--ssn", "missing: the national identity number to verify")
	}
	if err := errs.err(); err != nil {
		return err
	}
	id, err := ivr.ParseNationalID(*ssn, time.Now())
	if err != nil {
		return fmt.Errorf("--ssn: %w", err)
	}
	client, err := newBrokerClient(ctx, *b, nil)
	if err != nil {
		return err
	}
	profile, err := ciba.ProfileByName(b.Profile)
	if err != nil {
		return fmt.Errorf("CIBA_PROFILE: %w", err)
	}
	res, code := verifyOnce(ctx, client, profile, id, *message, *initiator)
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

func verifyOnce(ctx context.Context, client *ciba.Client, profile *ciba.Profile, id ivr.NationalID, message, initiator string) (verifyResult, int) {
	start := time.Now()
	res := verifyResult{Country: string(id.Country()), MaskedID: id.Masked(), PendingStates: []string{}}
	in := ciba.RequestInput{NationalID: id.Digits(), Method: "no-bankid"}
	if id.Country() == store.Sweden {
		in.Method, in.BindingMessage, in.CallInitiator = "se-bankid", message, initiator
		res.BindingMessage = message
	}
	req, err := profile.Request(in)
	if err != nil {
		return fail(res, start, err)
	}
	ar, err := client.Authenticate(ctx, req)
	res.Timings.AuthorizeMS = time.Since(start).Milliseconds()
	if err != nil {
		return fail(res, start, err)
	}
	res.WordPair = ar.BindingMessage
	tok, err := client.Poll(ctx, ar, func(desc string) {
		if desc == "" {
			desc = "authorization_pending"
		}
		if n := len(res.PendingStates); n == 0 || res.PendingStates[n-1] != desc {
			res.PendingStates = append(res.PendingStates, desc)
		}
	})
	res.Timings.DecisionMS = time.Since(start).Milliseconds()
	if err == nil {
		err = tok.Claims.MatchNationalID(id.Digits())
	}
	if err != nil {
		return fail(res, start, err)
	}
	c := tok.Claims
	res.Status = "approved"
	res.Claims = map[string]string{
		"sub": c.Subject, "name": c.Name, "given_name": c.GivenName, "family_name": c.FamilyName,
		"country": c.Country, "identityscheme": c.IdentityScheme, "birthdate": c.BirthDate,
		"national_id": id.Masked(),
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
