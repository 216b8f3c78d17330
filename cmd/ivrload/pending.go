package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

// pendingConfig configures the pending mode: N calls enter a number whose
// BankID user never answers, so N verifications are pending at once, and
// the callers stay on the line (the calls are live; their hold-loop
// requests are not played, so only the poller loads the service).
type pendingConfig struct {
	common
	N           int
	Concurrency int
	Measure     time.Duration
}

func parsePending(args []string, stderr io.Writer) (pendingConfig, error) {
	var c pendingConfig
	fs := flag.NewFlagSet("ivrload pending", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := c.flags(fs)
	fs.IntVar(&c.N, "n", 10000, "verifications pending at once")
	fs.IntVar(&c.Concurrency, "concurrency", 64, "calls being set up at once")
	fs.DurationVar(&c.Measure, "measure", 60*time.Second, "how long to measure once all are pending")
	fs.DurationVar(&c.Duration, "duration", 15*time.Minute, "hard bound on the run")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.Env = *env
	c.Expiry = 15 * time.Minute
	return c, c.check()
}

type pendingReport struct {
	Config       pendingConfig  `json:"config"`
	Setup        time.Duration  `json:"setup"`
	Wall         time.Duration  `json:"wall"` // set-up and measurement
	Routes       []routeReport  `json:"routes"`
	Steady       punctuality    `json:"steady_punctuality"`
	All          punctuality    `json:"all_punctuality"`
	PollRate     float64        `json:"poll_rate_per_s"`
	NeededRate   float64        `json:"needed_poll_rate_per_s"`
	TokenCodes   map[string]int `json:"token_answers"`
	SlowDownMetr float64        `json:"slow_down_metric"`
	PendingGauge float64        `json:"pending_gauge"`
	CPU          time.Duration  `json:"cpu"`
	Cores        float64        `json:"cores"`
	PeakRSS      int64          `json:"peak_rss_bytes"` // the highest of the instances
	Instances    []instanceUse  `json:"instances"`
	DBCPU        time.Duration  `json:"postgres_cpu,omitempty"`
	Goroutines   float64        `json:"goroutines_max"`
	SetupErrors  int            `json:"setup_errors"`
	NotFinal     int            `json:"not_final_after_hangup"`
	Others       time.Duration  `json:"other_processes_cpu"`
	LoadCPU      time.Duration  `json:"load_generator_cpu"`
}

func runPending(ctx context.Context, cfg pendingConfig, stdout, stderr io.Writer) error {
	e, err := setUp(ctx, cfg.common, stderr)
	if err != nil {
		return err
	}
	defer e.tearDown(cfg.common)
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	stats := newRouteStats()
	tw := &virtualtwilio.Twilio{BaseURL: e.cl.public, AuthToken: e.cl.authToken, HTTPClient: &http.Client{
		Timeout:   15 * time.Second,
		Transport: timedTransport{next: newTransport(cfg.Concurrency + 16), stats: stats},
	}}
	e.rest.use(tw)
	rep := pendingReport{Config: cfg}
	before := e.cl.procs()
	self0, _ := readProc(os.Getpid())
	busy0 := machineBusy()
	pg0 := processCPU("postgres")
	start := time.Now()

	sids := make([]string, cfg.N)
	var next atomic.Int64
	var errs atomic.Int64
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= cfg.N {
					return
				}
				sid := fmt.Sprintf("CA%032x", i+1)
				if err := park(ctx, tw, sid, e.sim.addUser(i, noAnswer), i); err != nil {
					if errs.Add(1) <= 3 {
						fmt.Fprintln(stderr, "ivrload: set up call:", err)
					}
					continue
				}
				sids[i] = sid
				if (i+1)%1000 == 0 {
					fmt.Fprintf(stderr, "ivrload: %d verifications started\n", i+1)
				}
			}
		})
	}
	wg.Wait()
	rep.SetupErrors = int(errs.Load())
	setupDone := time.Now()
	rep.Setup = setupDone.Sub(start)
	fmt.Fprintf(stderr, "ivrload: %d pending after %s; measuring for %s\n", cfg.N-rep.SetupErrors, rep.Setup.Round(time.Millisecond), cfg.Measure)

	// Measure: from one interval after the last start, when every
	// verification is in its steady polling rhythm.
	steadyFrom := setupDone.Add(cfg.Interval)
	var maxG float64
	sampleNow := func() {
		for _, srv := range e.cl.servers {
			m, _ := scrape(srv.base, "go_goroutines", "ivr_verifications_pending")
			maxG = max(maxG, m["go_goroutines"])
			rep.PendingGauge = m["ivr_verifications_pending"] // the store's count: the same on every instance
		}
	}
	t := time.NewTicker(5 * time.Second)
	end := time.After(cfg.Measure)
