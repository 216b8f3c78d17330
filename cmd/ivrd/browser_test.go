package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/ivr"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

const chromiumPath = "/usr/bin/chromium"

// outcomeWithin is how soon after the caller approves in BankID the phone
// hears the outcome: the simulator's polling interval (2 s), then the call
// update that interrupts the hold. Without the update the caller would sit
// through the rest of the word-pair script and the hold's 7 s pause first.
const outcomeWithin = 3 * time.Second

// TestBrowserDemo is the demo as a newcomer uses it, in headless Chromium:
// the phone page dials the support line and types a number, the BankID app
// page shows the request linked to its call and identifies, and the agent
// dashboard (logged in through the demo link) shows the caller verified by
// name. The caller first hangs up once and calls again, so the app shows
// only the newer request. A third call is a Norwegian caller who picks the
// word pair while the IVR is still reading it out: the service interrupts
// the script and the caller hears the outcome at once. Each call comes from
// a caller id of its own and is a row of its own on the dashboard.
// Everything runs through `ivrd demo`: real webhooks with real signatures,
// call updates through the demo's Twilio REST API, the simulator broker,
// sqlite. Screenshots go to $IVRD_SCREENSHOTS (default: a temp dir).
func TestBrowserDemo(t *testing.T) {
	needChromium(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	base := startDemo(t, ctx)

	browser, cancelBrowser := newBrowser(t, ctx)
	defer cancelBrowser()
	b := &demoBrowser{t: t, shots: screenshotDir(t)}
	dashboard := b.watch(browser, "dashboard")

	// The agent opens the dashboard through the demo's login link.
	b.step("dashboard login", dashboard, chromedp.Navigate(base+"/demo/login"), chromedp.WaitVisible(chromedp.CSS("#live-heading")),
		waitJS(`document.querySelector('#conn-text').textContent.toLowerCase().includes('live')`))

	// Further tabs of the same browser (which the first Run started).
	phone, cancelPhone := chromedp.NewContext(browser)
	defer cancelPhone()
	phone = b.watch(phone, "phone")
	bankid, cancelBankID := chromedp.NewContext(browser)
	defer cancelBankID()
	bankid = b.watch(bankid, "bankid")

	b.step("open the phone", phone, chromedp.Navigate(base+"/demo/phone?timescale=0.1"), chromedp.WaitVisible(chromedp.CSS("#call")),
		waitJS(`!document.querySelector('#call').disabled`))
	t.Run("signature self-test", func(t *testing.T) { checkSignatures(t, phone) })

	// First call: the caller dials and types Elsa Holm's number (the
	// simulator's Swedish manual user, who waits for the BankID page), then
	// #. Her BankID app shows the request, linked to the call.
	b.step("call", phone, chromedp.Click(chromedp.CSS("#call")),
		waitJS(`document.querySelector('#transcript').textContent.includes('pound key')`))
	abandoned := b.callOnPhone(phone)
	b.typeOnKeypad(phone, cibatest.SEManual+"#")
	b.step("hold", phone, waitJS(`document.querySelector('#transcript').textContent.includes('open the BankID app')`))
	b.step("bankid request", bankid, chromedp.Navigate(base+"/demo/bankid"), waitJS(hasCard(abandoned.SID, "Kundtjänst")))
	b.checkCallLink(bankid, abandoned)

	// She hangs up before answering, calls again from a new number and
	// types her number again: the app shows only the new request, which
	// replaced the first (the simulator cancels a user's older request).
	b.step("hang up and call again", phone, chromedp.Click(chromedp.CSS("#hangup")),
		waitJS(`document.querySelector('#transcript').textContent.includes('status callback: completed')`))
	b.step("call again", phone, chromedp.Click(chromedp.CSS("#call")),
		waitJS(`[...document.querySelectorAll('#transcript .say')].at(-1)?.textContent.includes('pound key')`))
	elsa := b.callOnPhone(phone)
	if elsa.From == abandoned.From {
		t.Errorf("two calls came from %s, want a new caller id for each call", elsa.From)
	}
	b.typeOnKeypad(phone, cibatest.SEManual+"#")
	b.step("hold again", phone, waitJS(`[...document.querySelectorAll('#transcript .say')].at(-1)?.textContent.includes('open the BankID app')`))
	b.step("dashboard sees the caller", dashboard, waitJS(fmt.Sprintf(`!!document.querySelector('#live .call[data-sid=%q]')?.textContent.includes('BankID')`, elsa.SID)))
	b.step("bankid replaces the request", bankid, waitJS(hasCard(elsa.SID, "Replaces an older request")))
	if n := b.eval(bankid, `String([...document.querySelectorAll('.req')].filter(c => c.textContent.includes('Elsa Holm')).length)`); n != "1" {
		t.Errorf("the BankID app shows %s requests for Elsa Holm, want only the newest", n)
	}
	b.checkCallLink(bankid, elsa)
	b.shot(phone, "phone-waiting.png")
	b.shot(dashboard, "dashboard-awaiting.png")
	b.shot(bankid, "bankid-request.png")
	b.step("open", bankid, clickText("Open BankID"))
	b.step("acknowledge", bankid, clickText("on the phone with them"))
	b.step("identify", bankid, clickText("Identify"))

	// The caller hears they are verified and goes to the agents' queue; the
	// dashboard shows the verified name.
	b.step("caller verified", phone, waitJS(`document.querySelector('#transcript').textContent.includes("You're verified")`))
	b.step("dashboard verified", dashboard, waitJS(`(() => { const t = document.querySelector('#live').textContent; return t.includes('Elsa Holm') && t.toLowerCase().includes('verified') })()`))
	b.shot(phone, "phone-verified.png")
	b.shot(dashboard, "dashboard-verified.png")
	// Hanging up in the queue sends the <Enqueue>'s action, then the status callback.
	b.step("hang up", phone, waitJS(`document.querySelector('#transcript').textContent.includes('Connected to the agent queue')`),
		chromedp.Click(chromedp.CSS("#hangup")),
		waitJS(`[...document.querySelectorAll('#transcript li')].at(-1)?.textContent.includes('status callback: completed')`))
	if last := b.eval(phone, `[...document.querySelectorAll('#transcript li')].slice(-2).map(li => li.textContent).join(' | ')`); !strings.Contains(last, "(action after hang-up) → 200") || !strings.Contains(last, "(status callback: completed) → 200") {
		t.Errorf("after hanging up in the queue the transcript ends %q, want the action and the status callback answered 200\n%s", last, b.eval(phone, `[...document.querySelectorAll('#transcript li')].map(li => li.textContent).join('\n')`))
	}

	// Third call, at real speed, from a new caller id: Sigrid Bø (the
	// Norwegian manual user) types her number and hears the word pair.
	b.step("third call", phone, chromedp.Navigate(base+"/demo/phone"), chromedp.WaitVisible(chromedp.CSS("#call")),
		waitJS(`!document.querySelector('#call').disabled`), chromedp.Click(chromedp.CSS("#call")),
		waitJS(`document.querySelector('#transcript').textContent.includes('pound key')`),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#users button[data-number=%q]`, cibatest.NOManual))))
	sigrid := b.callOnPhone(phone)
	if sigrid.From == elsa.From || sigrid.From == abandoned.From {
		t.Errorf("the third call came from %s, as an earlier one, want a new caller id for each call", sigrid.From)
	}
	b.step("bankid word pairs", bankid, waitJS(fmt.Sprintf(`document.querySelectorAll('.req[data-call-sid=%q] .words button').length === 3`, sigrid.SID)))
	choices := b.texts(bankid, fmt.Sprintf(`.req[data-call-sid=%q] .words button`, sigrid.SID))

	// She picks the pair while the IVR is still reading it out.
	choicesJSON, _ := json.Marshal(choices)
	speaking := fmt.Sprintf(`[...document.querySelectorAll('#transcript .say.speaking .msg')].map(m => m.textContent.trim()).find(t => %s.includes(t)) || ''`, choicesJSON)
	b.step("word pair read out", phone, waitJS(fmt.Sprintf(`(%s) !== ''`, speaking)))
	pair := b.eval(phone, speaking)
	b.shot(phone, "phone-word-pair.png")
	b.shot(bankid, "bankid-word-pair.png")
	approved := time.Now()
	b.step("pick the pair", bankid, waitJS(fmt.Sprintf(`(() => { const b = [...document.querySelectorAll('.req[data-call-sid=%q] .words button')].find(b => b.textContent.trim() === %q && !b.disabled); b?.click(); return !!b })()`, sigrid.SID, pair)))
	b.step("caller hears the outcome", phone, waitJS(`document.querySelector('#transcript').textContent.includes("You're verified")`))
	waited := time.Since(approved)
	t.Logf("the caller heard the outcome %s after approving", waited.Round(time.Millisecond))
	if waited > outcomeWithin {
		t.Errorf("the caller heard the outcome %s after approving, want within %s", waited.Round(time.Millisecond), outcomeWithin)
	}
	heard := b.text(phone, "#transcript")
	redirect := strings.Index(heard, "redirected by the service")
	if redirect < 0 || redirect > strings.Index(heard, "You're verified") {
		t.Errorf("the transcript shows no call update before the outcome:\n%s", heard)
	}
	if strings.Contains(heard, "hear the words again") || !b.has(phone, "#transcript .say.cut") {
		t.Errorf("the call update did not cut the word-pair script short:\n%s", heard)
	}
	b.shot(phone, "phone-interrupted.png")
	// Closing the page hangs up too: the action and the status callback go
	// out signed synchronously, with keepalive, and the call ends.
	b.step("close the phone", phone, chromedp.Navigate("about:blank"))
	b.step("dashboard sees the hang-up", dashboard, waitJS(fmt.Sprintf(`!!document.querySelector('.call[data-sid=%q]')?.textContent.includes('Ended')`, sigrid.SID)))

	// Each call is a row of its own on the dashboard, with its own caller.
	rows := map[string]string{}
	for _, c := range []phoneCall{abandoned, elsa, sigrid} {
		row := fmt.Sprintf(`.call[data-sid=%q] .call-open`, c.SID)
		b.step("dashboard row", dashboard, waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, row)))
		shown := b.text(dashboard, row)
		if shown != ivr.MaskPhone(c.From) {
			t.Errorf("dashboard row of the call from %s shows %q, want %q", c.From, shown, ivr.MaskPhone(c.From))
		}
		rows[shown] = c.SID
	}
	if len(rows) != 3 {
		t.Errorf("the dashboard shows three calls as %v, want three callers", rows)
	}
	b.shot(dashboard, "dashboard-calls.png")

	text := b.text(dashboard, "body")
	for _, n := range []string{cibatest.SEManual, cibatest.NOManual} {
		if strings.Contains(text, n) || strings.Contains(text, n[2:]) {
			t.Errorf("the dashboard shows a full national identity number")
		}
	}
}

