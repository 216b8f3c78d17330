// Package virtualtwilio is a virtual Twilio: it plays a caller against the IVR's
// webhooks over HTTP (in-process or real), signing every request as Twilio
// does, and records what the caller heard. Flow tests, `ivrd demo --call` and
// load generators use it; it does not import "testing" and knows nothing of
// package ivr's internals.
package virtualtwilio

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Twilio plays calls against a service's webhooks.
type Twilio struct {
	// BaseURL is the public URL the service believes it is at (what its
	// signature checker uses), e.g. "http://127.0.0.1:8080". Requests are
	// signed for it and relative action URLs resolve against it.
	BaseURL   string
	AuthToken string
	// HTTPClient sends the requests; HandlerClient gives one that calls an
	// http.Handler in-process (needed inside synctest bubbles). Nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	VoicePath  string // default "/twilio/voice"
	StatusPath string // default "/twilio/status"
	AccountSID string // default "AC" followed by 32 zeros

	mu   sync.Mutex
	live map[string]*call // calls in progress, for UpdateCall
}

// Caller is the person on the phone.
type Caller struct {
	From, To string // defaults "+46701234567", "+46812345678"
	// Keys answers each <Gather>. It gets the text heard since the last
	// answer (or the start of the call), including the Gather's own prompts,
	// and returns the keys to press, e.g. "196802020575#", or "" for silence.
	// A nil Keys is always silent.
	Keys func(heard string) string
	// HangUpAfter, when positive, hangs up once this much call time has passed.
	HangUpAfter time.Duration
	// MaxSteps bounds the webhook requests of one call (default 200); a call
	// that needs more ends with an error, so a loop never runs forever.
	MaxSteps int
}

// Transcript is what happened on a call.
type Transcript struct {
	CallSID string
	Lines   []Line
	// Outcome is "enqueued:<queue>", "dialed:<number>", "hangup" (the
	// service hung up), "caller-hung-up", "ended" (the document ran out), or
	// "failed" when Call returns an error.
	Outcome  string
	Requests int           // HTTP requests sent, status callback included
	Duration time.Duration // call time, from answer to the end
}

// Line is one thing that happened, At call time since the answer.
type Line struct {
	At time.Duration
	// Kind is "say", "play", "pause", "gather", "redirect", "press",
	// "update" (the call was redirected through the REST API), "enqueue",
	// "dial" or "hangup".
	Kind string
	// Text: what was said; the URL played, redirected or updated to; the pause length;
	// the Gather's prompt; the keys pressed (more than five keys are shown
	// masked but for the last two, as they are likely a national identity
	// number); the queue or number.
	Text            string
	Voice, Language string // for "say"
}

// String formats a transcript line for people, e.g. "  12s say: Hej".
func (l Line) String() string {
	return fmt.Sprintf("%6s %s: %s", l.At.Round(time.Second), l.Kind, l.Text)
}

// String formats the whole transcript.
func (t *Transcript) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "call %s: %s after %s, %d requests\n", t.CallSID, t.Outcome, t.Duration.Round(time.Second), t.Requests)
	for _, l := range t.Lines {
		b.WriteString(l.String() + "\n")
	}
	return b.String()
}

// errHungUp ends the verb loop when the caller hangs up.
var errHungUp = errors.New("caller hung up")

// ErrNoSuchCall is UpdateCall's answer for a call that is not in
// progress; RESTHandler answers it 404, code 20404, as Twilio does.
var ErrNoSuchCall = errors.New("virtualtwilio: no such call in progress")

// redirect is a call update: leave the current TwiML, fetch this URL.
type redirect struct{ url, method string }

func (r redirect) Error() string { return "call redirected to " + r.url }

// call is the state of one call in progress.
type call struct {
	tw       *Twilio
	c        Caller
	t        *Transcript
	start    time.Time
	heard    []string
	status   string // CallStatus for the next request
	deadline time.Time
	updates  chan redirect // call updates (UpdateCall), newest wins
}

