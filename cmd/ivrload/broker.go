package main

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
)

const clientID = "ivrload"

// outcome is what a simulated user does with a request.
type outcome int

const (
	approve outcome = iota
	decline
	noAnswer
)

func (o outcome) String() string { return [...]string{"approve", "decline", "noanswer"}[o] }

// mix is the share of each outcome, in percent.
type mix [3]int

func parseMix(s string) (mix, error) {
	var m mix
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 {
			return m, fmt.Errorf("--mix: want approve=70,decline=20,noanswer=10, got %q", s)
		}
		switch k {
		case "approve":
			m[approve] = n
		case "decline":
			m[decline] = n
		case "noanswer":
			m[noAnswer] = n
		default:
			return m, fmt.Errorf("--mix: unknown outcome %q (approve, decline, noanswer)", k)
		}
	}
	if m[0]+m[1]+m[2] != 100 {
		return m, fmt.Errorf("--mix: shares must add up to 100, got %d", m[0]+m[1]+m[2])
	}
	return m, nil
}

// of picks the outcome of user i: deterministic, evenly spread.
func (m mix) of(i int) outcome {
	p := (i * 37) % 100
	switch {
	case p < m[approve]:
		return approve
	case p < m[approve]+m[decline]:
		return decline
	}
	return noAnswer
}

// sim is the simulator broker on a loopback port, with a recorder of every
// bc-authorize and token request and a scheduler that approves or declines
// manual users at chosen instants.
type sim struct {
	b      *cibatest.Broker
	srv    *http.Server
	issuer string
	keyPEM string // path of the client's private key file
	jwks   []byte // the client's public JWKS, as registered
	// generic: the users are found by a customer number, not a
	// national identity number.
	generic bool

	mu      sync.Mutex
	byHint  map[string]int    // login hint (the national ID or customer number) -> user index
	plans   map[int]outcome   // user index -> outcome
	decided map[int]time.Time // user index -> instant of the decision (t0)
	// learned is when the simulator answered the token request that
	// ended the user's request (the token, or the decline): the instant
	// ivrd learned the outcome.
	learned  map[int]time.Time
	auths    map[string]*authReq // by auth_req_id
	polls    []pollRecord
	codes    map[string]int // token answers by error code ("ok" for tokens)
	authN    int
	authLat  samples
	tokenLat samples
}

type authReq struct {
	user     int
	interval time.Duration
	created  time.Time // bc-authorize answered
	lastResp time.Time // last answer sent for it
	lastArr  time.Time
	polls    int
}

// pollRecord is one token request: when it arrived and how late it was
// against its due time (previous answer + interval, which is what the
// service schedules from).
type pollRecord struct {
	at       time.Time
	late     time.Duration
	interval time.Duration
	sinceArr time.Duration // since the previous request's arrival (the broker's slow_down rule)
}

type simConfig struct {
	Interval, Latency, Expiry time.Duration
	KeyAlg, Dir, Host         string
	Profile                   string // idura ("" too) or generic
}

func startSim(cfg simConfig) (*sim, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, "0"))
	if err != nil {
		return nil, fmt.Errorf("simulator: listen: %w", err)
	}
	s := &sim{
		issuer:  "http://" + ln.Addr().String(),
		byHint:  map[string]int{},
		learned: map[int]time.Time{},
		generic: cfg.Profile == "generic",
		plans:   map[int]outcome{},
		decided: map[int]time.Time{},
		auths:   map[string]*authReq{},
		codes:   map[string]int{},
	}
	s.b, err = cibatest.New(cibatest.Config{Issuer: s.issuer, Profile: cfg.Profile, Interval: cfg.Interval, Latency: cfg.Latency, ExpiresIn: cfg.Expiry, ExpiresInSE: cfg.Expiry, ExpiresInNO: cfg.Expiry})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("simulator: %w", err)
	}
	key, err := ciba.GenerateKey(cfg.KeyAlg)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("client key: %w", err)
	}
	pub, err := ciba.PublicJWKS(key)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("client key: %w", err)
	}
	s.jwks = pub
	if err := s.b.RegisterClient(cibatest.Client{ID: clientID, JWKS: pub}); err != nil {
		ln.Close()
		return nil, fmt.Errorf("register client: %w", err)
	}
	pemBytes, err := ciba.MarshalPrivateKeyPEM(key)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("client key: %w", err)
	}
	s.keyPEM = filepath.Join(cfg.Dir, "client-key.pem")
	if err := os.WriteFile(s.keyPEM, pemBytes, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("client key: %w", err)
	}
	s.b.Observe(s.record)
	s.srv = &http.Server{Handler: s.b, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *sim) close() { s.srv.Close() }