// checkSignatures imports the phone's signature module in the page and
// signs Twilio's documented example both ways, and an awkward request
// (non-ASCII, a long token, parameters out of order) that must match what
// the Go side signs.
func checkSignatures(t *testing.T, phone context.Context) {
	const docsToken, docsURL, docsWant = "12345", "https://example.com/myapp.php?foo=1&bar=2", "L/OH5YylLD5NRKLltdqwSvS0BnU="
	docs := [][2]string{{"CallSid", "CA1234567890ABCDE"}, {"Caller", "+14158675310"}, {"Digits", "1234"}, {"From", "+14158675310"}, {"To", "+18005551212"}}
	oddToken, oddURL := strings.Repeat("t", 70), "http://127.0.0.1:8080/twilio/hold?s=7&a=1&q=%C3%B8"
	odd := [][2]string{{"To", "+4712345678"}, {"Caller", "Sigrid Bø"}, {"CallSid", "CA0123"}, {"Digits", ""}, {"CallStatus", "in-progress"}}
	args, _ := json.Marshal([]any{docsToken, docsURL, docs, oddToken, oddURL, odd})
	var got struct {
		Self                         struct{ OK bool }
		Docs, DocsSync, Odd, OddSync string
	}
	raw, err := chromedp.Run(phone, chromedp.Evaluate[[]byte](fmt.Sprintf(`import('/demo/static/signature.js').then(async (m) => {
		const [dt, du, dp, ot, ou, op] = %s;
		return { self: await m.selfTest(), docs: await m.twilioSignature(dt, du, dp), docsSync: m.twilioSignatureSync(dt, du, dp),
			odd: await m.twilioSignature(ot, ou, op), oddSync: m.twilioSignatureSync(ot, ou, op) };
	})`, args), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("import signature.js: %v", err)
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("self-test result %s: %v", raw, err)
	}
	if !got.Self.OK {
		t.Errorf("selfTest() failed: %s", raw)
	}
	if got.Docs != docsWant || got.DocsSync != docsWant {
		t.Errorf("docs example signed %q (WebCrypto), %q (pure JS), want %q", got.Docs, got.DocsSync, docsWant)
	}
	form := url.Values{}
	for _, p := range odd {
		form.Set(p[0], p[1])
	}
	if want := virtualtwilio.Sign(oddToken, oddURL, form); got.Odd != want || got.OddSync != want {
		t.Errorf("awkward request signed %q (WebCrypto), %q (pure JS), want %q as Go signs it", got.Odd, got.OddSync, want)
	}
}

// needChromium skips a test that drives a browser in -short or where
// Chromium is not installed; in CI a missing Chromium fails it.
func needChromium(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("drives a real browser")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium not installed at %s: .ci/run installs it", chromiumPath)
		}
		t.Skipf("chromium not installed at %s (apt-get install -y chromium)", chromiumPath)
	}
}

