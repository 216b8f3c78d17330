package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ivr/callerverify/ciba/cibatest"
)

// The demo with each broker the simulator speaks, in headless Chromium:
// the approval page looks like that broker's app (Auth0 Guardian's push,
// Mosaic's SMS or e-mail link to a hosted login page, a neutral identity
// app, BankID), the phone page calls as the broker needs, and a caller is
// verified both ways: by the IVR, and by an agent from the dashboard.
// Screenshots of every approval page, at 1280 and at 400 px wide, go to
// $IVRD_SCREENSHOTS (default: a temp dir).

// brokerTheme is the class the approval page puts on <body> per profile.
var brokerTheme = map[string]string{
	cibatest.ProfileIdura:    "bankid-page",
	cibatest.ProfileAuth0:    "guardian-page",
	cibatest.ProfileTransmit: "mosaic-page",
	cibatest.ProfileGeneric:  "idapp-page",
}

// TestBrowserBrokerCall: a caller identifies themselves in the IVR as the
// broker allows (Auth0: a customer number; Transmit: the phone they call
// from, menu choice 1; generic: menu choice 2 and a customer number), hears
// the code of the request, finds the same code on the broker's approval
// page and approves there; the phone hears they are verified and the
// dashboard shows them verified by name.
func TestBrowserBrokerCall(t *testing.T) {
	needChromium(t)
	tests := []struct {
		profile string
		user    string // the name the broker's ID token carries
		phone   string // call from this test user's phone, or a demo number when ""
		keys    []string
	}{
		{profile: cibatest.ProfileAuth0, user: "Maria Garcia", keys: []string{cibatest.Auth0Approve + "#"}},
		{profile: cibatest.ProfileTransmit, user: "Johan Andersson", phone: cibatest.TransmitApprovePhone, keys: []string{"1"}},
		{profile: cibatest.ProfileGeneric, user: "Anna Virtanen", keys: []string{"2", cibatest.GenericApprove + "#"}},
	}
	for _, tt := range tests {
		t.Run(tt.profile, func(t *testing.T) {
			t.Parallel() // a demo and a browser each
			d := startBrokerDemo(t, tt.profile)
			b := d.b

			// The caller dials: from a test user's phone or a new demo number.
			if tt.phone != "" {
				b.step("call from the user's phone", d.phone, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#users button[data-phone=%q]`, tt.phone))))
			} else {
				b.step("call", d.phone, chromedp.Click(chromedp.CSS("#call")))
			}
			c := b.callOnPhone(d.phone)
			if tt.phone != "" && c.From != tt.phone {
				t.Errorf("the call comes from %s, want the test user's phone %s", c.From, tt.phone)
			}
			if tt.phone == "" && slices.ContainsFunc(cibatest.UsersFor(cibatest.ProfileTransmit), func(u cibatest.User) bool { return u.Phone == c.From }) {
				t.Errorf("the call comes from %s, a test user's phone, want a new demo number", c.From)
			}
			for _, k := range tt.keys {
				switch {
				case k == "1" || k == "2":
					b.step("menu", d.phone, waitJS(lastSay(`phone you're calling from`)))
				default:
					b.step("number prompt", d.phone, waitJS(lastSay(`customer number, followed by the pound key`)))
				}
				b.typeOnKeypad(d.phone, k)
			}

			// The IVR reads the request's code; the approval page shows the same.
			code := d.heardCode()
			card := d.openRequest(c)
			if shown := b.eval(d.app, fmt.Sprintf(`document.querySelector('%s .code-box')?.dataset.code ?? ''`, card)); shown != code {
				t.Errorf("the approval page shows the code %q, want %q as the caller heard", shown, code)
			}
			if text := b.text(d.app, card); !strings.Contains(text, tt.user) {
				t.Errorf("the approval page's request says %q, want it for %s", text, tt.user)
			}
			d.approve(card)
			// These users approve by themselves after 4 s: the page must have been first.
			if after := d.requestAge(c.SID); after >= 4*time.Second {
				t.Errorf("approved on the page %s after the request started, want before the user's own approval at 4 s", after.Round(time.Millisecond))
			} else {
				t.Logf("approved on the page %s after the request started", after.Round(time.Millisecond))
			}

			b.step("caller verified", d.phone, waitJS(`document.querySelector('#transcript').textContent.includes("You're verified")`))
			given, _, _ := strings.Cut(tt.user, " ")
			if heard := b.text(d.phone, "#transcript"); !strings.Contains(heard, "Thank you, "+given+".") {
				t.Errorf("the caller heard no thanks by name (%s):\n%s", tt.user, heard)
			}
			d.dashboardVerified(c.SID, tt.user)
			d.photograph(tt.profile+"-caller-approved", c.SID)
			b.shot(d.phone, tt.profile+"-phone-verified-1280.png")
			b.step("phone at 400 px", d.phone, chromedp.EmulateViewport(400, 860), waitJS(`window.innerWidth === 400`))
			b.shot(d.phone, tt.profile+"-phone-verified-400.png")
			if w := evalJS[[]int](b, d.phone, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
				t.Errorf("the phone page at 400 px is %d px wide, want at most %d (no sideways scrolling)", w[0], w[1])
			}
		})
	}
}

// TestBrowserBrokerAgentVerifies is the agent-started verification with
// each broker: a caller who stays silent (at the number prompt, or in the
// menu where there is one) reaches the agents unverified; the agent opens the call on the dashboard, the verify form
// offers what the broker takes (a national identity number at Idura, a
// customer number at Auth0, a choice of customer number, phone number or
// e-mail address at Transmit and generic), the agent starts it for a
// "manual" test user, the user approves on the broker's approval page and
// the dashboard shows the caller verified by name. The approval pages are
// photographed at 1280 and 400 px wide on the way; at 400 px nothing may
// scroll sideways.
func TestBrowserBrokerAgentVerifies(t *testing.T) {
	needChromium(t)
	tests := []struct {
		profile string
		kinds   []string // the verify form's kind inputs, "type:value"
		kind    string   // the one the agent picks, and the field's label then
		label   string
		value   string
		user    string
	}{
		{profile: cibatest.ProfileIdura, kinds: []string{"hidden:national_id"}, value: cibatest.SEManual, user: "Elsa Holm"},
		{profile: cibatest.ProfileAuth0, kinds: []string{"hidden:customer_number"}, value: cibatest.Auth0Manual, user: "Chloe Martin"},
		{profile: cibatest.ProfileTransmit, kinds: []string{"radio:customer_number", "radio:phone", "radio:email"}, kind: "email", label: "E-mail address", value: cibatest.TransmitManualEmail, user: "Nils Forsberg"},
		{profile: cibatest.ProfileGeneric, kinds: []string{"radio:customer_number", "radio:phone", "radio:email"}, value: cibatest.GenericManual, user: "Aino Laine"},
	}
	for _, tt := range tests {
		t.Run(tt.profile, func(t *testing.T) {
			t.Parallel() // a demo and a browser each
			d := startBrokerDemo(t, tt.profile)
			b := d.b

			// The caller stays silent until the IVR gives up and puts them through.
			b.step("call", d.phone, chromedp.Click(chromedp.CSS("#call")))
			c := b.callOnPhone(d.phone)
			b.step("put through unverified", d.phone, waitJS(`document.querySelector('#transcript').textContent.includes("putting you through to an agent")`))
			b.step("dashboard: waiting unverified", d.dashboard, waitJS(fmt.Sprintf(`!!document.querySelector('.call.cat-unverified[data-sid=%q]')`, c.SID)))

			// The agent opens the call: the form offers the broker's kinds.
			b.step("open the call", d.dashboard, clickWhenEnabled(fmt.Sprintf(`.call-open[data-sid=%q]`, c.SID)),
				waitJS(`document.querySelector('#details').open && !document.querySelector('#verify-form').hidden`), chromedp.WaitVisible(chromedp.CSS("#verify-number")))
			kinds := evalJS[[]string](b, d.dashboard, `[...document.querySelectorAll('#verify-form input[name="kind"]')].map(i => i.type + ':' + i.value)`)
			if !slices.Equal(kinds, tt.kinds) {
				t.Errorf("the verify form offers %q, want %q", kinds, tt.kinds)
			}
			if tt.kind != "" {
				b.step("pick "+tt.kind, d.dashboard, clickWhenEnabled(fmt.Sprintf(`#verify-form input[name="kind"][value=%q]`, tt.kind)))
				if label := b.text(d.dashboard, "#verify-label"); label != tt.label {
					t.Errorf("after picking %s the field is labelled %q, want %q", tt.kind, label, tt.label)
				}
			}
			b.step("start", d.dashboard, chromedp.SendKeys(chromedp.CSS("#verify-number"), tt.value),
				clickWhenEnabled("#verify-submit"), chromedp.WaitVisible(chromedp.CSS("#verify-ok")))

			// The user's app shows the request, started by the agent.
			card := d.openRequest(c)
			if link := b.text(d.app, fmt.Sprintf(`.req[data-call-sid=%q] .call-link`, c.SID)); !strings.HasSuffix(link, " · started by agent "+demoAgent) {
				t.Errorf("the request's call link says %q, want it started by agent %s", link, demoAgent)
			}
			if text := b.text(d.app, card); !strings.Contains(text, tt.user) {
				t.Errorf("the approval page's request says %q, want it for %s", text, tt.user)
			}
			d.photograph(tt.profile+"-agent-request", c.SID)
			if tt.profile != cibatest.ProfileIdura {
				// The agent sees the code the caller's screen shows, to tell them.
				shown := b.eval(d.app, fmt.Sprintf(`document.querySelector('%s .code-box')?.dataset.code ?? ''`, card))
				told := b.text(d.dashboard, "#verify-ok")
				onBoard := b.eval(d.dashboard, `document.querySelector('#details-summary .code')?.textContent ?? ''`)
				if shown == "" || !strings.Contains(told, shown) || onBoard != shown {
					t.Errorf("the app shows code %q; the agent was told %q and the dashboard shows %q", shown, told, onBoard)
				}
			}
			if tt.profile == cibatest.ProfileTransmit {
				// Sent to an e-mail address, the link comes by e-mail, to that address.
				msg := fmt.Sprintf(`.req.msg[data-call-sid=%q]`, c.SID)
				if !b.has(d.app, msg+".mail") || !strings.Contains(b.text(d.app, msg), "To "+tt.value) {
					t.Errorf("the request to %s is not an e-mail to that address: %q", tt.value, b.text(d.app, msg))
				}
			}
			d.approve(card)
			d.dashboardVerified(c.SID, tt.user)
			b.shot(d.app, tt.profile+"-agent-approved-1280.png")
			if text := b.text(d.dashboard, "body"); tt.profile == cibatest.ProfileIdura && (strings.Contains(text, tt.value) || strings.Contains(text, tt.value[2:])) {
				t.Errorf("the dashboard shows a full national identity number")
			}
		})
	}
}

// brokerDemo is `ivrd demo --profile …` in one browser: the agent's
// dashboard, the caller's phone and the approval app, each in a tab.
type brokerDemo struct {
	t                     *testing.T
	b                     *demoBrowser
	profile, base         string
	dashboard, phone, app context.Context
}

func startBrokerDemo(t *testing.T, profile string) *brokerDemo {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	d := &brokerDemo{t: t, profile: profile, base: startDemo(t, ctx, "--profile", profile)}
	d.b = &demoBrowser{t: t, shots: screenshotDir(t)}

	browser, cancelBrowser := newBrowser(t, ctx)
	var cancelTabs []context.CancelFunc
	// Registered on return (or on a failed step), after watch's cleanups,
	// so it runs before them: they wait for the tabs' consoles to end,
	// which they do when the tabs' contexts do.
	defer t.Cleanup(func() {
		for _, c := range slices.Backward(cancelTabs) {
			c()
		}
		cancelBrowser()
	})
	d.dashboard = d.b.watch(browser, profile+" dashboard")
	d.b.step("dashboard login", d.dashboard, chromedp.Navigate(d.base+"/demo/login"), chromedp.WaitVisible(chromedp.CSS("#live-heading")),
		waitJS(`document.querySelector('#conn-text').textContent.toLowerCase().includes('live')`))
	tab := func(name string) context.Context {
		c, cancel := chromedp.NewContext(browser)
		cancelTabs = append(cancelTabs, cancel)
		return d.b.watch(c, profile+" "+name)
	}
	d.phone, d.app = tab("phone"), tab("app")
	d.b.step("open the phone", d.phone, chromedp.Navigate(d.base+"/demo/phone?timescale=0.1"), chromedp.WaitVisible(chromedp.CSS("#call")),
		waitJS(`!document.querySelector('#call').disabled`))
	d.b.step("open the app", d.app, chromedp.Navigate(d.base+"/demo/app"),
		waitJS(fmt.Sprintf(`document.body.classList.contains(%q) && document.querySelector('#conn').textContent.includes('Online')`, brokerTheme[profile])))
	return d
}

// heardCode waits for the IVR to read the request's code to the caller
// ("… shows the code 4 8 2 1 …") and returns it.
func (d *brokerDemo) heardCode() string {
	d.t.Helper()
	const heard = `(document.querySelector('#transcript').textContent.match(/the code\s+((?:\d\s*){4})/)?.[1] ?? '').replace(/\s+/g, '')`
	d.b.step("code read out", d.phone, waitJS(heard+` !== ''`))
	return d.b.eval(d.phone, heard)
}

// openRequest waits for the approval page to show the request of call c,
// linked to it, and brings up the place where it is decided: the card
// itself, or at Mosaic the hosted login page its message links to. It
// returns that place's selector.
func (d *brokerDemo) openRequest(c phoneCall) string {
	d.t.Helper()
	card := fmt.Sprintf(`.req[data-call-sid=%q]`, c.SID)
	d.b.step("request shown", d.app, waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, card)))
	if link, want := d.b.text(d.app, card+" .call-link"), "Call from "+spaced(c.From)+", "; !strings.HasPrefix(link, want) {
		d.t.Errorf("the request's call link says %q, want it to start %q", link, want)
	}
	if d.profile != cibatest.ProfileTransmit {
		return card
	}
	page := fmt.Sprintf(`.login-page[data-call-sid=%q]`, c.SID)
	d.b.step("open the link", d.app, chromedp.Click(chromedp.CSS(card+" a.msg-link")),
		waitJS(fmt.Sprintf(`!!document.querySelector(%q) && !document.querySelector('.browser').hidden && document.activeElement?.closest('.login-page') === document.querySelector(%q)`, page, page)))
	return page
}

