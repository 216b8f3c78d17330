// Command ivrload is a load generator for ivrd. On loopback only, it starts
// the simulator broker in-process, runs `ivrd serve` as a subprocess against
// it, connects agent dashboards over websockets and plays Twilio for many
// simultaneous callers (signed webhooks, TwiML, digits, the hold loop),
// while the simulated users approve, decline or ignore their BankID
// requests. It reports per-route webhook latency, end-to-end delays, polls
// per verification, slow_downs, losses, and the server's CPU and memory.
//
// Usage:
//
//	ivrload run [flags]       callers with a mix of outcomes (the default)
//	ivrload pending [flags]   N verifications pending at once: poll punctuality and memory
//
// "ivrload run" also starts the baseline, a bare net/http Twilio responder,
// as another process of this binary ("ivrload bare").
//
// With --instances N --db postgres://… it runs N instances on one
// PostgreSQL database (a fresh schema per run, dropped after) behind a
// round-robin balancer, with the dashboards spread over the instances.
//
// Run "ivrload run -h" for the flags. BENCHMARKS.md has the commands used.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "ivrload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	mode := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		mode, args = args[0], args[1:]
	}
	switch mode {
	case "run":
		cfg, err := parseRun(args, stderr)
		if err != nil {
			return err
		}
		return runCalls(ctx, cfg, stdout, stderr)
	case "pending":
		cfg, err := parsePending(args, stderr)
		if err != nil {
			return err
		}
		return runPending(ctx, cfg, stdout, stderr)
	case "bare":
		if os.Getenv(bareEnv) == "" {
			return errors.New("bare is the baseline responder ivrload run starts itself")
		}
		return runBare(ctx, args, stdout, stderr)
	}
	fmt.Fprintln(stderr, "usage: ivrload [run|pending] [flags]")
	return flag.ErrHelp
}

// common are the settings of every mode.
type common struct {
	Ivrd          string
	KeyAlg        string
	BrokerLatency time.Duration
	Interval      time.Duration
	Expiry        time.Duration
	Duration      time.Duration
	JSON          string
	Keep          bool
	Host          string
	Env           []string
	CPUProfile    string
	Instances     int
	DB            string
	Profile       string // the broker simulated: idura ("" too) or generic
	Mode          string // poll ("" too) or ping
	RESTFail      bool   // the Twilio REST API answers every call update with 503
}

func (c *common) flags(fs *flag.FlagSet) *stringList {
	fs.StringVar(&c.Ivrd, "ivrd", "", "path of a built ivrd binary (default: go build ./cmd/ivrd into a temp dir)")
	fs.StringVar(&c.KeyAlg, "key-alg", "RS256", "private_key_jwt key algorithm: RS256 (Idura), PS256 or ES256")
	fs.DurationVar(&c.BrokerLatency, "broker-latency", 50*time.Millisecond, "latency the simulator adds to every broker response")
	fs.DurationVar(&c.Interval, "interval", 1*time.Second, "polling interval the broker hands out (whole seconds)")
	fs.StringVar(&c.JSON, "json", "", "also write the report as JSON to this file")
	fs.BoolVar(&c.Keep, "keep", false, "keep the temp dir (database, ivrd log)")
	fs.StringVar(&c.Host, "host", "127.0.0.1", "address ivrd, the simulator and the baseline listen on; must be loopback")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write ivrload's own CPU profile (load generator and simulator) to this file")
	fs.IntVar(&c.Instances, "instances", 1, "ivrd serve instances on one database; more than 1 needs --db postgres://… and puts a round-robin balancer in front")
	fs.StringVar(&c.DB, "db", "", "a PostgreSQL database URL (loopback) for the instances: each run gets a fresh schema in it, dropped at the end (default: a sqlite file in the temp dir)")
	env := &stringList{}
	fs.Var(env, "env", "extra KEY=VALUE for ivrd serve (repeatable), e.g. GOMAXPROCS=1")
	return env
}

