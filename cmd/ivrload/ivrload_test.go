package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ivr/callerverify/internal/postgres/postgrestest"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

// TestMain lets the test binary be the baseline process ivrload run starts
// (it re-executes itself with bareEnv set).
func TestMain(m *testing.M) {
	if os.Getenv(bareEnv) != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "ivrload bare:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestBaselineChecksSignatures: the baseline does the signature check ivrd
// does, and the mirror sends it every webhook signed for its own URL.
func TestBaselineChecksSignatures(t *testing.T) {
	bare := httptest.NewUnstartedServer(nil)
	bare.Config.Handler = virtualtwilio.Bare("http://"+bare.Listener.Addr().String(), bareToken, holdTwiML)
	bare.Start()
	defer bare.Close()
	form := url.Values{"CallSid": {"CA00000000000000000000000000000001"}, "Digits": {"1"}}

	forged, err := http.PostForm(bare.URL+"/twilio/hold?s=7", form)
	if err != nil {
		t.Fatal(err)
	}
	forged.Body.Close()
	if forged.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned request: status %d, want 403", forged.StatusCode)
	}

	ivrd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<Response/>") }))
	defer ivrd.Close()
	stats := newRouteStats()
	var wg sync.WaitGroup
	hc := &http.Client{Transport: mirrorTransport{
		next:   http.DefaultTransport,
		mirror: timedTransport{next: http.DefaultTransport, stats: stats, label: baselineLabel},
		base:   bare.URL,
		wg:     &wg,
	}}
	tw := &virtualtwilio.Twilio{BaseURL: ivrd.URL, AuthToken: "ivrd-token", HTTPClient: hc}
	for range 3 {
		resp, err := tw.Post(t.Context(), "/twilio/hold?s=7&a=1", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	wg.Wait()
	for _, rt := range stats.report() {
		if rt.Route == "baseline /twilio/hold" && (rt.Latency.N != 3 || rt.Errors != 0) {
			t.Errorf("baseline: %d requests, %d errors; want 3 accepted", rt.Latency.N, rt.Errors)
		}
	}
	if n := stats.where(isBaseline).N; n != 3 {
		t.Errorf("baseline got %d requests, want the 3 ivrd got", n)
	}
}

func TestPersonnummerAreValidAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for i := range 5000 {
		p := personnummer(i)
		if len(p) != 12 || seen[p] {
			t.Fatalf("personnummer(%d): got a duplicate or malformed number (len %d)", i, len(p))
		}
		seen[p] = true
		if luhn(p[2:11]) != int(p[11]-'0') {
			t.Fatalf("personnummer(%d): check digit wrong", i)
		}
	}
}

func TestMix(t *testing.T) {
	m, err := parseMix("approve=70,decline=20,noanswer=10")
	if err != nil {
		t.Fatal(err)
	}
	var got [3]int
	for i := range 100 {
		got[m.of(i)]++
	}
	if got != [3]int{70, 20, 10} {
		t.Errorf("outcomes of 100 users = %v, want [70 20 10]", got)
	}
	for _, bad := range []string{"approve=50", "approve=70,decline=20,noanswer=20", "yes=100", "approve=x"} {
		if _, err := parseMix(bad); err == nil {
			t.Errorf("parseMix(%q): got no error", bad)
		}
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	if _, err := parseRun([]string{"--host", "10.0.0.1"}, io.Discard); err == nil {
		t.Error("--host 10.0.0.1: got no error, want a refusal")
	}
	if _, err := parseRun([]string{"--db", "postgres://ivr@db.example.com/ivr"}, io.Discard); err == nil {
		t.Error("--db on another host: got no error, want a refusal")
	}
}

func TestSeveralInstancesNeedPostgreSQL(t *testing.T) {
	if _, err := parseRun([]string{"--instances", "2"}, io.Discard); err == nil {
		t.Error("--instances 2 without --db: got no error, want a refusal")
	}
	if _, err := parsePending([]string{"--instances", "2", "--db", "postgres://postgres@127.0.0.1/test"}, io.Discard); err != nil {
		t.Errorf("--instances 2 --db postgres://…: %v", err)
	}
}

// TestSmoke builds ivrd and runs 20 calls against it: every call must end
// with the outcome its user chose, and no event may be missing.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ivrd and runs it for ~15 s")
	}
	rep := smokeRun(t, "--dashboards", "2", "--expiry", "6s", "--decide-after", "1s-2s", "--key-alg", "ES256")
	L := rep.Losses
	wantAllCalls(t, L)
	if L.EventsStored == 0 || L.EventsMissing != 0 || L.DashDisconnects != 0 {
		t.Errorf("events: %d stored, %d missing at dashboards, %d disconnects; want none missing", L.EventsStored, L.EventsMissing, L.DashDisconnects)
	}
	if rep.ApprovalToDash.N == 0 || rep.ApprovalToEar.N == 0 || rep.PollToEar.N == 0 {
		t.Errorf("no end-to-end figures: %+v %+v %+v", rep.ApprovalToDash, rep.ApprovalToEar, rep.PollToEar)
	}
	if rep.Interrupts["sent"] == 0 || rep.WebhooksPerCall.Calls == 0 {
		t.Errorf("interrupts %v, webhooks per verified call %+v: want holds interrupted and counted", rep.Interrupts, rep.WebhooksPerCall)
	}
	if rep.BaselineAll.N != rep.AllWebhooks.N || rep.Server.BareCPU <= 0 && rep.BaselineAll.N > 1000 {
		t.Errorf("baseline: %d requests for ivrd's %d, CPU %s: want the same requests, in its own process", rep.BaselineAll.N, rep.AllWebhooks.N, rep.Server.BareCPU)
	}
}