// Call places one inbound call: it requests the voice URL, follows the TwiML
// (Say, Play, Pause, Gather, Redirect, Enqueue, Dial, Hangup) until the call
// ends, then sends the status callback (CallStatus=completed). Waits (Pause,
// Gather timeouts) use timers, so they take no real time inside a synctest
// bubble. A non-2xx answer or TwiML that does not parse ends the call with an
// error, returned with the transcript so far (the status callback is still
// sent).
func (tw *Twilio) Call(ctx context.Context, c Caller) (*Transcript, error) {
	c.From = cmp.Or(c.From, "+46701234567")
	c.To = cmp.Or(c.To, "+46812345678")
	if c.MaxSteps <= 0 {
		c.MaxSteps = 200
	}
	sid, err := newSID("CA")
	if err != nil {
		return nil, err
	}
	cl := &call{tw: tw, c: c, t: &Transcript{CallSID: sid}, start: time.Now(), status: "ringing", updates: make(chan redirect, 1)}
	if c.HangUpAfter > 0 {
		cl.deadline = cl.start.Add(c.HangUpAfter)
	}
	tw.mu.Lock()
	if tw.live == nil {
		tw.live = map[string]*call{}
	}
	tw.live[sid] = cl
	tw.mu.Unlock()
	runErr := cl.run(ctx)
	tw.mu.Lock()
	delete(tw.live, sid)
	tw.mu.Unlock()
	switch {
	case errors.Is(runErr, errHungUp):
		cl.t.Outcome, runErr = "caller-hung-up", nil
	case runErr != nil && cl.t.Outcome == "":
		cl.t.Outcome = "failed"
	}
	cl.t.Duration = time.Since(cl.start)
	if ctx.Err() == nil {
		if err := cl.statusCallback(ctx); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	return cl.t, runErr
}

func (cl *call) run(ctx context.Context) error {
	doc, docURL, err := cl.request(ctx, http.MethodPost, cl.tw.resolve(cl.tw.voicePath()), nil)
	if err != nil {
		return err
	}
	for {
		next, method, extra, err := cl.execute(ctx, doc)
		if r, ok := errors.AsType[redirect](err); ok {
			if r.method == "HANGUP" {
				cl.line("hangup", "", "", "")
				cl.t.Outcome = "hangup"
				return nil
			}
			// A call update: the TwiML in progress is abandoned for the
			// new URL, as Twilio does.
			cl.line("update", r.url, "", "")
			next, method, extra, err = r.url, r.method, nil, nil
			cl.heard = nil
		}
		if err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		target, err := resolveRef(docURL, next)
		if err != nil {
			return err
		}
		doc, docURL, err = cl.request(ctx, method, target, extra)
		if err != nil {
			return err
		}
	}
}

// execute runs a document's verbs. It returns the next URL to request (with
// method and extra parameters), or "" when the call has ended.
func (cl *call) execute(ctx context.Context, doc *Response) (next, method string, extra url.Values, err error) {
	for _, v := range doc.Verbs {
		if err := cl.checkHangUp(); err != nil {
			return "", "", nil, err
		}
		if played, err := cl.sound(ctx, v); played || err != nil {
			if err != nil {
				return "", "", nil, err
			}
			continue
		}
		switch v.Name {
		case "Gather":
			next, extra, err := cl.gather(ctx, v)
			if err != nil || next != "" {
				return next, methodOf(v), extra, err
			}
		case "Redirect":
			cl.line("redirect", v.Text, "", "")
			return v.Text, methodOf(v), nil, nil
		case "Enqueue":
			cl.line("enqueue", v.Text, "", "")
			cl.t.Outcome = "enqueued:" + v.Text
			return "", "", nil, nil
		case "Dial":
			cl.line("dial", v.Text, "", "")
			cl.t.Outcome = "dialed:" + v.Text
			return "", "", nil, nil
		case "Hangup", "Reject":
			cl.line("hangup", "", "", "")
			cl.t.Outcome = "hangup"
			return "", "", nil, nil
		default:
			return "", "", nil, fmt.Errorf("virtualtwilio: unsupported verb <%s>", v.Name)
		}
	}
	cl.t.Outcome = "ended"
	return "", "", nil, nil
}

// sound plays v if it is a verb that only makes the caller hear something
// (Say, Play, Pause), at the top level or inside a Gather, and reports
// whether it was one.
func (cl *call) sound(ctx context.Context, v *Node) (bool, error) {
	switch v.Name {
	case "Say":
		cl.say(v)
	case "Play":
		cl.line("play", v.Text, "", "")
	case "Pause":
		n := intAttr(v, "length", 1)
		cl.line("pause", strconv.Itoa(n)+"s", "", "")
		if err := cl.wait(ctx, time.Duration(n)*time.Second); err != nil {
			return true, err
		}
	default:
		return false, nil
	}
	return true, nil
}

func (cl *call) say(v *Node) {
	cl.line("say", v.Text, v.Attr("voice"), v.Attr("language"))
	cl.heard = append(cl.heard, v.Text)
}

// gather plays the nested verbs, asks the caller for keys, and returns the
// action URL to request, or "" to fall through to the next verb.
func (cl *call) gather(ctx context.Context, g *Node) (string, url.Values, error) {
	var prompt []string
	for _, v := range g.Elements() {
		if err := cl.checkHangUp(); err != nil {
			return "", nil, err
		}
		played, err := cl.sound(ctx, v)
		if err != nil {
			return "", nil, err
		}
		if !played {
			return "", nil, fmt.Errorf("virtualtwilio: <%s> inside <Gather>", v.Name)
		}
		if v.Name == "Say" {
			prompt = append(prompt, v.Text)
		}
	}
	cl.line("gather", strings.Join(prompt, " "), "", "")
	var keys string
	if cl.c.Keys != nil {
		keys = cl.c.Keys(strings.Join(cl.heard, " "))
	}
	cl.heard = nil
	action := g.Attr("action")
	if action == "" {
		action = "." // Twilio's default: the current document
	}
	if keys == "" {
		if err := cl.wait(ctx, time.Duration(intAttr(g, "timeout", 5))*time.Second); err != nil {
			return "", nil, err
		}
		if g.Attr("actionOnEmptyResult") != "true" {
			return "", nil, nil
		}
		return action, url.Values{"Digits": {""}, "FinishedOnKey": {""}}, nil
	}
	finish := "#"
	if v, ok := g.Attrs["finishOnKey"]; ok {
		finish = v
	}
	finished := ""
	if finish != "" {
		if i := strings.Index(keys, finish); i >= 0 {
			keys, finished = keys[:i], finish
		}
	}
	if n := intAttr(g, "numDigits", 0); n > 0 && len(keys) >= n {
		keys, finished = keys[:n], ""
	}
	cl.line("press", maskKeys(keys)+finished, "", "")
	if finished == "" && intAttr(g, "numDigits", 0) == 0 {
		// No key ended the input: Twilio waits the timeout before sending it.
		if err := cl.wait(ctx, time.Duration(intAttr(g, "timeout", 5))*time.Second); err != nil {
			return "", nil, err
		}
	}
	return action, url.Values{"Digits": {keys}, "FinishedOnKey": {finished}}, nil
}

func maskKeys(keys string) string {
	if len(keys) <= 5 {
		return keys
	}
	return strings.Repeat("*", len(keys)-2) + keys[len(keys)-2:]
}

func (cl *call) line(kind, text, voice, lang string) {
	cl.t.Lines = append(cl.t.Lines, Line{At: time.Since(cl.start), Kind: kind, Text: text, Voice: voice, Language: lang})
}

// wait lets d of call time pass, or less if the caller hangs up first.
func (cl *call) wait(ctx context.Context, d time.Duration) error {
	hangUp := false
	if !cl.deadline.IsZero() {
		if left := time.Until(cl.deadline); left < d {
			d, hangUp = max(left, 0), true
		}
	}
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case r := <-cl.updates:
			return r
		case <-t.C:
		}
	}
	if hangUp {
		return errHungUp
	}
	return nil
}

