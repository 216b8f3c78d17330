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
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is an `ivrd serve` subprocess on a loopback port.
type server struct {
	cmd       *exec.Cmd
	base      string // http://127.0.0.1:port
	authToken string
	db        string
	logPath   string
	password  string
	exited    chan error
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

// startServer adds the load-test agent and starts `ivrd serve` with its
// configuration in the environment, then waits until /readyz says ready.
func startServer(ctx context.Context, bin, dir, host string, s *sim, extraEnv []string) (*server, error) {
	addr, err := freePort(host)
	if err != nil {
		return nil, fmt.Errorf("ivrd: pick a port: %w", err)
	}
	srv := &server{
		base:      "http://" + addr,
		authToken: randomHex(16),
		db:        filepath.Join(dir, "ivr.db"),
		logPath:   filepath.Join(dir, "ivrd.log"),
		password:  randomHex(12),
		exited:    make(chan error, 1),
	}
	env := append(os.Environ(),
		"IVR_LISTEN="+addr,
		"IVR_PUBLIC_URL="+srv.base,
		"IVR_DB="+srv.db,
		"IVR_LANGUAGE=en-US",
		"IVR_LOG_LEVEL=warn",
		"TWILIO_AUTH_TOKEN="+srv.authToken,
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
	add.Stdin = strings.NewReader(srv.password + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ivrd agents add: %w: %s", err, out)
	}

	logf, err := os.Create(srv.logPath)
	if err != nil {
		return nil, err
	}
	srv.cmd = exec.Command(bin, "serve")
	srv.cmd.Env = env
	srv.cmd.Stdout, srv.cmd.Stderr = logf, logf
	if err := srv.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start ivrd: %w", err)
	}
	go func() { srv.exited <- srv.cmd.Wait(); logf.Close() }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(srv.base + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return srv, nil
			}
		}
		select {
		case err := <-srv.exited:
			return nil, fmt.Errorf("ivrd exited at start (%v); see %s", err, srv.logPath)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			srv.stop()
			return nil, fmt.Errorf("ivrd not ready after 30 s; see %s", srv.logPath)
		}
	}
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
