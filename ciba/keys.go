package ciba

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Supported signature algorithms, for client assertions and ID tokens alike.
const (
	RS256 = "RS256"
	PS256 = "PS256"
	ES256 = "ES256"
)

// minRSABits is the smallest RSA modulus accepted for our own keys.
const minRSABits = 2048

// LoadKey reads a private signing key from a PEM file (PKCS#1 RSA, PKCS#8
// RSA or EC, SEC 1 EC) or a JWK JSON file. The returned key has kid set to
// its RFC 7638 thumbprint (base64url SHA-256), use=sig, and alg RS256 for RSA
// (unless the JWK says PS256) or ES256 for P-256. The error never contains
// key material.
func LoadKey(path string) (jwk.Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ciba: load key: %w", err)
	}
	k, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("ciba: load key %s: %w", path, err)
	}
	return k, nil
}

func parseKey(data []byte) (jwk.Key, error) {
	trimmed := strings.TrimSpace(string(data))
	var (
		k       jwk.Key
		wantAlg string
	)
	switch {
	case strings.HasPrefix(trimmed, "{"):
		var probe struct {
			Alg string `json:"alg"`
		}
		if err := json.Unmarshal([]byte(trimmed), &probe); err != nil {
			return nil, errors.New("not a JWK: invalid JSON")
		}
		parsed, err := jwk.ParseKey([]byte(trimmed))
		if err != nil {
			return nil, errors.New("not a valid JWK")
		}
		k, wantAlg = parsed, probe.Alg
	case strings.HasPrefix(trimmed, "-----BEGIN"):
		raw, err := parsePEMPrivateKey([]byte(trimmed))
		if err != nil {
			return nil, err
		}
		if rk, ok := raw.(*rsa.PrivateKey); ok && rk.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key shorter than %d bits", minRSABits)
		}
		if k, err = jwk.Import(raw); err != nil {
			return nil, errors.New("unsupported key")
		}
	default:
		return nil, errors.New("neither a PEM nor a JWK file")
	}
	if priv, err := jwk.IsPrivateKey(k); err != nil || !priv {
		return nil, errors.New("not a private key")
	}
	return prepareKey(k, wantAlg)
}

func parsePEMPrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("invalid PKCS#1 RSA key")
		}
		return k, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("invalid SEC 1 EC key")
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("invalid PKCS#8 key")
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		}
		return nil, errors.New("PKCS#8 key is neither RSA nor EC")
	}
	return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
}

// prepareKey checks the key is one we can sign with and sets kid, alg and use.
// alg is the algorithm the key's JWK asked for, "" if none.
func prepareKey(k jwk.Key, alg string) (jwk.Key, error) {
	switch k.KeyType() {
	case jwa.RSA():
		var raw rsa.PrivateKey
		if err := jwk.Export(k, &raw); err != nil {
			return nil, errors.New("unusable RSA key")
		}
		if raw.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key shorter than %d bits", minRSABits)
		}
		switch alg {
		case "":
			alg = RS256
		case RS256, PS256:
		default:
			return nil, fmt.Errorf("RSA key with unsupported alg %q", alg)
		}
	case jwa.EC():
		var raw ecdsa.PrivateKey
		if err := jwk.Export(k, &raw); err != nil {
			return nil, errors.New("unusable EC key")
		}
		if raw.Curve != elliptic.P256() {
			return nil, errors.New("EC key not on P-256")
		}
		switch alg {
		case "", ES256:
			alg = ES256
		default:
			return nil, fmt.Errorf("EC key with unsupported alg %q", alg)
		}
	default:
		return nil, fmt.Errorf("unsupported key type %q", k.KeyType().String())
	}
	sa, _ := jwa.LookupSignatureAlgorithm(alg)
	if err := k.Set(jwk.AlgorithmKey, sa); err != nil {
		return nil, fmt.Errorf("set alg: %w", err)
	}
	if err := k.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
		return nil, fmt.Errorf("set use: %w", err)
	}
	kid, err := Thumbprint(k)
	if err != nil {
		return nil, err
	}
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		return nil, fmt.Errorf("set kid: %w", err)
	}
	return k, nil
}

