package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

// runReport is everything a callers run measured.
type runReport struct {
	Config         runConfig     `json:"config"`
	Wall           time.Duration `json:"wall"`
	Routes         []routeReport `json:"routes"`
	ServerHoldP99  float64       `json:"server_hold_p99_bucket_s"`
	ApprovalToDash summary       `json:"approval_to_dashboard"` // on every dashboard
	// ApprovalToDashBy is ApprovalToDash for the dashboards on each
	// instance.
	ApprovalToDashBy []summary `json:"approval_to_dashboard_by_instance"`
	ApprovalToEar    summary   `json:"approval_to_caller"`
	DeclineToEar     summary   `json:"decline_to_caller"`
	// PollToEar and DeclinePollToEar start at the broker's answer that
	// told ivrd the outcome (the token, or access_denied), not at the
	// user's decision: what ivrd adds once it knows.
	PollToEar        summary `json:"poll_to_caller"`
	DeclinePollToEar summary `json:"decline_poll_to_caller"`
	// Webhooks: what ivrd served in all (status callbacks included), per
	// verified call, and everything against the baseline.
	Webhooks         int       `json:"webhooks"`
	WebhooksPerCall  callCount `json:"webhooks_per_verified_call"`
	AllWebhooks      summary   `json:"all_webhooks"`
	BaselineAll      summary   `json:"baseline_all"`
	NoBroker         summary   `json:"webhooks_but_digits"`
	BaselineNoBroker summary   `json:"baseline_but_digits"`
	// Interrupts are ivrd's hold interrupt metrics: sent, failed, and
	// outcomes the safety-net hop delivered.
	Interrupts     map[string]float64 `json:"interrupts"`
	RESTFailed     int64              `json:"rest_failed"`
	Fanout         summary            `json:"event_fanout"`
	FanoutBy       []summary          `json:"event_fanout_by_instance"`
	SteadyFrom     time.Duration      `json:"steady_from"`
	SteadyTo       time.Duration      `json:"steady_to"`
	SteadyHold     summary            `json:"steady_hold"`
	SteadyBase     summary            `json:"steady_baseline"`
	SteadyHoldRate float64            `json:"steady_hold_rate"`
	FanoutSpread   summary            `json:"event_fanout_spread"`
	SettledGor     float64            `json:"goroutines_settled"`
	AuthAtBroker   summary            `json:"bc_authorize_at_broker"`
	TokenAtBroker  summary            `json:"token_at_broker"`
	PollsPerVer    summary            `json:"-"`
	PollsMean      float64            `json:"polls_per_verification_mean"`
	PollsMax       int                `json:"polls_per_verification_max"`
	TokenCodes     map[string]int     `json:"token_answers"`
	SlowDownMetric float64            `json:"slow_down_metric"`
	Punctuality    punctuality        `json:"poll_punctuality"`
	Server         serverUse          `json:"server"`
	Losses         losses             `json:"losses"`
}

// callCount is a distribution of a count per call.
type callCount struct {
	Calls     int     `json:"calls"`
	Mean      float64 `json:"mean"`
	P50, Max  int
	Histogram map[int]int `json:"histogram"`
}

func countsOf(n []int) callCount {
	c := callCount{Calls: len(n), Histogram: map[int]int{}}
	if len(n) == 0 {
		return c
	}
	slices.Sort(n)
	sum := 0
	for _, x := range n {
		sum += x
		c.Histogram[x]++
	}
	c.Mean = float64(sum) / float64(len(n))
	c.P50, c.Max = n[len(n)/2], n[len(n)-1]
	return c
}

// serverUse is what the instances used: CPU summed over them, the highest
// peak RSS, goroutines, heap and RSS in the samples summed over them.
type serverUse struct {
	CPU         time.Duration `json:"cpu"`
	Cores       float64       `json:"cores"`
	PeakRSS     int64         `json:"peak_rss_bytes"`
	Instances   []instanceUse `json:"instances"`
	DBCPU       time.Duration `json:"postgres_cpu,omitempty"`
	LoadCPU     time.Duration `json:"load_generator_cpu"`
	BareCPU     time.Duration `json:"baseline_cpu"`
	Samples     []sample      `json:"samples"`
	Goroutines0 float64       `json:"goroutines_start"`
	Others      time.Duration `json:"other_processes_cpu"`
}

