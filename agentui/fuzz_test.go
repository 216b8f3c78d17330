package agentui_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ivr/callerverify/agentui"
	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/internal/sqlite"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
)

// fuzzBroker answers every bc-authorize at once: the user is asked.
type fuzzBroker struct{}

func (fuzzBroker) Authenticate(context.Context, ciba.AuthRequest) (*ciba.AuthResponse, error) {
	return &ciba.AuthResponse{AuthReqID: "fuzz", ExpiresIn: 2 * time.Minute, Interval: 2 * time.Second}, nil
}

func (fuzzBroker) Token(context.Context, string) (*ciba.TokenResponse, error) {
	return nil, ciba.ErrAuthorizationPending
}

var fuzzDigitRun = regexp.MustCompile(`\d{10,12}`)

// FuzzVerifyAPI sends a logged-in agent's "verify this caller" request,
// with arbitrary bodies, through the dashboard's handler to the real IVR
// service on a real store. The dashboard's websocket reads no client
// messages (it discards them), so this JSON body is the dashboard's only
// input of its own. Whatever arrives: no panic, no 5xx but the broker's
// 502, a JSON answer, and never a full national identity number in it.
//
//	go test ./agentui -run '^$' -fuzz FuzzVerifyAPI -fuzztime 60s
func FuzzVerifyAPI(f *testing.F) {
	const public = "http://127.0.0.1:8080"
	ctx := f.Context()
	db, err := sqlite.Open(ctx, filepath.Join(f.TempDir(), "ivr.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	log := slog.New(slog.DiscardHandler)
	calls, err := ivr.NewService(ivr.Config{
		PublicURL: public, TwilioAuthToken: "t", AccountSID: "AC00000000000000000000000000000000", HashKey: []byte("0123456789abcdef0123456789abcdef"),
		RateLimitNumber: ivr.RateLimit{Max: -1}, RateLimitCaller: ivr.RateLimit{Max: -1},
	}, db, fuzzBroker{}, nil, log)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(calls.Close)
	now := time.Now()
	for _, c := range []*store.Call{
		{SID: "CAlive", From: "+46701234567", Language: "sv-SE", State: store.CallHandedOff, CreatedAt: now, UpdatedAt: now},
		{SID: "CAended", From: "+46701234567", Language: "sv-SE", State: store.CallEnded, CreatedAt: now, UpdatedAt: now, EndedAt: now},
	} {
		if _, err := db.CreateCall(ctx, c); err != nil {
			f.Fatal(err)
		}
	}
	ui, err := agentui.NewServer(agentui.Config{PublicURL: public}, db, calls, agentui.NewHub(log), log)
	if err != nil {
		f.Fatal(err)
	}
	if err := agentui.AddAgent(ctx, db, "fuzzer", "a long enough password", now); err != nil {
		f.Fatal(err)
	}
	cookie, err := ui.Login(ctx, "fuzzer", "a long enough password")
	if err != nil {
		f.Fatal(err)
	}
	h := ui.Handler()
	// The CSRF token, from the dashboard page as a browser gets it.
	page := httptest.NewRequest(http.MethodGet, public+"/agent/", nil)
	page.AddCookie(cookie)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, page)
	const marker = `<meta name="csrf-token" content="`
	body := w.Body.String()
	i := strings.Index(body, marker)
	if i < 0 {
		f.Fatalf("dashboard page without a CSRF token: %d", w.Code)
	}
	csrf := body[i+len(marker):]
	csrf = csrf[:strings.IndexByte(csrf, '"')]

	sids := []string{"CAlive", "CAended", "CAunknown", "CA%2F..%2F", ""}
	f.Add(uint8(0), `{"number":"198503122387"}`)
	f.Add(uint8(0), `{"number":"19850312-2387"}`)
	f.Add(uint8(0), `{"number":"15038541215"}`)
	f.Add(uint8(0), `{"number":"12345"}`)
	f.Add(uint8(0), `{"number":198503122387}`)
	f.Add(uint8(0), `{"number":"198503122387","number":"x"}`)
	f.Add(uint8(0), `{"number":"`+strings.Repeat("9", 2000)+`"}`)
	f.Add(uint8(0), `number=198503122387`)
	f.Add(uint8(0), ``)
	f.Add(uint8(1), `{"number":"198503122387"}`)
	f.Add(uint8(2), `{"number":"198503122387"}`)
	f.Add(uint8(3), `{"number":"\u0031\u0039"}`)

	f.Fuzz(func(t *testing.T, which uint8, body string) {
		sid := sids[int(which)%len(sids)]
		req := httptest.NewRequest(http.MethodPost, public+"/agent/api/calls/"+sid+"/verify", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", public)
		req.Header.Set("X-CSRF-Token", csrf)
		req.AddCookie(cookie)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		resp := w.Result()
		got, _ := io.ReadAll(resp.Body)
		switch resp.StatusCode {
		case http.StatusAccepted, http.StatusBadRequest, http.StatusNotFound, http.StatusConflict,
			http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusBadGateway,
			http.StatusMethodNotAllowed:
		default:
			t.Fatalf("status %d for %s %q: %s", resp.StatusCode, sid, body, got)
		}
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed && !json.Valid(got) {
			t.Errorf("status %d with a body that is not JSON: %q", resp.StatusCode, got)
		}
		for _, run := range fuzzDigitRun.FindAllString(string(got), -1) {
			if _, err := ivr.ParseNationalID(run, time.Now()); err == nil {
				t.Errorf("the answer shows a national identity number in full: %s", got)
			}
		}
	})
}