// approve approves the request shown at sel as its user would: BankID's
// three steps (Swedish) or the approve button.
func (d *brokerDemo) approve(sel string) {
	d.t.Helper()
	if d.profile == cibatest.ProfileIdura {
		for _, s := range []string{"open", "acknowledge", "approve"} {
			d.b.step("bankid "+s, d.app, clickWhenEnabled(sel+fmt.Sprintf(` button[data-action=%q]`, s)))
		}
	} else {
		d.b.step("approve", d.app, clickWhenEnabled(sel+` button[data-action="approve"]`))
	}
	d.b.step("approved on the page", d.app, waitJS(fmt.Sprintf(`document.querySelector(%q)?.dataset.state === 'approved' && !document.querySelector('%s .outcome').hidden`, sel, sel)))
}

// requestAge is how long after the broker made it the request of call sid
// was decided, measured now: the demo lists its creation time.
func (d *brokerDemo) requestAge(sid string) time.Duration {
	d.t.Helper()
	now := time.Now()
	resp, err := http.Get(d.base + "/demo/api/requests")
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var reqs []struct {
		CallSID   string    `json:"callSid"`
		CreatedAt time.Time `json:"createdAt"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reqs); err != nil {
		d.t.Fatalf("/demo/api/requests: %v", err)
	}
	for _, r := range reqs {
		if r.CallSID == sid {
			return now.Sub(r.CreatedAt)
		}
	}
	d.t.Fatalf("/demo/api/requests lists no request of call %s", sid)
	return 0
}

// dashboardVerified waits for the dashboard to show call sid verified as name.
func (d *brokerDemo) dashboardVerified(sid, name string) {
	d.t.Helper()
	row := fmt.Sprintf(`.call[data-sid=%q]`, sid)
	d.b.step("dashboard verified", d.dashboard, waitJS(fmt.Sprintf(`document.querySelector('%s .verified-name')?.textContent === %q && !!document.querySelector('%s.cat-verified')`, row, name, row)))
}

// photograph takes the approval page at 1280 and at 400 px wide (and at
// Mosaic its inbox too) and checks that at 400 px nothing scrolls sideways.
func (d *brokerDemo) photograph(name, sid string) {
	d.t.Helper()
	b := d.b
	views := []string{""}
	if d.profile == cibatest.ProfileTransmit {
		views = []string{"-login", "-inbox"}
	}
	for _, v := range views {
		if v == "-inbox" {
			b.step("back to the inbox", d.app, chromedp.Click(chromedp.CSS(".browser-back")), waitJS(`document.querySelector('.browser').hidden && document.activeElement?.classList.contains('msg-link')`))
		}
		b.shot(d.app, name+v+"-1280.png")
		b.step("400 px wide", d.app, chromedp.EmulateViewport(400, 860))
		b.step("laid out at 400 px", d.app, waitJS(`window.innerWidth === 400`))
		if w := evalJS[[]int](b, d.app, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
			d.t.Errorf("%s%s at 400 px: the page is %d px wide, want at most %d (no sideways scrolling)", name, v, w[0], w[1])
		}
		b.shot(d.app, name+v+"-400.png")
		b.step("back to 1280 px", d.app, chromedp.EmulateViewport(1280, 900), waitJS(`window.innerWidth === 1280`))
	}
	if d.profile == cibatest.ProfileTransmit {
		b.step("open the link again", d.app, chromedp.Click(chromedp.CSS(fmt.Sprintf(`.req[data-call-sid=%q] a.msg-link`, sid))), waitJS(`!document.querySelector('.browser').hidden`))
	}
}

// lastSay holds when the IVR's latest prompt contains text.
func lastSay(text string) string {
	return fmt.Sprintf(`!!([...document.querySelectorAll('#transcript .say')].at(-1)?.textContent.includes(%q))`, text)
}

// clickWhenEnabled clicks the element at sel once it is there and enabled,
// in the page: the dashboard redraws its rows every second and lays its
// details out again when the timeline arrives, and a synthetic press and
// release at coordinates found before such a change miss.
func clickWhenEnabled(sel string) chromedp.Action[chromedp.Void] {
	return waitJS(fmt.Sprintf(`(() => { const b = document.querySelector(%q); if (b && !b.disabled && !b.hidden) { b.click(); return true } return false })()`, sel))
}

// TestDemoPageHeaders: the demo's pages and their assets carry the same
// Content-Security-Policy as the dashboard, and nosniff; /demo/bankid and
// /demo/app are the one approval page.
func TestDemoPageHeaders(t *testing.T) {
	base := startDemo(t, t.Context(), "--profile", cibatest.ProfileAuth0)
	resp, err := http.Get(base + "/agent/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); got != demoPagePolicy {
		t.Errorf("the dashboard's policy is %q, the demo pages' %q: want the same", got, demoPagePolicy)
	}
	var app string
	for _, path := range []string{"/demo/phone", "/demo/bankid", "/demo/app", "/demo/static/app.js", "/demo/static/demo.css"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s, want 200", path, resp.Status)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != demoPagePolicy {
			t.Errorf("GET %s: Content-Security-Policy %q, want %q", path, got, demoPagePolicy)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", path, got)
		}
		switch path {
		case "/demo/bankid":
			app = string(body)
		case "/demo/app":
			if string(body) != app || !strings.Contains(app, `src="/demo/static/app.js"`) {
				t.Errorf("/demo/app and /demo/bankid serve different pages, want the approval page at both")
			}
		}
	}
}
