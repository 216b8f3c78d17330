package ciba

import (
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

func BenchmarkSignAssertion(b *testing.B) {
	for _, k := range []struct {
		alg string
		key func() jwk.Key
	}{{RS256, testRSAKey}, {PS256, testPSKey}, {ES256, testECKey}} {
		b.Run(k.alg, func(b *testing.B) {
			f := newFakeBroker(b)
			c, err := New(b.Context(), Config{Issuer: f.issuer, ClientID: "ivr", Key: clientKey(k.key()), HTTPClient: f.httpClient()})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.signAssertion(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValidateIDToken(b *testing.B) {
	for _, k := range []struct {
		alg jwa.SignatureAlgorithm
		key func() jwk.Key
	}{{jwa.RS256(), testRSA2}, {jwa.ES256(), testECKey}} {
		b.Run(k.alg.String(), func(b *testing.B) {
			f := newFakeBroker(b)
			f.key = k.key()
			pub, _ := f.key.PublicKey()
			f.jwks = []jwk.Key{pub}
			c, err := New(b.Context(), Config{Issuer: f.issuer, ClientID: "ivr", Key: clientKey(testRSAKey()), HTTPClient: f.httpClient()})
			if err != nil {
				b.Fatal(err)
			}
			tok := signToken(b, f.key, k.alg, f.goodClaims(time.Now()), nil)
			if _, err := c.ValidateIDToken(b.Context(), tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.ValidateIDToken(b.Context(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
