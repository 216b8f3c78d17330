package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ivr/callerverify/ivr"
)

// Config is everything `ivrd serve` reads from its environment. Flags of the
// same meaning override the environment.
type Config struct {
	Listen     string        // IVR_LISTEN
	PublicURL  string        // IVR_PUBLIC_URL
	DBPath     string        // IVR_DB
	Language   string        // IVR_LANGUAGE
	AgentQueue string        // IVR_AGENT_QUEUE
	DialNumber string        // IVR_DIAL_NUMBER (optional)
	LogLevel   string        // IVR_LOG_LEVEL
	HashKey    []byte        // IVR_HASH_KEY, or derived from TWILIO_AUTH_TOKEN
	Retention  time.Duration // IVR_RETENTION: how long ended calls and their events are kept
	// IVR_RATE_LIMIT_NUMBER and IVR_RATE_LIMIT_CALLER: verifications started
	// per national identity number and per caller id within a window.
	RateLimitNumber ivr.RateLimit
	RateLimitCaller ivr.RateLimit
	// PollConcurrency bounds token requests in flight toward the broker
	// (IVR_POLL_CONCURRENCY). Polls per second ≈ this / broker latency.
	PollConcurrency int

	TwilioAccountSID string // TWILIO_ACCOUNT_SID
	TwilioAuthToken  string // TWILIO_AUTH_TOKEN

	Broker BrokerConfig
}

// BrokerConfig is the eID broker (CIBA) part of the configuration, shared by
// serve, verify and check.
type BrokerConfig struct {
	Issuer   string // CIBA_ISSUER
	ClientID string // CIBA_CLIENT_ID
	KeyFile  string // CIBA_CLIENT_KEY (PEM or JWK file)
	Secret   string // CIBA_CLIENT_SECRET
	Profile  string // CIBA_PROFILE
	Audience string // CIBA_AUDIENCE (optional; default the issuer)
	// PollConcurrency sizes the broker connection pool (from
	// IVR_POLL_CONCURRENCY; 0 outside serve).
	PollConcurrency int
	// PublishKeys are further key files whose public halves are published
	// in our JWKS but not used for signing: the next key during a rotation,
	// or the previous one until its assertions have expired.
	PublishKeys []string // CIBA_PUBLISH_KEYS, comma-separated
}

// settingErrors collects every bad setting so that an operator fixes them
// all in one go.
type settingErrors []string

func (e *settingErrors) add(name, format string, args ...any) {
	*e = append(*e, name+": "+fmt.Sprintf(format, args...))
}

func (e settingErrors) err() error {
	if len(e) == 0 {
		return nil
	}
	return errors.New("invalid configuration:\n  " + strings.Join(e, "\n  "))
}

var languages = []string{"sv-SE", "nb-NO", "en-US"}

// brokerFlags defines the CIBA settings on fs, with the environment as
// defaults. The client secret is never a flag: it would show in ps.
func brokerFlags(fs *flag.FlagSet, getenv env) *BrokerConfig {
	b := &BrokerConfig{}
	fs.StringVar(&b.Issuer, "issuer", getenv("CIBA_ISSUER"), "eID broker issuer URL (CIBA_ISSUER)")
	fs.StringVar(&b.ClientID, "client-id", getenv("CIBA_CLIENT_ID"), "client ID at the broker (CIBA_CLIENT_ID)")
	fs.StringVar(&b.KeyFile, "client-key", getenv("CIBA_CLIENT_KEY"), "private key file for private_key_jwt, PEM or JWK (CIBA_CLIENT_KEY)")
	fs.StringVar(&b.Profile, "profile", or(getenv("CIBA_PROFILE"), "idura"), "broker profile: idura, auth0, transmit, generic (CIBA_PROFILE)")
	fs.StringVar(&b.Audience, "audience", getenv("CIBA_AUDIENCE"), "client assertion audience; default the issuer (CIBA_AUDIENCE)")
	b.Secret = getenv("CIBA_CLIENT_SECRET")
	for _, f := range strings.Split(getenv("CIBA_PUBLISH_KEYS"), ",") {
		if f = strings.TrimSpace(f); f != "" {
			b.PublishKeys = append(b.PublishKeys, f)
		}
	}
	return b
}