// Thumbprint returns the RFC 7638 JWK thumbprint of k: base64url (no
// padding) of its SHA-256. It is the same for a private key and its public
// half.
func Thumbprint(k jwk.Key) (string, error) {
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("ciba: key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// GenerateKey creates a fresh signing key for alg: "RS256" and "PS256" make
// an RSA 2048 key, "ES256" a P-256 key. kid, alg and use are set as by
// LoadKey.
func GenerateKey(alg string) (jwk.Key, error) {
	var raw any
	var err error
	switch alg {
	case RS256, PS256:
		raw, err = rsa.GenerateKey(rand.Reader, minRSABits)
	case ES256:
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("ciba: generate key: unsupported alg %q (want RS256, PS256 or ES256)", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("ciba: generate key: %w", err)
	}
	k, err := jwk.Import(raw)
	if err != nil {
		return nil, fmt.Errorf("ciba: generate key: %w", err)
	}
	k, err = prepareKey(k, alg)
	if err != nil {
		return nil, fmt.Errorf("ciba: generate key: %w", err)
	}
	return k, nil
}

// MarshalPrivateKeyPEM encodes a private key as PKCS#8 PEM ("PRIVATE KEY").
// The alg of a PS256 key is not kept by PEM: load such a key from a JWK file,
// or accept that LoadKey reads it back as RS256.
func MarshalPrivateKeyPEM(k jwk.Key) ([]byte, error) {
	if k == nil {
		return nil, errors.New("ciba: marshal key: nil key")
	}
	var raw any
	switch k.KeyType() {
	case jwa.RSA():
		var r rsa.PrivateKey
		if err := jwk.Export(k, &r); err != nil {
			return nil, errors.New("ciba: marshal key: not an RSA private key")
		}
		raw = &r
	case jwa.EC():
		var e ecdsa.PrivateKey
		if err := jwk.Export(k, &e); err != nil {
			return nil, errors.New("ciba: marshal key: not an EC private key")
		}
		raw = &e
	default:
		return nil, errors.New("ciba: marshal key: unsupported key type")
	}
	der, err := x509.MarshalPKCS8PrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("ciba: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// PublicJWKS returns the JSON of a JWK Set holding the public halves of keys
// (kid, alg and use kept, private parts stripped), to register at the broker
// or serve at /.well-known/jwks.json.
func PublicJWKS(keys ...jwk.Key) ([]byte, error) {
	set, err := PublicSet(keys...)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("ciba: public JWKS: %w", err)
	}
	return b, nil
}

// PublicSet is PublicJWKS as a jwk.Set.
func PublicSet(keys ...jwk.Key) (jwk.Set, error) {
	set := jwk.NewSet()
	for i, k := range keys {
		if k == nil {
			return nil, fmt.Errorf("ciba: public JWKS: key %d is nil", i)
		}
		pub, err := k.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("ciba: public JWKS: key %d: %w", i, err)
		}
		if priv, err := jwk.IsPrivateKey(pub); err != nil || priv {
			return nil, fmt.Errorf("ciba: public JWKS: key %d: private part not stripped", i)
		}
		if err := set.AddKey(pub); err != nil {
			return nil, fmt.Errorf("ciba: public JWKS: key %d: %w", i, err)
		}
	}
	return set, nil
}

// keyAlg returns the signature algorithm a prepared key signs with.
func keyAlg(k jwk.Key) (jwa.SignatureAlgorithm, error) {
	if a, ok := k.Algorithm(); ok {
		if sa, ok := jwa.LookupSignatureAlgorithm(a.String()); ok && allowedAlg(sa.String()) {
			return sa, nil
		}
		return jwa.EmptySignatureAlgorithm(), fmt.Errorf("key alg %q not one of RS256, PS256, ES256", a.String())
	}
	switch k.KeyType() {
	case jwa.RSA():
		return jwa.RS256(), nil
	case jwa.EC():
		return jwa.ES256(), nil
	}
	return jwa.EmptySignatureAlgorithm(), errors.New("unsupported key type")
}

func allowedAlg(alg string) bool {
	return alg == RS256 || alg == PS256 || alg == ES256
}
