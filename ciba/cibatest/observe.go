package cibatest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Exchange is one bc-authorize or token request and the broker's answer to
// it, as Observe reports them: load generators and tests use it to see when
// a client polls and what it was told.
type Exchange struct {
	// Endpoint is "bc-authorize" or "token".
	Endpoint string
	// Arrived is when the request reached the broker, before any simulated
	// latency; Answered is when the answer had been written.
	Arrived, Answered time.Time
	// Form is the request's form as the broker parsed it (nil when it did
	// not parse). It holds the client's credentials: keep it in the test.
	Form url.Values
	// Status is the HTTP status answered. AuthReqID is the auth_req_id
	// handed out (bc-authorize) or asked about (token); Interval is the
	// polling interval handed out; Error is the OAuth error code answered,
	// "" for success.
	Status    int
	AuthReqID string
	Interval  time.Duration
	Error     string
}

// Observe makes the broker call fn with every bc-authorize and token
// exchange, once answered, from the goroutine that served it. nil stops
// observing.
func (b *Broker) Observe(fn func(Exchange)) {
	if fn == nil {
		b.observer.Store(nil)
		return
	}
	b.observer.Store(&fn)
}

type arrivedKey struct{}

// arrived marks r with its arrival time when someone observes.
func (b *Broker) arrived(r *http.Request) *http.Request {
	if b.observer.Load() == nil {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), arrivedKey{}, time.Now()))
}

// observed reports h's exchanges at endpoint to the observer.
func (b *Broker) observed(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fn := b.observer.Load()
		at, ok := r.Context().Value(arrivedKey{}).(time.Time)
		if fn == nil || !ok {
			h(w, r)
			return
		}
		rec := &answerRecorder{ResponseWriter: w}
		h(rec, r)
		x := Exchange{Endpoint: endpoint, Arrived: at, Answered: time.Now(), Form: r.PostForm, Status: rec.status}
		var answer struct {
			AuthReqID string `json:"auth_req_id"`
			Interval  int    `json:"interval"`
			Error     string `json:"error"`
		}
		_ = json.Unmarshal(rec.body.Bytes(), &answer)
		x.AuthReqID, x.Interval, x.Error = answer.AuthReqID, time.Duration(answer.Interval)*time.Second, answer.Error
		if endpoint == "token" {
			x.AuthReqID = r.PostForm.Get("auth_req_id")
		}
		if x.Status == 0 {
			x.Status = http.StatusOK
		}
		(*fn)(x)
	}
}

// answerRecorder passes an answer on and keeps its status and the start of
// its body.
type answerRecorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (a *answerRecorder) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *answerRecorder) Write(p []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	if a.body.Len() < 4<<10 {
		a.body.Write(p)
	}
	return a.ResponseWriter.Write(p)
}