// TestSmokePingRESTFailing runs 20 calls at a generic broker in ping mode
// while Twilio's REST API refuses every call update: each caller still
// hears the outcome, brought by the hold's own safety-net hop.
func TestSmokePingRESTFailing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ivrd and runs it for ~20 s")
	}
	rep := smokeRun(t, "--dashboards", "1", "--expiry", "20s",
		"--mix", "approve=80,decline=20,noanswer=0", "--decide-after", "1s-2s", "--key-alg", "ES256",
		"--profile", "generic", "--mode", "ping", "--rest-fail")
	L := rep.Losses
	wantAllCalls(t, L)
	if L.EventsMissing != 0 {
		t.Errorf("%d events missing at the dashboard", L.EventsMissing)
	}
	if rep.PollToEar.N != 16 || rep.DeclinePollToEar.N != 4 {
		t.Errorf("outcomes heard: %d approvals, %d declines; want 16 and 4", rep.PollToEar.N, rep.DeclinePollToEar.N)
	}
	if rep.RESTFailed == 0 || rep.Interrupts["failed"] == 0 || rep.Interrupts["safety_net"] == 0 {
		t.Errorf("REST refusals %d, interrupts %v: want failed interrupts and safety-net outcomes", rep.RESTFailed, rep.Interrupts)
	}
	if polls := rep.TokenCodes["authorization_pending"]; polls > 20 {
		t.Errorf("%d authorization_pending answers: ping mode should ask for the token when notified, not poll", polls)
	}
}

