package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/internal/lbtest"
	"github.com/ivr/callerverify/internal/postgres/postgrestest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

// TestTwoInstancesSurviveAKill9 runs two real `ivrd serve` processes on one
// PostgreSQL schema behind a round-robin balancer (the URL Twilio signs
// against; no stickiness), with a dashboard connected to each instance.
// Callers wait for BankID; every verification has a token request in
// flight at the broker when one instance is killed with SIGKILL. Then:
// the survivor takes over the dead instance's verifications once their
// leases run out, without polling any of them early; the dead instance is
// started again and a dashboard reconnects to it; the users decide; every
// caller hears their outcome, both dashboards show every call's final
// state, and no event committed while a dashboard was connected is missing
// from it. Before all that, a webhook answered by one instance and retried
// on the other gets the same answer and changes nothing.
func TestTwoInstancesSurviveAKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs two instances as subprocesses")
	}
	dbURL := postgrestest.Schema(t, postgrestest.URL(t))
	dir := t.TempDir()
	bin := filepath.Join(dir, "ivrd")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	testStart := time.Now()

	// The broker, in this process, behind a recorder of token requests.
	const interval = time.Second
	bl := startRecordedBroker(t, dir, interval)

	// Two instances' addresses, and the balancer in front of them.
	addrs := []string{freeAddr(t), freeAddr(t)}
	lb, err := lbtest.New("http://"+addrs[0], "http://"+addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(lb)
	defer front.Close()
	public := front.URL

	// The virtual Twilio: webhooks through the balancer, call updates
	// (hold interrupts) through its REST API.
	const token, password = "instancesauthtoken", "correct horse battery"
	hc := &http.Client{Timeout: 10 * time.Second}
	tw := &virtualtwilio.Twilio{BaseURL: public, AuthToken: token, HTTPClient: hc}
	rest := httptest.NewServer(tw.RESTHandler())
	defer rest.Close()

	env := []string{
		"IVR_PUBLIC_URL=" + public,
		"IVR_DB=" + dbURL,
		"IVR_LANGUAGE=en-US",
		"TWILIO_AUTH_TOKEN=" + token,
		"TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000", // virtualtwilio's
		"TWILIO_API_URL=" + rest.URL,
		"IVR_HASH_KEY=000102030405060708090a0b0c0d0e0f",
		"CIBA_ISSUER=" + bl.b.Issuer(),
		"CIBA_CLIENT_ID=ivr",
		"CIBA_CLIENT_KEY=" + bl.keyFile,
		"IVR_LOG_LEVEL=debug",
	}
	add := exec.CommandContext(t.Context(), bin, "agents", "add", "alice")
	add.Env, add.Stdin = env, strings.NewReader(password+"\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ivrd agents add: %v\n%s", err, out)
	}
	insts := []*instance{
		{name: "A", addr: addrs[0], bin: bin, env: env, logs: &syncBuffer{}},
		{name: "B", addr: addrs[1], bin: bin, env: env, logs: &syncBuffer{}},
	}
	var wg sync.WaitGroup
	for _, in := range insts {
		wg.Go(func() { in.start(t, hc) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	a, b := insts[0], insts[1]

	// One agent session (kept in the database), a dashboard on each
	// instance, connected directly.
	cookie := login(t, hc, public, "alice", password)
	dashA := connectDash(t, "A", a.addr, public, cookie)
	dashB := connectDash(t, "B", b.addr, public, cookie)

	// A webhook retried on the other instance gets what the first answered.
	idemSID := checkRetryAcrossInstances(t, bl, token, public, a.addr, b.addr)

	// Callers enter numbers whose users decide only when told.
	const callers = 8
	type result struct {
		tr  *virtualtwilio.Transcript
		err error
	}
	results := make([]chan result, callers)
	given := []string{"Alva", "Bo", "Cecilia", "David", "Elin", "Filip", "Greta", "Hugo"}
	names := map[string]int{} // the sim's name of each caller's user
	for i := range callers {
		pnr := testPNR(i)
		bl.b.AddUser(cibatest.User{NationalID: pnr, GivenName: given[i], FamilyName: "Test", Script: cibatest.ScriptManual})
		names[given[i]+" Test"] = i
		results[i] = make(chan result, 1)
		go func() {
			tr, err := tw.Call(context.WithoutCancel(t.Context()), virtualtwilio.Caller{
				From: fmt.Sprintf("+467012300%02d", i),
				Keys: func(heard string) string {
					if strings.Contains(heard, "personal identity number") {
						return pnr + "#"
					}
					return "" // at the retry offer: stay on the line for an agent
				},
				MaxSteps: 400,
			})
			results[i] <- result{tr, err}
		}()
	}
	simIDs := make([]string, callers)
	waitFor(t, 20*time.Second, "every caller's verification pending and polled", func() bool {
		n := 0
		for _, rq := range bl.b.Requests() {
			if i, ok := names[rq.Name]; ok && rq.State == cibatest.StatePending && bl.b.Polls(rq.ID) > 0 {
				simIDs[i] = rq.ID
				n++
			}
		}
		return n == callers
	})
	// Every event so far reached both dashboards.
	waitFor(t, 10*time.Second, "both dashboards holding every stored event", func() bool {
		evs := storedEvents(t, dbURL)
		return dashA.hasAll(evs, 0) && dashB.hasAll(evs, 0)
	})

	// Hold every token request at the broker until each verification has
	// one in flight, so that the instance killed now dies holding leases.
	bl.closeGate()
	waitFor(t, 10*time.Second, "a token request in flight for every verification", func() bool {
		return bl.blockedUsers(names) == callers
	})
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.cmd.Wait()
	killedAt := time.Now()
	bl.openGate()

	// The survivor polls every verification again: at once its own, after
	// the lease the others.
	pickup := map[string]time.Duration{}
	waitFor(t, 20*time.Second, "the survivor polling every verification", func() bool {
		for name, first := range bl.firstPollAfter(killedAt) {
			if _, ok := names[name]; ok {
				pickup[name] = first.Sub(killedAt)
			}
		}
		return len(pickup) == callers
	})
	var slowest time.Duration
	for _, d := range pickup {
		slowest = max(slowest, d)
	}
	t.Logf("after the kill the survivor polled every verification within %v: %v", slowest.Round(time.Millisecond), pickup)
	if slowest > 11*time.Second {
		t.Errorf("a verification of the dead instance waited %v for the survivor; want it within the lease (8 s) and a poller wake-up", slowest)
	}

	// The dead instance comes back; a dashboard reconnects to it.
	b.start(t, hc)
	dashB2 := connectDash(t, "B2", b.addr, public, cookie)
	dashB2.waitSnapshot(t)
	mark := maxSeq(storedEvents(t, dbURL))

	// The users decide: three of eight decline.
	declines := func(i int) bool { return i%3 == 2 }
	for i, id := range simIDs {
		if declines(i) {
			err = bl.b.Decline(id)
		} else {
			err = bl.b.Approve(id, "")
		}
		if err != nil {
			t.Fatalf("decide for caller %d: %v", i, err)
		}
	}
	sids := []string{idemSID}
	for i, ch := range results {
		var r result
		select {
		case r = <-ch:
		case <-time.After(60 * time.Second):
			t.Fatalf("caller %d is still on the line a minute after the decision", i)
		}
		if r.err != nil {
			t.Errorf("caller %d: %v\n%s", i, r.err, r.tr)
			continue
		}
		sids = append(sids, r.tr.CallSID)
		said := strings.Join(sayTexts(r.tr), "\n")
		want := "Thank you, " + given[i] + ". You're verified."

		if declines(i) {
			want = "The identification was cancelled in BankID."
		}
		if !strings.Contains(said, want) || !strings.HasPrefix(r.tr.Outcome, "enqueued:") {
			t.Errorf("caller %d heard (%s):\n%s\nwant %q and a place in the agents' queue", i, r.tr.Outcome, said, want)
		}
	}

	// Both dashboards show every call as it ended.
	for _, d := range []*dash{dashA, dashB2} {
		waitFor(t, 10*time.Second, "dashboard "+d.name+" showing every call ended", func() bool {
			return d.allEnded(sids)
		})
	}
	db := postgrestest.OpenURL(t, dbURL)
	for i, sid := range sids[1:] {
		c, err := db.Call(t.Context(), sid)
		if err != nil {
			t.Fatal(err)
		}
		v, err := db.Verification(t.Context(), c.VerificationID)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus, wantOutcome := store.VerApproved, store.OutcomeVerified
		if declines(i) {
			wantStatus, wantOutcome = store.VerDeclined, store.OutcomeUnverified
		}
		if v.Status != wantStatus || c.Outcome != wantOutcome {
			t.Errorf("caller %d: stored %s / %q, want %s / %q", i, v.Status, c.Outcome, wantStatus, wantOutcome)
		}
		for _, d := range []*dash{dashA, dashB2} {
			if got := d.view(sid); got.Outcome != wantOutcome || got.Verification == nil || got.Verification.Status != string(wantStatus) {
				t.Errorf("dashboard %s shows caller %d as %+v, want %s / %s", d.name, i, got, wantOutcome, wantStatus)
			}
		}
	}

	// No event lost: the survivor's dashboard has every stored event; the
	// reconnected one every event committed after its snapshot.
	evs := storedEvents(t, dbURL)
	if !dashA.hasAll(evs, 0) {
		t.Errorf("dashboard A (on the survivor) misses events %v", dashA.missing(evs, 0))
	}
	if !dashB2.hasAll(evs, mark) {
		t.Errorf("dashboard B2 (reconnected) misses events %v after seq %d", dashB2.missing(evs, mark), mark)
	}

	// No early polls: the broker never said slow_down, and no auth_req_id
	// was polled before its interval had passed since the previous poll.
	if codes := bl.answers(); codes["slow_down"] != 0 || codes["invalid_grant"] != 0 {
		t.Errorf("token answers %v: want no slow_down and no invalid_grant", codes)
	}
	if early := bl.early(interval); len(early) > 0 {
		t.Errorf("token requests before the interval had passed: %v", early)
	}
	for _, in := range insts {
		if out := in.logs.String(); strings.Contains(out, testPNR(0)) || strings.Contains(out, cibatest.SEManual) {
			t.Errorf("instance %s logged a full national identity number", in.name)
		}
	}
	t.Logf("balancer: requests served per instance %v, %d replayed after a failure", lb.Served(), lb.Retries())
	t.Logf("two-instance kill -9 test took %v (after the build)", time.Since(testStart).Round(time.Millisecond))
}

// checkRetryAcrossInstances answers a call's first two webhooks on
// instance a and retries each on instance b: b must answer the same TwiML
// and start no second BankID request. It returns the call's SID, ended.
func checkRetryAcrossInstances(t *testing.T, bl *recordedBroker, token, public, a, b string) string {
	t.Helper()
	direct := func(addr string) *virtualtwilio.Twilio {
		return &virtualtwilio.Twilio{BaseURL: public, AuthToken: token, HTTPClient: &http.Client{
			Timeout: 10 * time.Second,
			Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				r = r.Clone(r.Context())
				r.URL.Host = addr // signed for the public URL, sent to one instance
				return http.DefaultTransport.RoundTrip(r)
			}),
		}}
	}
	twA, twB := direct(a), direct(b)
	answer := func(tw *virtualtwilio.Twilio, path string, p url.Values) string {
		t.Helper()
		resp, err := tw.Post(t.Context(), path, p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s %s", path, resp.Status, body)
		}
		return string(body)
	}
	bl.b.AddUser(cibatest.User{NationalID: testPNR(100), GivenName: "Retry", FamilyName: "Caller", Script: cibatest.ScriptManual})
	sid := "CA0123456789abcdef0123456789abcdef"
	p := url.Values{"CallSid": {sid}, "AccountSid": {"AC00000000000000000000000000000000"}, "From": {"+46701239999"},
		"To": {"+46812345678"}, "CallStatus": {"ringing"}, "Direction": {"inbound"}}
	voiceA := answer(twA, "/twilio/voice", p)
	if voiceB := answer(twB, "/twilio/voice", p); voiceB != voiceA {
		t.Errorf("the voice webhook retried on B answered\n%s\nwant what A answered\n%s", voiceB, voiceA)
	}
	doc, err := virtualtwilio.ParseTwiML([]byte(voiceA))
	if err != nil {
		t.Fatal(err)
	}
	g := doc.Find("Gather")
	if len(g) == 0 {
		t.Fatalf("no Gather in %s", voiceA)
	}
	p.Set("CallStatus", "in-progress")
	p.Set("Digits", testPNR(100))
	p.Set("FinishedOnKey", "#")
	gatherA := answer(twA, g[0].Attr("action"), p)
	if gatherB := answer(twB, g[0].Attr("action"), p); gatherB != gatherA {
		t.Errorf("the digits webhook retried on B answered\n%s\nwant what A answered\n%s", gatherB, gatherA)
	}
	if !strings.Contains(gatherA, "open the BankID app") {
		t.Errorf("after the digits the caller heard\n%s\nwant the BankID hold", gatherA)
	}
	n := 0
	for _, rq := range bl.b.Requests() {
		if rq.Name == "Retry Caller" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d BankID requests for one call whose digits webhook was retried on another instance, want 1", n)
	}
	resp, err := twB.Post(t.Context(), "/twilio/status", url.Values{"CallSid": {sid}, "AccountSid": {"AC00000000000000000000000000000000"}, "CallStatus": {"completed"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return sid
}

// instance is one `ivrd serve` subprocess.
type instance struct {
	name, addr, bin string
	env             []string
	logs            *syncBuffer
	cmd             *exec.Cmd
}

// start runs the instance and waits until /readyz says ready.
func (in *instance) start(t *testing.T, hc *http.Client) {
	t.Helper()
	cmd := exec.Command(in.bin, "serve")
	cmd.Env = append(slices.Clone(in.env), "IVR_LISTEN="+in.addr)
	cmd.Stdout, cmd.Stderr = in.logs, in.logs
	if err := cmd.Start(); err != nil {
		t.Error(err)
		return
	}
	in.cmd = cmd
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	end := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get("http://" + in.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(end) {
			t.Errorf("instance %s not ready after 20 s:\n%s", in.name, in.logs.String())
			return
		}
		tick := time.NewTimer(50 * time.Millisecond)
		<-tick.C
	}
}

// testPNR is the i-th of a sequence of valid, distinct personnummer.
func testPNR(i int) string {
	day := time.Date(1961, 3, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i)
	nine := day.Format("060102") + "123"
	sum := 0
	for j := range len(nine) {
		d := int(nine[j]-'0') * (2 - j%2)
		sum += d/10 + d%10
	}
	return day.Format("2006") + nine[2:] + string(rune('0'+(10-sum%10)%10))
}

// recordedBroker is the simulator broker on loopback, recording every
// token request, with a gate that can hold them.
type recordedBroker struct {
	b       *cibatest.Broker
	keyFile string

	mu       sync.Mutex
	gate     chan struct{} // non-nil: token requests wait for it to close
	blocked  map[string]bool
	arrivals map[string][]time.Time // by auth_req_id
	codes    map[string]int
}

func startRecordedBroker(t *testing.T, dir string, interval time.Duration) *recordedBroker {
	t.Helper()
	bl := &recordedBroker{blocked: map[string]bool{}, arrivals: map[string][]time.Time{}, codes: map[string]int{}}
	_, bl.keyFile = startSimBroker(t, dir, "ES256", cibatest.Config{Interval: interval}, func(b *cibatest.Broker) http.Handler {
		bl.b = b
		b.Observe(func(x cibatest.Exchange) {
			if x.Endpoint == "token" {
				bl.mu.Lock()
				bl.codes[cmp.Or(x.Error, "ok")]++
				bl.mu.Unlock()
			}
		})
		return bl
	})
	return bl
}

// ServeHTTP notes when each token request arrives (before the gate, which
// may hold it) and lets it through the gate.
func (bl *recordedBroker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/oauth2/token" {
		bl.b.ServeHTTP(w, r)
		return
	}
	arrived := time.Now()
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil { // the broker reads r.PostForm then
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	id := r.PostForm.Get("auth_req_id")
	bl.mu.Lock()
	bl.arrivals[id] = append(bl.arrivals[id], arrived)
	gate := bl.gate
	if gate != nil {
		bl.blocked[id] = true
	}
	bl.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	bl.b.ServeHTTP(w, r)
}

func (bl *recordedBroker) closeGate() {
	bl.mu.Lock()
	defer bl.mu.Unlock()
	bl.gate = make(chan struct{})
	bl.blocked = map[string]bool{}
}

func (bl *recordedBroker) openGate() {
	bl.mu.Lock()
	defer bl.mu.Unlock()
	close(bl.gate)
	bl.gate = nil
}

// blockedUsers counts the users in names with a token request held at the
// gate.
func (bl *recordedBroker) blockedUsers(names map[string]int) int {
	bl.mu.Lock()
	ids := make([]string, 0, len(bl.blocked))
	for id := range bl.blocked {
		ids = append(ids, id)
	}
	bl.mu.Unlock()
	n := 0
	for _, id := range ids {
		if rq, ok := bl.b.RequestForAuthReqID(id); ok {
			if _, ok := names[rq.Name]; ok {
				n++
			}
		}
	}
	return n
}

// firstPollAfter returns, by the user's name, the first token request
// that arrived after t.
func (bl *recordedBroker) firstPollAfter(t time.Time) map[string]time.Time {
	bl.mu.Lock()
	firsts := map[string]time.Time{}
	for id, arr := range bl.arrivals {
		for _, at := range arr {
			if at.After(t) {
				firsts[id] = at
				break
			}
		}
	}
	bl.mu.Unlock()
	out := map[string]time.Time{}
	for id, at := range firsts {
		if rq, ok := bl.b.RequestForAuthReqID(id); ok {
			out[rq.Name] = at
		}
	}
	return out
}

func (bl *recordedBroker) answers() map[string]int {
	bl.mu.Lock()
	defer bl.mu.Unlock()
	return maps.Clone(bl.codes)
}

// early lists the token requests that came less than interval after the
// previous one for the same auth_req_id.
func (bl *recordedBroker) early(interval time.Duration) []string {
	bl.mu.Lock()
	defer bl.mu.Unlock()
	var out []string
	for id, arr := range bl.arrivals {
		for i := 1; i < len(arr); i++ {
			if gap := arr[i].Sub(arr[i-1]); gap < interval {
				out = append(out, fmt.Sprintf("poll %d of …%s after %v", i+1, id[max(0, len(id)-4):], gap.Round(time.Millisecond)))
			}
		}
	}
	return out
}

// storedEvent is an event as the events table has it.
type storedEvent struct {
	Seq     int64
	CallSID string
	Kind    string
}

func storedEvents(t *testing.T, dbURL string) []storedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT seq, call_sid, kind FROM events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storedEvent, error) {
		var e storedEvent
		err := r.Scan(&e.Seq, &e.CallSID, &e.Kind)
		return e, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func maxSeq(evs []storedEvent) int64 {
	var m int64
	for _, e := range evs {
		m = max(m, e.Seq)
	}
	return m
}

// dash is an agent dashboard's websocket: it keeps every call as the
// messages last showed it and the seqs of the events it received.
type dash struct {
	name string
	mu   sync.Mutex
	snap bool
	seen map[int64]bool
	last map[string]store.CallView
	gone error // the read error that ended it
}

func connectDash(t *testing.T, name, addr, public string, cookie *http.Cookie) *dash {
	t.Helper()
	h := http.Header{"Origin": {public}, "Cookie": {cookie.Name + "=" + cookie.Value}}
	ws, resp, err := websocket.DefaultDialer.DialContext(t.Context(), "ws://"+addr+"/agent/ws", h)
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("dashboard %s: dial: %v %s", name, err, status)
	}
	d := &dash{name: name, seen: map[int64]bool{}, last: map[string]store.CallView{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var m struct {
				Type   string           `json:"type"`
				Calls  []store.CallView `json:"calls"`
				Recent []store.CallView `json:"recent"`
				Event  struct {
					Seq     int64  `json:"seq"`
					CallSID string `json:"callSid"`
				} `json:"event"`
				Call *store.CallView `json:"call"`
			}
			if err := ws.ReadJSON(&m); err != nil {
				d.mu.Lock()
				d.gone = err
				d.mu.Unlock()
				return
			}
			d.mu.Lock()
			switch m.Type {
			case "snapshot":
				d.snap = true
				for _, cv := range append(m.Recent, m.Calls...) {
					d.last[cv.CallSID] = cv
				}
			case "event":
				d.seen[m.Event.Seq] = true
				if m.Call != nil {
					d.last[m.Call.CallSID] = *m.Call
				}
			}
			d.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ws.Close()
		<-done
	})
	return d
}

func (d *dash) waitSnapshot(t *testing.T) {
	t.Helper()
	waitFor(t, 10*time.Second, "dashboard "+d.name+"'s snapshot", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.snap
	})
}

// missing lists the seqs of evs after seq from that d did not receive.
func (d *dash) missing(evs []storedEvent, from int64) []int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []int64
	for _, e := range evs {
		if e.Seq > from && !d.seen[e.Seq] {
			out = append(out, e.Seq)
		}
	}
	return out
}

func (d *dash) hasAll(evs []storedEvent, from int64) bool { return len(d.missing(evs, from)) == 0 }

func (d *dash) view(sid string) store.CallView {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last[sid]
}

// allEnded reports whether d shows every call of sids as ended.
func (d *dash) allEnded(sids []string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, sid := range sids {
		if cv, ok := d.last[sid]; !ok || cv.EndedAt == nil {
			return false
		}
	}
	return true
}