func (b *BrokerConfig) validate(errs *settingErrors) {
	if b.Issuer == "" {
		errs.add("CIBA_ISSUER", "missing: the eID broker's issuer URL, e.g. https://yourdomain.idura.broker")
	} else if err := checkBaseURL(b.Issuer); err != nil {
		errs.add("CIBA_ISSUER", "%v", err)
	}
	if b.ClientID == "" {
		errs.add("CIBA_CLIENT_ID", "missing: the client ID of your application at the broker")
	}
	switch {
	case b.KeyFile == "" && b.Secret == "":
		errs.add("CIBA_CLIENT_KEY", "missing: set CIBA_CLIENT_KEY to a private key file (or CIBA_CLIENT_SECRET for brokers that need a secret)")
	case b.KeyFile != "" && b.Secret != "":
		errs.add("CIBA_CLIENT_SECRET", "set only one of CIBA_CLIENT_KEY and CIBA_CLIENT_SECRET")
	case b.KeyFile != "":
		if _, err := os.Stat(b.KeyFile); err != nil {
			errs.add("CIBA_CLIENT_KEY", "cannot read key file %q: %v", b.KeyFile, errors.Unwrap(err))
		}
	}
	switch b.Profile {
	case "idura", "auth0", "transmit", "generic":
	default:
		errs.add("CIBA_PROFILE", "unknown profile %q: use idura, auth0, transmit or generic", b.Profile)
	}
	for _, f := range b.PublishKeys {
		if _, err := os.Stat(f); err != nil {
			errs.add("CIBA_PUBLISH_KEYS", "cannot read key file %q: %v", f, errors.Unwrap(err))
		}
	}
	if b.Audience != "" {
		if _, err := url.Parse(b.Audience); err != nil {
			errs.add("CIBA_AUDIENCE", "not a URL")
		}
	}
}

