package main

import "net/http"

// demoPagePolicy is the Content-Security-Policy of the demo's pages and
// their assets, as the dashboard's (agentui's securityHeaders): scripts,
// styles and connections to this origin only, no framing, no inline
// script. The pages repeat it in a <meta> tag, which cannot carry
// frame-ancestors.
const demoPagePolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// demoPageHeaders sends the demo pages' security headers: the policy, and
// nosniff so that a script is run only when served as one.
func demoPageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", demoPagePolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}