// ping registers the client again as a ping client notified at endpoint.
func (s *sim) ping(endpoint string) error {
	return s.b.RegisterClient(cibatest.Client{ID: clientID, JWKS: s.jwks, DeliveryMode: cibatest.DeliveryPing, NotificationEndpoint: endpoint})
}

// addUser registers user i with the outcome o and returns the number the
// caller types: a personnummer, or at a generic broker an 8-digit customer
// number (IVR_CUSTOMER_USER_ID={digits}: the number is the user id).
func (s *sim) addUser(i int, o outcome) string {
	script := cibatest.ScriptManual
	if o == noAnswer {
		script = cibatest.ScriptNoAnswer
	}
	u := cibatest.User{GivenName: "Load", FamilyName: fmt.Sprintf("U%07d", i), Script: script}
	var number string
	if s.generic {
		number = "7" + pad(i, 7)
		u.UserID = number
	} else {
		number = personnummer(i)
		u.NationalID = number
	}
	s.b.AddUser(u)
	s.mu.Lock()
	s.byHint[number] = i
	s.plans[i] = o
	s.mu.Unlock()
	return number
}

// record keeps what the simulator was asked and answered: bc-authorize
// (which user, the interval handed out) and every token request (its
// punctuality, its answer, the answer that ended the request).
func (s *sim) record(x cibatest.Exchange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x.Endpoint == "bc-authorize" {
		s.authN++
		s.authLat.add(x.Answered.Sub(x.Arrived))
		if x.AuthReqID == "" || x.Error != "" {
			return
		}
		hint, _ := strings.CutPrefix(x.Form.Get("login_hint"), "sub:ssn:")
		user, ok := s.byHint[hint]
		if !ok {
			user = -1
		}
		iv := x.Interval
		if iv == 0 {
			iv = 5 * time.Second
		}
		s.auths[x.AuthReqID] = &authReq{user: user, interval: iv, created: x.Answered, lastResp: x.Answered}
		return
	}
	arrived, done := x.Arrived, x.Answered
	s.tokenLat.add(done.Sub(arrived))
	code := cmp.Or(x.Error, "ok")
	s.codes[code]++
	a := s.auths[x.AuthReqID]
	if a == nil {
		return
	}
	p := pollRecord{at: arrived, late: arrived.Sub(a.lastResp.Add(a.interval)), interval: a.interval}
	if a.polls > 0 {
		p.sinceArr = arrived.Sub(a.lastArr)
	} else {
		p.sinceArr = arrived.Sub(a.created)
	}
	s.polls = append(s.polls, p)
	if _, seen := s.learned[a.user]; !seen && (code == "ok" || code == "access_denied") {
		s.learned[a.user] = done
	}
	a.polls++
	prevResp := a.lastResp
	a.lastArr, a.lastResp = arrived, done
	if code == "slow_down" {
		a.interval += ciba.SlowDownStep
		if os.Getenv("IVRLOAD_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "slow_down: user %d poll %d, %s since the previous request, %s since the previous answer\n", a.user, a.polls, p.sinceArr, arrived.Sub(prevResp))
		}
	}
}

// schedule approves or declines manual users' requests at creation + a
// random delay in [lo, hi], until ctx ends. The instant of each decision
// is kept as the user's t0.
func (s *sim) schedule(ctx context.Context, lo, hi time.Duration) {
	seen := map[string]bool{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var timers []*time.Timer
	defer func() {
		for _, t := range timers {
			t.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, rq := range s.b.Requests() {
			if rq.State != cibatest.StatePending || seen[rq.ID] {
				continue
			}
			seen[rq.ID] = true
			var i int
			if _, err := fmt.Sscanf(rq.Name, "Load U%d", &i); err != nil {
				continue
			}
			s.mu.Lock()
			o, ok := s.plans[i]
			s.mu.Unlock()
			if !ok || o == noAnswer {
				continue
			}
			delay := lo
			if hi > lo {
				delay += rand.N(hi - lo)
			}
			id := rq.ID
			timers = append(timers, time.AfterFunc(time.Until(rq.CreatedAt.Add(delay)), func() {
				t0 := time.Now()
				var err error
				if o == approve {
					err = s.b.Approve(id, "")
				} else {
					err = s.b.Decline(id)
				}
				if err == nil {
					s.mu.Lock()
					s.decided[i] = t0
					s.mu.Unlock()
				}
			}))
		}
	}
}

// pollsPerAuth returns the number of token requests per bc-authorize.
func (s *sim) pollsPerAuth() (perUser map[int]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	perUser = map[int]int{}
	for _, a := range s.auths {
		if a.user >= 0 {
			perUser[a.user] += a.polls
		}
	}
	return perUser
}
