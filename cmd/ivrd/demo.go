package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ivr/callerverify/agentui"
	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/internal/netutil"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
	"github.com/ivr/callerverify/web"
)

const (
	demoAuthToken  = "demo0auth0token0not0secret"         // letters and digits, as a real one
	demoAccountSID = "AC00000000000000000000000000de7000" // shaped like a real one: webhooks are checked against it
	demoClientID   = "ivr-demo"
	demoAgent      = "demo"
	demoFrom       = "+46701234567"
	demoTo         = "+46812345678"
)

// cmdDemo runs the whole product on one machine with embedded defaults: the
// service, the simulator broker in-process, sqlite in a temporary directory,
// a demo agent, and the demo's phone and BankID app pages. Twilio signature
// checking stays on, with a demo auth token that the phone page signs with.
func cmdDemo(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("demo", flag.ContinueOnError)
	fset.SetOutput(stderr)
	listen := fset.String("listen", "127.0.0.1:8080", "listen address (loopback); falls back to a free port if taken")
	call := fset.String("call", "", "run one scripted call in the terminal with this test user's national identity number (idura), customer number or phone number (transmit: calls from it), print the transcript, and exit (0 when verified)")
	mode := fset.String("mode", ivr.ModePoll, "token delivery: poll, or ping (the generic profile): the simulator notifies /ciba/notify")
	profileName := fset.String("profile", "idura", "the broker the demo simulates: idura (BankID), auth0 (Guardian push), transmit (Mosaic link by SMS), generic (CIBA Core)")
	language := fset.String("language", cmp.Or(getenv("IVR_LANGUAGE"), ivr.English), "caller language: "+strings.Join(ivr.Languages, ", "))
	verbose := fset.Bool("v", false, "log at info level (default: warnings only)")
	if err := fset.Parse(args); err != nil {
		return flagError(err)
	}
	if err := ivr.CheckLanguage(*language); err != nil {
		return fmt.Errorf("--language: %w", err)
	}
	profile, err := ciba.ProfileByName(*profileName)
	if err != nil {
		return fmt.Errorf("--profile: %w", err)
	}
	if err := ivr.CheckMode(profile, *mode); err != nil {
		return fmt.Errorf("--mode: %w", err)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := newLogger(stderr, level)

	ln, err := net.Listen("tcp", *listen)
	if err != nil && *listen == "127.0.0.1:8080" {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return fmt.Errorf("demo: listen: %w", err)
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !netutil.IsLoopbackHost(host) {
		ln.Close()
		return fmt.Errorf("demo: --listen must be a loopback address: the demo has a published auth token")
	}
	dir, err := os.MkdirTemp("", "ivrd-demo-")
	if err != nil {
		ln.Close()
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)

	base := "http://" + ln.Addr().String()
	notify := ""
	if *mode == ivr.ModePing {
		notify = base + ivr.NotifyPath
	}
	sim, creds, err := demoBroker(base+"/broker", profile, notify)
	if err != nil {
		ln.Close()
		return err
	}
	hashKey := make([]byte, 32)
	rand.Read(hashKey)
	password := randomHex(16)
	cfg := &Config{
		Listen:           ln.Addr().String(),
		PublicURL:        base,
		DBPath:           filepath.Join(dir, "ivr.db"),
		Language:         *language,
		AgentQueue:       "support",
		LogLevel:         level,
		HashKey:          hashKey,
		TwilioAuthToken:  demoAuthToken,
		TwilioAccountSID: demoAccountSID,
		TwilioAPIURL:     base + "/demo/twilio", // call updates reach the phone page or the terminal's call
		Broker:           BrokerConfig{Issuer: sim.Issuer(), ClientID: demoClientID, Profile: profile.Name, Secret: creds.secret},
		Identify:         ivr.DefaultIdentify(profile),
		Mode:             *mode,
		Customer:         demoCustomerRules(profile),
	}
	broker := &lazyBroker{}
	updates := newDemoCalls()
	var running atomic.Pointer[app]
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var result error // the demo call's, or the demo agent's, set before cancel
	err = runServer(ctx, server{
		cfg:      cfg,
		log:      log,
		listener: ln,
		broker:   broker,
		jwks:     creds.jwks(),
		discover: func(ctx context.Context) {
			c, err := ciba.New(ctx, ciba.Config{Issuer: sim.Issuer(), ClientID: demoClientID, Key: creds.key, Secret: creds.secret, Profile: profile, HTTPClient: sim.HTTPClient()})
			if err != nil {
				log.Error("demo broker discovery", "err", err)
				return
			}
			broker.client.Store(c)
		},
		extra:     func(r chi.Router) { demoRoutes(r, cfg, sim, updates, &running, password) },
		demoLogin: "/demo/login",
		wrap:      func(h http.Handler) http.Handler { return loopbackHostOnly(ln.Addr().String(), h) },
		started: func(a *app) {
			running.Store(a)
			if err := a.addDemoAgent(ctx, password); err != nil {
				result = err
				cancel()
				return
			}
			if *call != "" {
				go func() {
					result = runDemoCall(ctx, a, cfg, profile, updates, *call, stdout)
					cancel()
				}()
				return
			}
			printDemo(stdout, base, profile)
		},
	})
	return errors.Join(err, result) // after runServer: result is set by then
}

// loopbackHostOnly answers only requests whose Host is the demo's own
// loopback address (or localhost at its port). A page on another site can
// point a name of its own at 127.0.0.1 (DNS rebinding) and would otherwise
// reach the demo agent's one-click login and the demo auth token.
func loopbackHostOnly(addr string, next http.Handler) http.Handler {
	_, port, _ := net.SplitHostPort(addr)
	ok := map[string]bool{addr: true, "localhost:" + port: true, "127.0.0.1:" + port: true, "[::1]:" + port: true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ok[strings.ToLower(r.Host)] {
			http.Error(w, "the demo answers only http://"+addr+" (its Host is checked against DNS rebinding)", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// demoCreds are how the demo authenticates to its simulated broker: a
// fresh private_key_jwt key where the profile takes one, a client secret
// where it does not (Transmit).
type demoCreds struct {
	key    ciba.Key
	secret string
}

func (c demoCreds) jwks() []ciba.Key {
	if c.key.Signer == nil {
		return nil
	}
	return []ciba.Key{c.key}
}

// demoBroker starts the in-process simulator speaking profile's broker and
// registers the demo's client with it: in ping mode with notify as its
// client notification endpoint.
func demoBroker(issuer string, profile *ciba.Profile, notify string) (*cibatest.Broker, demoCreds, error) {
	var creds demoCreds
	sim, err := cibatest.New(cibatest.Config{Issuer: issuer, Profile: profile.Name})
	if err != nil {
		return nil, creds, fmt.Errorf("demo: simulator: %w", err)
	}
	client := cibatest.Client{ID: demoClientID}
	if notify != "" {
		client.DeliveryMode, client.NotificationEndpoint = cibatest.DeliveryPing, notify
	}
	if slices.Contains(profile.AuthMethods, ciba.PrivateKeyJWT) {
		if creds.key, err = ciba.GenerateKey("RS256"); err != nil {
			return nil, creds, fmt.Errorf("demo: signing key: %w", err)
		}
		if client.JWKS, err = ciba.PublicJWKS(creds.key); err != nil {
			return nil, creds, fmt.Errorf("demo: public key: %w", err)
		}
	} else {
		creds.secret = randomHex(24)
		client.Secret = creds.secret
	}
	if err := sim.RegisterClient(client); err != nil {
		return nil, creds, fmt.Errorf("demo: register client: %w", err)
	}
	return sim, creds, nil
}

// demoCustomerRules are the simulator's customer numbers: 8 digits with a
// Luhn check digit; at Auth0 they name "auth0|" users.
func demoCustomerRules(p *ciba.Profile) ivr.CustomerRules {
	r := ivr.CustomerRules{MinDigits: 8, MaxDigits: 8, Check: "luhn"}
	if p.Name == cibatest.ProfileAuth0 {
		r.Template = cibatest.Auth0UserIDPrefix + "{digits}"
	}
	return r
}

func (a *app) addDemoAgent(ctx context.Context, password string) error {
	if err := agentui.AddAgent(ctx, a.db, demoAgent, password, time.Now()); err != nil {
		return fmt.Errorf("demo: add agent: %w", err)
	}
	return nil
}

// demoRoutes serves the simulator, the demo pages and their config.
func demoRoutes(r chi.Router, cfg *Config, sim *cibatest.Broker, updates *demoCalls, running *atomic.Pointer[app], password string) {
	r.Handle("/broker/*", sim)
	r.Handle("/demo/twilio/*", http.StripPrefix("/demo/twilio", virtualtwilio.RESTHandler(demoAccountSID, demoAuthToken, updates)))
	r.Get("/demo/api/calls/{sid}/updates", updates.handleStream)
	static, _ := fs.Sub(web.FS, "static/demo")
	r.Handle("/demo/static/*", demoPageHeaders(http.StripPrefix("/demo/static/", http.FileServerFS(static))))
	page := func(name string) http.HandlerFunc {
		return demoPageHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			http.ServeFileFS(w, r, static, name)
		})).ServeHTTP
	}
	r.Get("/demo/phone", page("phone.html"))
	// The approval app looks like the broker's (config.profile); /demo/bankid
	// is its first name, which printDemo still prints.
	r.Get("/demo/app", page("app.html"))
	r.Get("/demo/bankid", page("app.html"))
	r.Get("/demo", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/demo/phone", http.StatusFound) })
	r.Get("/demo/login", func(w http.ResponseWriter, r *http.Request) {
		a := running.Load()
		if a == nil {
			http.Error(w, "starting up; try again in a moment", http.StatusServiceUnavailable)
			return
		}
		cookie, err := a.ui.Login(r.Context(), demoAgent, password)
		if err != nil {
			http.Error(w, "demo login failed", http.StatusInternalServerError)
			return
		}
		http.SetCookie(w, cookie)
		http.Redirect(w, r, "/agent/", http.StatusFound)
	})
	r.Get("/demo/api/config", func(w http.ResponseWriter, r *http.Request) {
		var users []map[string]string
		for _, u := range demoUsers(cfg.Broker.Profile) {
			users = append(users, map[string]string{"name": u.name, "number": u.number, "country": u.country,
				"phone": u.phone, "email": u.email, "script": u.script})
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"publicURL": cfg.PublicURL, "twilioAuthToken": demoAuthToken, "accountSid": demoAccountSID,
			"voicePath": "/twilio/voice", "statusPath": "/twilio/status", "from": demoFrom, "to": demoTo,
			"simURL": "/broker/sim", "dashboardURL": "/demo/login", "users": users,
			"updatesPath": "/demo/api/calls/{sid}/updates", "requestsURL": "/demo/api/requests",
			"profile": cfg.Broker.Profile, "approver": ivr.Approver(profileOf(cfg)), "identify": cfg.Identify,
		})
	})
	r.Get("/demo/api/requests", func(w http.ResponseWriter, r *http.Request) {
		a := running.Load()
		if a == nil {
			http.Error(w, "starting up; try again in a moment", http.StatusServiceUnavailable)
			return
		}
		reqs, err := demoRequests(r.Context(), a, sim)
		if err != nil {
			http.Error(w, "could not list the requests", http.StatusInternalServerError)
			return
		}
		writeJSON(w, http.StatusOK, reqs)
	})
}

// demoRequest is a request of the simulated broker as the demo's approval
// page shows it: linked to the call that asked for it.
type demoRequest struct {
	cibatest.Request
	CallSID       string     `json:"callSid,omitempty"`
	Caller        string     `json:"caller,omitempty"` // the demo call's caller id, in full: it is made up
	CallStartedAt *time.Time `json:"callStartedAt,omitempty"`
	Initiator     string     `json:"initiator,omitempty"` // "caller", or "agent:<name>"
}

// demoRequests lists the simulator's requests, newest first, each with the
// call whose verification made it.
func demoRequests(ctx context.Context, a *app, sim *cibatest.Broker) ([]demoRequest, error) {
	bySimID := map[string]demoRequest{}
	for _, f := range []store.CallFilter{{Live: true}, {EndedSince: time.Now().Add(-time.Hour)}} {
		calls, err := a.db.Calls(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, c := range calls {
			if c.VerificationID == "" {
				continue
			}
			v, err := a.db.Verification(ctx, c.VerificationID)
			if err != nil || v.AuthReqID == "" {
				continue
			}
			if sr, ok := sim.RequestForAuthReqID(v.AuthReqID); ok {
				started := c.CreatedAt
				bySimID[sr.ID] = demoRequest{Request: sr, CallSID: c.SID, Caller: c.From, CallStartedAt: &started, Initiator: v.Initiator}
			}
		}
	}
	out := []demoRequest{}
	for _, sr := range sim.Requests() {
		dr, ok := bySimID[sr.ID]
		if !ok {
			dr = demoRequest{Request: sr}
		}
		out = append(out, dr)
	}
	return out, nil
}

// profileOf is the broker profile cfg names (checked at start).
func profileOf(cfg *Config) *ciba.Profile {
	p, _ := ciba.ProfileByName(cfg.Broker.Profile)
	return p
}

// demoUser is a simulator test user as the demo lists it.
type demoUser struct {
	name    string
	number  string // what the caller types: national identity number or customer number
	country string // SE or NO for a national identity number
	phone   string // Transmit: the phone a request can go to
	email   string
	script  string
}

func demoUsers(profile string) []demoUser {
	var out []demoUser
	for _, u := range cibatest.UsersFor(profile) {
		d := demoUser{name: u.GivenName + " " + u.FamilyName, phone: u.Phone, email: u.Email, script: u.Script.String()}
		if u.NationalID != "" {
			d.number, d.country = u.NationalID, string(store.Sweden)
			if id, err := ivr.ParseNationalID(u.NationalID, time.Now()); err == nil {
				d.country = string(id.Country())
			}
		} else {
			d.number = strings.TrimPrefix(u.UserID, cibatest.Auth0UserIDPrefix)
		}
		if profile != cibatest.ProfileTransmit {
			d.phone, d.email = "", "" // only Transmit takes them as login hints
		}
		out = append(out, d)
	}
	return out
}

func printDemo(w io.Writer, base string, p *ciba.Profile) {
	app := ivr.Approver(p)
	how := "type one of the test numbers below and #, then approve"
	switch p.Name {
	case cibatest.ProfileAuth0:
		how = "type one of the customer numbers below and #, then approve the Guardian push"
	case cibatest.ProfileTransmit:
		how = "call from one of the phones below and press 1 (or press 2 and type a customer number and #), then approve"
	case cibatest.ProfileGeneric:
		how = "press 2, type one of the customer numbers below and #, then approve"
	}
	fmt.Fprintf(w, `ivrd demo is running with the %[2]s broker (everything in-process; Twilio signatures checked with a demo token).

  Phone (you are the caller):    %[1]s/demo/phone
  %-30[3]s %[1]s/demo/app
  Agent dashboard (logged in):   %[1]s/demo/login

Call from the phone page, %[4]s
in the app page and watch the dashboard. Press Ctrl-C to stop; nothing is kept.

`, base, p.Name, app+" on that phone:", how)
	printTestUsers(w, p.Name)
}

// runDemoCall plays one call through the real webhooks over HTTP and prints
// the transcript.
//
// who is the test user: the number to type, or at a broker that takes the
// caller id, a phone number (+…) to call from; the caller then chooses it
// in the menu. One attempt; silence afterwards.
func runDemoCall(ctx context.Context, a *app, cfg *Config, p *ciba.Profile, updates *demoCalls, who string, stdout io.Writer) error {
	tw := &virtualtwilio.Twilio{BaseURL: cfg.PublicURL, AuthToken: demoAuthToken, AccountSID: demoAccountSID, HTTPClient: &http.Client{Timeout: 20 * time.Second}}
	updates.terminal.Store(tw)
	from, byPhone := demoFrom, strings.HasPrefix(who, "+")
	if byPhone {
		if !slices.Contains(cfg.Identify, store.IDCallerID) {
			return fmt.Errorf("--call %s: the %s broker does not identify callers by the number they call from; give a number to type", who, p.Name)
		}
		from = who
	}
	menu, typed := false, false
	tr, err := tw.Call(ctx, virtualtwilio.Caller{
		From: from, To: demoTo,
		Keys: func(heard string) string {
			switch {
			case !menu && containsAny(heard, "telefonen du ringer från", "telefonen du ringer fra", "phone you're calling from"):
				menu = true
				if byPhone {
					return "1"
				}
				return "2"
			case !typed && !byPhone && containsAny(heard, "avsluta med fyrkant", "avslutt med firkant", "followed by the pound key"):
				typed = true
				return who + "#"
			}
			return ""
		},
	})
	if tr != nil {
		printTranscript(stdout, tr)
	}
	if err != nil {
		return fmt.Errorf("demo call: %w", err)
	}
	c, err := a.db.Call(ctx, tr.CallSID)
	if err != nil {
		return fmt.Errorf("demo call: %w", err)
	}
	fmt.Fprintf(stdout, "\nOutcome: %s (%s)\n", cmp.Or(c.Outcome, "none"), tr.Outcome)
	if c.Outcome != "verified" {
		return exitCode(1)
	}
	return nil
}

func printTranscript(w io.Writer, tr *virtualtwilio.Transcript) {
	for _, l := range tr.Lines {
		at := fmt.Sprintf("%6.1fs", l.At.Seconds())
		switch l.Kind {
		case "say":
			fmt.Fprintf(w, "%s  IVR (%s): %s\n", at, l.Language, l.Text)
		case "press":
			fmt.Fprintf(w, "%s  caller presses: %s\n", at, maskDigits(l.Text))
		case "gather":
			fmt.Fprintf(w, "%s  [listening for keys]\n", at)
		default:
			fmt.Fprintf(w, "%s  [%s] %s\n", at, l.Kind, l.Text)
		}
	}
}

// maskDigits hides all but the last two digits of what the caller typed.
func maskDigits(s string) string {
	if len(s) <= 3 {
		return s
	}
	return strings.Repeat("*", len(s)-3) + s[len(s)-3:]
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}
