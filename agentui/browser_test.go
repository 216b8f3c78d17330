package agentui_test

// Real-browser tests of the dashboard: headless Chromium logs in, watches
// calls change, filters and searches them, hears of new ones, loses its
// connection and takes screenshots. Run them with
//
//	go test -run Browser -v ./agentui/
//
// Screenshots go to $AGENTUI_SCREENSHOTS (default: the test's temp dir).
// They skip when /usr/bin/chromium is absent (apt-get install -y chromium),
// except in CI (CI set), where .ci/run installs it and a skip would hide a
// broken install.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/ivr/callerverify/agentui"
	"github.com/ivr/callerverify/internal/store"
)

const chromiumPath = "/usr/bin/chromium"

func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium not installed at %s: .ci/run installs it", chromiumPath)
		}
		t.Skipf("chromium not installed at %s (apt-get install -y chromium)", chromiumPath)
	}
}

// page is a headless Chromium tab on a test env's dashboard.
type page struct {
	t     *testing.T
	ctx   context.Context
	e     *env
	shots string
}

// newPage starts Chromium with a 1280×900 window. At the end of the test it
// fails the test if the page threw an uncaught exception.
func newPage(t *testing.T, e *env) *page {
	t.Helper()
	requireChromium(t)
	shots := os.Getenv("AGENTUI_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)

	// Uncaught exceptions and CSP violations fail the test: a broken or
	// blocked script shows nothing else.
	var (
		mu         sync.Mutex
		exceptions []string
		wg         sync.WaitGroup
	)
	messages := chromedp.Console(ctx)
	wg.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				mu.Lock()
				exceptions = append(exceptions, m.String())
				mu.Unlock()
			}
		}
	})
	t.Cleanup(func() {
		cancelT()
		cancel()
		cancelA()
		wg.Wait()
		for _, x := range exceptions {
			t.Errorf("page: %s", x)
		}
	})
	return &page{t: t, ctx: ctx, e: e, shots: shots}
}

func (p *page) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", step, err)
	}
}

func (p *page) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// waitFor polls the JavaScript condition js until it holds.
func (p *page) waitFor(step, js string, opts ...chromedp.PollOption) {
	p.t.Helper()
	opts = append([]chromedp.PollOption{chromedp.WithPollingInterval(50 * time.Millisecond)}, opts...)
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[bool](js, opts...)); err != nil {
		seen, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`location.hash + ' | ' + document.title + ' | ' + document.body.innerText`))
		p.t.Fatalf("%s (waiting for %s): %v\npage: %s", step, js, err, seen)
	}
}

// eval returns the value of the JavaScript expression js.
func eval[T any](p *page, js string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// shot saves a screenshot of the whole page; viewShot, of what the
// viewport shows (a modal dialog and its backdrop).
func (p *page) shot(name string) {
	p.t.Helper()
	p.save(name, chromedp.FullScreenshot(100)) // quality 100 gives a PNG
}

func (p *page) viewShot(name string) {
	p.t.Helper()
	p.save(name, chromedp.CaptureScreenshot())
}

func (p *page) save(name string, a chromedp.Action[[]byte]) {
	p.t.Helper()
	buf, err := chromedp.Run(p.ctx, a)
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(p.shots, name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
}

// login signs in as the test agent and waits for the live connection.
func (p *page) login() {
	p.t.Helper()
	p.do("open the dashboard", chromedp.Navigate(p.e.srv.URL+"/agent/"))
	p.do("log in",
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), testAgent),
		chromedp.SendKeys(chromedp.CSS("#password"), testPass),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#live-heading")),
	)
	p.waitFor("connect", `document.querySelector('#conn').classList.contains('conn-live')`)
}

// publish sends the event kind for call c through the env's hub.
func (p *page) publish(seq int64, kind string, c *store.CallView) {
	p.e.hub.Publish(p.ctx, store.Event{Seq: seq, At: c.UpdatedAt, CallSID: c.CallSID, Kind: store.EventKind(kind),
		Actor: "system", Call: clone(c)})
}

