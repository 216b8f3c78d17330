package main

import (
	"cmp"
	"encoding"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/internal/netutil"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
)

// Config is everything `ivrd serve` reads from its environment. Flags of the
// same meaning override the environment; secrets are environment-only (a
// flag would show in ps) and may come from a file (NAME_FILE), the way
// container platforms hand them over.
type Config struct {
	Listen      string        // IVR_LISTEN
	AdminListen string        // IVR_ADMIN_LISTEN: /metrics and readiness off the public port (optional)
	PublicURL   string        // IVR_PUBLIC_URL
	DBPath      string        // IVR_DB: a sqlite file, or a postgres:// URL (several instances)
	Language    string        // IVR_LANGUAGE
	AgentQueue  string        // IVR_AGENT_QUEUE
	DialNumber  string        // IVR_DIAL_NUMBER (optional)
	LogLevel    slog.Level    // IVR_LOG_LEVEL
	HashKey     []byte        // IVR_HASH_KEY (secret)
	Retention   time.Duration // IVR_RETENTION: how long ended calls and their events are kept
	// IVR_RATE_LIMIT_*: verifications started per national identity number,
	// per caller id, across all withheld caller ids, per agent, and in all.
	RateLimitNumber   ivr.RateLimit
	RateLimitCaller   ivr.RateLimit
	RateLimitWithheld ivr.RateLimit
	RateLimitAgent    ivr.RateLimit
	RateLimitGlobal   ivr.RateLimit
	// MaxCallDuration ends calls whose status callback never came
	// (IVR_MAX_CALL_DURATION, Twilio's call time limit).
	MaxCallDuration time.Duration
	// PollConcurrency bounds token requests in flight toward the broker
	// (IVR_POLL_CONCURRENCY). Polls per second ≈ this / broker latency.
	PollConcurrency int
	// TrustedProxies are the addresses whose X-Forwarded-For is believed
	// (IVR_TRUSTED_PROXIES), for the agents' client address.
	TrustedProxies []netip.Prefix
	// Identify are the ways callers identify themselves in the IVR
	// (IVR_IDENTIFY); default by broker profile.
	Identify []store.IDKind
	// Mode is CIBA token delivery (CIBA_MODE): poll, or ping where the
	// broker offers it (notifications at IVR_PUBLIC_URL/ciba/notify).
	Mode string
	// Customer says what a customer number looks like and which broker
	// user it names (IVR_CUSTOMER_DIGITS, IVR_CUSTOMER_CHECK,
	// IVR_CUSTOMER_USER_ID).
	Customer ivr.CustomerRules

	TwilioAccountSID string // TWILIO_ACCOUNT_SID
	TwilioAuthToken  string // TWILIO_AUTH_TOKEN (secret)
	// TwilioAPIURL is the base of Twilio's REST API (TWILIO_API_URL): ""
	// for Twilio's own; a virtual Twilio's in tests and the demo.
	TwilioAPIURL string

	Broker BrokerConfig
}