type sample struct {
	At         time.Duration `json:"at"`
	Goroutines float64       `json:"goroutines"`
	HeapInuse  float64       `json:"heap_inuse_bytes"`
	RSS        int64         `json:"rss_bytes"`
	ActiveCall int64         `json:"active_calls"`
}

type losses struct {
	CallsPlaced        int            `json:"calls_placed"`
	CallErrors         int            `json:"call_errors"`
	ErrorSamples       []string       `json:"error_samples,omitempty"`
	WrongOutcome       int            `json:"wrong_outcome"`
	NotEnqueued        int            `json:"not_enqueued"`
	VerNotFinal        int            `json:"verifications_not_final"`
	VerMissing         int            `json:"verifications_missing"`
	EventsStored       int            `json:"events_stored"`
	EventsMissing      int            `json:"events_missing_per_dashboard_total"`
	MissingByKind      map[string]int `json:"missing_by_kind,omitempty"`
	DashDisconnects    int64          `json:"dashboard_disconnects"`
	DashBadMessages    int            `json:"dashboard_bad_messages"`
	HubDroppedSnapshot bool           `json:"-"`
}

func runCalls(ctx context.Context, cfg runConfig, stdout, stderr io.Writer) error {
	e, err := setUp(ctx, cfg.common, stderr)
	if err != nil {
		return err
	}
	defer e.tearDown(cfg.common)
	if !loopbackURL(e.cl.public) || !loopbackURL(e.sim.issuer) {
		return fmt.Errorf("refusing a non-loopback target")
	}

	dash, err := connectDashboards(ctx, e.cl.bases(), e.cl.public, e.cl.password, cfg.Dashboards)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "ivrload: %d dashboards connected over %d instances\n", cfg.Dashboards, len(e.cl.servers))

	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	schedCtx, stopSched := context.WithCancel(context.Background())
	defer stopSched()
	go e.sim.schedule(schedCtx, cfg.DecideLo, cfg.DecideHi)

	stats := newRouteStats()
	transport := newTransport(cfg.Concurrency + 16)
	var toIvrd http.RoundTripper = timedTransport{next: transport, stats: stats}
	var bl *baseline
	var mirrored sync.WaitGroup
	if cfg.Baseline {
		if bl, err = startBaseline(ctx, cfg.Host); err != nil {
			return err
		}
		defer bl.stop()
		toIvrd = mirrorTransport{
			next:   toIvrd,
			mirror: timedTransport{next: newTransport(cfg.Concurrency + 16), stats: stats, label: baselineLabel},
			base:   bl.base,
			wg:     &mirrored,
		}
	}
	tw := &virtualtwilio.Twilio{BaseURL: e.cl.public, AuthToken: e.cl.authToken, HTTPClient: &http.Client{
		Timeout:   15 * time.Second, // Twilio's webhook timeout
		Transport: toIvrd,
	}}
	e.rest.use(tw)
	cs := &callers{tw: tw, sim: e.sim, mix: cfg.Mix, total: cfg.Calls}

	var rep runReport
	rep.Config = cfg
	before := e.cl.procs()
	var bare0 procStats
	if bl != nil {
		bare0, _ = readProc(bl.cmd.Process.Pid)
	}
	self0, _ := readProc(os.Getpid())
	busy0 := machineBusy()
	pg0 := processCPU("postgres")
	m0, _ := e.cl.scrape("go_goroutines")
	rep.Server.Goroutines0 = m0["go_goroutines"]

	start := time.Now()
	var bg sync.WaitGroup
	loadCtx, stopLoad := context.WithCancel(runCtx)
	bg.Go(func() { rep.Server.Samples = sampleServers(loadCtx, e.cl, cfg.Sample, start, cs, stderr) })
	cs.run(runCtx, cfg.Concurrency, cfg.Ramp)
	rep.Wall = time.Since(start)
	stopLoad()
	bg.Wait()
	mirrored.Wait()
	// Let the last events reach the dashboards: until none has arrived
	// for a second (a lagging relay delivers them late, not never).
	dash.settle(time.Second, time.Minute)
	stopSched()

	after := e.cl.procs()
	if bl != nil {
		bare1, _ := readProc(bl.cmd.Process.Pid)
		rep.Server.BareCPU = bare1.CPU - bare0.CPU
	}
	self1, _ := readProc(os.Getpid())
	if isPostgres(e.db) {
		rep.Server.DBCPU = cpuSince(pg0, processCPU("postgres"))
	}
	rep.Server.Instances = e.cl.use(before, after, rep.Wall)
	for _, u := range rep.Server.Instances {
		rep.Server.CPU += u.CPU
		rep.Server.PeakRSS = max(rep.Server.PeakRSS, u.PeakRSS)
	}
	rep.Server.Others = machineBusy() - busy0 - rep.Server.CPU - (self1.CPU - self0.CPU) - rep.Server.DBCPU - rep.Server.BareCPU
	rep.Server.Cores = rep.Server.CPU.Seconds() / rep.Wall.Seconds()
	rep.Server.LoadCPU = self1.CPU - self0.CPU
	rep.RESTFailed = e.rest.failed.Load()
	if mt, err := e.cl.scrape("ivr_webhook_duration_seconds", "ivr_broker_request_duration_seconds_count",
		"ivr_hold_interrupts_total", "ivr_safety_net_outcomes_total"); err == nil {
		rep.ServerHoldP99, _ = histQuantile(mt, "ivr_webhook_duration_seconds", `route="/twilio/hold"`, .99)
		rep.Interrupts = map[string]float64{}
		for k, v := range mt {
			switch {
			case strings.HasPrefix(k, "ivr_broker_request_duration_seconds_count") && strings.Contains(k, `result="slow_down"`):
				rep.SlowDownMetric += v
			case strings.HasPrefix(k, "ivr_hold_interrupts_total") && strings.Contains(k, `result="sent"`):
				rep.Interrupts["sent"] += v
			case strings.HasPrefix(k, "ivr_hold_interrupts_total") && strings.Contains(k, `result="failed"`):
				rep.Interrupts["failed"] += v
			case strings.HasPrefix(k, "ivr_safety_net_outcomes_total"):
				rep.Interrupts["safety_net"] += v
			}
		}
	}
	// Goroutines once the load is gone: Twilio's idle connections closed,
	// the dashboards still connected (two goroutines each).
	transport.CloseIdleConnections()
	time.Sleep(2 * time.Second)
	if m, err := e.cl.scrape("go_goroutines"); err == nil {
		rep.SettledGor = m["go_goroutines"]
	}
	dash.close()
	if err := e.cl.stop(); err != nil {
		fmt.Fprintln(stderr, "ivrload: ivrd stop:", err)
	}

	rep.Routes = stats.report()
	rep.AllWebhooks = stats.where(func(r string) bool { return !isBaseline(r) })
	rep.BaselineAll = stats.where(isBaseline)
	// The digits webhook waits for the broker's bc-authorize answer,
	// which the baseline does not ask for.
	const digits = "/twilio/gather"
	rep.NoBroker = stats.where(func(r string) bool { return !isBaseline(r) && r != digits })
	rep.BaselineNoBroker = stats.where(func(r string) bool { return isBaseline(r) && r != baselineLabel(digits) })
	// The steady hold phase: after the last digits webhook (everyone who
	// will hold is holding) until the first call ends.
	from := stats.lastEnd("/twilio/gather").Add(time.Second)
	to := time.Now()
	for _, r := range cs.records {
		if r.tr != nil {
			to = minT(to, r.start.Add(r.tr.Duration))
		}
	}
	if to.After(from) {
		rep.SteadyFrom, rep.SteadyTo = from.Sub(start), to.Sub(start)
		rep.SteadyHold = stats.between("/twilio/hold", from, to)
		rep.SteadyBase = stats.between(baselineLabel("/twilio/hold"), from, to)
		rep.SteadyHoldRate = float64(rep.SteadyHold.N) / to.Sub(from).Seconds()
	}
	analyse(ctx, &rep, e, cs, dash)
	printRun(stdout, &rep)
	return writeJSON(cfg.JSON, rep)
}

