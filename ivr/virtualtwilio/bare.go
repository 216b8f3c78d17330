package virtualtwilio

import (
	"io"
	"net/http"

	"github.com/twilio/twilio-go/client"
)

// Bare is the least a Twilio webhook server can do, the floor the IVR is
// measured against (its hold benchmarks, ivrload's baseline): it checks
// X-Twilio-Signature as the IVR does (twilio-go's RequestValidator over
// the parsed form, against base plus the request URI) and answers doc,
// or 403 when the signature is wrong.
func Bare(base, authToken, doc string) http.Handler {
	v := client.NewRequestValidator(authToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		params := make(map[string]string, len(r.PostForm))
		for k, vs := range r.PostForm {
			params[k] = vs[0]
		}
		if !v.Validate(base+r.URL.RequestURI(), params, r.Header.Get("X-Twilio-Signature")) {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		io.WriteString(w, doc)
	})
}
