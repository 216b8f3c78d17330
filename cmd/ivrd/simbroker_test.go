package main

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
)

// startSimBroker serves the broker simulator on a free loopback port, its
// Issuer set to that address, with client "ivr" registered under a fresh
// alg key whose private half it writes to dir/key.pem (for
// CIBA_CLIENT_KEY). front, when not nil, makes the handler served in front
// of the broker. The server closes when the test ends.
func startSimBroker(t *testing.T, dir, alg string, cfg cibatest.Config, front func(*cibatest.Broker) http.Handler) (b *cibatest.Broker, keyFile string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Issuer = "http://" + ln.Addr().String()
	b, err = cibatest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, key := writeKey(t, dir, "key.pem", alg)
	pub, err := ciba.PublicJWKS(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.RegisterClient(cibatest.Client{ID: "ivr", JWKS: pub}); err != nil {
		t.Fatal(err)
	}
	var h http.Handler = b
	if front != nil {
		h = front(b)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b, keyFile
}

// writeKey writes a fresh alg private key to dir/name, as CIBA_CLIENT_KEY
// reads it, and returns its path and the key.
func writeKey(t *testing.T, dir, name, alg string) (string, ciba.Key) {
	t.Helper()
	k, err := ciba.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := ciba.MarshalPrivateKeyPEM(k)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, k
}