// sampleServers records the instances' goroutines, heap and RSS, summed
// over them, every period.
func sampleServers(ctx context.Context, cl *cluster, period time.Duration, start time.Time, cs *callers, stderr io.Writer) []sample {
	var out []sample
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		m, err := cl.scrape("go_goroutines", "go_memstats_heap_inuse_bytes")
		if err == nil {
			s := sample{At: time.Since(start).Round(time.Second), Goroutines: m["go_goroutines"], HeapInuse: m["go_memstats_heap_inuse_bytes"], ActiveCall: cs.active.Load()}
			for _, p := range cl.procs() {
				s.RSS += p.RSS
			}
			out = append(out, s)
			if period >= 10*time.Second {
				fmt.Fprintf(stderr, "ivrload: t=%s calls done=%d active=%d goroutines=%.0f heap=%.1fMB rss=%.1fMB\n", s.At, cs.done.Load(), s.ActiveCall, s.Goroutines, s.HeapInuse/1e6, float64(s.RSS)/1e6)
			}
		}
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
	}
}

// analyse matches calls, broker decisions, dashboard events and the store.
func analyse(ctx context.Context, rep *runReport, e *env, cs *callers, dash *dashboards) {
	s := e.sim
	s.mu.Lock()
	decided := maps(s.decided)
	codes := maps(s.codes)
	s.mu.Unlock()
	rep.TokenCodes = codes
	rep.AuthAtBroker = s.authLat.summary()
	rep.TokenAtBroker = s.tokenLat.summary()
	rep.Punctuality = punctualityOf(s, time.Time{})

	var toDash, toEar, declEar, pollEar, declPollEar []time.Duration
	var perCall []int
	learned := maps(s.learned)
	toDashBy := make([][]time.Duration, len(e.cl.servers))
	polls := s.pollsPerAuth()
	var pollN []time.Duration
	sumPolls, maxPolls := 0, 0
	db, dberr := openStore(ctx, e.db)
	if dberr == nil {
		defer db.Close()
	}
	L := &rep.Losses
	L.MissingByKind = map[string]int{}
	L.DashDisconnects = dash.disconnects.Load()
	L.DashBadMessages = dash.badMsg
	for _, r := range cs.records {
		L.CallsPlaced++
		if r.err != nil {
			L.CallErrors++
			if len(L.ErrorSamples) < 5 {
				L.ErrorSamples = append(L.ErrorSamples, r.err.Error())
			}
		}
		if r.tr == nil {
			continue
		}
		sid := r.tr.CallSID
		rep.Webhooks += r.tr.Requests
		if r.plan == approve && r.err == nil {
			perCall = append(perCall, r.tr.Requests)
		}
		if !strings.HasPrefix(r.tr.Outcome, "enqueued:") {
			L.NotEnqueued++
		}
		if n := polls[r.user]; n > 0 || r.plan != noAnswer {
			pollN = append(pollN, time.Duration(n))
			sumPolls += n
			maxPolls = max(maxPolls, n)
		}
		if t0, ok := decided[r.user]; ok {
			for i := range dash.conns {
				if at, ok := dash.approvedAt(i, sid); ok && r.plan == approve {
					toDash = append(toDash, at.Sub(t0))
					toDashBy[dash.instance[i]] = append(toDashBy[dash.instance[i]], at.Sub(t0))
				}
			}
			for _, l := range r.tr.Lines {
				at := r.start.Add(l.At)
				if at.Before(t0) {
					continue
				}
				t1, ok := learned[r.user]
				if r.plan == approve && l.Kind == "enqueue" {
					toEar = append(toEar, at.Sub(t0))
					if ok {
						pollEar = append(pollEar, at.Sub(t1))
					}
					break
				}
				if r.plan == decline && l.Kind == "say" && strings.Contains(l.Text, "try again") {
					declEar = append(declEar, at.Sub(t0))
					if ok {
						declPollEar = append(declPollEar, at.Sub(t1))
					}
					break
				}
			}
		}
		if db == nil {
			continue
		}
		c, err := db.Call(ctx, sid)
		if err != nil {
			L.VerMissing++
			continue
		}
		want := map[outcome]store.VerificationStatus{approve: store.VerApproved, decline: store.VerDeclined, noAnswer: store.VerExpired}[r.plan]
		wantOutcome := map[bool]string{true: store.OutcomeVerified, false: store.OutcomeUnverified}[r.plan == approve]
		if c.VerificationID == "" {
			L.VerMissing++
		} else if v, err := db.Verification(ctx, c.VerificationID); err != nil {
			L.VerMissing++
		} else if !v.Status.Done() {
			L.VerNotFinal++
		} else if v.Status != want || c.Outcome != wantOutcome {
			L.WrongOutcome++
			if len(L.ErrorSamples) < 10 {
				L.ErrorSamples = append(L.ErrorSamples, fmt.Sprintf("call %s: plan %s, verification %s (%s), outcome %q, decided %v", sid, r.plan, v.Status, v.Error, c.Outcome, decided[r.user].Sub(r.start)))
			}
		}
		evs, err := db.Events(ctx, sid)
		if err != nil {
			continue
		}
		for _, ev := range evs {
			L.EventsStored++
			for i := range dash.conns {
				if !dash.has(i, ev.Seq) {
					L.EventsMissing++
					L.MissingByKind[string(ev.Kind)]++
				}
			}
		}
	}
	if dberr != nil {
		L.ErrorSamples = append(L.ErrorSamples, "open store for checks: "+dberr.Error())
	}
	rep.ApprovalToDash = summarize(toDash)
	for _, d := range toDashBy {
		rep.ApprovalToDashBy = append(rep.ApprovalToDashBy, summarize(d))
	}
	rep.ApprovalToEar = summarize(toEar)
	rep.DeclineToEar = summarize(declEar)
	rep.PollToEar = summarize(pollEar)
	rep.DeclinePollToEar = summarize(declPollEar)
	rep.WebhooksPerCall = countsOf(perCall)
	rep.Fanout = dash.fanout.summary()
	for i := range dash.fanoutBy {
		rep.FanoutBy = append(rep.FanoutBy, dash.fanoutBy[i].summary())
	}
	rep.FanoutSpread = dash.spread()
	rep.PollsPerVer = summarize(pollN)
	if len(pollN) > 0 {
		rep.PollsMean = float64(sumPolls) / float64(len(pollN))
	}
	rep.PollsMax = maxPolls
}

