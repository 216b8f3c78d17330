package ciba

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// LoginHintFormat says how a profile builds login_hint from a RequestInput.
type LoginHintFormat string

// Login hint formats.
const (
	// HintSubSSN is Idura's "sub:ssn:<digits>" built from NationalID.
	HintSubSSN LoginHintFormat = "sub:ssn"
	// HintIssSub is Auth0's JSON {"format":"iss_sub","iss":<issuer>,"sub":<UserID>}.
	HintIssSub LoginHintFormat = "iss_sub"
	// HintPlain is the phone number, e-mail address or user id as given
	// (Transmit/Mosaic, generic brokers); exactly one of them.
	HintPlain LoginHintFormat = "plain"
)

// MaxBindingMessage is the longest binding_message, in characters, that any
// profile sends. It is Auth0's documented limit: binding_message is
// "required and up to 64 characters" (Auth0 Authentication API,
// Back-Channel Login; our reference notes, ciba-idura.md §3.1). It is the
// only length any of these brokers documents: Idura's caller authentication
// guide gives none (ciba-idura.md §1.8), nor does Transmit's (§3.2), and
// CIBA Core §7.1 says only that it "SHOULD be relatively short". Holding
// every profile to the tightest documented limit keeps a message that
// passes here valid at each of them.
const MaxBindingMessage = 64

// Auth0BindingCharset is every character Auth0 allows in a binding_message:
// "Use only alphanumeric and +-_.,:# characters" (Auth0 Authentication API,
// Back-Channel Login; ciba-idura.md §3.1), plus the space that Auth0's own
// examples use.
const Auth0BindingCharset = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-_.,:# "

// BindingRule constrains the binding_message of a method.
type BindingRule struct {
	Required  bool   // the broker needs one (Idura SE, Auth0)
	Forbidden bool   // the broker must not get one (Idura NO: the app shows a word pair)
	MaxLen    int    // in characters; 0 = no limit
	Charset   string // the only characters allowed; "" = any printable text
}

func (r BindingRule) check(msg string) error {
	switch {
	case msg == "" && r.Required:
		return errors.New("binding_message is required")
	case msg != "" && r.Forbidden:
		return errors.New("binding_message must not be sent")
	case msg == "":
		return nil
	case !utf8.ValidString(msg):
		return errors.New("binding_message is not valid UTF-8")
	case r.MaxLen > 0 && utf8.RuneCountInString(msg) > r.MaxLen:
		return fmt.Errorf("binding_message is longer than %d characters", r.MaxLen)
	}
	for _, c := range msg {
		if unicode.IsControl(c) || (r.Charset != "" && !strings.ContainsRune(r.Charset, c)) {
			return errors.New("binding_message has a character the broker does not allow")
		}
	}
	return nil
}

// Method is one way of authenticating at a broker, e.g. Idura's Swedish
// BankID phone authentication: the acr_values and Rich Authorization
// Request it needs, and its binding message rules.
type Method struct {
	Name        string   // "se-bankid"
	Description string   // for humans
	ACRValues   []string // acr_values
	// AuthorizationType, when set, sends
	// authorization_details=[{"type":AuthorizationType}] (plus callInitiator
	// when CallInitiator is set).
	AuthorizationType string
	// CallInitiator adds "callInitiator" ("user" by default, or "RP") to the
	// authorization_details entry (Idura's Swedish phoneAuth).
	CallInitiator  bool
	BindingMessage BindingRule
	// NationalIDLengths are the digit counts accepted for NationalID
	// (Swedish 10 or 12, Norwegian 11); nil accepts any length.
	NationalIDLengths []int
	// Scopes are added to the profile's scopes for this method (Idura
	// releases the Norwegian socialno claim only with "ssn").
	Scopes []string
}

