package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ivr/callerverify/internal/lbtest"
)

// server is an `ivrd serve` subprocess on a loopback port.
type server struct {
	name    string // "ivrd-1", …
	cmd     *exec.Cmd
	base    string // http://127.0.0.1:port, the instance itself
	logPath string
	exited  chan error
}

// cluster is the instances of one run, on one database, and what Twilio
// and the dashboards see of them.
type cluster struct {
	servers   []*server
	public    string // IVR_PUBLIC_URL: the balancer with several instances, else the instance
	authToken string
	password  string
	db        string // IVR_DB: the sqlite file, or the PostgreSQL URL of the run's schema
	lb        *lbtest.Balancer
	lbSrv     *http.Server
}

const agentName = "loadtest"

// buildIvrd compiles ./cmd/ivrd of this module into dir.
func buildIvrd(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "ivrd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/ivr/callerverify/cmd/ivrd")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ivrd: %w", err)
	}
	return out, nil
}

// freePort returns a loopback address that was free a moment ago.
func freePort(host string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startCluster adds the load-test agent to db and starts n `ivrd serve`
// instances on it with their configuration in the environment, behind a
// round-robin balancer when n > 1, then waits until every /readyz says
// ready.
func startCluster(ctx context.Context, bin, dir, host, db string, n int, s *sim, extraEnv []string) (*cluster, error) {
	cl := &cluster{authToken: randomHex(16), password: randomHex(12), db: db}
	addrs := make([]string, n)
	for i := range addrs {
		addr, err := freePort(host)
		if err != nil {
			return nil, fmt.Errorf("ivrd: pick a port: %w", err)
		}
		addrs[i] = addr
	}
	cl.public = "http://" + addrs[0]
	if n > 1 {
		var backends []string
		for _, a := range addrs {
			backends = append(backends, "http://"+a)
		}
		var err error
		if cl.lb, err = lbtest.New(backends...); err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("balancer: listen: %w", err)
		}
		cl.public = "http://" + ln.Addr().String()
		cl.lbSrv = &http.Server{Handler: cl.lb, ReadHeaderTimeout: 10 * time.Second}
		go cl.lbSrv.Serve(ln)
	}
	env := append(os.Environ(),
		"IVR_PUBLIC_URL="+cl.public,
		"IVR_DB="+cl.db,
		"IVR_LANGUAGE=en-US",
		"IVR_LOG_LEVEL=warn",
		"TWILIO_AUTH_TOKEN="+cl.authToken,
		"TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000", // the virtual Twilio's
		"IVR_HASH_KEY="+randomHex(32),
		// The load is many callers with their own numbers arriving at
		// once: the global cap, sized for a real broker contract, would
		// refuse most of them.
		"IVR_RATE_LIMIT_GLOBAL=off",
		"CIBA_ISSUER="+s.issuer,
		"CIBA_CLIENT_ID="+clientID,
		"CIBA_CLIENT_KEY="+s.keyPEM,
	)
	env = append(env, extraEnv...)

	add := exec.CommandContext(ctx, bin, "agents", "add", agentName)
	add.Env = env
	add.Stdin = strings.NewReader(cl.password + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		cl.stop()
		return nil, fmt.Errorf("ivrd agents add: %w: %s", err, out)
	}
	for i, addr := range addrs {
		srv, err := startServer(bin, dir, fmt.Sprintf("ivrd-%d", i+1), addr, env)
		if err != nil {
			cl.stop()
			return nil, err
		}
		cl.servers = append(cl.servers, srv)
	}
	for _, srv := range cl.servers {
		if err := srv.waitReady(); err != nil {
			cl.stop()
			return nil, err
		}
	}
	return cl, nil
}

// startServer starts one `ivrd serve` listening on addr.
func startServer(bin, dir, name, addr string, env []string) (*server, error) {
	srv := &server{name: name, base: "http://" + addr, logPath: filepath.Join(dir, name+".log"), exited: make(chan error, 1)}
	logf, err := os.Create(srv.logPath)
	if err != nil {
		return nil, err
	}
	srv.cmd = exec.Command(bin, "serve")
	srv.cmd.Env = append(slices.Clone(env), "IVR_LISTEN="+addr)
	srv.cmd.Stdout, srv.cmd.Stderr = logf, logf
	if err := srv.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start ivrd: %w", err)
	}
	go func() { srv.exited <- srv.cmd.Wait(); logf.Close() }()
	return srv, nil
}

// waitReady waits until the instance's /readyz says ready.
func (s *server) waitReady() error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-s.exited:
			s.exited <- err
			return fmt.Errorf("%s exited at start (%v); see %s", s.name, err, s.logPath)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 30 s; see %s", s.name, s.logPath)
		}
	}
}

