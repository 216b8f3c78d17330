package agentui_test

// A real-browser test of the dashboard: headless Chromium logs in, watches a
// call go to verified, starts a verification for another caller and takes
// screenshots. Run it with
//
//	go test -run Browser -v ./agentui/
//
// Screenshots go to $AGENTUI_SCREENSHOTS (default: the test's temp dir).
// It skips when /usr/bin/chromium is absent (apt-get install -y chromium),
// except in CI (CI set), where .ci/run installs it and a skip would hide a
// broken install.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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

func TestBrowserDashboardWatchesACallGetVerified(t *testing.T) {
	requireChromium(t)
	shots := os.Getenv("AGENTUI_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}

	now := time.Now().UTC()
	se := &store.CallView{CallSID: "CA-se", Caller: "+46 70•••••12", Language: "sv-SE", State: store.ViewGathering,
		Since: now.Add(-2 * time.Minute), UpdatedAt: now.Add(-2 * time.Minute)}
	no := &store.CallView{CallSID: "CA-no", Caller: "+47 9•••••34", Language: "nb-NO", State: store.ViewUnverified, Outcome: "unverified",
		Since: now.Add(-5 * time.Minute), UpdatedAt: now.Add(-time.Minute)}
	calls := &fakeCalls{
		live: []store.CallView{*se, *no},
		timeline: map[string][]store.Event{"CA-se": {
			{Seq: 1, At: now.Add(-2 * time.Minute), CallSID: "CA-se", Kind: "call_started", Actor: "twilio", Detail: "incoming call"},
			{Seq: 2, At: now.Add(-time.Minute), CallSID: "CA-se", Kind: "number_entered", Actor: "caller", Detail: "SE ••••••••••85"},
		}},
	}
	e := newEnv(t, agentui.Config{}, calls)
	e.clock.Advance(now.Sub(e.clock.Now()))

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
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()

	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	waitFor := func(step, js string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			t.Fatalf("%s (waiting for %s): %v", step, js, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 gives a PNG
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		p := filepath.Join(shots, name)
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}

	// A wrong password is refused with a message, without JavaScript.
	do("open the dashboard", chromedp.Navigate(e.srv.URL+"/agent/"))
	do("wrong password",
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), testAgent),
		chromedp.SendKeys(chromedp.CSS("#password"), "not the password"),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")),
	)
	if got := text("#login-error"); !strings.Contains(got, "Wrong agent name or password") {
		t.Errorf("login error = %q", got)
	}
	do("log in",
		chromedp.SetValue(chromedp.CSS("#password"), testPass),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#live")),
	)
	waitFor("connect", `document.querySelector('#conn').classList.contains('conn-live')`)
	waitFor("both calls listed", `document.querySelectorAll('#live-body tr').length === 2`)

	// The Swedish caller goes through BankID to verified.
	se.State, se.UpdatedAt = store.ViewAwaitingBankID, now.Add(time.Second)
	se.Verification = &store.VerificationView{ID: "v1", Country: "SE", Method: "Swedish BankID", MaskedID: "••••••••••85",
		Status: "pending", Pending: "userSign", Initiator: "caller", StartedAt: now}
	e.hub.Publish(ctx, store.Event{Seq: 3, At: now, CallSID: "CA-se", Kind: "verification_pending", Actor: "system", Detail: "BankID pending", Call: clone(se)})
	waitFor("pending sub-state shown", `document.querySelector('#live-body').textContent.includes('caller is confirming in BankID')`)

	do("open the call", chromedp.Click(chromedp.CSS(`button.link[data-sid="CA-se"]`)))
	waitFor("timeline loaded", `document.querySelectorAll('#timeline li').length === 2`)

	done := now.Add(2 * time.Second)
	se.State, se.UpdatedAt = store.ViewVerified, done
	se.Outcome = "verified"
	se.Verification.Status, se.Verification.Pending, se.Verification.Name, se.Verification.CompletedAt = "approved", "", "Anna Andersson", &done
	e.hub.Publish(ctx, store.Event{Seq: 4, At: done, CallSID: "CA-se", Kind: "verified", Actor: "system", Detail: "Swedish BankID ••••••••••85", Call: clone(se)})
	waitFor("verified with name", `document.querySelector('#live-body tr[data-sid="CA-se"]').textContent.includes('Anna Andersson')`)
	waitFor("timeline got the live event", `document.querySelectorAll('#timeline li').length === 3`)
	if got := text(`#live-body tr[data-sid="CA-se"]`); !strings.Contains(got, "Verified") || !strings.Contains(got, "••••••••••85") || !strings.Contains(got, "Swedish BankID") {
		t.Errorf("verified row = %q, want state, masked number and method", got)
	}
	shot("dashboard-verified.png")

	// The agent verifies the Norwegian caller: a wrong number is explained,
	// a right one starts BankID and the word pair appears in large type.
	do("open the other call", chromedp.Click(chromedp.CSS(`button.link[data-sid="CA-no"]`)),
		chromedp.WaitVisible(chromedp.CSS("#verify-number")))
	do("wrong check digit",
		chromedp.SendKeys(chromedp.CSS("#verify-number"), "199001012384"),
		chromedp.Click(chromedp.CSS("#verify-submit")),
		chromedp.WaitVisible(chromedp.CSS("#verify-error")))
	if got := text("#verify-error"); !strings.Contains(got, "check digit") {
		t.Errorf("verify error = %q, want it to explain the check digit", got)
	}
	do("right number",
		chromedp.SetValue(chromedp.CSS("#verify-number"), validSE),
		chromedp.Click(chromedp.CSS("#verify-submit")),
		chromedp.WaitVisible(chromedp.CSS("#verify-ok")))
	if s := calls.startedCalls(); len(s) != 1 || s[0].agent != testAgent || s[0].sid != "CA-no" {
		t.Fatalf("started = %+v, want one verification of CA-no by %s", s, testAgent)
	}
	no.State, no.UpdatedAt = store.ViewWordPair, now.Add(3*time.Second)
	no.Verification = &store.VerificationView{ID: "v2", Country: "NO", Method: "Norwegian BankID", MaskedID: "•••••••••34",
		Status: "pending", WordPair: "blå hest", Initiator: "agent:anna", StartedAt: now}
	e.hub.Publish(ctx, store.Event{Seq: 5, At: now, CallSID: "CA-no", Kind: "verification_pending", Actor: "agent:anna", Call: clone(no)})
	waitFor("word pair in large type", `(document.querySelector('#details .wordpair-xl')||{}).textContent === 'blå hest'`)
	shot("dashboard-wordpair.png")

	// Keyboard: Escape closes the details, Enter on a caller opens them.
	do("close with Escape", chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.CSS("#details")))
	do("open with Enter", chromedp.Focus(chromedp.CSS(`button.link[data-sid="CA-se"]`)), chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS("#details")))
	waitFor("details of the focused call", `document.activeElement.id === 'details-heading' && document.querySelector('#details-heading').textContent.includes('+46')`)

	// A tablet in portrait: one column, nothing wider than the screen.
	do("tablet viewport", chromedp.EmulateViewport(820, 1180))
	waitFor("no horizontal scrolling", `document.documentElement.scrollWidth <= 820`)
	shot("dashboard-tablet.png")
	do("desktop viewport", chromedp.EmulateViewport(1280, 900))

	// Losing the connection is shown.
	e.stopHub()
	waitFor("disconnection shown", `document.querySelector('#conn').classList.contains('conn-down')`)
	if got := text("#conn-text"); !strings.Contains(got, "Disconnected") {
		t.Errorf("connection indicator = %q, want Disconnected", got)
	}
	shot("dashboard-disconnected.png")
}

func clone(c *store.CallView) *store.CallView {
	cp := *c
	if c.Verification != nil {
		v := *c.Verification
		cp.Verification = &v
	}
	return &cp
}
