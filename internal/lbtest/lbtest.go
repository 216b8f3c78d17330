// Package lbtest is a round-robin HTTP load balancer for tests and the load
// generator: several instances of the service behind one public URL, as a
// real load balancer puts them, without stickiness. Websocket upgrades pass
// through. A backend that refuses a connection or drops a request is taken
// out for a while and the request is sent to the next one: every request
// is replayed at most once per backend, which is safe for the service's
// webhooks (each names its call and step, and a repeated step gets the
// stored answer) and is what a load balancer's "retry on the next upstream
// on error" does. It knows nothing of the service.
package lbtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"
)

// DefaultDownFor is how long a backend that failed a request is skipped.
const DefaultDownFor = time.Second

// maxBody is the largest request body buffered for a replay; webhooks are
// a few kilobytes.
const maxBody = 1 << 20

// Balancer is an http.Handler that spreads requests over backends in turn.
// It is safe for concurrent use.
type Balancer struct {
	backends []*backend
	next     atomic.Uint64
	proxy    *httputil.ReverseProxy
	// DownFor is how long a failed backend is skipped (DefaultDownFor when
	// zero). Set it before serving.
	DownFor time.Duration
	retries atomic.Int64
}

type backend struct {
	url       *url.URL
	downUntil atomic.Int64 // unix nanoseconds; 0 when up
	served    atomic.Int64
	failed    atomic.Int64
}

// New returns a Balancer over the backends' base URLs
// (http://127.0.0.1:8081, …).
func New(backends ...string) (*Balancer, error) {
	if len(backends) == 0 {
		return nil, errors.New("lbtest: no backends")
	}
	b := &Balancer{}
	for _, raw := range backends {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("lbtest: backend %q: not an http(s) base URL", raw)
		}
		b.backends = append(b.backends, &backend{url: u})
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 1024
	tr.DisableCompression = true
	b.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.Host = pr.In.Host // the backend sees the public host, as behind most balancers
			pr.SetXForwarded()
		},
		Transport:     retrying{b: b, next: tr},
		FlushInterval: -1, // websocket frames and streamed answers go out at once
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "lbtest: no backend answered: "+err.Error(), http.StatusBadGateway)
		},
	}
	return b, nil
}

// ServeHTTP buffers the request body (so that it can be replayed on the
// next backend) and proxies the request.
func (b *Balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		r.Body.Close()
		if err != nil || len(body) > maxBody {
			http.Error(w, "lbtest: request body unreadable or too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
	}
	b.proxy.ServeHTTP(w, r)
}

// Served returns how many requests each backend answered, in the order
// given to New.
func (b *Balancer) Served() []int64 {
	out := make([]int64, len(b.backends))
	for i, be := range b.backends {
		out[i] = be.served.Load()
	}
	return out
}

// Retries returns how many requests were sent again to another backend
// after one failed them.
func (b *Balancer) Retries() int64 { return b.retries.Load() }

// pick returns the next backend in turn that is not taken out, or the
// next in turn when all are.
func (b *Balancer) pick(now time.Time) *backend {
	n := uint64(len(b.backends))
	start := b.next.Add(1) - 1
	for i := range n {
		be := b.backends[(start+i)%n]
		if be.downUntil.Load() <= now.UnixNano() {
			return be
		}
	}
	return b.backends[start%n]
}

func (b *Balancer) downFor() time.Duration {
	if b.DownFor > 0 {
		return b.DownFor
	}
	return DefaultDownFor
}

// retrying sends a request to a backend, and on a transport error (refused,
// reset, closed before an answer) takes that backend out and tries the
// next, each backend once at most.
type retrying struct {
	b    *Balancer
	next http.RoundTripper
}

func (t retrying) RoundTrip(req *http.Request) (*http.Response, error) {
	var errs []error
	tried := map[*backend]bool{}
	for attempt := range t.b.backends {
		if attempt > 0 {
			t.b.retries.Add(1)
		}
		be := t.b.pick(time.Now())
		if tried[be] {
			for _, other := range t.b.backends { // all taken out: try the others anyway
				if !tried[other] {
					be = other
					break
				}
			}
		}
		tried[be] = true
		out := req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host = be.url.Scheme, be.url.Host
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			out.Body = body
		}
		resp, err := t.next.RoundTrip(out)
		if err == nil {
			be.served.Add(1)
			return resp, nil
		}
		errs = append(errs, err)
		be.failed.Add(1)
		be.downUntil.Store(time.Now().Add(t.b.downFor()).UnixNano())
		if req.Context().Err() != nil || (req.Body != nil && req.GetBody == nil) {
			break // the client left, or the body cannot be sent again
		}
	}
	return nil, errors.Join(errs...)
}
