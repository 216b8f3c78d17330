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
	"log/slog"
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

// minRSABits is the smallest RSA modulus accepted for a client key.
const minRSABits = 2048

// Key is the client's private_key_jwt signing key: a signer and the kid and
// JWS algorithm the broker knows its public key by. LoadKey and GenerateKey
// make one; a key held elsewhere (a hardware module, a cloud KMS) is any
// crypto.Signer whose public key is RSA (2048 bits or more) or ECDSA on
// P-256, with its kid.
//
// Every printed form of a Key shows only its kid and algorithm.
type Key struct {
	// Signer signs: an *rsa.PrivateKey, an *ecdsa.PrivateKey, or any
	// crypto.Signer whose Public is an *rsa.PublicKey or *ecdsa.PublicKey.
	Signer crypto.Signer
	// ID is the kid sent in every client assertion's header. LoadKey and
	// GenerateKey set the RFC 7638 thumbprint of the public key.
	ID string
	// Alg is RS256, PS256 or ES256. Empty means RS256 for an RSA key (the
	// only algorithm Idura documents for client assertions) and ES256 for
	// a P-256 key.
	Alg string
}

// String shows the kid and algorithm only.
func (k Key) String() string { return fmt.Sprintf("ciba.Key{kid=%q alg=%q}", k.ID, k.Alg) }

// GoString is String, so that %#v never prints the private key.
func (k Key) GoString() string { return k.String() }

// Format prints the kid and algorithm for every verb.
func (k Key) Format(f fmt.State, verb rune) { formatRedacted(f, verb, k.String()) }

// LogValue is String, for log/slog.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// algorithm checks k and returns the algorithm it signs with.
func (k Key) algorithm() (string, error) {
	if k.Signer == nil {
		return "", errors.New("no Signer")
	}
	switch pub := k.Signer.Public().(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return "", fmt.Errorf("RSA key shorter than %d bits", minRSABits)
		}
		switch k.Alg {
		case "":
			return RS256, nil
		case RS256, PS256:
			return k.Alg, nil
		}
		return "", fmt.Errorf("RSA key with alg %q (want RS256 or PS256)", k.Alg)
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return "", errors.New("EC key not on P-256")
		}
		if k.Alg != "" && k.Alg != ES256 {
			return "", fmt.Errorf("P-256 key with alg %q (want ES256)", k.Alg)
		}
		return ES256, nil
	}
	return "", fmt.Errorf("unsupported public key type %T (want RSA or ECDSA P-256)", k.Signer.Public())
}

// LoadKey reads a private signing key from a PEM file (PKCS#1 RSA, PKCS#8
// RSA or EC, SEC 1 EC) or a JWK JSON file. The key's ID is the RFC 7638
// thumbprint of its public key (whatever kid a JWK file names), its Alg
// RS256 for RSA (PS256 when a JWK file says so) and ES256 for P-256. The
// error never contains key material.
func LoadKey(path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("ciba: load key: %w", err)
	}
	k, err := parseKey(data)
	if err != nil {
		return Key{}, fmt.Errorf("ciba: load key %s: %w", path, err)
	}
	return k, nil
}

