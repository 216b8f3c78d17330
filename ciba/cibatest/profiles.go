package cibatest

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/ivr/callerverify/ciba"
)

// Profiles: which broker the simulator speaks (Config.Profile).
const (
	// ProfileIdura is Idura Verify with Swedish and Norwegian BankID: the
	// default.
	ProfileIdura = "idura"
	// ProfileAuth0 is Auth0's CIBA (Guardian push): iss_sub login hints, a
	// required binding message, requested_expiry, poll only.
	ProfileAuth0 = "auth0"
	// ProfileTransmit is Transmit Security Mosaic: an e-mail address, phone
	// number or user id as login hint, request_context, client secrets only,
	// no interval in the response, poll only.
	ProfileTransmit = "transmit"
	// ProfileGeneric is a plain CIBA Core broker with poll and ping mode.
	ProfileGeneric = "generic"
)

// Delivery modes of a registered Client (CIBA Core §5).
const (
	DeliveryPoll = "poll"
	DeliveryPing = "ping"
)

// Client authentication methods as discovery names them.
const (
	methodPrivateKeyJWT = string(ciba.PrivateKeyJWT)
	methodSecretBasic   = string(ciba.ClientSecretBasic)
	methodSecretPost    = string(ciba.ClientSecretPost)
)

// spec is how one profile speaks: its endpoints, what it accepts and its
// fixed token endpoint texts.
type spec struct {
	name                     string
	authorizePath, tokenPath string
	jwksPath                 string
	authMethods              []string // in discovery order
	deliveryModes            []string
	pending, denied, expired string // token error descriptions (not Idura's SE/NO pending)
	expiredCode              string // expired_token, or access_denied at Auth0
	slowDown                 string // fixed slow_down text; "" = say the interval
	retryAfter               bool   // slow_down carries Retry-After
	claims                   []string
	accessTokenExpiresIn     any // the token response's expires_in
	// interval is the polling interval the profile always uses; 0 takes
	// Config.Interval. sendInterval puts it in the bc-authorize response.
	interval     time.Duration
	sendInterval bool
}

// Token endpoint texts.
const (
	// PendingAuth0 is Auth0's authorization_pending description.
	PendingAuth0 = "The end-user authorization is pending"
	// DeniedAuth0 is Auth0's access_denied description, for a decline and
	// for an expired request alike.
	DeniedAuth0 = "The end-user denied the authorization request or it has been expired"
	// SlowDownAuth0 is Auth0's slow_down description.
	SlowDownAuth0 = "You are polling faster than allowed. Try again in 10 seconds."
	// PendingGeneric is the authorization_pending description of the
	// transmit and generic profiles.
	PendingGeneric = "the end-user has not yet been authenticated"
	// DeniedGeneric is the access_denied description of a decline in the
	// transmit and generic profiles.
	DeniedGeneric = "the end-user denied the authentication request"
	// DeniedCancelled is the access_denied description, in every profile,
	// of a request closed because a newer one started for the same user.
	DeniedCancelled = "request cancelled: a newer request was started"

	expiredText = "the authentication request has expired"
)

var specs = map[string]*spec{
	ProfileIdura: {
		name:          ProfileIdura,
		authorizePath: "/ciba/bc-authorize",
		tokenPath:     "/oauth2/token",
		jwksPath:      "/.well-known/jwks",
		authMethods:   []string{methodPrivateKeyJWT, methodSecretBasic, methodSecretPost},
		deliveryModes: []string{DeliveryPoll},
		denied:        "user declined",
		expired:       expiredText,
		expiredCode:   "expired_token",
		sendInterval:  true,
	},
	ProfileAuth0: {
		name:                 ProfileAuth0,
		authorizePath:        "/bc-authorize",
		tokenPath:            "/oauth/token",
		jwksPath:             "/.well-known/jwks.json",
		authMethods:          []string{methodSecretBasic, methodSecretPost, methodPrivateKeyJWT},
		deliveryModes:        []string{DeliveryPoll},
		pending:              PendingAuth0,
		denied:               DeniedAuth0,
		expired:              DeniedAuth0,
		expiredCode:          "access_denied",
		slowDown:             SlowDownAuth0,
		retryAfter:           true,
		claims:               []string{"iss", "aud", "sub", "iat", "exp", "name", "given_name", "family_name", "email"},
		accessTokenExpiresIn: 86400,
		interval:             5 * time.Second,
		sendInterval:         true,
	},
	ProfileTransmit: {
		name:                 ProfileTransmit,
		authorizePath:        "/cis/oidc/backchannel",
		tokenPath:            "/oidc/token",
		jwksPath:             "/cis/oidc/jwks",
		authMethods:          []string{methodSecretBasic, methodSecretPost},
		deliveryModes:        []string{DeliveryPoll},
		pending:              PendingGeneric,
		denied:               DeniedGeneric,
		expired:              expiredText,
		expiredCode:          "expired_token",
		claims:               []string{"iss", "aud", "sub", "iat", "exp", "name", "given_name", "family_name", "email", "phone_number"},
		accessTokenExpiresIn: 3600,
		interval:             5 * time.Second, // never sent: the CIBA default
	},
	ProfileGeneric: {
		name:                 ProfileGeneric,
		authorizePath:        "/bc-authorize",
		tokenPath:            "/token",
		jwksPath:             "/jwks",
		authMethods:          []string{methodPrivateKeyJWT, methodSecretBasic, methodSecretPost},
		deliveryModes:        []string{DeliveryPoll, DeliveryPing},
		pending:              PendingGeneric,
		denied:               DeniedGeneric,
		expired:              expiredText,
		expiredCode:          "expired_token",
		claims:               []string{"iss", "aud", "sub", "iat", "exp", "auth_time", "name", "given_name", "family_name", "email"},
		accessTokenExpiresIn: 3600,
		sendInterval:         true,
	},
}