func (cl *call) checkHangUp() error {
	if !cl.deadline.IsZero() && !time.Now().Before(cl.deadline) {
		return errHungUp
	}
	return nil
}

// request sends one webhook request with the call's parameters plus extra,
// and parses the TwiML answer.
func (cl *call) request(ctx context.Context, method, target string, extra url.Values) (*Response, string, error) {
	if err := cl.checkHangUp(); err != nil {
		return nil, "", err
	}
	if cl.t.Requests >= cl.c.MaxSteps {
		return nil, "", fmt.Errorf("virtualtwilio: call still going after %d requests", cl.c.MaxSteps)
	}
	params := cl.params(cl.status)
	cl.status = "in-progress"
	maps.Copy(params, extra)
	cl.t.Requests++
	resp, err := cl.tw.send(ctx, method, target, params)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", fmt.Errorf("virtualtwilio: read %s: %w", pathOf(target), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, "", fmt.Errorf("virtualtwilio: %s %s: status %d: %s", method, pathOf(target), resp.StatusCode, firstLine(body))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		switch mt {
		case "text/xml", "application/xml", "text/html", "text/plain":
		default:
			return nil, "", fmt.Errorf("virtualtwilio: %s %s: content type %q is not TwiML", method, pathOf(target), ct)
		}
	}
	doc, err := ParseTwiML(body)
	if err != nil {
		return nil, "", fmt.Errorf("virtualtwilio: %s %s: %w", method, pathOf(target), err)
	}
	return doc, target, nil
}