// screenshotDir is $IVRD_SCREENSHOTS, made if need be, or a temp dir.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("IVRD_SCREENSHOTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newBrowser starts headless Chromium, with a profile of its own, for
// as long as ctx lasts or until cancel.
func newBrowser(t *testing.T, ctx context.Context) (browser context.Context, cancel func()) {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()))
	browser, cancelBrowser := chromedp.NewContext(alloc)
	return browser, func() {
		cancelBrowser()
		cancelAlloc()
	}
}

// demoBrowser drives the demo's tabs. Uncaught exceptions and CSP
// violations in any of them fail the test: a broken or blocked script
// shows nothing else.
type demoBrowser struct {
	t     *testing.T
	shots string

	mu       sync.Mutex
	problems []string
}

// watch starts collecting the tab's exceptions and CSP violations; it
// returns the tab.
func (b *demoBrowser) watch(tab context.Context, name string) context.Context {
	b.t.Helper()
	messages := chromedp.Console(tab)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				b.mu.Lock()
				b.problems = append(b.problems, name+": "+m.String())
				b.mu.Unlock()
			}
		}
	}()
	b.t.Cleanup(func() {
		<-done // the tab's context has ended: cleanups run after the test's defers
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.problems {
			if strings.HasPrefix(p, name+": ") {
				b.t.Errorf("page %s", p)
			}
		}
	})
	return tab
}