// Profile describes a CIBA broker as data: where its endpoints are when
// discovery does not say, how it wants client authentication, the login hint,
// and the methods (eIDs) it offers. Treat the package's profiles as
// read-only; Clone one to change it.
type Profile struct {
	Name string
	// Endpoint paths under the issuer, used when the discovery document
	// lacks backchannel_authentication_endpoint, token_endpoint or jwks_uri.
	BackchannelPath string
	TokenPath       string
	JWKSPath        string
	// AuthMethods are the client authentication methods the broker accepts,
	// most preferred first; nil accepts all.
	AuthMethods []AuthMethod
	LoginHint   LoginHintFormat
	Scope       []string // default ["openid"]
	// MaxRequestedExpiry bounds requested_expiry; 0 = no limit.
	MaxRequestedExpiry time.Duration
	// RequestContext sends Transmit's request_context
	// {"channel":…,"login_hint_type":…} when RequestInput.Channel is set or
	// the hint is a phone number or e-mail address.
	RequestContext bool
	// DeliveryModes are the CIBA token delivery modes the broker offers;
	// nil means poll only.
	DeliveryModes []string
	Methods       []Method
	DefaultMethod string // the Method used when RequestInput.Method is ""
}

// RequestInput is what the caller knows about one authentication; Profile.
// Request turns it into the broker's exact parameters.
type RequestInput struct {
	Method          string // profile method: for Idura "se-bankid" or "no-bankid"; "" = profile default
	NationalID      string // digits (separators '-' and ' ' are dropped); Idura => login_hint "sub:ssn:<digits>"
	Phone           string // Transmit login_hint
	Email           string // Transmit login_hint
	UserID          string // Auth0 iss_sub user id ("auth0|…"), or a Transmit user_id
	BindingMessage  string
	CallInitiator   string // Idura SE phoneAuth: "user" (default) or "RP"
	RequestedExpiry time.Duration
	Channel         string   // Transmit request_context channel ("sms", "email", "link")
	Scopes          []string // extra scopes besides the profile's (e.g. Idura "ssn" for NO socialno)
	Issuer          string   // broker issuer for iss_sub hints; Client.Request fills it in
	// ClientNotificationToken, for ping mode, is passed through.
	ClientNotificationToken string
}

// Provider profiles.
var (
	// Idura is Idura Verify (formerly Criipto): Swedish BankID phone
	// authentication and Norwegian BankID caller authentication.
	Idura = &Profile{
		Name:            "idura",
		BackchannelPath: "/ciba/bc-authorize",
		TokenPath:       "/oauth2/token",
		JWKSPath:        "/.well-known/jwks",
		AuthMethods:     []AuthMethod{PrivateKeyJWT, ClientSecretBasic},
		LoginHint:       HintSubSSN,
		Scope:           []string{"openid"},
		DefaultMethod:   "se-bankid",
		Methods: []Method{
			{
				Name:              "se-bankid",
				Description:       "Swedish BankID phone authentication",
				ACRValues:         []string{"urn:grn:authn:se:bankid"},
				AuthorizationType: "phoneAuth",
				CallInitiator:     true,
				// The BankID app shows it; Idura documents no limit (see
				// MaxBindingMessage).
				BindingMessage:    BindingRule{Required: true, MaxLen: MaxBindingMessage},
				NationalIDLengths: []int{10, 12},
			},
			{
				Name:              "no-bankid",
				Description:       "Norwegian BankID caller authentication (word pair)",
				ACRValues:         []string{"urn:grn:authn:no:bankid"},
				AuthorizationType: "customerServiceCall.v1",
				BindingMessage:    BindingRule{Forbidden: true},
				NationalIDLengths: []int{11},
				// Idura puts socialno in the ID token only with the ssn
				// scope (and a legal basis configured for the
				// application); without it the verified number cannot be
				// compared with the one the caller typed.
				Scopes: []string{"ssn"},
			},
		},
	}

	// Auth0 is Auth0's CIBA (Guardian push): iss_sub login hints, a
	// required binding message of at most MaxBindingMessage characters of
	// Auth0BindingCharset, requested_expiry of at most 300 s.
	Auth0 = &Profile{
		Name:               "auth0",
		BackchannelPath:    "/bc-authorize",
		TokenPath:          "/oauth/token",
		JWKSPath:           "/.well-known/jwks.json",
		AuthMethods:        []AuthMethod{PrivateKeyJWT, ClientSecretPost, ClientSecretBasic},
		LoginHint:          HintIssSub,
		Scope:              []string{"openid"},
		MaxRequestedExpiry: 300 * time.Second,
		DefaultMethod:      "guardian",
		Methods: []Method{{
			Name:           "guardian",
			Description:    "Auth0 Guardian push notification",
			BindingMessage: BindingRule{Required: true, MaxLen: MaxBindingMessage, Charset: Auth0BindingCharset},
		}},
	}

	// Transmit is Transmit Security Mosaic: client secret, login_hint a
	// phone number, e-mail or user id, request_context channel.
	Transmit = &Profile{
		Name:            "transmit",
		BackchannelPath: "/cis/oidc/backchannel",
		TokenPath:       "/oidc/token", // as in Transmit's sample, without /cis
		JWKSPath:        "/cis/oidc/jwks",
		AuthMethods:     []AuthMethod{ClientSecretPost, ClientSecretBasic},
		LoginHint:       HintPlain,
		Scope:           []string{"openid"},
		RequestContext:  true,
		DefaultMethod:   "link",
		Methods: []Method{{
			Name:        "link",
			Description: "Mosaic login link by SMS or e-mail",
			// Transmit's login page shows the message; it documents no
			// limit (see MaxBindingMessage).
			BindingMessage: BindingRule{MaxLen: MaxBindingMessage},
		}},
	}

	// Generic is any CIBA Core broker: the hint as given, no extra rules.
	Generic = &Profile{
		Name:            "generic",
		BackchannelPath: "/bc-authorize",
		TokenPath:       "/token",
		JWKSPath:        "/jwks",
		LoginHint:       HintPlain,
		Scope:           []string{"openid"},
		DefaultMethod:   "default",
		Methods:         []Method{{Name: "default", Description: "CIBA Core", BindingMessage: BindingRule{MaxLen: MaxBindingMessage}}},
		DeliveryModes:   []string{"poll", "ping"},
	}
)

