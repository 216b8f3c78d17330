// Package ciba is a client for OpenID Connect Client-Initiated Backchannel
// Authentication (CIBA Core 1.0) in poll and ping mode, written for eID
// brokers such as Idura Verify (Swedish and Norwegian BankID), Auth0 and
// Transmit/Mosaic.
//
// It authenticates the client (private_key_jwt, client_secret_basic or
// client_secret_post), starts backchannel authentications, polls the token
// endpoint, and validates the ID token against the broker's JWKS before any
// claim is returned. Provider differences are data (Profile), not branches.
//
// A service makes one Client per broker (New reads the broker's discovery
// document), then, for each person to authenticate, sends a request, polls
// until the person decides in their app, and reads the validated ID token:
//
//	key, err := ciba.LoadKey("client-key.pem") // PEM or JWK; see Key
//	if err != nil { … }
//	client, err := ciba.New(ctx, ciba.Config{
//		Issuer:   "https://example.idura.broker",
//		ClientID: "urn:my:app",
//		Key:      key,
//		Profile:  ciba.Idura,
//	})
//	if err != nil { … }
//	req, err := client.Request(ciba.RequestInput{
//		Method:         "se-bankid",
//		NationalID:     "196802020575",
//		BindingMessage: "Call with Example Bank",
//	})
//	if err != nil { … }
//	ar, err := client.Authenticate(ctx, req) // the app asks the person now
//	if err != nil { … }
//	tok, err := client.Poll(ctx, ar, nil)
//	if err != nil {
//		// errors.Is(err, ciba.ErrAccessDenied): the person declined;
//		// ciba.ErrExpired: no answer in time; otherwise the broker failed,
//		// or its ID token failed a check (ciba.ErrInvalidIDToken).
//	}
//	// tok.IDToken passed every check of ValidateIDToken. Its standard
//	// claims are fields (Subject, Expiry, ACR, …); the broker's own claims
//	// are decoded into a struct of the caller's:
//	var idura struct {
//		SSN  string `json:"ssn"`
//		Name string `json:"name"`
//	}
//	if err := tok.IDToken.Claims(&idura); err != nil { … }
//
// A service that keeps its pending requests in a store instead of a
// goroutine calls Token once per due request (at AuthResponse.PollInterval,
// longer after slow_down), which is what Poll does in a loop. In ping mode
// the broker says when to call it: see NewPingHandler and ReadNotification.
//
// # Client keys
//
// private_key_jwt signs each request's client assertion with Config.Key: a
// crypto.Signer with the kid the broker knows its public key by, so that a
// key in a hardware module or a cloud KMS serves as well as one in a file.
// LoadKey reads a PEM or JWK file, GenerateKey makes a key and
// MarshalPrivateKeyPEM writes it; PublicJWKS is the JWK Set to register at
// the broker, or to publish at a JWKS URL the broker fetches.
//
// # Testing
//
// The sub-package cibatest is an in-process broker speaking each profile;
// NewIDToken makes an IDToken for fakes of Client.Token.
//
// The package knows nothing of telephony, HTTP servers of its own (apart from
// the ping-mode notification handler) or storage, and it never logs: it
// returns errors, and its error strings never contain login hints, national
// identity numbers, client assertions, auth_req_ids or tokens.
package ciba