// stepTimeout bounds one step, so that a step that hangs (a click on an
// element that never shows) fails with the page's text while the tab can
// still be read.
const stepTimeout = 90 * time.Second

func (b *demoBrowser) step(name string, tab context.Context, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		seen, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.body.innerText`))
		b.t.Fatalf("%s: %v\npage:\n%s", name, err, seen)
	}
}

func (b *demoBrowser) text(tab context.Context, sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (b *demoBrowser) has(tab context.Context, sel string) bool {
	b.t.Helper()
	return evalJS[bool](b, tab, fmt.Sprintf(`!!document.querySelector(%q)`, sel))
}

func (b *demoBrowser) texts(tab context.Context, sel string) []string {
	b.t.Helper()
	return evalJS[[]string](b, tab, fmt.Sprintf(`[...document.querySelectorAll(%q)].map(e => e.textContent.trim())`, sel))
}

func (b *demoBrowser) eval(tab context.Context, js string) string {
	b.t.Helper()
	return evalJS[string](b, tab, js)
}

func evalJS[T any](b *demoBrowser, tab context.Context, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// typeOnKeypad clicks the phone's keys.
func (b *demoBrowser) typeOnKeypad(phone context.Context, keys string) {
	b.t.Helper()
	for _, k := range keys {
		b.step("press "+string(k), phone, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#keypad button[data-key="%c"]`, k))))
	}
}

