package ciba_test

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
)

const issuer = "http://127.0.0.1:9999"

// Keys are slow to make; the tests share them.
var (
	clientKey = sync.OnceValue(func() ciba.Key { return mustGenerate(ciba.RS256) })
	ecKey     = sync.OnceValue(func() ciba.Key { return mustGenerate(ciba.ES256) })
	psKey     = sync.OnceValue(func() ciba.Key { return mustGenerate(ciba.PS256) })
	brokerKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func mustGenerate(alg string) ciba.Key {
	k, err := ciba.GenerateKey(alg)
	if err != nil {
		panic(err)
	}
	return k
}

// sim is a simulated broker, the requests our client sent it, and a client.
type sim struct {
	b           *cibatest.Broker
	c           *ciba.Client
	hc          *http.Client
	jwksFetches atomic.Int32
	mu          sync.Mutex
	forms       []url.Values // bodies of bc-authorize and token requests
}

// recordingTransport records request bodies and counts JWKS fetches.
type recordingTransport struct {
	s    *sim
	next http.RoundTripper
}

func (t recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/jwks") {
		t.s.jwksFetches.Add(1)
	}
	if r.Body != nil {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		if form, err := url.ParseQuery(string(body)); err == nil {
			t.s.mu.Lock()
			t.s.forms = append(t.s.forms, form)
			t.s.mu.Unlock()
		}
	}
	return t.next.RoundTrip(r)
}

func newSim(t *testing.T, cfg cibatest.Config, mod func(*ciba.Config)) *sim {
	t.Helper()
	cfg.Issuer = issuer
	cfg.SigningKey = brokerKey()
	b, err := cibatest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	set, err := ciba.PublicJWKS(clientKey(), ecKey(), psKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.RegisterClient(cibatest.Client{ID: "ivr", JWKS: set, Secret: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	s := &sim{b: b}
	s.hc = &http.Client{Transport: recordingTransport{s, b.Transport()}}
	ccfg := ciba.Config{Issuer: issuer, ClientID: "ivr", Key: clientKey(), HTTPClient: s.hc}
	if mod != nil {
		mod(&ccfg)
	}
	s.c, err = ciba.New(t.Context(), ccfg)
	if err != nil {
		t.Fatalf("ciba.New: %v", err)
	}
	return s
}

func seRequest(t *testing.T, id string) ciba.AuthRequest {
	t.Helper()
	req, err := ciba.Idura.Request(ciba.RequestInput{Method: "se-bankid", NationalID: id, BindingMessage: "Acme kundtjänst", CallInitiator: "user"})
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func noRequest(t *testing.T, id string) ciba.AuthRequest {
	t.Helper()
	req, err := ciba.Idura.Request(ciba.RequestInput{Method: "no-bankid", NationalID: id})
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// collect returns an onPending func that records distinct consecutive
// descriptions.
func collect(states *[]string) func(string) {
	return func(d string) {
		if n := len(*states); n == 0 || (*states)[n-1] != d {
			*states = append(*states, d)
		}
	}
}

// idura are the Idura claims the tests read.
type idura struct {
	SSN            string `json:"ssn"`
	SocialNo       string `json:"socialno"`
	GivenName      string `json:"given_name"`
	Country        string `json:"country"`
	IdentityScheme string `json:"identityscheme"`
}

func iduraClaims(t *testing.T, tok *ciba.TokenResponse) idura {
	t.Helper()
	var cl idura
	if err := tok.IDToken.Claims(&cl); err != nil {
		t.Fatalf("Claims: %v", err)
	}
	return cl
}

func TestSwedishApproveWithPendingStates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, cibatest.Config{}, nil)
		start := time.Now()
		ar, err := s.c.Authenticate(t.Context(), seRequest(t, cibatest.SEApprove))
		if err != nil {
			t.Fatal(err)
		}
		if ar.Interval != 2*time.Second || ar.ExpiresIn != 120*time.Second || ar.BindingMessage != "" {
			t.Errorf("auth response = %v", ar)
		}
		var states []string
		tok, err := s.c.Poll(t.Context(), ar, collect(&states))
		if err != nil {
			t.Fatalf("Poll: %v", err)
		}
		want := []string{cibatest.PendingAcknowledgement, cibatest.PendingIdentification}
		if strings.Join(states, "|") != strings.Join(want, "|") {
			t.Errorf("pending states %q, want %q", states, want)
		}
		if d := time.Since(start); d != 6*time.Second {
			t.Errorf("approved after %s, want 6s", d)
		}
		cl := iduraClaims(t, tok)
		if cl.Country != "SE" || cl.IdentityScheme != "sebankid" || cl.GivenName != "Astrid" || tok.IDToken.Issuer != issuer || cl.SSN != cibatest.SEApprove {
			t.Errorf("claims = %+v, iss %q", cl, tok.IDToken.Issuer)
		}
		if n := s.b.Polls(ar.AuthReqID); n != 3 {
			t.Errorf("%d polls, want 3", n)
		}
		// The exact Idura parameters went over the wire.
		form := s.forms[0]
		if form.Get("authorization_details") != `[{"type":"phoneAuth","callInitiator":"user"}]` ||
			form.Get("acr_values") != "urn:grn:authn:se:bankid" || form.Get("binding_message") != "Acme kundtjänst" {
			t.Errorf("bc-authorize form = %v", form)
		}
	})
}

func TestSwedishPendingStatesWhenTheUserIsSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, cibatest.Config{}, nil)
		ar, err := s.c.Authenticate(t.Context(), seRequest(t, cibatest.SEApproveSlow))
		if err != nil {
			t.Fatal(err)
		}
		var states []string
		if _, err := s.c.Poll(t.Context(), ar, collect(&states)); err != nil {
			t.Fatal(err)
		}
		want := []string{cibatest.PendingFirstInteraction, cibatest.PendingAcknowledgement, cibatest.PendingIdentification}
		if strings.Join(states, "|") != strings.Join(want, "|") {
			t.Errorf("pending states %q, want %q", states, want)
		}
	})
}