// describe says where the instances run: "1 instance, sqlite" or
// "2 instances, PostgreSQL".
func (c *common) describe() string {
	db := "sqlite"
	if c.DB != "" {
		db = "PostgreSQL"
	}
	if c.Instances == 1 {
		return "1 instance, " + db
	}
	return fmt.Sprintf("%d instances behind a round-robin balancer, %s", c.Instances, db)
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func (c *common) check() error {
	if ip := net.ParseIP(c.Host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--host %q: ivrload runs on loopback only", c.Host)
	}
	if c.Interval < time.Second || c.Interval%time.Second != 0 {
		return errors.New("--interval: whole seconds, at least 1s (the broker sends seconds)")
	}
	if err := checkDB(c.DB); err != nil {
		return err
	}
	switch {
	case c.Instances < 1:
		return errors.New("--instances: at least 1")
	case c.Instances > 1 && c.DB == "":
		return errors.New("--instances: several instances share a PostgreSQL database: give --db postgres://…")
	}
	return nil
}

// runConfig configures the callers mode.
type runConfig struct {
	common
	Calls       int
	Concurrency int
	Ramp        time.Duration
	Mix         mix
	DecideLo    time.Duration
	DecideHi    time.Duration
	Dashboards  int
	Baseline    bool
	Soak        bool
	Sample      time.Duration
}

func parseRun(args []string, stderr io.Writer) (runConfig, error) {
	var c runConfig
	fs := flag.NewFlagSet("ivrload run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := c.flags(fs)
	fs.IntVar(&c.Calls, "calls", 1000, "calls to place in all (0: until --duration)")
	fs.IntVar(&c.Concurrency, "concurrency", 1000, "simultaneous calls")
	fs.DurationVar(&c.Duration, "duration", 5*time.Minute, "hard bound on the run")
	fs.DurationVar(&c.Ramp, "ramp", 0, "spread the first calls' start over this long (0: all ring at once)")
	mixFlag := fs.String("mix", "approve=70,decline=20,noanswer=10", "what the BankID users do, in percent")
	decide := fs.String("decide-after", "2s-6s", "users approve or decline this long after the request, uniformly at random")
	fs.DurationVar(&c.Expiry, "expiry", 30*time.Second, "request lifetime the broker hands out (no-answer callers hold this long)")
	fs.IntVar(&c.Dashboards, "dashboards", 5, "agent dashboards connected over websockets")
	fs.BoolVar(&c.Baseline, "baseline", true, "send every webhook to a bare net/http responder (its own process, same signature check) too, for comparison")
	fs.StringVar(&c.Profile, "profile", "idura", "the broker simulated: idura (callers type a personnummer) or generic (callers type a customer number; offers ping)")
	fs.StringVar(&c.Mode, "mode", "poll", "CIBA token delivery: poll, or ping (generic profile only)")
	fs.BoolVar(&c.RESTFail, "rest-fail", false, "the Twilio REST API fails every call update (503): holds end by the safety-net hop")
	fs.BoolVar(&c.Soak, "soak", false, "soak: calls without limit for --duration (default 30m), goroutines and memory sampled")
	fs.DurationVar(&c.Sample, "sample", 5*time.Second, "how often server goroutines and memory are sampled")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.Env = *env
	var err error
	if c.Mix, err = parseMix(*mixFlag); err != nil {
		return c, err
	}
	lo, hi, ok := strings.Cut(*decide, "-")
	if c.DecideLo, err = time.ParseDuration(lo); err != nil {
		return c, fmt.Errorf("--decide-after: %w", err)
	}
	c.DecideHi = c.DecideLo
	if ok {
		if c.DecideHi, err = time.ParseDuration(hi); err != nil || c.DecideHi < c.DecideLo {
			return c, fmt.Errorf("--decide-after: want LO-HI, e.g. 2s-6s")
		}
	}
	if c.Soak {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["duration"] {
			c.Duration = 30 * time.Minute
		}
		if !set["calls"] {
			c.Calls = 0
		}
		if !set["concurrency"] {
			c.Concurrency = 200
		}
		if !set["sample"] {
			c.Sample = 30 * time.Second
		}
	}
	if c.Concurrency <= 0 {
		return c, errors.New("--concurrency: must be positive")
	}
	switch {
	case c.Profile != "idura" && c.Profile != "generic":
		return c, fmt.Errorf("--profile %q: idura or generic", c.Profile)
	case c.Mode != "poll" && c.Mode != "ping":
		return c, fmt.Errorf("--mode %q: poll or ping", c.Mode)
	case c.Mode == "ping" && c.Profile != "generic":
		return c, errors.New("--mode ping: Idura polls only; use --profile generic")
	}
	return c, c.check()
}

// env is the shared setting-up of a run: temp dir, database, simulator,
// the ivrd instances.
type env struct {
	profile *os.File
	dir     string
	sim     *sim
	cl      *cluster
	rest    *restAPI
	db      string       // IVR_DB
	dropDB  func() error // removes the run's PostgreSQL schema
}

func setUp(ctx context.Context, c common, stderr io.Writer) (*env, error) {
	dir, err := os.MkdirTemp("", "ivrload-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir}
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		e.profile = f
	}
	bin := c.Ivrd
	if bin == "" {
		fmt.Fprintln(stderr, "ivrload: building ivrd …")
		if bin, err = buildIvrd(ctx, dir); err != nil {
			e.tearDown(c)
			return nil, err
		}
	}
	if e.sim, err = startSim(simConfig{Interval: c.Interval, Latency: c.BrokerLatency, Expiry: c.Expiry, KeyAlg: c.KeyAlg, Dir: dir, Host: c.Host, Profile: c.Profile}); err != nil {
		e.tearDown(c)
		return nil, err
	}
	if e.rest, err = startREST(c.Host, c.RESTFail); err != nil {
		e.tearDown(c)
		return nil, err
	}
	if e.db, e.dropDB, err = runDatabase(ctx, c.DB, dir); err != nil {
		e.tearDown(c)
		return nil, err
	}
	extra := []string{"TWILIO_API_URL=" + e.rest.url}
	if c.Profile == "generic" {
		extra = append(extra, "CIBA_PROFILE=generic", "IVR_IDENTIFY=customer_number", "IVR_CUSTOMER_USER_ID={digits}")
	}
	if c.Mode == "ping" {
		extra = append(extra, "CIBA_MODE=ping")
	}
	if e.cl, err = startCluster(ctx, bin, dir, c.Host, e.db, c.Instances, e.sim, append(extra, c.Env...)); err != nil {
		e.tearDown(c)
		return nil, err
	}
	if c.Mode == "ping" {
		if err := e.sim.ping(e.cl.public + "/ciba/notify"); err != nil {
			e.tearDown(c)
			return nil, err
		}
	}
	for _, s := range e.cl.servers {
		fmt.Fprintf(stderr, "ivrload: %s serving at %s (pid %d)\n", s.name, s.base, s.cmd.Process.Pid)
	}
	fmt.Fprintf(stderr, "ivrload: public URL %s, simulator at %s\n", e.cl.public, e.sim.issuer)
	return e, nil
}

func (e *env) tearDown(c common) {
	if e.profile != nil {
		pprof.StopCPUProfile()
		e.profile.Close()
	}
	if e.cl != nil {
		_ = e.cl.stop()
	}
	if e.sim != nil {
		e.sim.close()
	}
	if e.rest != nil {
		e.rest.close()
	}
	if c.Keep {
		fmt.Fprintln(os.Stderr, "ivrload: kept", e.dir, "and the database", e.db)
		return
	}
	if e.dropDB != nil {
		if err := e.dropDB(); err != nil {
			fmt.Fprintln(os.Stderr, "ivrload: drop the run's schema:", err)
		}
	}
	os.RemoveAll(e.dir)
}

func writeJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}
