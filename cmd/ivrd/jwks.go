package main

import (
	"net/http"

	"github.com/ivr/callerverify/ciba"
)

// jwksHandler publishes our public signing keys so that the broker can use
// a JWKS URL (Idura's recommended registration) instead of a static JWKS.
func jwksHandler(keys []ciba.Key) http.HandlerFunc {
	body, err := ciba.PublicJWKS(keys...)
	return func(w http.ResponseWriter, r *http.Request) {
		if err != nil {
			http.Error(w, "signing keys unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(body)
	}
}