func TestNorwegianWordPair(t *testing.T) {
	for _, tt := range []struct {
		name     string
		pick     func(right string, choices []string) string
		wantDeny bool
	}{
		{"caller picks the word pair read to them", func(right string, _ []string) string { return right }, false},
		{"caller picks another pair", func(right string, choices []string) string {
			for _, c := range choices {
				if c != right {
					return c
				}
			}
			return "Feil Ord"
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSim(t, cibatest.Config{}, nil)
				ar, err := s.c.Authenticate(t.Context(), noRequest(t, cibatest.NOManual))
				if err != nil {
					t.Fatal(err)
				}
				if len(strings.Fields(ar.BindingMessage)) != 2 || ar.ExpiresIn != 900*time.Second {
					t.Fatalf("auth response = %v, want a word pair and 900s", ar)
				}
				if s.forms[0].Has("binding_message") {
					t.Error("binding_message sent for Norwegian BankID")
				}
				var (
					tok     *ciba.TokenResponse
					pollErr error
					states  []string
					done    = make(chan struct{})
				)
				go func() {
					defer close(done)
					tok, pollErr = s.c.Poll(t.Context(), ar, collect(&states))
				}()
				time.Sleep(5 * time.Second) // fake time: the caller finds the app
				synctest.Wait()
				app := s.b.Requests()[0]
				if app.BindingMessage != ar.BindingMessage {
					t.Fatalf("app shows %q, IVR read %q", app.BindingMessage, ar.BindingMessage)
				}
				err = s.b.Approve(app.ID, tt.pick(ar.BindingMessage, app.WordPairChoices))
				if tt.wantDeny != errors.Is(err, cibatest.ErrWrongWordPair) {
					t.Fatalf("Approve: %v", err)
				}
				<-done
				if tt.wantDeny {
					if !errors.Is(pollErr, ciba.ErrAccessDenied) {
						t.Fatalf("Poll err = %v, want access_denied", pollErr)
					}
					return
				}
				if pollErr != nil {
					t.Fatal(pollErr)
				}
				if states[0] != cibatest.PendingNorwegian {
					t.Errorf("pending %q", states)
				}
				if cl := iduraClaims(t, tok); cl.Country != "NO" || cl.SocialNo != cibatest.NOManual || cl.SSN != "" {
					t.Errorf("claims = %+v", cl)
				}
			})
		})
	}
}

func TestDecline(t *testing.T) {
	for _, req := range []struct {
		name string
		req  func(*testing.T) ciba.AuthRequest
	}{
		{"SE", func(t *testing.T) ciba.AuthRequest { return seRequest(t, cibatest.SEDecline) }},
		{"NO", func(t *testing.T) ciba.AuthRequest { return noRequest(t, cibatest.NODecline) }},
	} {
		t.Run(req.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSim(t, cibatest.Config{}, nil)
				ar, err := s.c.Authenticate(t.Context(), req.req(t))
				if err != nil {
					t.Fatal(err)
				}
				_, err = s.c.Poll(t.Context(), ar, nil)
				be, ok := errors.AsType[*ciba.Error](err)
				if !errors.Is(err, ciba.ErrAccessDenied) || !ok || be.Description != "user declined" {
					t.Fatalf("err = %v, want access_denied / user declined", err)
				}
			})
		})
	}
}