// ProfileNames are the names ProfileByName knows.
var ProfileNames = []string{"idura", "auth0", "transmit", "generic"}

// ProfileByName returns a copy of the named profile: "idura" (also ""),
// "auth0", "transmit" or "generic".
func ProfileByName(name string) (*Profile, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "idura", "criipto":
		return Idura.Clone(), nil
	case "auth0":
		return Auth0.Clone(), nil
	case "transmit", "mosaic":
		return Transmit.Clone(), nil
	case "generic":
		return Generic.Clone(), nil
	}
	return nil, fmt.Errorf("unknown profile %q: use %s", name, strings.Join(ProfileNames, ", "))
}

// Clone returns a deep copy of p.
func (p *Profile) Clone() *Profile {
	q := *p
	q.AuthMethods = slices.Clone(p.AuthMethods)
	q.Scope = slices.Clone(p.Scope)
	q.DeliveryModes = slices.Clone(p.DeliveryModes)
	q.Methods = make([]Method, len(p.Methods))
	for i, m := range p.Methods {
		m.ACRValues = slices.Clone(m.ACRValues)
		m.NationalIDLengths = slices.Clone(m.NationalIDLengths)
		m.Scopes = slices.Clone(m.Scopes)
		q.Methods[i] = m
	}
	return &q
}

// Method returns the named method, or the default one for "".
func (p *Profile) Method(name string) (Method, bool) {
	if name == "" {
		name = p.DefaultMethod
	}
	for _, m := range p.Methods {
		if m.Name == name {
			return m, true
		}
	}
	return Method{}, false
}

// Request builds the exact backchannel authentication parameters for in and
// rejects what the profile forbids. Its errors never contain the national
// identity number, phone number, e-mail address or user id.
func (p *Profile) Request(in RequestInput) (AuthRequest, error) {
	req, err := p.request(in)
	if err != nil {
		return AuthRequest{}, fmt.Errorf("ciba: %s request: %w", p.Name, err)
	}
	return req, nil
}