// liveOrder is the sids of the live cards, top to bottom.
const liveOrder = `[...document.querySelectorAll('.group .call')].map(li => li.dataset.sid)`

// noSideScroll holds when nothing is wider than the viewport.
const noSideScroll = `document.documentElement.scrollWidth <= window.innerWidth`

func TestBrowserDashboardWatchesACallGetVerified(t *testing.T) {
	now := time.Now().UTC()
	se := &store.CallView{CallSID: "CA-se", Caller: "+46 70 *** ** 12", Language: "sv-SE", State: store.ViewGathering,
		Since: now.Add(-2 * time.Minute), UpdatedAt: now.Add(-2 * time.Minute)}
	handed := now.Add(-time.Minute)
	no := &store.CallView{CallSID: "CA-no", Caller: "+47 91 ** ** 34", Language: "nb-NO", State: store.ViewUnverified, Outcome: "unverified",
		Reason: string(store.ReasonInvalidNumber), Since: now.Add(-5 * time.Minute), UpdatedAt: handed, HandedOffAt: &handed}
	calls := &fakeCalls{
		live: []store.CallView{*se, *no},
		timeline: map[string][]store.Event{"CA-se": {
			{Seq: 1, At: now.Add(-2 * time.Minute), CallSID: "CA-se", Kind: "call_started", Actor: "twilio", Detail: "incoming call"},
			{Seq: 2, At: now.Add(-time.Minute), CallSID: "CA-se", Kind: "number_entered", Actor: "caller", Detail: "SE ********-**85"},
		}},
	}
	e := newEnv(t, agentui.Config{}, calls)
	e.clock.Advance(now.Sub(e.clock.Now()))
	p := newPage(t, e)

	// A wrong password is refused with a message, without JavaScript.
	p.do("open the dashboard", chromedp.Navigate(e.srv.URL+"/agent/"))
	p.do("wrong password",
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), testAgent),
		chromedp.SendKeys(chromedp.CSS("#password"), "not the password"),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")),
	)
	if got := p.text("#login-error"); !strings.Contains(got, "Wrong agent name or password") {
		t.Errorf("login error = %q", got)
	}
	p.do("log in",
		chromedp.SetValue(chromedp.CSS("#password"), testPass),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#live-heading")),
	)
	p.waitFor("connect", `document.querySelector('#conn').classList.contains('conn-live')`)
	p.waitFor("both calls listed", `document.querySelectorAll('.group .call').length === 2`)
	if got := eval[[]string](p, liveOrder); !slices.Equal(got, []string{"CA-no", "CA-se"}) {
		t.Errorf("live calls = %v, want the caller waiting for an agent first", got)
	}

	// The Swedish caller goes through BankID to verified.
	se.State, se.UpdatedAt = store.ViewAwaitingBankID, now.Add(time.Second)
	se.Verification = &store.VerificationView{ID: "v1", Country: "SE", Method: "Swedish BankID", MaskedID: "********-**85",
		Status: "pending", Pending: "awaiting user identification", Initiator: "caller", StartedAt: now}
	p.publish(3, "verification_pending", se)
	p.waitFor("pending sub-state shown", `document.querySelector('.call[data-sid="CA-se"]').textContent.includes('BankID: awaiting user identification')`)

	p.do("open the call", chromedp.Click(chromedp.CSS(`.call-open[data-sid="CA-se"]`)))
	p.waitFor("timeline loaded", `document.querySelectorAll('#timeline li').length === 2`)

	done := now.Add(2 * time.Second)
	se.State, se.UpdatedAt = store.ViewVerified, done
	se.Outcome, se.HandedOffAt = "verified", &done
	se.Verification.Status, se.Verification.Pending, se.Verification.Name, se.Verification.CompletedAt = "approved", "", "Anna Andersson", &done
	p.publish(4, "verification_approved", se)
	p.waitFor("verified with name", `document.querySelector('.call[data-sid="CA-se"]').textContent.includes('Anna Andersson')`)
	p.waitFor("timeline got the live event", `document.querySelectorAll('#timeline li').length === 3`)
	if got := p.text(`.call[data-sid="CA-se"]`); !strings.Contains(got, "Verified") || !strings.Contains(got, "********-**85") || !strings.Contains(got, "Swedish BankID") {
		t.Errorf("verified row = %q, want state, masked number and method", got)
	}
	if got := eval[[]string](p, liveOrder); !slices.Equal(got, []string{"CA-se", "CA-no"}) {
		t.Errorf("live calls = %v, want the newest in the queue first", got)
	}
	p.shot("dashboard-verified.png")

	// The agent verifies the Norwegian caller: a wrong number is explained,
	// a right one starts BankID and the word pair appears in large type.
	p.do("open the other call", chromedp.Click(chromedp.CSS(`.call-open[data-sid="CA-no"]`)),
		chromedp.WaitVisible(chromedp.CSS("#verify-number")))
	if got := p.text("#details-summary"); !strings.Contains(got, "No valid number entered") {
		t.Errorf("details = %q, want why the caller is unverified", got)
	}
	p.do("wrong check digit",
		chromedp.SendKeys(chromedp.CSS("#verify-number"), "199001012384"),
		chromedp.Click(chromedp.CSS("#verify-submit")),
		chromedp.WaitVisible(chromedp.CSS("#verify-error")))
	if got := p.text("#verify-error"); !strings.Contains(got, "check digit") {
		t.Errorf("verify error = %q, want it to explain the check digit", got)
	}
	p.do("right number",
		chromedp.SetValue(chromedp.CSS("#verify-number"), validSE),
		chromedp.Click(chromedp.CSS("#verify-submit")),
		chromedp.WaitVisible(chromedp.CSS("#verify-ok")))
	if s := calls.startedCalls(); len(s) != 1 || s[0].agent != testAgent || s[0].sid != "CA-no" {
		t.Fatalf("started = %+v, want one verification of CA-no by %s", s, testAgent)
	}
	no.State, no.UpdatedAt = store.ViewWordPair, now.Add(3*time.Second)
	no.Verification = &store.VerificationView{ID: "v2", Country: "NO", Method: "Norwegian BankID", MaskedID: "******-***34",
		Status: "pending", WordPair: "blå hest", Initiator: "agent:anna", StartedAt: now}
	p.publish(5, "verification_pending", no)
	p.waitFor("word pair in large type", `(document.querySelector('#details .wordpair-xl')||{}).textContent === 'blå hest'`)
	p.shot("dashboard-wordpair.png")

	// Keyboard: Escape closes the details, Enter on a caller opens them.
	p.do("close with Escape", chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.CSS("#details")))
	p.waitFor("focus back on the row", `document.activeElement.dataset.sid === 'CA-no'`)
	p.do("open with Enter", chromedp.Focus(chromedp.CSS(`.call-open[data-sid="CA-se"]`)), chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS("#details")))
	p.waitFor("details of the focused call", `document.activeElement.id === 'details-heading' && document.querySelector('#details-heading').textContent.includes('+46')`)

	// A tablet in portrait: one column, the details on top, nothing wider
	// than the screen.
	p.do("tablet viewport", chromedp.EmulateViewport(820, 1180))
	p.waitFor("details on top", `document.querySelector('#details').matches(':modal')`)
	p.waitFor("no horizontal scrolling", noSideScroll)
	p.shot("dashboard-tablet.png")
	p.do("desktop viewport", chromedp.EmulateViewport(1280, 900))
	p.waitFor("details beside the list", `document.querySelector('#details').open && !document.querySelector('#details').matches(':modal')`)

	// Losing the connection is shown.
	e.stopHub()
	p.waitFor("disconnection shown", `document.querySelector('#conn').classList.contains('conn-down')`)
	if got := p.text("#conn-text"); !strings.Contains(got, "Disconnected") {
		t.Errorf("connection indicator = %q, want Disconnected", got)
	}
	p.shot("dashboard-disconnected.png")
}