func TestExpiry(t *testing.T) {
	t.Run("broker says expired_token", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newSim(t, cibatest.Config{ExpiresInSE: 30 * time.Second}, nil)
			ar, err := s.c.Authenticate(t.Context(), seRequest(t, cibatest.SENoAnswer))
			if err != nil {
				t.Fatal(err)
			}
			// Our deadline runs a little behind the broker's (it started the
			// clock first), so the broker gets to say expired_token.
			ar.ExpiresAt = ar.ExpiresAt.Add(5 * time.Second)
			start := time.Now()
			_, err = s.c.Poll(t.Context(), ar, nil)
			if !errors.Is(err, ciba.ErrExpired) || !errors.Is(err, ciba.ErrExpiredToken) {
				t.Fatalf("err = %v, want ErrExpired and ErrExpiredToken", err)
			}
			if d := time.Since(start); d != 30*time.Second {
				t.Errorf("stopped after %s, want 30s", d)
			}
		})
	})
	t.Run("broker never says expired_token", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newSim(t, cibatest.Config{SilentExpiry: true}, nil)
			ar, err := s.c.Authenticate(t.Context(), seRequest(t, cibatest.SENoAnswer))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = s.c.Poll(t.Context(), ar, nil)
			if !errors.Is(err, ciba.ErrExpired) || errors.Is(err, ciba.ErrExpiredToken) {
				t.Fatalf("err = %v, want ErrExpired only", err)
			}
			if d := time.Since(start); d != 120*time.Second {
				t.Errorf("stopped after %s, want 120s", d)
			}
			if n := s.b.Polls(ar.AuthReqID); n != 59 {
				t.Errorf("%d polls, want 59 (every 2 s before the deadline)", n)
			}
		})
	})
}

func TestUnknownUser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, cibatest.Config{}, nil)
		const nobody = "199001011239"
		_, err := s.c.Authenticate(t.Context(), seRequest(t, nobody))
		if !errors.Is(err, ciba.ErrUnknownUserID) {
			t.Fatalf("err = %v, want unknown_user_id", err)
		}
		if strings.Contains(err.Error(), nobody) || strings.Contains(err.Error(), "sub:ssn") {
			t.Errorf("error leaks the login hint: %v", err)
		}
	})
}

func TestSlowDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, cibatest.Config{}, nil)
		ar, err := s.c.Authenticate(t.Context(), seRequest(t, cibatest.SEApprove))
		if err != nil {
			t.Fatal(err)
		}
		// A poller that ignores the interval is told to slow down.
		_, err = s.c.Token(t.Context(), ar.AuthReqID)
		if !errors.Is(err, ciba.ErrAuthorizationPending) {
			t.Fatalf("first poll: %v", err)
		}
		_, err = s.c.Token(t.Context(), ar.AuthReqID)
		if !errors.Is(err, ciba.ErrSlowDown) {
			t.Fatalf("second poll at once: %v, want slow_down", err)
		}
		// The broker now wants 2 + 5 s between polls; Poll, told the grown
		// interval, never gets slow_down again.
		ar.Interval += ciba.SlowDownStep
		start := time.Now()
		if _, err := s.c.Poll(t.Context(), ar, nil); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 7*time.Second {
			t.Errorf("approved after %s, want 7s", d)
		}
		if n := s.b.Polls(ar.AuthReqID); n != 3 {
			t.Errorf("%d polls, want 3", n)
		}
	})
}

func TestReplayedAssertionRejected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, cibatest.Config{}, nil)
		if err := s.c.CheckClientAuth(t.Context()); err != nil {
			t.Fatalf("CheckClientAuth: %v", err)
		}
		if err := s.c.CheckClientAuth(t.Context()); err != nil {
			t.Fatalf("second CheckClientAuth (fresh assertion): %v", err)
		}
		first := s.forms[0]
		if first.Get("client_assertion") == s.forms[1].Get("client_assertion") {
			t.Fatal("the client reused an assertion")
		}
		// An attacker replays a captured request.
		resp, err := s.b.HTTPClient().PostForm(issuer+"/oauth2/token", first)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != http.StatusUnauthorized || body.Error != "invalid_client" {
			t.Errorf("replay: %d %q, want 401 invalid_client", resp.StatusCode, body.Error)
		}
	})
}