// TestSmokePostgres runs 20 calls on two instances sharing a PostgreSQL
// database behind the balancer, with dashboards on both: no call or event
// may be lost, approvals must reach the dashboards of both instances, no
// slow_down, and the run's schema is dropped after.
func TestSmokePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ivrd and runs two instances for ~15 s")
	}
	dbURL := postgrestest.URL(t)
	before := runSchemas(t, dbURL)
	rep := smokeRun(t, "--dashboards", "4", "--expiry", "6s", "--decide-after", "1s-2s", "--key-alg", "ES256",
		"--instances", "2", "--db", dbURL)
	L := rep.Losses
	wantAllCalls(t, L)
	if L.EventsStored == 0 || L.EventsMissing != 0 || L.DashDisconnects != 0 {
		t.Errorf("events: %d stored, %d missing at dashboards, %d disconnects; want none missing", L.EventsStored, L.EventsMissing, L.DashDisconnects)
	}
	if len(rep.ApprovalToDashBy) != 2 || rep.ApprovalToDashBy[0].N == 0 || rep.ApprovalToDashBy[1].N == 0 {
		t.Errorf("approval → dashboard by instance: %+v, want figures from the dashboards of both", rep.ApprovalToDashBy)
	}
	if rep.TokenCodes["slow_down"] != 0 || rep.SlowDownMetric != 0 || rep.Punctuality.Early != 0 {
		t.Errorf("token answers %v, slow_down metric %v, early polls %d: want no early poll", rep.TokenCodes, rep.SlowDownMetric, rep.Punctuality.Early)
	}
	if len(rep.Server.Instances) != 2 || rep.Server.Instances[0].PeakRSS == 0 || rep.Server.Instances[1].PeakRSS == 0 {
		t.Errorf("per-instance figures: %+v", rep.Server.Instances)
	}
	if after := runSchemas(t, dbURL); after != before {
		t.Errorf("%d ivrload schemas in the database after the run, %d before: the run's schema was not dropped", after, before)
	}
}

// TestSmokePendingPostgres parks 60 verifications on two instances and
// measures a few seconds: every call is set up, nothing polled early,
// everything ends when the callers hang up.
func TestSmokePendingPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ivrd and runs two instances for ~15 s")
	}
	dbURL := postgrestest.URL(t)
	out := filepath.Join(t.TempDir(), "report.json")
	args := []string{"pending", "--n", "60", "--concurrency", "8", "--measure", "4s", "--key-alg", "ES256",
		"--instances", "2", "--db", dbURL, "--json", out}
	if err := run(t.Context(), args, t.Output(), t.Output()); err != nil {
		t.Fatal(err)
	}
	var rep pendingReport
	readReport(t, out, &rep)
	if rep.SetupErrors != 0 || rep.NotFinal != 0 {
		t.Errorf("%d set-up errors, %d verifications not final after the hang-ups; want none", rep.SetupErrors, rep.NotFinal)
	}
	if rep.TokenCodes["slow_down"] != 0 || rep.SlowDownMetr != 0 || rep.All.Early != 0 {
		t.Errorf("token answers %v, slow_down metric %v, early polls %d: want no early poll", rep.TokenCodes, rep.SlowDownMetr, rep.All.Early)
	}
	if rep.Steady.Polls == 0 || len(rep.Instances) != 2 {
		t.Errorf("steady polls %d, instances %+v: want polls measured on two instances", rep.Steady.Polls, rep.Instances)
	}
}

// smokeRun runs 20 calls, 20 at once, with the flags given, and returns the
// report.
func smokeRun(t *testing.T, flags ...string) runReport {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.json")
	args := append([]string{"run", "--calls", "20", "--concurrency", "20", "--json", out}, flags...)
	if err := run(t.Context(), args, t.Output(), t.Output()); err != nil {
		t.Fatal(err)
	}
	var rep runReport
	readReport(t, out, &rep)
	return rep
}

// wantAllCalls: the 20 calls were placed, each ended with the outcome its
// user chose and reached an agent, and no verification is missing or
// unfinished.
func wantAllCalls(t *testing.T, L losses) {
	t.Helper()
	if L.CallsPlaced != 20 || L.CallErrors != 0 || L.NotEnqueued != 0 || L.WrongOutcome != 0 || L.VerMissing != 0 || L.VerNotFinal != 0 {
		t.Errorf("calls: got %+v, want 20 placed and no errors", L)
	}
}

func readReport(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// runSchemas counts the schemas ivrload runs make in the database.
func runSchemas(t *testing.T, dbURL string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'ivrload\_%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
