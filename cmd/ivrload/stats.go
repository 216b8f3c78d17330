package main

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// samples collects durations; safe for concurrent use.
type samples struct {
	mu sync.Mutex
	d  []time.Duration
	at []time.Time // when each sample started (timed requests only)
}

func (s *samples) add(d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

func (s *samples) addAt(at time.Time, d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.at = append(s.at, at)
	s.mu.Unlock()
}

// since summarizes the samples that started in [from, to).
func (s *samples) between(from, to time.Time) summary {
	s.mu.Lock()
	var d []time.Duration
	for i, at := range s.at {
		if !at.Before(from) && at.Before(to) {
			d = append(d, s.d[i])
		}
	}
	s.mu.Unlock()
	return summarize(d)
}

func (s *samples) summary() summary {
	s.mu.Lock()
	d := slices.Clone(s.d)
	s.mu.Unlock()
	return summarize(d)
}

// summary is a latency distribution.
type summary struct {
	N                        int
	P50, P95, P99, Max, Mean time.Duration
}

func summarize(d []time.Duration) summary {
	if len(d) == 0 {
		return summary{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	q := func(p float64) time.Duration {
		i := int(p*float64(len(d))+0.5) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	return summary{N: len(d), P50: q(.50), P95: q(.95), P99: q(.99), Max: d[len(d)-1], Mean: sum / time.Duration(len(d))}
}

func (s summary) String() string {
	if s.N == 0 {
		return "n=0"
	}
	return fmt.Sprintf("n=%d p50=%s p95=%s p99=%s max=%s", s.N, ms(s.P50), ms(s.P95), ms(s.P99), ms(s.Max))
}

// ms formats d in milliseconds with sensible precision.
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case f < 10:
		return fmt.Sprintf("%.2fms", f)
	case f < 1000:
		return fmt.Sprintf("%.1fms", f)
	}
	return fmt.Sprintf("%.0fms", f)
}

// routeStats times requests per route.
type routeStats struct {
	mu     sync.Mutex
	routes map[string]*route
}

type route struct {
	lat    samples
	errors int
	first  time.Time
	last   time.Time
}

func newRouteStats() *routeStats { return &routeStats{routes: map[string]*route{}} }

func (r *routeStats) observe(path string, start time.Time, d time.Duration, failed bool) {
	r.mu.Lock()
	rt := r.routes[path]
	if rt == nil {
		rt = &route{first: start}
		r.routes[path] = rt
	}
	if failed {
		rt.errors++
	}
	if end := start.Add(d); end.After(rt.last) {
		rt.last = end
	}
	r.mu.Unlock()
	rt.lat.addAt(start, d)
}

// between summarizes a route's requests that started in [from, to).
func (r *routeStats) between(path string, from, to time.Time) summary {
	r.mu.Lock()
	rt := r.routes[path]
	r.mu.Unlock()
	if rt == nil {
		return summary{}
	}
	return rt.lat.between(from, to)
}

// lastEnd is when the route's last request ended.
// where summarizes the requests of every route keep accepts.
func (r *routeStats) where(keep func(route string) bool) summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	var d []time.Duration
	for path, rt := range r.routes {
		if keep(path) {
			rt.lat.mu.Lock()
			d = append(d, rt.lat.d...)
			rt.lat.mu.Unlock()
		}
	}
	return summarize(d)
}

func (r *routeStats) lastEnd(path string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt := r.routes[path]; rt != nil {
		return rt.last
	}
	return time.Time{}
}

// routeReport is one route's figures.
type routeReport struct {
	Route   string  `json:"route"`
	Rate    float64 `json:"rate_per_s"`
	Errors  int     `json:"errors"`
	Latency summary `json:"latency"`
}

func (r *routeStats) report() []routeReport {
	r.mu.Lock()
	names := make([]string, 0, len(r.routes))
	for k := range r.routes {
		names = append(names, k)
	}
	r.mu.Unlock()
	slices.Sort(names)
	var out []routeReport
	for _, n := range names {
		r.mu.Lock()
		rt := r.routes[n]
		errs, span := rt.errors, rt.last.Sub(rt.first)
		r.mu.Unlock()
		s := rt.lat.summary()
		rate := 0.0
		if span > 0 {
			rate = float64(s.N) / span.Seconds()
		}
		out = append(out, routeReport{Route: n, Rate: rate, Errors: errs, Latency: s})
	}
	return out
}
