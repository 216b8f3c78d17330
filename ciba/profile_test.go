package ciba

import (
	"strings"
	"testing"
	"time"
)

func TestProfileRequest(t *testing.T) {
	const se, no = "196802020575", "01010112345"
	tests := []struct {
		name    string
		profile *Profile
		in      RequestInput
		want    map[string]string // form parameters; "-" = must be absent
		wantErr string
	}{
		{
			name: "Idura Swedish BankID, caller-initiated", profile: Idura,
			in: RequestInput{Method: "se-bankid", NationalID: se, BindingMessage: "Kundtjänst Acme"},
			want: map[string]string{
				"scope": "openid", "login_hint": "sub:ssn:" + se, "acr_values": "urn:grn:authn:se:bankid",
				"binding_message": "Kundtjänst Acme", "authorization_details": `[{"type":"phoneAuth","callInitiator":"user"}]`,
				"requested_expiry": "-", "request_context": "-",
			},
		},
		{
			name: "Idura Swedish BankID is the default method, agent-initiated", profile: Idura,
			in:   RequestInput{NationalID: "680202-0575", BindingMessage: "Acme", CallInitiator: "RP"},
			want: map[string]string{"login_hint": "sub:ssn:6802020575", "authorization_details": `[{"type":"phoneAuth","callInitiator":"RP"}]`},
		},
		{
			name: "Idura Norwegian BankID", profile: Idura,
			in: RequestInput{Method: "no-bankid", NationalID: no, Scopes: []string{"ssn"}},
			want: map[string]string{
				"scope": "openid ssn", "login_hint": "sub:ssn:" + no, "acr_values": "urn:grn:authn:no:bankid",
				"authorization_details": `[{"type":"customerServiceCall.v1"}]`, "binding_message": "-",
			},
		},
		{name: "Idura NO refuses a binding message", profile: Idura, in: RequestInput{Method: "no-bankid", NationalID: no, BindingMessage: "x"}, wantErr: "must not be sent"},
		{name: "Idura SE requires a binding message", profile: Idura, in: RequestInput{Method: "se-bankid", NationalID: se}, wantErr: "required"},
		{name: "Idura SE refuses an 11-digit number", profile: Idura, in: RequestInput{Method: "se-bankid", NationalID: no, BindingMessage: "x"}, wantErr: "11 digits"},
		{name: "Idura NO refuses a 12-digit number", profile: Idura, in: RequestInput{Method: "no-bankid", NationalID: se}, wantErr: "12 digits"},
		{name: "Idura refuses letters in the number", profile: Idura, in: RequestInput{NationalID: "19680202057X", BindingMessage: "x"}, wantErr: "digits"},
		{name: "Idura refuses a missing number", profile: Idura, in: RequestInput{BindingMessage: "x"}, wantErr: "required"},
		{name: "Idura refuses an odd call initiator", profile: Idura, in: RequestInput{NationalID: se, BindingMessage: "x", CallInitiator: "bank"}, wantErr: "call initiator"},
		{name: "Idura NO takes no call initiator", profile: Idura, in: RequestInput{Method: "no-bankid", NationalID: no, CallInitiator: "RP"}, wantErr: "call initiator"},
		{name: "Idura unknown method", profile: Idura, in: RequestInput{Method: "dk-mitid", NationalID: se}, wantErr: "unknown method"},
		{name: "Idura SE binding message at the limit", profile: Idura, in: RequestInput{NationalID: se, BindingMessage: strings.Repeat("å", MaxBindingMessage)},
			want: map[string]string{"binding_message": strings.Repeat("å", MaxBindingMessage)}},
		{name: "Idura SE binding message over the limit", profile: Idura, in: RequestInput{NationalID: se, BindingMessage: strings.Repeat("a", MaxBindingMessage+1)}, wantErr: "64"},
		{name: "binding message with a newline", profile: Idura, in: RequestInput{NationalID: se, BindingMessage: "a\nb"}, wantErr: "character"},
		{
			name: "Auth0 iss_sub hint", profile: Auth0,
			in: RequestInput{UserID: "auth0|123", Issuer: "https://tenant.eu.auth0.com/", BindingMessage: "Order #123: 5.00", RequestedExpiry: 300 * time.Second},
			want: map[string]string{
				"login_hint":       `{"format":"iss_sub","iss":"https://tenant.eu.auth0.com/","sub":"auth0|123"}`,
				"binding_message":  "Order #123: 5.00",
				"requested_expiry": "300", "acr_values": "-", "authorization_details": "-",
			},
		},
		{name: "Auth0 requested_expiry above 300 s", profile: Auth0, in: RequestInput{UserID: "u", Issuer: "https://t/", BindingMessage: "x", RequestedExpiry: 301 * time.Second}, wantErr: "300"},
		{name: "Auth0 binding message over 64 characters", profile: Auth0, in: RequestInput{UserID: "u", Issuer: "https://t/", BindingMessage: strings.Repeat("a", 65)}, wantErr: "64"},
		{name: "Auth0 binding message charset", profile: Auth0, in: RequestInput{UserID: "u", Issuer: "https://t/", BindingMessage: "Köp!"}, wantErr: "character"},
		{name: "Auth0 needs a binding message", profile: Auth0, in: RequestInput{UserID: "u", Issuer: "https://t/"}, wantErr: "required"},
		{name: "Auth0 needs the issuer", profile: Auth0, in: RequestInput{UserID: "u", BindingMessage: "x"}, wantErr: "issuer"},
		{
			name: "Transmit phone with channel", profile: Transmit,
			in:   RequestInput{Phone: "+46701234567", Channel: "sms", BindingMessage: "Code 42"},
			want: map[string]string{"login_hint": "+46701234567", "request_context": `{"channel":"sms","login_hint_type":"phone"}`, "binding_message": "Code 42"},
		},
		{
			name: "Transmit email", profile: Transmit, in: RequestInput{Email: "a@example.com"},
			want: map[string]string{"login_hint": "a@example.com", "request_context": `{"login_hint_type":"email"}`},
		},
		{name: "Transmit with two hints", profile: Transmit, in: RequestInput{Email: "a@example.com", Phone: "+4670"}, wantErr: "exactly one"},
		{name: "generic refuses a channel", profile: Generic, in: RequestInput{UserID: "u", Channel: "sms"}, wantErr: "channel"},
		{name: "generic user id", profile: Generic, in: RequestInput{UserID: "alice"}, want: map[string]string{"login_hint": "alice", "scope": "openid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := tt.profile.Request(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one about %q", err, tt.wantErr)
				}
				assertNoSecrets(t, err, se, no, "680202", "+4670", "a@example.com", "auth0|")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			form, err := authForm(req)
			if err != nil {
				t.Fatalf("authForm: %v", err)
			}
			for k, v := range tt.want {
				if v == "-" {
					if form.Has(k) {
						t.Errorf("%s = %q, want it absent", k, form.Get(k))
					}
					continue
				}
				if got := form.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if s := req.String(); strings.Contains(s, "196802020575") || strings.Contains(s, "+4670") {
				t.Errorf("String() leaks the hint: %s", s)
			}
		})
	}
}

func TestProfileByName(t *testing.T) {
	for _, name := range []string{"idura", "auth0", "transmit", "generic", ""} {
		p, err := ProfileByName(name)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if want := map[string]string{"": "idura"}[name]; want != "" && p.Name != want || want == "" && p.Name != name {
			t.Errorf("ProfileByName(%q).Name = %q", name, p.Name)
		}
	}
	if _, err := ProfileByName("okta"); err == nil {
		t.Error("unknown profile accepted")
	}
	p, _ := ProfileByName("idura")
	p.Methods[0].ACRValues[0] = "changed"
	if Idura.Methods[0].ACRValues[0] != "urn:grn:authn:se:bankid" {
		t.Error("ProfileByName returned a shallow copy: Idura changed")
	}
}