func parseKey(data []byte) (Key, error) {
	trimmed := strings.TrimSpace(string(data))
	var k Key
	switch {
	case strings.HasPrefix(trimmed, "{"):
		var probe struct {
			Alg string `json:"alg"`
		}
		if err := json.Unmarshal([]byte(trimmed), &probe); err != nil {
			return Key{}, errors.New("not a JWK: invalid JSON")
		}
		parsed, err := jwk.ParseKey([]byte(trimmed))
		if err != nil {
			return Key{}, errors.New("not a valid JWK")
		}
		if priv, err := jwk.IsPrivateKey(parsed); err != nil || !priv {
			return Key{}, errors.New("not a private key")
		}
		var raw any
		if err := jwk.Export(parsed, &raw); err != nil {
			return Key{}, errors.New("unusable key")
		}
		signer, ok := raw.(crypto.Signer)
		if !ok {
			return Key{}, errors.New("not a signing key")
		}
		k = Key{Signer: signer, Alg: probe.Alg}
	case strings.HasPrefix(trimmed, "-----BEGIN"):
		signer, err := parsePEMPrivateKey([]byte(trimmed))
		if err != nil {
			return Key{}, err
		}
		k = Key{Signer: signer}
	default:
		return Key{}, errors.New("neither a PEM nor a JWK file")
	}
	return prepareKey(k)
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

// prepareKey checks that k is a key we can sign with, and sets its Alg
// (the default for its type when empty) and its ID (the thumbprint).
func prepareKey(k Key) (Key, error) {
	alg, err := k.algorithm()
	if err != nil {
		return Key{}, err
	}
	kid, err := Thumbprint(k.Signer.Public())
	if err != nil {
		return Key{}, err
	}
	k.Alg, k.ID = alg, kid
	return k, nil
}

// Thumbprint returns the RFC 7638 JWK thumbprint of a public key: base64url
// (no padding) of its SHA-256.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	k, err := jwk.Import(pub)
	if err != nil {
		return "", fmt.Errorf("ciba: key thumbprint: %w", err)
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("ciba: key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// GenerateKey creates a fresh signing key for alg: "RS256" and "PS256" make
// an RSA 2048 key, "ES256" a P-256 key. ID and Alg are set as by LoadKey.
func GenerateKey(alg string) (Key, error) {
	var signer crypto.Signer
	var err error
	switch alg {
	case RS256, PS256:
		signer, err = rsa.GenerateKey(rand.Reader, minRSABits)
	case ES256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return Key{}, fmt.Errorf("ciba: generate key: unsupported alg %q (want RS256, PS256 or ES256)", alg)
	}
	if err != nil {
		return Key{}, fmt.Errorf("ciba: generate key: %w", err)
	}
	k, err := prepareKey(Key{Signer: signer, Alg: alg})
	if err != nil {
		return Key{}, fmt.Errorf("ciba: generate key: %w", err)
	}
	return k, nil
}

// MarshalPrivateKeyPEM encodes an in-memory private key (*rsa.PrivateKey or
// *ecdsa.PrivateKey) as PKCS#8 PEM ("PRIVATE KEY"). PEM does not keep the
// algorithm: LoadKey reads an RSA key back as RS256, so keep a PS256 key
// in a JWK file instead.
func MarshalPrivateKeyPEM(k Key) ([]byte, error) {
	switch k.Signer.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
	default:
		return nil, errors.New("ciba: marshal key: not an in-memory RSA or EC private key")
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Signer)
	if err != nil {
		return nil, fmt.Errorf("ciba: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// PublicJWKS returns the JSON of a JWK Set holding the public keys of keys,
// each with its kid, alg and "use":"sig", to register at the broker or to
// serve at a JWKS URL the broker fetches.
func PublicJWKS(keys ...Key) ([]byte, error) {
	set := jwk.NewSet()
	for i, k := range keys {
		alg, err := k.algorithm()
		if err != nil {
			return nil, fmt.Errorf("ciba: public JWKS: key %d: %w", i, err)
		}
		pub, err := jwk.Import(k.Signer.Public())
		if err != nil {
			return nil, fmt.Errorf("ciba: public JWKS: key %d: %w", i, err)
		}
		sa, _ := jwa.LookupSignatureAlgorithm(alg)
		for _, f := range []struct {
			name string
			v    any
		}{{jwk.KeyIDKey, k.ID}, {jwk.AlgorithmKey, sa}, {jwk.KeyUsageKey, jwk.ForSignature}} {
			if f.v == "" {
				continue // no kid
			}
			if err := pub.Set(f.name, f.v); err != nil {
				return nil, fmt.Errorf("ciba: public JWKS: key %d: set %s: %w", i, f.name, err)
			}
		}
		if err := set.AddKey(pub); err != nil {
			return nil, fmt.Errorf("ciba: public JWKS: key %d: %w", i, err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("ciba: public JWKS: %w", err)
	}
	return b, nil
}

func allowedAlg(alg string) bool {
	return alg == RS256 || alg == PS256 || alg == ES256
}