func maps[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// punctuality is how token requests arrived against their due times.
type punctuality struct {
	Polls       int     `json:"polls"`
	Late        summary `json:"lateness"` // arrival − (previous answer + interval)
	Early       int     `json:"early"`    // before the broker's own interval since the previous arrival
	Over10Pct   int     `json:"over_10pct_late"`
	MaxInterval time.Duration
}

func punctualityOf(s *sim, since time.Time) punctuality {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p punctuality
	var late []time.Duration
	for _, r := range s.polls {
		if r.at.Before(since) {
			continue
		}
		p.Polls++
		late = append(late, max(r.late, 0))
		if r.sinceArr < r.interval {
			p.Early++
		}
		if r.late > r.interval/10 {
			p.Over10Pct++
		}
		p.MaxInterval = max(p.MaxInterval, r.interval)
	}
	p.Late = summarize(late)
	return p
}

func printRun(w io.Writer, r *runReport) {
	c := r.Config
	fmt.Fprintf(w, "\nivrload run: %d calls placed in %s, concurrency %d, mix approve=%d decline=%d noanswer=%d, broker latency %s, interval %s, expiry %s, %d dashboards, key %s; %s\n",
		r.Losses.CallsPlaced, r.Wall.Round(time.Second), c.Concurrency, c.Mix[approve], c.Mix[decline], c.Mix[noAnswer], c.BrokerLatency, c.Interval, c.Expiry, c.Dashboards, c.KeyAlg, c.common.describe())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "route\treq/s\terrors\tn\tp50\tp95\tp99\tmax\t")
	for _, rt := range r.Routes {
		l := rt.Latency
		fmt.Fprintf(tw, "%s\t%.1f\t%d\t%d\t%s\t%s\t%s\t%s\t\n", rt.Route, rt.Rate, rt.Errors, l.N, ms(l.P50), ms(l.P95), ms(l.P99), ms(l.Max))
	}
	tw.Flush()
	hold, base := find(r.Routes, "/twilio/hold"), find(r.Routes, baselineLabel("/twilio/hold"))
	if hold.Latency.N > 0 && base.Latency.N > 0 {
		fmt.Fprintf(w, "hold p99 / baseline p99 = %.2f×; server-side hold p99 bucket (ivrd histogram) ≤ %gs\n", float64(hold.Latency.P99)/float64(base.Latency.P99), r.ServerHoldP99)
	}
	if r.SteadyHold.N > 0 {
		fmt.Fprintf(w, "steady hold phase %s–%s (%.0f hops/s): hold %s; baseline %s; p99 ratio %.2f×\n", r.SteadyFrom.Round(time.Second), r.SteadyTo.Round(time.Second), r.SteadyHoldRate,
			r.SteadyHold, r.SteadyBase, float64(r.SteadyHold.P99)/float64(max(r.SteadyBase.P99, 1)))
	}
	fmt.Fprintf(w, "broker approval → dashboard event (every dashboard): %s\n", r.ApprovalToDash)
	if len(r.ApprovalToDashBy) > 1 {
		for i, s := range r.ApprovalToDashBy {
			fmt.Fprintf(w, "  dashboards on ivrd-%d: %s\n", i+1, s)
		}
	}
	fmt.Fprintf(w, "broker approval → caller hears it:   %s\n", r.ApprovalToEar)
	fmt.Fprintf(w, "broker decline  → caller hears it:   %s\n", r.DeclineToEar)
	fmt.Fprintf(w, "poll that learned the approval → caller hears it: %s\n", r.PollToEar)
	fmt.Fprintf(w, "poll that learned the decline  → caller hears it: %s\n", r.DeclinePollToEar)
	if r.Interrupts != nil {
		fmt.Fprintf(w, "hold interrupts: sent %.0f, failed %.0f; outcomes by the safety-net hop %.0f; REST updates refused (--rest-fail) %d\n",
			r.Interrupts["sent"], r.Interrupts["failed"], r.Interrupts["safety_net"], r.RESTFailed)
	}
	wc := r.WebhooksPerCall
	fmt.Fprintf(w, "webhooks per verified call (status callback included): mean %.2f, p50 %d, max %d over %d calls %v; %d webhooks in all\n", wc.Mean, wc.P50, wc.Max, wc.Calls, wc.Histogram, r.Webhooks)
	if r.BaselineAll.N > 0 {
		fmt.Fprintf(w, "every webhook: ivrd %s; baseline (same requests, same moments) %s; p99 ratio %.2f×\n",
			r.AllWebhooks, r.BaselineAll, float64(r.AllWebhooks.P99)/float64(max(r.BaselineAll.P99, 1)))
		fmt.Fprintf(w, "every webhook but digits (which waits for the broker): ivrd %s; baseline %s; p99 ratio %.2f×\n",
			r.NoBroker, r.BaselineNoBroker, float64(r.NoBroker.P99)/float64(max(r.BaselineNoBroker.P99, 1)))
		ivrdPer := r.Server.CPU / time.Duration(max(r.AllWebhooks.N, 1))
		barePer := r.Server.BareCPU / time.Duration(max(r.BaselineAll.N, 1))
		fmt.Fprintf(w, "CPU per webhook: ivrd %s (all its CPU, polling and dashboards included, over its webhooks); baseline %s (%.1fs over %d); ratio %.2f×\n",
			ivrdPer.Round(time.Microsecond), barePer.Round(time.Microsecond), r.Server.BareCPU.Seconds(), r.BaselineAll.N, float64(ivrdPer)/float64(max(barePer, 1)))
	}
	fmt.Fprintf(w, "event fan-out (event time → arrival, every dashboard): %s\n", r.Fanout)
	if len(r.FanoutBy) > 1 {
		for i, s := range r.FanoutBy {
			fmt.Fprintf(w, "  dashboards on ivrd-%d: %s\n", i+1, s)
		}
	}
	fmt.Fprintf(w, "event fan-out spread (first → last dashboard, per event): %s\n", r.FanoutSpread)
	fmt.Fprintf(w, "broker handling (incl. simulated latency): bc-authorize %s; token %s\n", r.AuthAtBroker, r.TokenAtBroker)
	fmt.Fprintf(w, "token answers: %v; polls per verification mean %.1f max %d; slow_down seen by broker %d, in ivrd metrics %.0f\n",
		r.TokenCodes, r.PollsMean, r.PollsMax, r.TokenCodes["slow_down"], r.SlowDownMetric)
	p := r.Punctuality
	fmt.Fprintf(w, "poll lateness vs due (answer + interval): %s; >10%% of interval late: %d of %d; early: %d\n", p.Late, p.Over10Pct, p.Polls, p.Early)
	fmt.Fprintf(w, "server: CPU %.1fs over %.0fs wall = %.2f cores; peak RSS %.1f MB; load generator CPU %.1fs; other processes on the machine %.1fs (%.2f cores)\n",
		r.Server.CPU.Seconds(), r.Wall.Seconds(), r.Server.Cores, float64(r.Server.PeakRSS)/1e6, r.Server.LoadCPU.Seconds(), r.Server.Others.Seconds(), r.Server.Others.Seconds()/r.Wall.Seconds())
	printInstances(w, r.Server.Instances, r.Server.DBCPU, r.Wall)
	if n := len(r.Server.Samples); n > 0 {
		var mx sample
		for _, s := range r.Server.Samples {
			mx.Goroutines = max(mx.Goroutines, s.Goroutines)
			mx.HeapInuse = max(mx.HeapInuse, s.HeapInuse)
			mx.RSS = max(mx.RSS, s.RSS)
		}
		first, last := r.Server.Samples[0], r.Server.Samples[n-1]
		fmt.Fprintf(w, "server goroutines settled after the run (dashboards still connected): %.0f\n", r.SettledGor)
		fmt.Fprintf(w, "server goroutines: idle %.0f, first sample %.0f, max %.0f, last %.0f; heap in use first %.1f MB max %.1f MB last %.1f MB; RSS max %.1f MB\n",
			r.Server.Goroutines0, first.Goroutines, mx.Goroutines, last.Goroutines, first.HeapInuse/1e6, mx.HeapInuse/1e6, last.HeapInuse/1e6, float64(mx.RSS)/1e6)
		if c.Soak && n >= 8 {
			q := n / 4
			fmt.Fprintf(w, "soak drift: goroutines first quarter avg %.0f, last quarter avg %.0f; heap %.1f MB → %.1f MB; RSS %.1f MB → %.1f MB\n",
				avg(r.Server.Samples[:q], func(s sample) float64 { return s.Goroutines }), avg(r.Server.Samples[n-q:], func(s sample) float64 { return s.Goroutines }),
				avg(r.Server.Samples[:q], func(s sample) float64 { return s.HeapInuse })/1e6, avg(r.Server.Samples[n-q:], func(s sample) float64 { return s.HeapInuse })/1e6,
				avg(r.Server.Samples[:q], func(s sample) float64 { return float64(s.RSS) })/1e6, avg(r.Server.Samples[n-q:], func(s sample) float64 { return float64(s.RSS) })/1e6)
		}
	}
	L := r.Losses
	fmt.Fprintf(w, "losses: call errors %d, not handed to agents %d, wrong outcome %d, verifications missing %d / not final %d; events stored %d, missing at dashboards %d %v, dashboard disconnects %d\n",
		L.CallErrors, L.NotEnqueued, L.WrongOutcome, L.VerMissing, L.VerNotFinal, L.EventsStored, L.EventsMissing, L.MissingByKind, L.DashDisconnects)
	for _, e := range L.ErrorSamples {
		fmt.Fprintln(w, "  error:", e)
	}
}