// specFor returns the profile named name ("" is Idura).
func specFor(name string) (*spec, bool) {
	if name == "" {
		name = ProfileIdura
	}
	s, ok := specs[name]
	return s, ok
}

func (s *spec) allows(method string) bool { return slices.Contains(s.authMethods, method) }

func (s *spec) offersPing() bool { return slices.Contains(s.deliveryModes, DeliveryPing) }

// Profile returns the profile the broker speaks (ProfileIdura, …).
func (b *Broker) Profile() string { return b.spec.name }

func (b *Broker) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	var doc map[string]any
	if b.spec.name == ProfileIdura {
		doc = b.iduraDiscovery()
	} else {
		doc = map[string]any{
			"issuer":                              b.cfg.Issuer,
			"backchannel_authentication_endpoint": b.base + b.spec.authorizePath,
			"token_endpoint":                      b.base + b.spec.tokenPath,
			"jwks_uri":                            b.base + b.spec.jwksPath,
			"backchannel_token_delivery_modes_supported": slices.Clone(b.spec.deliveryModes),
			"backchannel_user_code_parameter_supported":  false,
			"grant_types_supported":                      []string{ciba.GrantType},
			"token_endpoint_auth_methods_supported":      slices.Clone(b.spec.authMethods),
			"id_token_signing_alg_values_supported":      []string{"RS256"},
			"scopes_supported":                           []string{"openid"},
			"subject_types_supported":                    []string{"public"},
			"response_types_supported":                   []string{"id_token"},
			"claims_supported":                           slices.Clone(b.spec.claims),
		}
		if b.spec.allows(methodPrivateKeyJWT) {
			doc["token_endpoint_auth_signing_alg_values_supported"] = []string{"RS256", "PS256", "ES256"}
		}
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// iduraDiscovery is the discovery document of the Idura profile.
func (b *Broker) iduraDiscovery() map[string]any {
	return map[string]any{
		"issuer":                              b.cfg.Issuer,
		"token_endpoint":                      b.base + "/oauth2/token",
		"jwks_uri":                            b.base + "/.well-known/jwks",
		"backchannel_authentication_endpoint": b.base + "/ciba/bc-authorize",
		"backchannel_token_delivery_modes_supported":       []string{"poll"},
		"backchannel_user_code_parameter_supported":        false,
		"grant_types_supported":                            []string{ciba.GrantType},
		"token_endpoint_auth_methods_supported":            []string{"private_key_jwt", "client_secret_basic", "client_secret_post"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256", "PS256", "ES256"},
		"id_token_signing_alg_values_supported":            []string{"RS256"},
		"acr_values_supported":                             []string{ACRSwedishBankID, ACRNorwegianBankID},
		"scopes_supported":                                 []string{"openid"},
		"subject_types_supported":                          []string{"public"},
		"response_types_supported":                         []string{"id_token"},
		"claims_supported": []string{
			"iss", "aud", "sub", "iat", "nbf", "exp", "auth_time", "acr",
			"identityscheme", "authenticationtype", "country", "name",
			"given_name", "family_name", "birthdate", "ssn", "socialno",
		},
	}
}
