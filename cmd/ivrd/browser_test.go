package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ivr/callerverify/ciba/cibatest"
)

const chromiumPath = "/usr/bin/chromium"

// TestBrowserDemo is the demo as a newcomer uses it, in headless Chromium:
// the phone page dials the support line and types a number, the BankID app
// page confirms the call and identifies, and the agent dashboard (logged in
// through the demo link) shows the caller verified by name. Everything runs
// through `ivrd demo`: real webhooks with real signatures, the simulator
// broker, sqlite. Screenshots go to $IVRD_SCREENSHOTS (default: a temp dir).
func TestBrowserDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a real browser")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium not installed at %s: .ci/run installs it", chromiumPath)
		}
		t.Skipf("chromium not installed at %s (apt-get install -y chromium)", chromiumPath)
	}
	shots := os.Getenv("IVRD_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	base := startDemo(t, ctx)

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	dashboard := browser

	step := func(name string, tab context.Context, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, actions...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// waitJS waits until a JavaScript expression is true.
	waitJS := func(expr string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(60*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))(ctx, tg)
			return chromedp.Void{}, err
		}
	}
	shot := func(tab context.Context, name string) {
		t.Helper()
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100)) // quality 100 gives a PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	clickText := func(text string) chromedp.Action[chromedp.Void] {
		return waitJS(fmt.Sprintf(`(() => { const b = [...document.querySelectorAll('button')].find(b => b.textContent.includes(%q) && !b.disabled); if (b) { b.click(); return true } return false })()`, text))
	}

	// The agent opens the dashboard through the demo's login link.
	step("dashboard login", dashboard, chromedp.Navigate(base+"/demo/login"), chromedp.WaitVisible(chromedp.CSS("#live-heading")),
		waitJS(`document.querySelector('#conn-text').textContent.toLowerCase().includes('live')`))

	// Further tabs of the same browser (which the first Run started).
	phone, cancelPhone := chromedp.NewContext(browser)
	defer cancelPhone()
	bankid, cancelBankID := chromedp.NewContext(browser)
	defer cancelBankID()

	// The caller dials and types Elsa Holm's number (the simulator's manual
	// user, who waits for the BankID page), then #.
	step("call", phone, chromedp.Navigate(base+"/demo/phone?timescale=0.1"), chromedp.WaitVisible(chromedp.CSS("#call")),
		chromedp.Click(chromedp.CSS("#call")),
		waitJS(`document.querySelector('#transcript').textContent.includes('pound key')`))
	for _, k := range cibatest.SEManual + "#" {
		step("press "+string(k), phone, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#keypad button[data-key="%c"]`, k))))
	}
	step("hold", phone, waitJS(`document.querySelector('#transcript').textContent.includes('open the BankID app')`))
	step("dashboard sees the caller", dashboard, waitJS(`document.querySelector('#live').textContent.includes('BankID')`))
	shot(phone, "phone-waiting.png")
	shot(dashboard, "dashboard-awaiting.png")

	// The caller's phone: BankID asks whether customer service is calling.
	step("bankid request", bankid, chromedp.Navigate(base+"/demo/bankid"),
		waitJS(`document.querySelector('#requests').textContent.includes('Kundtjänst')`))
	shot(bankid, "bankid-request.png")
	step("open", bankid, clickText("Open BankID"))
	step("acknowledge", bankid, clickText("on the phone with them"))
	step("identify", bankid, clickText("Identify"))

	// The caller hears they are verified and goes to the agents' queue; the
	// dashboard shows the verified name.
	step("caller verified", phone, waitJS(`document.querySelector('#transcript').textContent.includes("You're verified")`))
	step("dashboard verified", dashboard, waitJS(`(() => { const t = document.querySelector('#live').textContent; return t.includes('Elsa Holm') && t.toLowerCase().includes('verified') })()`))
	shot(phone, "phone-verified.png")
	shot(dashboard, "dashboard-verified.png")

	text, err := chromedp.Run(dashboard, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, cibatest.SEManual) || strings.Contains(text, cibatest.SEManual[2:]) {
		t.Errorf("the dashboard shows the full national identity number")
	}
}

// startDemo runs `ivrd demo` on a free loopback port and returns its base URL.
func startDemo(t *testing.T, ctx context.Context) string {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		done <- run(ctx, []string{"demo", "--listen", "127.0.0.1:0"}, mapEnv(nil), strings.NewReader(""), pw, io.Discard)
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