func (cl *call) statusCallback(ctx context.Context) error {
	params := cl.params("completed")
	params.Set("CallDuration", strconv.Itoa(int(cl.t.Duration.Round(time.Second)/time.Second)))
	cl.t.Requests++
	resp, err := cl.tw.send(ctx, http.MethodPost, cl.tw.resolve(cl.tw.statusPath()), params)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("virtualtwilio: status callback: status %d", resp.StatusCode)
	}
	return nil
}

func (cl *call) params(status string) url.Values {
	return url.Values{
		"CallSid":    {cl.t.CallSID},
		"AccountSid": {cl.tw.accountSID()},
		"From":       {cl.c.From},
		"To":         {cl.c.To},
		"Caller":     {cl.c.From},
		"Called":     {cl.c.To},
		"CallStatus": {status},
		"Direction":  {"inbound"},
		"ApiVersion": {"2010-04-01"},
	}
}

// UpdateCall redirects the call sid in progress to url (method POST when
// empty), as Twilio's REST API does (Calls/{Sid}.json with Url): the TwiML
// it is executing is abandoned at the next wait (a pause or a gather's
// timeout) and url fetched. ErrNoSuchCall when no such call is in
// progress.
func (tw *Twilio) UpdateCall(sid, url, method string) error {
	tw.mu.Lock()
	cl := tw.live[sid]
	tw.mu.Unlock()
	if cl == nil {
		return ErrNoSuchCall
	}
	r := redirect{url: url, method: cmp.Or(strings.ToUpper(method), http.MethodPost)}
	for {
		select {
		case cl.updates <- r:
			return nil
		default:
		}
		select { // replace an update not yet taken: the newest wins
		case <-cl.updates:
		default:
		}
	}
}

// RESTHandler serves the calls of tw through Twilio's REST API
// (RESTHandler).
func (tw *Twilio) RESTHandler() http.Handler {
	return RESTHandler(tw.accountSID(), tw.AuthToken, tw)
}

// CallUpdater redirects calls in progress; *Twilio is one.
type CallUpdater interface {
	// UpdateCall redirects call sid to url with method ("HANGUP" ends
	// it); ErrNoSuchCall when no such call is in progress.
	UpdateCall(sid, url, method string) error
}

// RESTHandler serves the part of Twilio's REST API that updates a call in
// progress: POST /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json with
// Url (and Method), or Status=completed to hang up; HTTP Basic auth with
// the account SID and auth token; errors as Twilio words them (20404 for a
// call not in progress). Point twilio-go (or TWILIO_API_URL) at it.
func RESTHandler(accountSID, authToken string, calls CallUpdater) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{account}/Calls/{sid}", func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != accountSID || subtle.ConstantTimeCompare([]byte(pass), []byte(authToken)) != 1 || r.PathValue("account") != accountSID {
			restError(w, http.StatusUnauthorized, 20003, "Authenticate")
			return
		}
		sid, ok := strings.CutSuffix(r.PathValue("sid"), ".json")
		if !ok || r.ParseForm() != nil {
			restError(w, http.StatusNotFound, 20404, "The requested resource was not found")
			return
		}
		var err error
		switch {
		case r.PostForm.Get("Status") == "completed":
			err = calls.UpdateCall(sid, "", "HANGUP")
		case r.PostForm.Get("Url") != "":
			err = calls.UpdateCall(sid, r.PostForm.Get("Url"), r.PostForm.Get("Method"))
		default:
			restError(w, http.StatusBadRequest, 21201, "No 'Url', 'Twiml' or 'Status' provided")
			return
		}
		if err != nil {
			restError(w, http.StatusNotFound, 20404, "The requested resource /Calls/"+sid+".json was not found")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"sid": sid, "account_sid": accountSID, "status": "in-progress"})
	})
	return mux
}