// triageCalls is a busy moment: callers waiting for an agent (verified,
// declined in Norwegian BankID, refused by a rate limit), callers in the
// phone menu (one choosing the word pair), a call that just ended and one
// that ended a while ago.
func triageCalls(now time.Time) (live, recent []store.CallView) {
	at := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	verifiedAt := at(40 * time.Second)
	live = []store.CallView{
		{CallSID: "CA-verified", Caller: "+46 70 *** ** 67", Language: "sv-SE", State: store.ViewVerified, Outcome: "verified",
			Since: now.Add(-3 * time.Minute), UpdatedAt: *verifiedAt, HandedOffAt: verifiedAt,
			Verification: &store.VerificationView{ID: "v-1", Country: "SE", Method: "Swedish BankID", MaskedID: "********-**75",
				Status: "approved", Name: "Astrid Lindqvist", Initiator: "caller", StartedAt: now.Add(-2 * time.Minute), CompletedAt: verifiedAt}},
		{CallSID: "CA-declined", Caller: "+47 91 ** ** 34", Language: "nb-NO", State: store.ViewUnverified, Outcome: "unverified",
			Reason: string(store.ReasonDeclined), Since: now.Add(-5 * time.Minute), UpdatedAt: *at(134 * time.Second), HandedOffAt: at(134 * time.Second),
			Verification: &store.VerificationView{ID: "v-2", Country: "NO", Method: "Norwegian BankID", MaskedID: "******-***41",
				Status: "declined", Initiator: "caller", StartedAt: now.Add(-4 * time.Minute), CompletedAt: at(150 * time.Second)}},
		{CallSID: "CA-limited", Caller: "+46 73 *** ** 05", Language: "sv-SE", State: store.ViewUnverified, Outcome: "unverified",
			Reason: string(store.ReasonRateLimited), Since: now.Add(-90 * time.Second), UpdatedAt: *at(20 * time.Second), HandedOffAt: at(20 * time.Second)},
		{CallSID: "CA-wordpair", Caller: "+47 48 ** ** 21", Language: "nb-NO", State: store.ViewWordPair,
			Since: now.Add(-70 * time.Second), UpdatedAt: *at(30 * time.Second),
			Verification: &store.VerificationView{ID: "v-3", Country: "NO", Method: "Norwegian BankID", MaskedID: "******-***58",
				Status: "pending", Pending: "awaiting user identification", WordPair: "grønn ugle", Initiator: "caller", StartedAt: now.Add(-30 * time.Second)}},
		{CallSID: "CA-menu", Caller: "+46 76 *** ** 88", Language: "sv-SE", State: store.ViewGathering,
			Since: now.Add(-15 * time.Second), UpdatedAt: *at(10 * time.Second)},
		{CallSID: "CA-hungup", Caller: "+46 72 *** ** 19", Language: "sv-SE", State: store.ViewEnded, Reason: string(store.ReasonHungUp),
			Since: now.Add(-2 * time.Minute), UpdatedAt: *at(20 * time.Second), EndedAt: at(20 * time.Second)},
	}
	recent = []store.CallView{
		{CallSID: "CA-old", Caller: "+46 70 *** ** 11", Language: "sv-SE", State: store.ViewEnded, Outcome: "verified",
			Since: now.Add(-40 * time.Minute), UpdatedAt: *at(35 * time.Minute), EndedAt: at(35 * time.Minute), HandedOffAt: at(37 * time.Minute),
			Verification: &store.VerificationView{ID: "v-0", Country: "SE", Method: "Swedish BankID", MaskedID: "********-**02",
				Status: "approved", Name: "Lars Berg", Initiator: "caller", StartedAt: now.Add(-39 * time.Minute), CompletedAt: at(37 * time.Minute)}},
	}
	return live, recent
}

