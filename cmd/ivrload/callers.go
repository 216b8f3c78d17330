package main

import (
	"context"
	"io"
	"net"
	"net/http"
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
