package main

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

// timedTransport times every request by path, to the end of its body.
type timedTransport struct {
	next  http.RoundTripper
	stats *routeStats
	label func(path string) string
}

func (t timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	path := req.URL.Path
	if t.label != nil {
		path = t.label(path)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.stats.observe(path, start, time.Since(start), true)
		return nil, err
	}
	failed := resp.StatusCode < 200 || resp.StatusCode > 299
	resp.Body = &timedBody{ReadCloser: resp.Body, done: func() { t.stats.observe(path, start, time.Since(start), failed) }}
	return resp, nil
}

type timedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.done)
	}
	return n, err
}

func (b *timedBody) Close() error {
	b.once.Do(b.done)
	return b.ReadCloser.Close()
}

func newTransport(conns int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// callRecord is one call as the load generator saw it.
type callRecord struct {
	user  int
	plan  outcome
	start time.Time
	tr    *virtualtwilio.Transcript
	err   error
}

// callers places calls from concurrency goroutines until total calls have
// been placed (0: no limit) or ctx ends. Each call presses user i's number,
// declines a retry, and otherwise follows the TwiML.
type callers struct {
	tw      *virtualtwilio.Twilio
	sim     *sim
	mix     mix
	total   int
	next    atomic.Int64
	mu      sync.Mutex
	records []callRecord
	active  atomic.Int64
	done    atomic.Int64
}

func (c *callers) run(ctx context.Context, concurrency int, ramp time.Duration) {
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Go(func() {
			if ramp > 0 {
				t := time.NewTimer(ramp * time.Duration(w) / time.Duration(concurrency))
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			for ctx.Err() == nil {
				i := int(c.next.Add(1)) - 1
				if c.total > 0 && i >= c.total {
					return
				}
				c.one(ctx, i)
			}
		})
	}
	wg.Wait()
}

func (c *callers) one(ctx context.Context, i int) {
	plan := c.mix.of(i)
	pnr := c.sim.addUser(i, plan)
	gathers := 0
	rec := callRecord{user: i, plan: plan, start: time.Now()}
	c.active.Add(1)
	tr, err := c.tw.Call(ctx, virtualtwilio.Caller{
		From: "+4670" + pad(i, 7),
		To:   "+46812345678",
		Keys: func(heard string) string {
			gathers++
			if gathers == 1 {
				return pnr + "#"
			}
			if strings.Contains(heard, "try again") {
				return "2" // no retry: hand me to an agent
			}
			return ""
		},
		MaxSteps: 1000,
	})
	c.active.Add(-1)
	c.done.Add(1)
	rec.tr, rec.err = tr, err
	if ctx.Err() != nil && err != nil {
		return // cut off by the time bound: not counted
	}
	c.mu.Lock()
	c.records = append(c.records, rec)
	c.mu.Unlock()
}

func pad(i, n int) string {
	s := strings.Repeat("0", n) + itoa(i)
	return s[len(s)-n:]
}

func itoa(i int) string {
	var b [20]byte
	p := len(b)
	for {
		p--
		b[p] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[p:])
		}
	}
}

const baselineRoute = "baseline (bare net/http, fixed TwiML)"

// holdTwiML is a hold hop as the service answers it, for the baseline.
const holdTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response><Gather input="dtmf" numDigits="1" timeout="1" actionOnEmptyResult="true" action="/twilio/hold?s=4&amp;a=1&amp;n=3" method="POST"><Pause length="1"></Pause></Gather><Redirect method="POST">/twilio/hold?s=4&amp;a=1&amp;n=3</Redirect></Response>`

// baseline is a bare net/http handler that answers fixed TwiML, loaded with
// the hold loop's pattern: one signed POST every hop per caller.
type baseline struct {
	srv  *http.Server
	base string
}

func startBaseline(host string) (*baseline, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	b := &baseline{base: "http://" + ln.Addr().String()}
	b.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		io.WriteString(w, holdTwiML)
	})}
	go b.srv.Serve(ln)
	return b, nil
}

// load runs n simulated holding callers against the baseline until ctx ends.
func (b *baseline) load(ctx context.Context, n int, hop time.Duration, stats *routeStats) {
	tw := &virtualtwilio.Twilio{BaseURL: b.base, AuthToken: "baseline", HTTPClient: &http.Client{
		Timeout:   15 * time.Second,
		Transport: timedTransport{next: newTransport(n + 16), stats: stats, label: func(string) string { return baselineRoute }},
	}}
	form := url.Values{"CallSid": {"CA00000000000000000000000000000000"}, "AccountSid": {"AC00000000000000000000000000000000"},
		"From": {"+46700000000"}, "To": {"+46812345678"}, "CallStatus": {"in-progress"}, "Digits": {""}, "FinishedOnKey": {""}}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			wait := rand.N(hop)
			for {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				resp, err := tw.Post(ctx, "/twilio/hold?s=4&a=1&n=3", form)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				wait = hop
			}
		})
	}
	wg.Wait()
}