// declinedTimeline is the story of CA-declined in triageCalls.
func declinedTimeline(now time.Time) map[string][]store.Event {
	ev := func(seq int64, ago time.Duration, kind store.EventKind, actor, detail string) store.Event {
		return store.Event{Seq: seq, At: now.Add(-ago), CallSID: "CA-declined", Kind: kind, Actor: actor, Detail: detail}
	}
	return map[string][]store.Event{"CA-declined": {
		ev(1, 300*time.Second, store.EventCallStarted, "twilio", "incoming call"),
		ev(2, 250*time.Second, store.EventNumberAccepted, "caller", "NO ******-***41"),
		ev(3, 249*time.Second, store.EventVerification, "system", "Norwegian BankID"),
		ev(4, 248*time.Second, store.EventPending, "system", "word pair sent"),
		ev(5, 150*time.Second, store.EventDeclined, "system", "access_denied"),
		ev(6, 149*time.Second, store.EventRetryOffered, "system", ""),
		ev(7, 135*time.Second, store.EventRetryRefused, "caller", ""),
		ev(8, 134*time.Second, store.EventHandedOff, "system", "unverified: declined"),
	}}
}

func TestBrowserTriageFilterAndAlerts(t *testing.T) {
	now := time.Now().UTC()
	live, recent := triageCalls(now)
	e := newEnv(t, agentui.Config{DemoLoginURL: "/demo/login"}, &fakeCalls{live: live, recent: recent, timeline: declinedTimeline(now)})
	e.clock.Advance(now.Sub(e.clock.Now()))
	p := newPage(t, e)
	p.do("login page", chromedp.Navigate(e.srv.URL+"/agent/login"), chromedp.WaitVisible(chromedp.CSS(".demo-login a")))
	p.shot("login.png")
	p.login()

	// Callers waiting for an agent come first, the newest on top, then
	// those in the phone menu, then the call that just ended.
	p.waitFor("calls listed", `document.querySelectorAll('.group .call').length === 6`)
	want := []string{"CA-limited", "CA-verified", "CA-declined", "CA-menu", "CA-wordpair", "CA-hungup"}
	if got := eval[[]string](p, liveOrder); !slices.Equal(got, want) {
		t.Errorf("live calls = %v, want %v", got, want)
	}
	if got := eval[[]string](p, `[...document.querySelectorAll('#recent-list .call')].map(li => li.dataset.sid)`); !slices.Equal(got, []string{"CA-old"}) {
		t.Errorf("recent calls = %v, want CA-old", got)
	}

	// "/" goes to the search, as in many web apps. (KeyEvent would type the
	// "/" in a char event of its own, which a real keyboard does not send
	// once keydown's default is prevented.)
	if typed := eval[bool](p, `document.body.dispatchEvent(new KeyboardEvent('keydown', {key: '/', bubbles: true, cancelable: true}))`); typed {
		t.Error(`"/" keydown not prevented: it would be typed`)
	}
	p.waitFor("search focused", `document.activeElement.id === 'search' && document.activeElement.value === ''`)

	// Why each caller is unverified, on the row, in plain words.
	for sid, want := range map[string]string{
		"CA-declined": "Declined in BankID or picked the wrong word pair",
		"CA-limited":  "Too many BankID requests recently",
		"CA-hungup":   "Hung up",
	} {
		if got := p.text(fmt.Sprintf(`.call[data-sid="%s"] .reason`, sid)); got != want {
			t.Errorf("reason on %s = %q, want %q", sid, got, want)
		}
	}
	if got := p.text(`.call[data-sid="CA-declined"] .badge`); got != "Unverified" {
		t.Errorf("badge on the declined caller = %q, want Unverified", got)
	}
	if got := p.text(`.call[data-sid="CA-wordpair"]`); !strings.Contains(got, "grønn ugle") || !strings.Contains(got, "BankID: awaiting user identification") {
		t.Errorf("word pair row = %q, want the word pair and the pending state", got)
	}

	// Every row's label is distinct, and says state, reason and wait.
	labels := eval[[]string](p, `[...document.querySelectorAll('.call-open')].map(b => b.getAttribute('aria-label'))`)
	if len(slices.Compact(slices.Sorted(slices.Values(labels)))) != len(labels) {
		t.Errorf("row labels repeat: %q", labels)
	}
	declined := eval[string](p, `document.querySelector('.call-open[data-sid="CA-declined"]').getAttribute('aria-label')`)
	if !strings.HasPrefix(declined, "Show call from +47 91 ** ** 34, unverified, declined in BankID") || !strings.Contains(declined, "waiting 2 min") {
		t.Errorf("label = %q, want caller, state, reason and wait", declined)
	}

	// The timers tick.
	first := p.text(`.call[data-sid="CA-declined"] .timer.wait`)
	p.waitFor("wait timer ticks", fmt.Sprintf(`document.querySelector('.call[data-sid="CA-declined"] .timer.wait').textContent !== %q`, first))
	p.shot("dashboard-triage.png")

	// Filter by state, with counts; the choice survives a reload.
	if got := p.text(`[data-count="unverified"]`); got != "(2)" {
		t.Errorf("unverified count = %q, want (2)", got)
	}
	p.do("filter unverified", chromedp.Click(chromedp.CSS(`input[name="filter"][value="unverified"] + span`)))
	p.waitFor("only unverified callers", `document.querySelectorAll('.group .call').length === 2`)
	if got := eval[[]string](p, liveOrder); !slices.Equal(got, []string{"CA-limited", "CA-declined"}) {
		t.Errorf("unverified calls = %v", got)
	}
	if got := eval[string](p, `location.hash`); got != "#filter=unverified" {
		t.Errorf("hash = %q, want #filter=unverified", got)
	}
	p.do("reload", chromedp.Reload())
	p.waitFor("filter kept", `document.querySelector('input[name="filter"][value="unverified"]').checked && document.querySelectorAll('.group .call').length === 2`)

	// Search by the last digits of the caller id or the national ID.
	p.do("search 34", chromedp.SendKeys(chromedp.CSS("#search"), "34"))
	p.waitFor("one match", `document.querySelectorAll('.group .call').length === 1 && document.querySelector('.group .call').dataset.sid === 'CA-declined'`)
	eval[bool](p, `(s => { s.value = ''; return s.dispatchEvent(new Event('input')); })(document.querySelector('#search'))`)
	p.do("search 75", chromedp.SendKeys(chromedp.CSS("#search"), "75"))
	p.waitFor("nothing unverified ends in 75", `!document.querySelector('#live-empty').hidden && document.querySelectorAll('.group .call').length === 0`)
	p.do("show all", chromedp.Click(chromedp.CSS("#show-all")))
	p.waitFor("all calls again", `document.querySelectorAll('.group .call').length === 6 && location.hash === ''`)

	// The filter works from the keyboard: arrow keys move between states.
	p.do("arrow to a filter",
		chromedp.Focus(chromedp.CSS(`input[name="filter"][value="all"]`)),
		chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent(kb.ArrowRight))
	p.waitFor("verified filter", `location.hash === '#filter=verified' && document.querySelectorAll('.group .call').length === 1`)
	p.do("back to all", chromedp.KeyEvent(kb.ArrowLeft), chromedp.KeyEvent(kb.ArrowLeft))
	p.waitFor("all calls again", `location.hash === '' && document.querySelectorAll('.group .call').length === 6`)

	// Alerts while the agent looks elsewhere: a count in the title and an
	// announcement for screen readers.
	eval[bool](p, `window.dispatchEvent(new Event('blur')) || true`)
	newCall := store.CallView{CallSID: "CA-new", Caller: "+46 70 *** ** 99", Language: "sv-SE", State: store.ViewRinging,
		Since: now, UpdatedAt: now}
	p.publish(10, "call_started", &newCall)
	p.waitFor("title counts one", `document.title === '(1) Live calls — Caller verification'`)
	p.waitFor("new call announced", `document.querySelector('#announcer').textContent.includes('New call from +46 70 *** ** 99')`)

	menu := live[4] // CA-menu goes through BankID to verified
	verified := now.Add(time.Second)
	menu.State, menu.Outcome, menu.UpdatedAt, menu.HandedOffAt = store.ViewVerified, "verified", verified, &verified
	menu.Verification = &store.VerificationView{ID: "v-4", Country: "SE", Method: "Swedish BankID", MaskedID: "********-**30",
		Status: "approved", Name: "Erik Svensson", Initiator: "caller", StartedAt: now, CompletedAt: &verified}
	p.publish(11, "verification_approved", &menu)
	p.waitFor("verified announced", `document.querySelector('#announcer').textContent.includes('Caller +46 … 88 verified as Erik Svensson')`)

	pair := live[3] // CA-wordpair declines, refuses the retry and reaches the queue
	queued := now.Add(2 * time.Second)
	pair.State, pair.Outcome, pair.Reason, pair.UpdatedAt, pair.HandedOffAt = store.ViewUnverified, "unverified", string(store.ReasonDeclined), queued, &queued
	v := *pair.Verification
	v.Status, v.Pending, v.WordPair, v.CompletedAt = "declined", "", "", &queued
	pair.Verification = &v
	p.publish(12, "handed_off", &pair)
	p.waitFor("unverified caller announced", `document.querySelector('#announcer').textContent.includes('Unverified caller +47 … 21 is waiting: declined in BankID or picked the wrong word pair')`)
	p.waitFor("title counts three", `document.title === '(3) Live calls — Caller verification'`)
	if got := eval[[]string](p, liveOrder)[0]; got != "CA-wordpair" {
		t.Errorf("top row = %s, want the caller who just reached the queue", got)
	}
	if got := p.text("#unseen-text"); got != "3 new alerts since you last looked." {
		t.Errorf("unseen banner = %q", got)
	}
	p.do("acknowledge", chromedp.Click(chromedp.CSS("#unseen-ack")))
	p.waitFor("title cleared", `document.title === 'Live calls — Caller verification' && document.querySelector('#unseen').hidden`)

	// Coming back to the window clears the count too.
	eval[bool](p, `window.dispatchEvent(new Event('blur')) || true`)
	ended := now.Add(3 * time.Second)
	gone := newCall
	gone.State, gone.UpdatedAt, gone.EndedAt, gone.Reason = store.ViewEnded, ended, &ended, string(store.ReasonHungUp)
	newer := store.CallView{CallSID: "CA-newer", Caller: "+46 70 *** ** 98", Language: "sv-SE", State: store.ViewRinging, Since: ended, UpdatedAt: ended}
	p.publish(13, "call_ended", &gone)
	p.publish(14, "call_started", &newer)
	p.waitFor("title counts the newer call only", `document.title === '(1) Live calls — Caller verification'`)
	eval[bool](p, `window.dispatchEvent(new Event('focus')) || true`)
	p.waitFor("title cleared on focus", `document.title === 'Live calls — Caller verification'`)
	p.shot("dashboard-alerts.png")

	// The sound toggle is off by default and remembered.
	if got := eval[string](p, `document.querySelector('#sound').getAttribute('aria-pressed')`); got != "false" {
		t.Errorf("sound aria-pressed = %q, want false by default", got)
	}
	p.do("sound on", chromedp.Click(chromedp.CSS("#sound")))
	p.waitFor("sound remembered", `localStorage.getItem('agentui.sound') === 'on' && document.querySelector('#sound').getAttribute('aria-pressed') === 'true'`)

	// The details of an unverified caller say why.
	p.do("open the declined caller", chromedp.Click(chromedp.CSS(`.call-open[data-sid="CA-declined"]`)), chromedp.WaitVisible(chromedp.CSS("#verify-form")))
	if got := p.text("#details-summary"); !strings.Contains(got, "Declined in BankID or picked the wrong word pair") {
		t.Errorf("details = %q, want the reason", got)
	}
	p.shot("dashboard-details.png")

	// 400 px wide: cards, nothing cut off or scrolling sideways, the
	// details on top.
	p.do("narrow viewport", chromedp.EmulateViewport(400, 860))
	p.waitFor("details on top", `document.querySelector('#details').matches(':modal')`)
	p.do("close with the button", chromedp.Click(chromedp.CSS("#details-close")), chromedp.WaitNotVisible(chromedp.CSS("#details")))
	p.waitFor("no horizontal overflow", noSideScroll)
	overflow := eval[[]string](p, `[...document.querySelectorAll('body *')].filter(el => {
		const r = el.getBoundingClientRect();
		return r.width > 0 && (r.right > window.innerWidth + 0.5 || r.left < -0.5) && !el.closest('.visually-hidden, .skip');
	}).map(el => el.tagName + '.' + el.className + '#' + el.id)`)
	if len(overflow) > 0 {
		t.Errorf("cut off at 400 px: %v", overflow)
	}
	p.shot("dashboard-400.png")
	p.do("open a call on the phone", chromedp.Click(chromedp.CSS(`.call-open[data-sid="CA-declined"]`)))
	p.waitFor("modal details with focus inside", `document.querySelector('#details').matches(':modal') && document.activeElement.id === 'details-heading'`)
	p.waitFor("details fit the screen", `document.querySelector('#details').getBoundingClientRect().right <= window.innerWidth`)
	p.viewShot("dashboard-400-details.png")
	p.do("Escape closes", chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.CSS("#details")))
	p.waitFor("focus back on the row", `document.activeElement.dataset.sid === 'CA-declined'`)
}