// hasCard holds when the BankID app shows a request of the call sid whose
// text contains text.
func hasCard(sid, text string) string {
	return fmt.Sprintf(`!!document.querySelector('.req[data-call-sid=%q]')?.textContent.includes(%q)`, sid, text)
}

// checkCallLink checks that the BankID app links the request of call c to
// it: "Call from +46 70 174 06 37, 10:41:03".
func (b *demoBrowser) checkCallLink(bankid context.Context, c phoneCall) {
	b.t.Helper()
	link := b.text(bankid, fmt.Sprintf(`.req[data-call-sid=%q] .call-link`, c.SID))
	if want := "Call from " + spaced(c.From) + ", "; !strings.HasPrefix(link, want) || !regexp.MustCompile(`, \d\d:\d\d:\d\d$`).MatchString(link) {
		b.t.Errorf("BankID request's call link = %q, want %q and the call's start time", link, want+"hh:mm:ss")
	}
}

// phoneCall is a call as the phone page shows it.
type phoneCall struct{ SID, From string }

func (b *demoBrowser) callOnPhone(phone context.Context) phoneCall {
	b.t.Helper()
	c := phoneCall{
		SID:  b.eval(phone, `document.querySelector('#call-sid').dataset.sid`),
		From: b.eval(phone, `document.querySelector('#caller-id').dataset.e164`),
	}
	if !regexp.MustCompile(`^CA[0-9a-f]{32}$`).MatchString(c.SID) || !regexp.MustCompile(`^\+467\d{8}$`).MatchString(c.From) {
		b.t.Fatalf("the phone shows call %q from %q, want a CallSid and a Swedish mobile number", c.SID, c.From)
	}
	if shown := b.text(phone, "#caller-id"); shown != "Calling from "+spaced(c.From) {
		b.t.Errorf("the phone shows %q, want %q", shown, "Calling from "+spaced(c.From))
	}
	return c
}

func (b *demoBrowser) shot(tab context.Context, name string) {
	b.t.Helper()
	b.step("settle before "+name, tab, waitJS(`document.getAnimations().every(a => a.playState !== 'running')`))
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100)) // quality 100 gives a PNG
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// spaced writes a Swedish mobile number as the demo pages do:
// +46701740637 is "+46 70 174 06 37".
func spaced(e164 string) string {
	if len(e164) != 12 {
		return e164
	}
	return strings.Join([]string{e164[:3], e164[3:5], e164[5:8], e164[8:10], e164[10:]}, " ")
}

// waitJS waits until a JavaScript expression is true.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(60*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))(ctx, tg)
		return chromedp.Void{}, err
	}
}

// clickText clicks the enabled button whose text contains text, once there is one.
func clickText(text string) chromedp.Action[chromedp.Void] {
	return waitJS(fmt.Sprintf(`(() => { const b = [...document.querySelectorAll('button')].find(b => b.textContent.includes(%q) && !b.disabled); if (b) { b.click(); return true } return false })()`, text))
}

// startDemo runs `ivrd demo` on a free loopback port, with args added
// (--profile auth0), and returns its base URL.
func startDemo(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		done <- run(ctx, append([]string{"demo", "--listen", "127.0.0.1:0"}, args...), mapEnv(nil), strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	})
	url := regexp.MustCompile(`http://127\.0\.0\.1:\d+`)
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if u := url.FindString(sc.Text()); u != "" {
			go io.Copy(io.Discard, pr) // keep the demo's stdout flowing
			return u
		}
	}
	t.Fatalf("demo printed no URL")
	return ""
}