// loadServe reads the serve configuration from the environment and flags.
func loadServe(getenv env, args []string) (*Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c := &Config{}
	fs.StringVar(&c.Listen, "listen", or(getenv("IVR_LISTEN"), ":8080"), "listen address (IVR_LISTEN)")
	fs.StringVar(&c.PublicURL, "public-url", getenv("IVR_PUBLIC_URL"), "public https base URL that Twilio calls (IVR_PUBLIC_URL)")
	fs.StringVar(&c.DBPath, "db", getenv("IVR_DB"), "sqlite database file (IVR_DB)")
	fs.StringVar(&c.Language, "language", or(getenv("IVR_LANGUAGE"), "sv-SE"), "default caller language: sv-SE, nb-NO, en-US (IVR_LANGUAGE)")
	fs.StringVar(&c.AgentQueue, "agent-queue", or(getenv("IVR_AGENT_QUEUE"), "support"), "Twilio queue callers are enqueued to (IVR_AGENT_QUEUE)")
	fs.StringVar(&c.DialNumber, "dial", getenv("IVR_DIAL_NUMBER"), "dial this number instead of enqueueing (IVR_DIAL_NUMBER)")
	retention := fs.String("retention", or(getenv("IVR_RETENTION"), "720h"), "how long ended calls and their audit events are kept, e.g. 720h or 90d (IVR_RETENTION)")
	fs.StringVar(&c.LogLevel, "log-level", or(getenv("IVR_LOG_LEVEL"), "info"), "debug, info, warn, error (IVR_LOG_LEVEL)")
	rateNumber := fs.String("rate-limit-number", or(getenv("IVR_RATE_LIMIT_NUMBER"), formatRateLimit(ivr.DefaultRateLimitNumber)), "verifications per national identity number within a window, N/DURATION or off (IVR_RATE_LIMIT_NUMBER)")
	pollConcurrency := fs.String("poll-concurrency", or(getenv("IVR_POLL_CONCURRENCY"), "128"), "token requests in flight toward the broker at most (IVR_POLL_CONCURRENCY)")
	rateCaller := fs.String("rate-limit-caller", or(getenv("IVR_RATE_LIMIT_CALLER"), formatRateLimit(ivr.DefaultRateLimitCaller)), "verifications per caller id within a window, N/DURATION or off (IVR_RATE_LIMIT_CALLER)")
	broker := brokerFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	c.Broker = *broker
	c.TwilioAccountSID = getenv("TWILIO_ACCOUNT_SID")
	c.TwilioAuthToken = getenv("TWILIO_AUTH_TOKEN")

	var errs settingErrors
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs.add("IVR_LISTEN", "not a host:port address: %q", c.Listen)
	}
	if c.PublicURL == "" {
		errs.add("IVR_PUBLIC_URL", "missing: the public https URL Twilio calls, e.g. https://ivr.example.com")
	} else if err := checkBaseURL(c.PublicURL); err != nil {
		errs.add("IVR_PUBLIC_URL", "%v", err)
	}
	if c.DBPath == "" {
		errs.add("IVR_DB", "missing: path of the sqlite database file, e.g. /var/lib/ivrd/ivr.db")
	}
	if !slices.Contains(languages, c.Language) {
		errs.add("IVR_LANGUAGE", "unknown language %q: use sv-SE, nb-NO or en-US", c.Language)
	}
	if strings.TrimSpace(c.AgentQueue) == "" || len(c.AgentQueue) > 64 {
		errs.add("IVR_AGENT_QUEUE", "must be a queue name of 1 to 64 characters")
	}
	if c.DialNumber != "" && !isE164(c.DialNumber) {
		errs.add("IVR_DIAL_NUMBER", "must be an E.164 number such as +46812345678")
	}
	if d, err := parseDays(*retention); err != nil || d < time.Hour {
		errs.add("IVR_RETENTION", "must be a duration of at least 1h, such as 720h or 90d: %q", *retention)
	} else {
		c.Retention = d
	}
	if n, err := strconv.Atoi(*pollConcurrency); err != nil || n < 1 || n > 4096 {
		errs.add("IVR_POLL_CONCURRENCY", "must be a number from 1 to 4096: %q", *pollConcurrency)
	} else {
		c.PollConcurrency, c.Broker.PollConcurrency = n, n
	}
	if l, err := parseRateLimit(*rateNumber); err != nil {
		errs.add("IVR_RATE_LIMIT_NUMBER", "%v", err)
	} else {
		c.RateLimitNumber = l
	}
	if l, err := parseRateLimit(*rateCaller); err != nil {
		errs.add("IVR_RATE_LIMIT_CALLER", "%v", err)
	} else {
		c.RateLimitCaller = l
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs.add("IVR_LOG_LEVEL", "unknown level %q: use debug, info, warn or error", c.LogLevel)
	}
	if c.TwilioAccountSID != "" && (!strings.HasPrefix(c.TwilioAccountSID, "AC") || len(c.TwilioAccountSID) != 34) {
		errs.add("TWILIO_ACCOUNT_SID", "must start with AC and be 34 characters")
	}
	if c.TwilioAuthToken == "" {
		errs.add("TWILIO_AUTH_TOKEN", "missing: needed to check the X-Twilio-Signature of every webhook")
	}
	c.Broker.validate(&errs)
	if k := getenv("IVR_HASH_KEY"); k != "" {
		key, err := decodeKey(k)
		if err != nil || len(key) < 16 {
			errs.add("IVR_HASH_KEY", "must be at least 16 bytes, hex or base64 encoded")
		}
		c.HashKey = key
	} else if c.TwilioAuthToken != "" {
		c.HashKey = deriveKey(c.TwilioAuthToken, "ivrd national id hash v1")
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// parseDays is time.ParseDuration that also accepts whole days ("90d").
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := time.ParseDuration(n + "h")
		return d * 24, err
	}
	return time.ParseDuration(s)
}

// checkBaseURL accepts https URLs, and http ones on loopback only.
func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("not an absolute URL: %q", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("must be https (http is accepted only on loopback): %q", raw)
	default:
		return fmt.Errorf("must be an https URL: %q", raw)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isE164(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' {
		return false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func decodeKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// deriveKey derives a purpose-bound key from a secret.
func deriveKey(secret, purpose string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