// printInstances prints each instance's CPU and peak RSS, and
// PostgreSQL's CPU, when there is more than one instance or PostgreSQL.
func printInstances(w io.Writer, in []instanceUse, dbCPU, wall time.Duration) {
	if len(in) < 2 && dbCPU == 0 {
		return
	}
	for _, u := range in {
		fmt.Fprintf(w, "  %s: CPU %.1fs = %.2f cores; peak RSS %.1f MB", u.Name, u.CPU.Seconds(), u.Cores, float64(u.PeakRSS)/1e6)
		if u.Requests > 0 {
			fmt.Fprintf(w, "; %d requests from the balancer", u.Requests)
		}
		fmt.Fprintln(w)
	}
	if dbCPU > 0 {
		fmt.Fprintf(w, "  PostgreSQL (every postgres process on the machine): CPU %.1fs = %.2f cores\n", dbCPU.Seconds(), dbCPU.Seconds()/wall.Seconds())
	}
}

func avg(s []sample, f func(sample) float64) float64 {
	t := 0.0
	for _, x := range s {
		t += f(x)
	}
	return t / float64(len(s))
}

func find(rs []routeReport, name string) routeReport {
	i := slices.IndexFunc(rs, func(r routeReport) bool { return r.Route == name })
	if i < 0 {
		return routeReport{}
	}
	return rs[i]
}