// scopes joins scope lists in order, without duplicates.
func scopes(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, s := range l {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

func (p *Profile) request(in RequestInput) (AuthRequest, error) {
	m, ok := p.Method(in.Method)
	if !ok {
		return AuthRequest{}, fmt.Errorf("unknown method %q", in.Method)
	}
	req := AuthRequest{
		Scope:                   scopes(p.Scope, m.Scopes, in.Scopes),
		ACRValues:               slices.Clone(m.ACRValues),
		BindingMessage:          in.BindingMessage,
		ClientNotificationToken: in.ClientNotificationToken,
	}
	if len(req.Scope) == 0 {
		req.Scope = []string{"openid"}
	}
	hintType, err := p.loginHint(m, in, &req)
	if err != nil {
		return AuthRequest{}, err
	}
	if err := m.BindingMessage.check(in.BindingMessage); err != nil {
		return AuthRequest{}, err
	}
	if err := m.authorizationDetails(in.CallInitiator, &req); err != nil {
		return AuthRequest{}, err
	}
	switch {
	case in.RequestedExpiry < 0:
		return AuthRequest{}, errors.New("requested_expiry is negative")
	case p.MaxRequestedExpiry > 0 && in.RequestedExpiry > p.MaxRequestedExpiry:
		return AuthRequest{}, fmt.Errorf("requested_expiry above %d seconds", int(p.MaxRequestedExpiry/time.Second))
	}
	req.RequestedExpiry = in.RequestedExpiry
	if p.RequestContext {
		rc := map[string]string{}
		if in.Channel != "" {
			rc["channel"] = in.Channel
		}
		if hintType != "" {
			rc["login_hint_type"] = hintType
		}
		if len(rc) > 0 {
			req.RequestContext, _ = json.Marshal(rc)
		}
	} else if in.Channel != "" {
		return AuthRequest{}, errors.New("channel is not used by this profile")
	}
	return req, nil
}

// loginHint sets the login hint and returns Transmit's login_hint_type.
func (p *Profile) loginHint(m Method, in RequestInput, req *AuthRequest) (string, error) {
	switch p.LoginHint {
	case HintSubSSN:
		digits, err := nationalIDDigits(in.NationalID, m.NationalIDLengths)
		if err != nil {
			return "", err
		}
		req.LoginHint = "sub:ssn:" + digits
	case HintIssSub:
		if in.UserID == "" {
			return "", errors.New("a user id is required for the iss_sub login hint")
		}
		if in.Issuer == "" {
			return "", errors.New("the issuer is required for the iss_sub login hint (use Client.Request)")
		}
		b, err := json.Marshal(struct {
			Format string `json:"format"`
			Iss    string `json:"iss"`
			Sub    string `json:"sub"`
		}{"iss_sub", in.Issuer, in.UserID})
		if err != nil {
			return "", errors.New("cannot encode the login hint")
		}
		req.LoginHint = string(b)
	case HintPlain:
		var set []string
		for _, h := range []struct{ typ, v string }{
			{"phone", in.Phone}, {"email", in.Email}, {"user_id", in.UserID}, {"", in.NationalID},
		} {
			if h.v != "" {
				set = append(set, h.typ)
				req.LoginHint = h.v
			}
		}
		if len(set) != 1 {
			return "", errors.New("exactly one of phone, email, user id and national id is required")
		}
		if strings.ContainsFunc(req.LoginHint, unicode.IsControl) {
			return "", errors.New("login hint has control characters")
		}
		if set[0] != "" { // phone, email, user_id: Transmit need not guess
			return set[0], nil
		}
	default:
		return "", fmt.Errorf("unknown login hint format %q", p.LoginHint)
	}
	return "", nil
}

// nationalIDDigits strips separators and checks the digit count. The error
// never contains the number.
func nationalIDDigits(id string, lengths []int) (string, error) {
	if id == "" {
		return "", errors.New("national identity number is required")
	}
	var b strings.Builder
	for _, r := range id {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-' || r == ' ' || r == '+':
		default:
			return "", errors.New("national identity number must be digits")
		}
	}
	d := b.String()
	if len(lengths) > 0 && !slices.Contains(lengths, len(d)) {
		return "", fmt.Errorf("national identity number has %d digits, want %s", len(d), joinInts(lengths))
	}
	return d, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, " or ")
}

// authorizationDetails sets the RAR parameter of m.
func (m Method) authorizationDetails(initiator string, req *AuthRequest) error {
	if !m.CallInitiator && initiator != "" {
		return fmt.Errorf("method %s takes no call initiator", m.Name)
	}
	if m.AuthorizationType == "" {
		return nil
	}
	type entry struct {
		Type          string `json:"type"`
		CallInitiator string `json:"callInitiator,omitempty"`
	}
	e := entry{Type: m.AuthorizationType}
	if m.CallInitiator {
		switch initiator {
		case "", "user":
			e.CallInitiator = "user"
		case "RP", "rp":
			e.CallInitiator = "RP"
		default:
			return errors.New(`call initiator must be "user" or "RP"`)
		}
	}
	b, err := json.Marshal([]entry{e})
	if err != nil {
		return errors.New("cannot encode authorization_details")
	}
	req.AuthorizationDetails = b
	return nil
}
