package ivr

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// sealer keeps national identity numbers out of the database in clear. A
// verification in flight needs its number once more, when the ID token
// comes back, to check that the person who approved is the one the caller
// said they are; so the number is stored sealed with AES-256-GCM under a
// key derived from Config.HashKey, bound to the verification's ID, and only
// the poller opens it. Whoever holds the database alone holds ciphertext.
type sealer struct{ aead cipher.AEAD }

// errSealed is the error of a sealed number that cannot be opened: another
// key (IVR_HASH_KEY changed while it was in flight), or tampering.
var errSealed = errors.New("ivr: the sealed national identity number cannot be opened")

func newSealer(secret []byte) (sealer, error) {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("ivrd national id seal v1")) // a key of its own, not the hash key
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return sealer{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealer{}, err
	}
	return sealer{aead: aead}, nil
}

// seal returns digits sealed for the verification with ID id, base64url.
func (s sealer) seal(digits, id string) string {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(digits)+s.aead.Overhead())
	_, _ = rand.Read(nonce) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(digits), []byte(id)))
}

// open returns the digits sealed for verification id.
func (s sealer) open(sealed, id string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", errSealed
	}
	out, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], []byte(id))
	if err != nil {
		return "", errSealed
	}
	return string(out), nil
}