// stop stops every instance, then the balancer.
func (cl *cluster) stop() error {
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range cl.servers {
		wg.Go(func() {
			if err := s.stop(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if cl.lbSrv != nil {
		cl.lbSrv.Close()
	}
	return errors.Join(errs...)
}

// bases are the instances' own URLs.
func (cl *cluster) bases() []string {
	out := make([]string, len(cl.servers))
	for i, s := range cl.servers {
		out[i] = s.base
	}
	return out
}

// stop sends SIGTERM and waits for the process (SIGKILL after 20 s).
func (s *server) stop() error {
	if s.cmd.Process == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		s.exited <- err
		return err
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		return errors.New("ivrd did not stop within 20 s; killed")
	}
}

// procStats are the server process's CPU time and memory.
type procStats struct {
	CPU     time.Duration // utime + stime
	RSS     int64         // VmRSS, bytes
	PeakRSS int64         // VmHWM, bytes
}

// readProc reads /proc/<pid>/stat and /proc/<pid>/status.
func readProc(pid int) (procStats, error) {
	var st procStats
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) > 13 {
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		stt, _ := strconv.ParseInt(f[12], 10, 64)
		st.CPU = time.Duration(ut+stt) * time.Second / 100 // USER_HZ is 100 on Linux
	}
	sf, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	defer sf.Close()
	sc := bufio.NewScanner(sf)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		n, _ := strconv.ParseInt(strings.Fields(v + " 0")[0], 10, 64)
		switch k {
		case "VmRSS":
			st.RSS = n << 10
		case "VmHWM":
			st.PeakRSS = n << 10
		}
	}
	return st, nil
}

// scrape fetches /metrics and returns the samples whose name (with labels)
// starts with one of prefixes.
func scrape(base string, prefixes ...string) (map[string]float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name := line[:i]
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				v, err := strconv.ParseFloat(line[i+1:], 64)
				if err == nil {
					out[name] = v
				}
				break
			}
		}
	}
	return out, sc.Err()
}

// histQuantile estimates quantile q of a Prometheus histogram from its
// cumulative buckets, summed over the series whose labels contain labels: the
// upper bound of the bucket holding it, and the count.
func histQuantile(m map[string]float64, name, labels string, q float64) (float64, float64) {
	sums := map[float64]float64{}
	for k, v := range m {
		if !strings.HasPrefix(k, name+"_bucket{") || !strings.Contains(k, labels) {
			continue
		}
		i := strings.Index(k, `le="`)
		if i < 0 {
			continue
		}
		les := k[i+4:]
		les = les[:strings.IndexByte(les, '"')]
		le, err := strconv.ParseFloat(les, 64)
		if les == "+Inf" {
			le, err = math.Inf(1), nil
		}
		if err != nil {
			continue
		}
		sums[le] += v
	}
	total := sums[math.Inf(1)]
	if total == 0 {
		return 0, 0
	}
	best := math.Inf(1)
	for le, n := range sums {
		if n >= q*total && le < best {
			best = le
		}
	}
	return best, total
}

// machineBusy returns the CPU time all processes have used (user, nice,
// system, irq, softirq, steal) from /proc/stat.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / 100
}

// instanceUse is one instance's share of a run.
type instanceUse struct {
	Name     string        `json:"name"`
	CPU      time.Duration `json:"cpu"`
	Cores    float64       `json:"cores"`
	PeakRSS  int64         `json:"peak_rss_bytes"`
	Requests int64         `json:"requests_from_balancer,omitempty"`
}

// procs reads every instance's CPU time and memory.
func (cl *cluster) procs() []procStats {
	out := make([]procStats, len(cl.servers))
	for i, s := range cl.servers {
		out[i], _ = readProc(s.cmd.Process.Pid)
	}
	return out
}

// use is each instance's CPU between two procs readings over wall, its
// peak RSS, and the requests the balancer sent it.
func (cl *cluster) use(before, after []procStats, wall time.Duration) []instanceUse {
	var served []int64
	if cl.lb != nil {
		served = cl.lb.Served()
	}
	out := make([]instanceUse, len(cl.servers))
	for i, s := range cl.servers {
		u := instanceUse{Name: s.name, CPU: after[i].CPU - before[i].CPU, PeakRSS: after[i].PeakRSS}
		u.Cores = u.CPU.Seconds() / wall.Seconds()
		if i < len(served) {
			u.Requests = served[i]
		}
		out[i] = u
	}
	return out
}

// scrape scrapes every instance and sums each sample over them (counters
// and histogram buckets add up; for gauges it is the total).
func (cl *cluster) scrape(prefixes ...string) (map[string]float64, error) {
	sum := map[string]float64{}
	for _, s := range cl.servers {
		m, err := scrape(s.base, prefixes...)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			sum[k] += v
		}
	}
	return sum, nil
}

// processCPU returns the CPU time of every process whose command name is
// comm (e.g. "postgres": the server and its backends), by pid.
func processCPU(comm string) map[int]time.Duration {
	out := map[int]time.Duration{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(b)) != comm {
			continue
		}
		if st, err := readProc(pid); err == nil {
			out[pid] = st.CPU
		}
	}
	return out
}

// cpuSince is the CPU the processes of after used since before (a process
// started since counts whole; one that ended meanwhile is not counted).
func cpuSince(before, after map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, cpu := range after {
		d += cpu - before[pid]
	}
	return d
}