func TestBrowserReconnectCountdown(t *testing.T) {
	now := time.Now().UTC()
	live, _ := triageCalls(now)
	e := newEnv(t, agentui.Config{}, &fakeCalls{live: live[:3], timeline: map[string][]store.Event{}})
	e.clock.Advance(now.Sub(e.clock.Now()))
	p := newPage(t, e)
	p.login()
	p.waitFor("calls listed", `document.querySelectorAll('.group .call').length === 3`)

	e.ws.cut()
	p.waitFor("disconnection shown", `document.querySelector('#conn').classList.contains('conn-down') && !document.querySelector('#conn-retry').hidden`)
	if got := p.text("#conn-text"); got != "Disconnected" {
		t.Errorf("connection indicator = %q, want Disconnected", got)
	}
	// The countdown ticks: within one wait, the seconds go down by one.
	p.waitFor("countdown ticks", `(() => {
		const shown = !document.querySelector('#conn-retry').hidden && !document.querySelector('#retry-wait').hidden;
		const now = { attempt: document.querySelector('#conn').dataset.attempt, secs: +document.querySelector('#retry-secs').textContent };
		const last = window.lastCountdown;
		window.lastCountdown = shown ? now : undefined;
		return shown && last !== undefined && last.attempt === now.attempt && last.secs - now.secs === 1;
	})()`)
	p.shot("dashboard-reconnecting.png")

	// A call arrives while the dashboard is away; the resync announces it
	// and nothing else.
	fresh := store.CallView{CallSID: "CA-fresh", Caller: "+46 70 *** ** 44", Language: "sv-SE", State: store.ViewRinging, Since: now, UpdatedAt: now}
	p.publish(20, "call_started", &fresh)

	// "Retry now" reconnects at once, long before the timer would.
	p.waitFor("a long wait", `!document.querySelector('#retry-wait').hidden && +document.querySelector('#retry-secs').textContent >= 4`)
	e.ws.restore()
	p.do("retry now", chromedp.Click(chromedp.CSS("#retry-now")))
	p.waitFor("live again", `document.querySelector('#conn').classList.contains('conn-live')`, chromedp.WithPollingTimeout(2500*time.Millisecond))
	p.waitFor("the missed call is listed", `document.querySelectorAll('.group .call').length === 4`)
	if got := eval[[]string](p, `[...document.querySelectorAll('#announcer p')].map(p => p.textContent)`); !slices.Equal(got, []string{"New call from +46 70 *** ** 44"}) {
		t.Errorf("announcements after the resync = %q, want only the new call", got)
	}
	if got := eval[bool](p, `document.querySelector('#retry-now').hidden && document.querySelector('#conn-retry').hidden`); !got {
		t.Error("the countdown and Retry now stay shown while live")
	}
}

func clone(c *store.CallView) *store.CallView {
	cp := *c
	if c.Verification != nil {
		v := *c.Verification
		cp.Verification = &v
	}
	return &cp
}
