package ivr

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ivr/callerverify/internal/netutil"
	"github.com/twilio/twilio-go/client"
)

// maxWebhookBody caps a Twilio webhook body; real ones are under 2 KB.
const maxWebhookBody = 64 << 10

// SignatureChecker rejects requests that do not carry a valid
// X-Twilio-Signature for the public URL Twilio called.
type SignatureChecker struct {
	origin    string // scheme://host[:port]
	prefix    string // path of the public URL, escaped, no trailing slash; may be ""
	validator client.RequestValidator
	log       *slog.Logger // refusals; nil logs nothing
	refusals  refusalLog
}

// NewSignatureChecker checks signatures against publicURL (IVR_PUBLIC_URL, the
// base Twilio calls, e.g. "https://ivr.example.com" or
// "https://example.com/ivr") and the account's auth token. publicURL must be
// https, except on a loopback host (127.0.0.0/8, ::1, localhost) where http is
// accepted for demos and tests. A path in publicURL is the public prefix of
// every webhook path: it is put in front of a request path that does not
// start with it (a proxy or http.StripPrefix removed it).
func NewSignatureChecker(publicURL, authToken string) (*SignatureChecker, error) {
	s, err := newSignatureChecker(publicURL, authToken)
	if err != nil {
		return nil, fmt.Errorf("ivr: signature checker: %w", err)
	}
	return s, nil
}

func newSignatureChecker(publicURL, authToken string) (*SignatureChecker, error) {
	if authToken == "" {
		return nil, errors.New("TWILIO_AUTH_TOKEN is empty")
	}
	u, err := url.Parse(publicURL)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, errors.New("IVR_PUBLIC_URL is not an absolute URL")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("IVR_PUBLIC_URL must not have a query or fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !netutil.IsLoopbackHost(u.Hostname()) {
			return nil, errors.New("IVR_PUBLIC_URL must be https (http only on a loopback host)")
		}
	default:
		return nil, errors.New("IVR_PUBLIC_URL must be https")
	}
	// Twilio signs without userinfo, and hosts are case-insensitive (twilio-node
	// lower-cases them).
	return &SignatureChecker{
		origin:    u.Scheme + "://" + strings.ToLower(u.Host),
		prefix:    strings.TrimRight(u.EscapedPath(), "/"),
		validator: client.NewRequestValidator(authToken),
	}, nil
}

// Middleware passes on only requests whose X-Twilio-Signature matches the
// public URL of the request (base + path + raw query) and its POST form
// parameters. A missing or wrong signature gets 403 and a body over 64 KB
// gets 413, and next is not called. The form is parsed here; next reads it
// from r.PostForm / r.FormValue.
func (s *SignatureChecker) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sig := r.Header.Get("X-Twilio-Signature")
		if sig == "" {
			s.refuse(r, "missing signature")
			http.Error(w, "missing X-Twilio-Signature", http.StatusForbidden)
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxWebhookBody)
		}
		if err := r.ParseForm(); err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "malformed form body", http.StatusBadRequest)
			return
		}
		params := make(map[string]string, len(r.PostForm))
		for k, v := range r.PostForm {
			params[k] = v[0]
		}
		if !s.validator.Validate(s.publicURL(r), params, sig) {
			s.refuse(r, "invalid signature")
			http.Error(w, "invalid X-Twilio-Signature", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refusalLogEvery is the shortest time between two log lines about refused
// requests: a flood of forged requests must not become a flood of logs.
const refusalLogEvery = 10 * time.Second

// refusalLog rate-limits the log lines about refused requests (webhooks,
// ping notifications).
type refusalLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// refuse logs msg with args at most once per refusalLogEvery, with the
// count of refusals not logged since.
func (l *refusalLog) refuse(log *slog.Logger, msg string, args ...any) {
	if log == nil {
		return
	}
	now := time.Now()
	l.mu.Lock()
	if !l.last.IsZero() && now.Sub(l.last) < refusalLogEvery {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	log.Warn(msg, append(args, "refused_since_last_line", n)...)
}

// refuse logs a refused webhook: the route and the URL its signature was
// checked against (which says what IVR_PUBLIC_URL produced), never the
// parameters, at most once per refusalLogEvery with the count of refusals
// not logged since.
func (s *SignatureChecker) refuse(r *http.Request, reason string) {
	s.refusals.refuse(s.log, "webhook refused", "reason", reason, "route", r.URL.Path, "checked_url", s.publicURL(r))
}

// publicURL is the URL Twilio requested: the public origin, the public path
// prefix unless the request path still carries it, and the request-target
// (path and raw query) as received.
func (s *SignatureChecker) publicURL(r *http.Request) string {
	uri := r.URL.RequestURI()
	if s.prefix == "" || strings.HasPrefix(uri, s.prefix+"/") {
		return s.origin + uri
	}
	return s.origin + s.prefix + uri
}