func restError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg, "status": status})
}

// Post sends one signed webhook POST to path (relative to BaseURL, query
// allowed) with params, as Twilio would. The caller closes the body.
func (tw *Twilio) Post(ctx context.Context, path string, params url.Values) (*http.Response, error) {
	return tw.send(ctx, http.MethodPost, tw.resolve(path), params)
}

// send signs and sends a request. For GET the parameters go in the query.
func (tw *Twilio) send(ctx context.Context, method, target string, params url.Values) (*http.Response, error) {
	var body io.Reader
	if method == http.MethodGet {
		if len(params) > 0 {
			sep := "?"
			if strings.Contains(target, "?") {
				sep = "&"
			}
			target += sep + params.Encode()
		}
		params = nil
	} else {
		body = strings.NewReader(params.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("virtualtwilio: new request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set("X-Twilio-Signature", Sign(tw.AuthToken, signingURL(target), params))
	hc := tw.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("virtualtwilio: %s %s: %w", method, pathOf(target), err)
	}
	return resp, nil
}

// Sign computes X-Twilio-Signature for a request to fullURL with POST
// parameters params: base64(HMAC-SHA1(token, URL + sorted key+first value)).
func Sign(authToken, fullURL string, params url.Values) string {
	m := hmac.New(sha1.New, []byte(authToken))
	m.Write([]byte(fullURL))
	for _, k := range slices.Sorted(maps.Keys(params)) {
		if len(params[k]) > 0 {
			m.Write([]byte(k + params[k][0]))
		}
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// signingURL is the URL as Twilio signs it: no userinfo, and for https no
// port (Twilio drops it for voice webhooks).
func signingURL(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	u.User = nil
	if u.Scheme == "https" {
		u.Host = u.Hostname()
		if strings.Contains(u.Host, ":") {
			u.Host = "[" + u.Host + "]"
		}
	}
	return u.String()
}

func (tw *Twilio) resolve(path string) string {
	return strings.TrimRight(tw.BaseURL, "/") + path
}

func (tw *Twilio) voicePath() string  { return cmp.Or(tw.VoicePath, "/twilio/voice") }
func (tw *Twilio) statusPath() string { return cmp.Or(tw.StatusPath, "/twilio/status") }
func (tw *Twilio) accountSID() string {
	return cmp.Or(tw.AccountSID, "AC00000000000000000000000000000000")
}

// resolveRef resolves an action or redirect URL against the current
// document's URL, as Twilio does.
func resolveRef(docURL, ref string) (string, error) {
	base, err := url.Parse(docURL)
	if err != nil {
		return "", fmt.Errorf("virtualtwilio: document url: %w", err)
	}
	r, err := url.Parse(strings.TrimSpace(ref))
	if err != nil {
		return "", fmt.Errorf("virtualtwilio: bad url in twiml: %w", err)
	}
	return base.ResolveReference(r).String(), nil
}

func methodOf(v *Node) string {
	if strings.EqualFold(v.Attr("method"), http.MethodGet) {
		return http.MethodGet
	}
	return http.MethodPost
}

func intAttr(v *Node, name string, def int) int {
	n, err := strconv.Atoi(v.Attr(name))
	if err != nil || n < 0 {
		return def
	}
	return n
}

func pathOf(target string) string {
	if u, err := url.Parse(target); err == nil {
		return u.Path
	}
	return "?"
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(bytes.TrimSpace(b)), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func newSID(prefix string) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("virtualtwilio: call sid: %w", err)
	}
	return prefix + hex.EncodeToString(b), nil
}

// HandlerClient returns an http.Client whose requests are served by h in
// the calling goroutine, with no sockets: inside a synctest bubble, time
// then only moves when everything waits.
func HandlerClient(h http.Handler) *http.Client {
	return &http.Client{Transport: handlerTransport{h}}
}

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// Make the request look as a server would receive it.
	r := req.Clone(req.Context())
	r.RequestURI = req.URL.RequestURI()
	r.Host = req.URL.Host
	r.RemoteAddr = "127.0.0.1:49152"
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	if r.Body == nil {
		r.Body = http.NoBody
	}
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	resp := w.Result()
	resp.Request = req
	return resp, nil
}