// opaque hides the concrete key type, as a KMS or HSM signer does.
type opaque struct{ s crypto.Signer }

func (o opaque) Public() crypto.PublicKey { return o.s.Public() }
func (o opaque) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.s.Sign(r, digest, opts)
}

func TestClientAuthMethodsAgainstTheSimulator(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*ciba.Config)
	}{
		{"ES256 assertion", func(c *ciba.Config) { c.Key = ecKey() }},
		{"PS256 assertion", func(c *ciba.Config) { c.Key = psKey() }},
		{"client_secret_basic", func(c *ciba.Config) { c.Key = ciba.Key{}; c.Secret = "s3cret" }},
		{"an opaque signer (a KMS key) with RS256", func(c *ciba.Config) { c.Key = ciba.Key{Signer: opaque{clientKey().Signer}, ID: clientKey().ID} }},
		{"an opaque signer with ES256", func(c *ciba.Config) { c.Key = ciba.Key{Signer: opaque{ecKey().Signer}, ID: ecKey().ID} }},
		{"an opaque signer with PS256", func(c *ciba.Config) {
			c.Key = ciba.Key{Signer: opaque{psKey().Signer}, ID: psKey().ID, Alg: ciba.PS256}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSim(t, cibatest.Config{}, tt.mod)
				ar, err := s.c.Authenticate(t.Context(), noRequest(t, cibatest.NOApprove))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.c.Poll(t.Context(), ar, nil); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
	t.Run("an unregistered key is refused", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			other := mustGenerate(ciba.ES256)
			s := newSim(t, cibatest.Config{}, func(c *ciba.Config) { c.Key = other })
			if err := s.c.CheckClientAuth(t.Context()); !errors.Is(err, ciba.ErrInvalidClient) {
				t.Fatalf("CheckClientAuth = %v, want invalid_client", err)
			}
			_, err := s.c.Authenticate(t.Context(), noRequest(t, cibatest.NOApprove))
			if !errors.Is(err, ciba.ErrInvalidClient) {
				t.Fatalf("Authenticate = %v, want invalid_client", err)
			}
		})
	})
	t.Run("a wrong secret is refused", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newSim(t, cibatest.Config{}, func(c *ciba.Config) { c.Key = ciba.Key{}; c.Secret = "wrong" })
			err := s.c.CheckClientAuth(t.Context())
			if !errors.Is(err, ciba.ErrInvalidClient) || strings.Contains(err.Error(), "wrong") {
				t.Fatalf("CheckClientAuth = %v", err)
			}
		})
	})
}

// b64 is base64url without padding.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// tamper builds an ID token from the broker's claims and key.
type tamper func(t *testing.T, claims map[string]any, key jwk.Key) string