measure:
	for {
		select {
		case <-ctx.Done():
			break measure
		case <-end:
			break measure
		case <-t.C:
			sampleNow()
		}
	}
	t.Stop()
	sampleNow()
	measured := time.Now()
	e.sim.mu.Lock()
	n := 0
	for _, p := range e.sim.polls {
		if !p.at.Before(steadyFrom) {
			n++
		}
	}
	rep.TokenCodes = maps(e.sim.codes)
	e.sim.mu.Unlock()
	rep.PollRate = float64(n) / measured.Sub(steadyFrom).Seconds()
	rep.NeededRate = float64(cfg.N-rep.SetupErrors) / cfg.Interval.Seconds()
	rep.Steady = punctualityOf(e.sim, steadyFrom)
	rep.All = punctualityOf(e.sim, time.Time{})
	rep.Goroutines = maxG
	if m, err := e.cl.scrape("ivr_broker_request_duration_seconds_count"); err == nil {
		for k, v := range m {
			if strings.Contains(k, `result="slow_down"`) {
				rep.SlowDownMetr += v
			}
		}
	}
	after := e.cl.procs()
	self1, _ := readProc(os.Getpid())
	if isPostgres(e.db) {
		rep.DBCPU = cpuSince(pg0, processCPU("postgres"))
	}
	rep.Wall = measured.Sub(start)
	rep.Instances = e.cl.use(before, after, rep.Wall)
	for _, u := range rep.Instances {
		rep.CPU += u.CPU
		rep.PeakRSS = max(rep.PeakRSS, u.PeakRSS)
	}
	rep.Others = machineBusy() - busy0 - rep.CPU - (self1.CPU - self0.CPU) - rep.DBCPU
	rep.LoadCPU = self1.CPU - self0.CPU
	rep.Cores = rep.CPU.Seconds() / rep.Wall.Seconds()

	// Everyone hangs up; every verification must end (cancelled).
	next.Store(0)
	for range cfg.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(sids) {
					return
				}
				if sids[i] == "" {
					continue
				}
				resp, err := tw.Post(context.WithoutCancel(ctx), "/twilio/status", url.Values{"CallSid": {sids[i]}, "AccountSid": {"AC00000000000000000000000000000000"}, "CallStatus": {"completed"}, "From": {"+46700000000"}, "To": {"+46812345678"}})
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	rep.Routes = stats.report()
	_ = e.cl.stop()
	if db, err := openStore(context.WithoutCancel(ctx), e.db); err == nil {
		for _, sid := range sids {
			if sid == "" {
				continue
			}
			c, err := db.Call(context.WithoutCancel(ctx), sid)
			if err != nil || c.VerificationID == "" {
				rep.NotFinal++
				continue
			}
			if v, err := db.Verification(context.WithoutCancel(ctx), c.VerificationID); err != nil || !v.Status.Done() {
				rep.NotFinal++
			}
		}
		db.Close()
	}
	printPending(stdout, &rep)
	return writeJSON(cfg.JSON, rep)
}

// park places a call that enters user i's number and then waits on hold
// without playing the hold loop: the verification stays pending.
func park(ctx context.Context, tw *virtualtwilio.Twilio, sid, pnr string, i int) error {
	base := url.Values{"CallSid": {sid}, "AccountSid": {"AC00000000000000000000000000000000"}, "From": {"+4670" + pad(i, 7)},
		"To": {"+46812345678"}, "CallStatus": {"ringing"}, "Direction": {"inbound"}}
	doc, err := post(ctx, tw, "/twilio/voice", base)
	if err != nil {
		return err
	}
	g := doc.Find("Gather")
	if len(g) == 0 || g[0].Attr("action") == "" {
		return fmt.Errorf("voice: no Gather action in the answer")
	}
	form := url.Values{}
	for k, v := range base {
		form[k] = v
	}
	form.Set("CallStatus", "in-progress")
	form.Set("Digits", pnr)
	form.Set("FinishedOnKey", "#")
	_, err = post(ctx, tw, g[0].Attr("action"), form)
	return err
}

func post(ctx context.Context, tw *virtualtwilio.Twilio, path string, form url.Values) (*virtualtwilio.Response, error) {
	resp, err := tw.Post(ctx, path, form)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d", strings.SplitN(path, "?", 2)[0], resp.StatusCode)
	}
	return virtualtwilio.ParseTwiML(body)
}

func printPending(w io.Writer, r *pendingReport) {
	c := r.Config
	fmt.Fprintf(w, "\nivrload pending: %d verifications pending (set up in %s, %d errors), broker latency %s, interval %s, key %s; %s\n",
		c.N-r.SetupErrors, r.Setup.Round(time.Millisecond), r.SetupErrors, c.BrokerLatency, c.Interval, c.KeyAlg, c.common.describe())
	for _, rt := range r.Routes {
		fmt.Fprintf(w, "  %-16s %7.1f req/s errors %d  %s\n", rt.Route, rt.Rate, rt.Errors, rt.Latency)
	}
	fmt.Fprintf(w, "polls: %.0f/s achieved in steady state, %.0f/s needed (N / interval)\n", r.PollRate, r.NeededRate)
	for _, p := range []struct {
		name string
		p    punctuality
	}{{"steady state", r.Steady}, {"whole run", r.All}} {
		fmt.Fprintf(w, "poll lateness (%s) vs due (answer + interval): %s; >10%% late: %d of %d (%.1f%%); early: %d\n",
			p.name, p.p.Late, p.p.Over10Pct, p.p.Polls, 100*float64(p.p.Over10Pct)/float64(max(p.p.Polls, 1)), p.p.Early)
	}
	fmt.Fprintf(w, "token answers %v; slow_down in ivrd metrics %.0f; ivr_verifications_pending gauge %.0f\n", r.TokenCodes, r.SlowDownMetr, r.PendingGauge)
	fmt.Fprintf(w, "server: CPU %.1fs = %.2f cores; peak RSS %.1f MB; goroutines max %.0f (per instance); verifications not final after hang-up: %d\n",
		r.CPU.Seconds(), r.Cores, float64(r.PeakRSS)/1e6, r.Goroutines, r.NotFinal)
	printInstances(w, r.Instances, r.DBCPU, r.Wall)
	fmt.Fprintf(w, "load generator + simulator CPU %.1fs; other processes on the machine %.1fs\n", r.LoadCPU.Seconds(), r.Others.Seconds())
}
