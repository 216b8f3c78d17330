package lbtest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/ivr/callerverify/internal/lbtest"
)

// backend answers "<name> <body>" and echoes websocket messages with its
// name in front.
func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			for {
				_, msg, err := ws.ReadMessage()
				if err != nil {
					return
				}
				if err := ws.WriteMessage(websocket.TextMessage, append([]byte(name+" "), msg...)); err != nil {
					return
				}
			}
		}
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, name+" "+string(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, url, body string) string {
	t.Helper()
	resp, err := http.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST: %s %s", resp.Status, b)
	}
	return string(b)
}

func TestRoundRobinWithoutStickiness(t *testing.T) {
	a, b := backend(t, "a"), backend(t, "b")
	lb, err := lbtest.New(a.URL, b.URL)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(lb)
	defer front.Close()
	got := map[string]int{}
	for range 10 {
		got[strings.Fields(post(t, front.URL+"/x", "hello"))[0]]++
	}
	if got["a"] != 5 || got["b"] != 5 {
		t.Errorf("10 requests went %v, want 5 to each backend", got)
	}
}

func TestDeadBackendIsSkippedAndTheRequestReplayed(t *testing.T) {
	a, b := backend(t, "a"), backend(t, "b")
	lb, err := lbtest.New(a.URL, b.URL)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(lb)
	defer front.Close()
	b.Close() // refuses connections from now on
	for i := range 6 {
		if got := post(t, front.URL+"/x", "body"); got != "a body" {
			t.Fatalf("request %d answered %q, want %q (the body replayed on the live backend)", i, got, "a body")
		}
	}
	if n := lb.Retries(); n != 1 {
		t.Errorf("%d retries, want 1: the dead backend is skipped once it failed", n)
	}
}

func TestWebsocketsPassThrough(t *testing.T) {
	a := backend(t, "a")
	lb, err := lbtest.New(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(lb)
	defer front.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(front.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := ws.ReadMessage()
	if err != nil || string(msg) != "a ping" {
		t.Errorf("websocket echo = %q, %v; want %q", msg, err, "a ping")
	}
}
