package ciba

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadKey(t *testing.T) {
	rsaRaw := *clientKey(testRSAKey()).Signer.(*rsa.PrivateKey)
	ecRaw, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	pkcs8 := func(k any) []byte { b, _ := x509.MarshalPKCS8PrivateKey(k); return b }
	sec1, _ := x509.MarshalECPrivateKey(ecRaw)
	psJWK, _ := json.Marshal(testPSKey())
	ecJWK, _ := json.Marshal(testECKey())
	pubJWK, _ := PublicJWKS(clientKey(testRSAKey()))
	var pubSet struct{ Keys []json.RawMessage }
	json.Unmarshal(pubJWK, &pubSet)
	spki, _ := x509.MarshalPKIXPublicKey(&rsaRaw.PublicKey)

	tests := []struct {
		name    string
		data    []byte
		wantAlg string
		wantErr string
	}{
		{"PKCS#1 RSA", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(&rsaRaw)), RS256, ""},
		{"PKCS#8 RSA", pemOf("PRIVATE KEY", pkcs8(&rsaRaw)), RS256, ""},
		{"SEC 1 EC", pemOf("EC PRIVATE KEY", sec1), ES256, ""},
		{"PKCS#8 EC", pemOf("PRIVATE KEY", pkcs8(ecRaw)), ES256, ""},
		{"JWK saying PS256", psJWK, PS256, ""},
		{"JWK EC", ecJWK, ES256, ""},
		{"public JWK", pubSet.Keys[0], "", "not a private key"},
		{"public PEM", pemOf("PUBLIC KEY", spki), "", "unsupported PEM block"},
		{"RSA 1024", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), "", "2048"},
		{"P-384", pemOf("PRIVATE KEY", pkcs8(p384)), "", "P-256"},
		{"garbage", []byte("hello"), "", "neither"},
		{"broken PEM", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "", "PKCS#8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadKey(writeFile(t, "key", tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tp, _ := Thumbprint(k.Signer.Public())
			if k.Alg != tt.wantAlg || k.ID != tp || len(k.ID) != 43 {
				t.Errorf("alg %s kid %s (thumbprint %s)", k.Alg, k.ID, tp)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		if _, err := LoadKey(filepath.Join(t.TempDir(), "nope")); err == nil {
			t.Error("want error")
		}
	})
}

func TestKeyRoundTrip(t *testing.T) {
	for _, alg := range []string{RS256, ES256} {
		t.Run(alg, func(t *testing.T) {
			k := clientKey(map[string]jwk.Key{RS256: testRSAKey(), ES256: testECKey()}[alg])
			pemBytes, err := MarshalPrivateKeyPEM(k)
			if err != nil {
				t.Fatal(err)
			}
			back, err := LoadKey(writeFile(t, "key.pem", pemBytes))
			if err != nil {
				t.Fatal(err)
			}
			if back.ID != k.ID || back.Alg != alg {
				t.Errorf("kid %s alg %s, want %s %s", back.ID, back.Alg, k.ID, alg)
			}
			b, err := PublicJWKS(k)
			if err != nil {
				t.Fatal(err)
			}
			set, err := jwk.Parse(b)
			if err != nil || set.Len() != 1 {
				t.Fatalf("public JWKS %s: %v", b, err)
			}
			pub, _ := set.Key(0)
			kid, _ := pub.KeyID()
			a, _ := pub.Algorithm()
			use, _ := pub.KeyUsage()
			if priv, _ := jwk.IsPrivateKey(pub); priv || strings.Contains(string(b), `"d"`) || kid != k.ID || a.String() != alg || use != "sig" {
				t.Errorf("public JWKS = %s", b)
			}
		})
	}
	if _, err := GenerateKey("HS256"); err == nil {
		t.Error("GenerateKey(HS256) succeeded")
	}
	if _, err := MarshalPrivateKeyPEM(Key{}); err == nil {
		t.Error("MarshalPrivateKeyPEM of no key succeeded")
	}
	if _, err := MarshalPrivateKeyPEM(Key{Signer: opaqueSigner{clientKey(testECKey()).Signer}}); err == nil {
		t.Error("MarshalPrivateKeyPEM of an opaque signer succeeded")
	}
	if _, err := PublicJWKS(Key{}); err == nil {
		t.Error("PublicJWKS of no key succeeded")
	}
}

func TestGenerateKey(t *testing.T) {
	for _, alg := range []string{RS256, PS256, ES256} {
		t.Run(alg, func(t *testing.T) {
			k, err := GenerateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			tp, _ := Thumbprint(k.Signer.Public())
			if k.Alg != alg || k.ID != tp {
				t.Errorf("key %v, want alg %s kid %s", k, alg, tp)
			}
		})
	}
}