// BrokerConfig is the eID broker (CIBA) part of the configuration, shared by
// serve, verify and check.
type BrokerConfig struct {
	Issuer   string // CIBA_ISSUER
	ClientID string // CIBA_CLIENT_ID
	KeyFile  string // CIBA_CLIENT_KEY (PEM or JWK file)
	Secret   string // CIBA_CLIENT_SECRET (secret)
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

// secret reads a secret setting from NAME or from the file NAME_FILE
// (trailing newline dropped). Setting both is an error.
func secret(getenv env, name string, errs *settingErrors) string {
	v, file := getenv(name), getenv(name+"_FILE")
	switch {
	case file == "":
		return v
	case v != "":
		errs.add(name, "set only one of %s and %s", name, name+"_FILE")
		return ""
	}
	b, err := os.ReadFile(file)
	if err != nil {
		errs.add(name+"_FILE", "cannot read %q: %v", file, errors.Unwrap(err))
		return ""
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		errs.add(name+"_FILE", "%q is empty", file)
	}
	return s
}

// textSetting defines a flag of a type that parses itself (a rate limit, a
// log level), with the environment variable name as its default; a
// malformed environment value is reported under the variable's name.
func textSetting[T encoding.TextMarshaler, P interface {
	*T
	encoding.TextUnmarshaler
}](fs *flag.FlagSet, errs *settingErrors, getenv env, p P, name, flagName string, def T, usage string) {
	*p = def
	if v := getenv(name); v != "" {
		if err := p.UnmarshalText([]byte(v)); err != nil {
			errs.add(name, "%v", err)
			*p = def
		}
	}
	fs.TextVar(p, flagName, *p, usage+" ("+name+")")
}

// brokerFlags defines the CIBA settings on fs, with the environment as
// defaults. The client secret is never a flag: it would show in ps.
func brokerFlags(fs *flag.FlagSet, getenv env, errs *settingErrors) *BrokerConfig {
	b := &BrokerConfig{}
	fs.StringVar(&b.Issuer, "issuer", getenv("CIBA_ISSUER"), "eID broker issuer URL (CIBA_ISSUER)")
	fs.StringVar(&b.ClientID, "client-id", getenv("CIBA_CLIENT_ID"), "client ID at the broker (CIBA_CLIENT_ID)")
	fs.StringVar(&b.KeyFile, "client-key", getenv("CIBA_CLIENT_KEY"), "private key file for private_key_jwt, PEM or JWK (CIBA_CLIENT_KEY)")
	fs.StringVar(&b.Profile, "profile", cmp.Or(getenv("CIBA_PROFILE"), "idura"), "broker profile: "+strings.Join(ciba.ProfileNames, ", ")+" (CIBA_PROFILE)")
	fs.StringVar(&b.Audience, "audience", getenv("CIBA_AUDIENCE"), "client assertion audience; default the issuer (CIBA_AUDIENCE)")
	b.Secret = secret(getenv, "CIBA_CLIENT_SECRET", errs)
	split := func(s string) []string {
		var out []string
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
		return out
	}
	b.PublishKeys = split(getenv("CIBA_PUBLISH_KEYS"))
	fs.Func("publish-keys", "comma-separated key files whose public keys are published in our JWKS but not used for signing: key rotation (CIBA_PUBLISH_KEYS)", func(s string) error {
		b.PublishKeys = split(s)
		return nil
	})
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
	if _, err := ciba.ProfileByName(b.Profile); err != nil {
		errs.add("CIBA_PROFILE", "%v", err)
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
// Usage and flag errors go to out.
func loadServe(getenv env, args []string, out io.Writer) (*Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(out)
	c := &Config{}
	var errs settingErrors
	fs.StringVar(&c.Listen, "listen", cmp.Or(getenv("IVR_LISTEN"), ":8080"), "listen address (IVR_LISTEN)")
	fs.StringVar(&c.AdminListen, "admin-listen", getenv("IVR_ADMIN_LISTEN"), "address for /metrics, /readyz and /healthz only, e.g. 127.0.0.1:9090; when set, /metrics is not served on the public listener (IVR_ADMIN_LISTEN)")
	fs.StringVar(&c.PublicURL, "public-url", getenv("IVR_PUBLIC_URL"), "public https base URL that Twilio calls (IVR_PUBLIC_URL)")
	fs.StringVar(&c.DBPath, "db", getenv("IVR_DB"), "the database: a sqlite file, or a postgres:// URL for several instances (IVR_DB)")
	fs.StringVar(&c.Language, "language", cmp.Or(getenv("IVR_LANGUAGE"), ivr.Swedish), "default caller language: "+strings.Join(ivr.Languages, ", ")+" (IVR_LANGUAGE)")
	fs.StringVar(&c.AgentQueue, "agent-queue", cmp.Or(getenv("IVR_AGENT_QUEUE"), "support"), "Twilio queue callers are enqueued to (IVR_AGENT_QUEUE)")
	fs.StringVar(&c.DialNumber, "dial", getenv("IVR_DIAL_NUMBER"), "dial this number instead of enqueueing (IVR_DIAL_NUMBER)")
	retention := fs.String("retention", cmp.Or(getenv("IVR_RETENTION"), "720h"), "how long ended calls and their audit events are kept, e.g. 720h or 90d (IVR_RETENTION)")
	maxCall := fs.String("max-call-duration", cmp.Or(getenv("IVR_MAX_CALL_DURATION"), "4h"), "a call older than this whose status callback never came is ended, e.g. 4h (IVR_MAX_CALL_DURATION)")
	textSetting(fs, &errs, getenv, &c.LogLevel, "IVR_LOG_LEVEL", "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	textSetting(fs, &errs, getenv, &c.RateLimitNumber, "IVR_RATE_LIMIT_NUMBER", "rate-limit-number", ivr.DefaultRateLimitNumber, "verifications per national identity number, N/DURATION or off")
	textSetting(fs, &errs, getenv, &c.RateLimitCaller, "IVR_RATE_LIMIT_CALLER", "rate-limit-caller", ivr.DefaultRateLimitCaller, "verifications per caller id, N/DURATION or off")
	textSetting(fs, &errs, getenv, &c.RateLimitWithheld, "IVR_RATE_LIMIT_WITHHELD", "rate-limit-withheld", ivr.DefaultRateLimitWithheld, "verifications across all withheld or unusable caller ids together, N/DURATION or off")
	textSetting(fs, &errs, getenv, &c.RateLimitAgent, "IVR_RATE_LIMIT_AGENT", "rate-limit-agent", ivr.DefaultRateLimitAgent, "verifications one agent starts, N/DURATION or off")
	textSetting(fs, &errs, getenv, &c.RateLimitGlobal, "IVR_RATE_LIMIT_GLOBAL", "rate-limit-global", ivr.DefaultRateLimitGlobal, "verifications in all, sized to the broker contract, N/DURATION or off")
	pollConcurrency := fs.String("poll-concurrency", cmp.Or(getenv("IVR_POLL_CONCURRENCY"), strconv.Itoa(ivr.DefaultPollConcurrency)), "token requests in flight toward the broker at most (IVR_POLL_CONCURRENCY)")
	proxies := fs.String("trusted-proxies", getenv("IVR_TRUSTED_PROXIES"), "comma-separated addresses or CIDR prefixes of proxies whose X-Forwarded-For is believed, e.g. 127.0.0.1,10.0.0.0/8 (IVR_TRUSTED_PROXIES)")
	fs.StringVar(&c.Mode, "ciba-mode", cmp.Or(getenv("CIBA_MODE"), ivr.ModePoll), "token delivery: poll, or ping where the broker offers it; register IVR_PUBLIC_URL/ciba/notify as the client notification endpoint (CIBA_MODE)")
	identify := fs.String("identify", getenv("IVR_IDENTIFY"), "how callers identify themselves, comma-separated: national_id, customer_number, caller_id; default by CIBA_PROFILE (IVR_IDENTIFY)")
	customerDigits := fs.String("customer-digits", cmp.Or(getenv("IVR_CUSTOMER_DIGITS"), "6-12"), "length of a customer number: N or MIN-MAX digits (IVR_CUSTOMER_DIGITS)")
	fs.StringVar(&c.Customer.Check, "customer-check", cmp.Or(getenv("IVR_CUSTOMER_CHECK"), "none"), "check digit of a customer number: luhn, mod11 or none (IVR_CUSTOMER_CHECK)")
	fs.StringVar(&c.Customer.Template, "customer-user-id", cmp.Or(getenv("IVR_CUSTOMER_USER_ID"), "{digits}"), "the broker user id a customer number names, {digits} being the number, e.g. auth0|{digits} (IVR_CUSTOMER_USER_ID)")
	fs.StringVar(&c.TwilioAccountSID, "account-sid", getenv("TWILIO_ACCOUNT_SID"), "Twilio account SID, AC… (TWILIO_ACCOUNT_SID)")
	fs.StringVar(&c.TwilioAPIURL, "twilio-api-url", getenv("TWILIO_API_URL"), "base URL of Twilio's REST API, to interrupt holds; default Twilio's own (TWILIO_API_URL)")
	broker := brokerFlags(fs, getenv, &errs)
	if err := fs.Parse(args); err != nil {
		return nil, flagError(err) // nil after -h: nothing to run
	}
	c.Broker = *broker
	c.TwilioAuthToken = secret(getenv, "TWILIO_AUTH_TOKEN", &errs)

	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs.add("IVR_LISTEN", "not a host:port address: %q", c.Listen)
	}
	if c.AdminListen != "" {
		if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
			errs.add("IVR_ADMIN_LISTEN", "not a host:port address: %q", c.AdminListen)
		} else if c.AdminListen == c.Listen {
			errs.add("IVR_ADMIN_LISTEN", "must differ from IVR_LISTEN")
		}
	}
	if c.PublicURL == "" {
		errs.add("IVR_PUBLIC_URL", "missing: the public https URL Twilio calls, e.g. https://ivr.example.com")
	} else if err := checkBaseURL(c.PublicURL); err != nil {
		errs.add("IVR_PUBLIC_URL", "%v", err)
	}
	if c.DBPath == "" {
		errs.add("IVR_DB", "missing: path of the sqlite database file, e.g. /var/lib/ivrd/ivr.db, or a PostgreSQL URL, e.g. postgres://ivr@db.internal/ivr")
	} else if err := checkDatabaseSetting(c.DBPath); err != nil {
		errs.add("IVR_DB", "%v", err)
	}
	if err := ivr.CheckLanguage(c.Language); err != nil {
		errs.add("IVR_LANGUAGE", "%v", err)
	}
	if strings.TrimSpace(c.AgentQueue) == "" || len(c.AgentQueue) > 64 {
		errs.add("IVR_AGENT_QUEUE", "must be a queue name of 1 to 64 characters")
	}
	if c.DialNumber != "" && !isE164(c.DialNumber) {
		errs.add("IVR_DIAL_NUMBER", "must be an E.164 number such as +46812345678")
	}
	if d, err := ivr.ParseDays(*retention); err != nil || d < time.Hour {
		errs.add("IVR_RETENTION", "must be a duration of at least 1h, such as 720h or 90d: %q", *retention)
	} else {
		c.Retention = d
	}
	if d, err := ivr.ParseDays(*maxCall); err != nil || d < 10*time.Minute || d > 48*time.Hour {
		errs.add("IVR_MAX_CALL_DURATION", "must be a duration from 10m to 48h, such as 4h: %q", *maxCall)
	} else {
		c.MaxCallDuration = d
	}
	if n, err := strconv.Atoi(*pollConcurrency); err != nil || n < 1 || n > 4096 {
		errs.add("IVR_POLL_CONCURRENCY", "must be a number from 1 to 4096: %q", *pollConcurrency)
	} else {
		c.PollConcurrency, c.Broker.PollConcurrency = n, n
	}
	if ps, err := parsePrefixes(*proxies); err != nil {
		errs.add("IVR_TRUSTED_PROXIES", "%v", err)
	} else {
		c.TrustedProxies = ps
	}
	c.Identify, c.Customer = identifySettings(&errs, c.Broker.Profile, *identify, *customerDigits, c.Customer)
	if p, err := ciba.ProfileByName(c.Broker.Profile); err == nil {
		if err := ivr.CheckMode(p, c.Mode); err != nil {
			errs.add("CIBA_MODE", "%v", err)
		}
	}
	if !ivr.ValidAccountSID(c.TwilioAccountSID) {
		errs.add("TWILIO_ACCOUNT_SID", "missing or malformed: your account SID, AC followed by 32 hex digits; webhooks naming another account are refused")
	}
	switch {
	case c.TwilioAuthToken == "":
		errs.add("TWILIO_AUTH_TOKEN", "missing: needed to check the X-Twilio-Signature of every webhook")
	case !alphanumeric(c.TwilioAuthToken):
		errs.add("TWILIO_AUTH_TOKEN", "must be the account's auth token: letters and digits only")
	}
	if c.TwilioAPIURL != "" {
		if err := checkBaseURL(c.TwilioAPIURL); err != nil {
			errs.add("TWILIO_API_URL", "%v", err)
		}
	}
	c.Broker.validate(&errs)
	switch k := secret(getenv, "IVR_HASH_KEY", &errs); {
	case k == "":
		errs.add("IVR_HASH_KEY", "missing: a random secret of at least 16 bytes, hex or base64 (e.g. openssl rand -hex 32); it keys the hash of national identity numbers and seals them in flight")
	default:
		key, err := decodeKey(k)
		if err != nil || len(key) < 16 {
			errs.add("IVR_HASH_KEY", "must be at least 16 bytes, hex or base64 encoded")
		}
		c.HashKey = key
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// identifySettings reads IVR_IDENTIFY and the customer number rules, and
// checks that the broker profile can serve them.
func identifySettings(errs *settingErrors, profileName, identify, digits string, rules ivr.CustomerRules) ([]store.IDKind, ivr.CustomerRules) {
	lo, hi, ok := strings.Cut(digits, "-")
	if !ok {
		hi = lo
	}
	min, err1 := strconv.Atoi(strings.TrimSpace(lo))
	max, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || min < 1 || max < min || max > 32 {
		errs.add("IVR_CUSTOMER_DIGITS", "must be N or MIN-MAX digits, at most 32, such as 8 or 6-12: %q", digits)
	} else {
		rules.MinDigits, rules.MaxDigits = min, max
	}
	if err := rules.Validate(); err != nil {
		switch {
		case !strings.Contains(rules.Template, "{digits}"):
			errs.add("IVR_CUSTOMER_USER_ID", "must contain {digits}, where the customer number goes: %q", rules.Template)
		default:
			errs.add("IVR_CUSTOMER_CHECK", "%v", err)
		}
	}
	profile, err := ciba.ProfileByName(profileName)
	if err != nil {
		return nil, rules // reported under CIBA_PROFILE
	}
	if identify == "" {
		return ivr.DefaultIdentify(profile), rules
	}
	var ways []store.IDKind
	for _, f := range strings.Split(identify, ",") {
		if f = strings.TrimSpace(f); f != "" {
			ways = append(ways, store.IDKind(f))
		}
	}
	if err := ivr.CheckIdentify(profile, ways); err != nil {
		errs.add("IVR_IDENTIFY", "%v", err)
	}
	return ways, rules
}

// parsePrefixes reads a comma-separated list of addresses and CIDR
// prefixes; an address is a prefix of its full length.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("not an address or CIDR prefix: %q", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
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
		if netutil.IsLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("must be https (http is accepted only on loopback): %q", raw)
	default:
		return fmt.Errorf("must be an https URL: %q", raw)
	}
}

func alphanumeric(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
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