func signWith(t *testing.T, claims map[string]any, key any, alg jwa.SignatureAlgorithm) string {
	t.Helper()
	payload, _ := json.Marshal(claims)
	tok, err := jws.Sign(payload, jws.WithKey(alg, key))
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

func TestRefusedIDTokens(t *testing.T) {
	kidOf := func(k jwk.Key) string { kid, _ := k.KeyID(); return kid }
	tests := []struct {
		name   string
		tamper tamper
		reason string
	}{
		{"wrong signature", func(t *testing.T, c map[string]any, key jwk.Key) string {
			good := strings.Split(signWith(t, c, key, jwa.RS256()), ".")
			forged := strings.Split(signWith(t, c, clientKey().Signer, jwa.RS256()), ".")
			return good[0] + "." + good[1] + "." + forged[2]
		}, "signature"},
		{"alg none", func(t *testing.T, c map[string]any, key jwk.Key) string {
			h, _ := json.Marshal(map[string]string{"alg": "none", "kid": kidOf(key)})
			p, _ := json.Marshal(c)
			return b64(h) + "." + b64(p) + "."
		}, "algorithm"},
		{"HMAC keyed with the broker's public key", func(t *testing.T, c map[string]any, key jwk.Key) string {
			pub, _ := key.PublicKey()
			var raw rsa.PublicKey
			jwk.Export(pub, &raw)
			secret, _ := jwk.EncodePEM(&raw)
			h, _ := json.Marshal(map[string]string{"alg": "HS256", "kid": kidOf(key), "typ": "JWT"})
			p, _ := json.Marshal(c)
			in := b64(h) + "." + b64(p)
			m := hmac.New(sha256.New, secret)
			m.Write([]byte(in))
			return in + "." + b64(m.Sum(nil))
		}, "algorithm"},
		{"wrong iss", func(t *testing.T, c map[string]any, key jwk.Key) string {
			c["iss"] = "http://127.0.0.1:6666"
			return signWith(t, c, key, jwa.RS256())
		}, "issuer"},
		{"wrong aud", func(t *testing.T, c map[string]any, key jwk.Key) string {
			c["aud"] = []string{"another-client"}
			return signWith(t, c, key, jwa.RS256())
		}, "audience"},
		{"expired", func(t *testing.T, c map[string]any, key jwk.Key) string {
			c["exp"] = time.Now().Add(-time.Minute).Unix()
			return signWith(t, c, key, jwa.RS256())
		}, "expired"},
		{"iat in the future", func(t *testing.T, c map[string]any, key jwk.Key) string {
			c["iat"] = time.Now().Add(5 * time.Minute).Unix()
			return signWith(t, c, key, jwa.RS256())
		}, "future"},
		{"unknown kid, even after a JWKS refresh", func(t *testing.T, c map[string]any, _ jwk.Key) string {
			k, _ := jwk.Import(mustGenerate(ciba.RS256).Signer)
			_ = jwk.AssignKeyID(k)
			return signWith(t, c, k, jwa.RS256())
		}, "unknown kid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var tampered atomic.Bool
				cfg := cibatest.Config{IDTokenHook: func(claims map[string]any, key jwk.Key) (string, error) {
					if !tampered.Load() {
						return signWith(t, claims, key, jwa.RS256()), nil
					}
					return tt.tamper(t, claims, key), nil
				}}
				s := newSim(t, cfg, nil)
				// One good token first, so the JWKS is cached.
				ar, err := s.c.Authenticate(t.Context(), noRequest(t, cibatest.NOApprove))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.c.Poll(t.Context(), ar, nil); err != nil {
					t.Fatalf("good token: %v", err)
				}
				time.Sleep(ciba.JWKSMinRefresh) // fake time; a refresh is allowed again
				tampered.Store(true)
				ar, err = s.c.Authenticate(t.Context(), noRequest(t, cibatest.NOApprove))
				if err != nil {
					t.Fatal(err)
				}
				tok, err := s.c.Poll(t.Context(), ar, nil)
				if !errors.Is(err, ciba.ErrInvalidIDToken) || tok != nil {
					t.Fatalf("Poll = %v, %v; want ErrInvalidIDToken", tok, err)
				}
				if !strings.Contains(err.Error(), tt.reason) {
					t.Errorf("err = %v, want reason %q", err, tt.reason)
				}
				if strings.Contains(err.Error(), "eyJ") {
					t.Errorf("error contains a token: %v", err)
				}
				if tt.reason == "unknown kid" && s.jwksFetches.Load() != 2 {
					t.Errorf("%d JWKS fetches, want 2 (the refresh for the unknown kid)", s.jwksFetches.Load())
				}
			})
		})
	}
}

func TestSigningKeyRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, cibatest.Config{}, nil)
		for i := range 2 {
			ar, err := s.c.Authenticate(t.Context(), noRequest(t, cibatest.NOApprove))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.c.Poll(t.Context(), ar, nil); err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
			time.Sleep(ciba.JWKSMinRefresh)
			s.b.RotateSigningKey()
		}
		if n := s.jwksFetches.Load(); n != 2 {
			t.Errorf("%d JWKS fetches, want 2 (one per new kid)", n)
		}
	})
}

func TestBrokerOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, cibatest.Config{}, nil)
		for _, o := range []cibatest.Outage{{Status: http.StatusBadGateway}, {Garbage: true}} {
			s.b.SetOutage(o)
			_, err := s.c.Authenticate(t.Context(), noRequest(t, cibatest.NOApprove))
			if !errors.Is(err, ciba.ErrTransport) {
				t.Errorf("outage %+v: err = %v, want ErrTransport", o, err)
			}
			if strings.Contains(err.Error(), "html") || strings.Contains(err.Error(), "Gateway") {
				t.Errorf("error quotes the body: %v", err)
			}
		}
		s.b.SetOutage(cibatest.Outage{})
		if _, err := s.c.Authenticate(t.Context(), noRequest(t, cibatest.NOApprove)); err != nil {
			t.Errorf("after the outage: %v", err)
		}
	})
}
