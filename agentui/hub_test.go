package agentui_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ivr/callerverify/agentui"
	"github.com/ivr/callerverify/internal/store"
)

type wsMsg struct {
	Type   string           `json:"type"`
	Calls  []store.CallView `json:"calls"`
	Recent []store.CallView `json:"recent"`
	Event  struct {
		Seq     int64  `json:"seq"`
		Kind    string `json:"kind"`
		Actor   string `json:"actor"`
		CallSID string `json:"callSid"`
	} `json:"event"`
	Call *store.CallView `json:"call"`
}

// dial logs a new client in and opens a websocket for it.
func (e *env) dial(t *testing.T) *websocket.Conn {
	t.Helper()
	c := e.client(t)
	e.login(t, c)
	u, _ := url.Parse(e.srv.URL)
	h := http.Header{"Origin": {e.origin}}
	for _, ck := range c.Jar.Cookies(&url.URL{Scheme: "http", Host: u.Host, Path: "/agent/"}) {
		h.Add("Cookie", ck.Name+"="+ck.Value)
	}
	ws, _, err := websocket.DefaultDialer.DialContext(t.Context(), "ws://"+u.Host+"/agent/ws", h)
	if err != nil {
		t.Fatalf("dial websocket: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func read(t *testing.T, ws *websocket.Conn) wsMsg {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m wsMsg
	if err := ws.ReadJSON(&m); err != nil {
		t.Fatalf("read websocket: %v", err)
	}
	return m
}

func callView(sid, state string, updated time.Time) *store.CallView {
	return &store.CallView{CallSID: sid, Caller: "+46 70•••••12", State: state, Since: updated, UpdatedAt: updated}
}

// clientCounts returns a hub option reporting client counts, and a wait
// function that returns once the count is n.
func clientCounts(t *testing.T) (func(*agentui.Hub), func(n int)) {
	ch := make(chan int, 10000)
	opt := func(h *agentui.Hub) { agentui.SetClientsHook(h, func(n int) { ch <- n }) }
	wait := func(n int) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case got := <-ch:
				if got == n {
					return
				}
			case <-timeout:
				t.Fatalf("client count never reached %d", n)
			}
		}
	}
	return opt, wait
}

func TestHubSendsSnapshotThenEvents(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	ended := t0.Add(-time.Hour)
	old := *callView("CA-old", store.ViewEnded, ended)
	old.EndedAt = &ended
	calls := &fakeCalls{live: []store.CallView{*callView("CA1", store.ViewGathering, t0)}, recent: []store.CallView{old}}
	e := newEnv(t, agentui.Config{}, calls)
	ws := e.dial(t)

	m := read(t, ws)
	if m.Type != "snapshot" || len(m.Calls) != 1 || m.Calls[0].CallSID != "CA1" || len(m.Recent) != 1 || m.Recent[0].CallSID != "CA-old" {
		t.Fatalf("first message = %+v, want a snapshot with live CA1 and recent CA-old", m)
	}
	e.hub.Publish(t.Context(), store.Event{Seq: 7, CallSID: "CA1", Kind: "verified", Actor: "system",
		Call: callView("CA1", store.ViewVerified, t0.Add(time.Minute))})
	m = read(t, ws)
	if m.Type != "event" || m.Event.Seq != 7 || m.Call == nil || m.Call.State != store.ViewVerified {
		t.Fatalf("second message = %+v, want event 7 with CA1 verified", m)
	}

	// A stale view (queued before a reload) does not overwrite a newer one.
	e.hub.Publish(t.Context(), store.Event{Seq: 6, CallSID: "CA1", Kind: "old", Call: callView("CA1", store.ViewGathering, t0)})
	if m = read(t, ws); m.Call == nil || m.Call.State != store.ViewVerified {
		t.Errorf("stale event carried %+v, want the newer verified view", m.Call)
	}

	// A dashboard connecting now sees the applied event in its snapshot.
	m = read(t, e.dial(t))
	if m.Type != "snapshot" || len(m.Calls) != 1 || m.Calls[0].State != store.ViewVerified {
		t.Errorf("late snapshot = %+v, want CA1 verified", m)
	}
}

func TestHubShutdownClosesConnections(t *testing.T) {
	e := newEnv(t, agentui.Config{}, nil)
	a, b := e.dial(t), e.dial(t)
	read(t, a)
	read(t, b)
	e.stopHub() // returns once every connection goroutine has ended
	for _, ws := range []*websocket.Conn{a, b} {
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Errorf("read after shutdown: %v, want close 1001 (going away)", err)
		}
	}
	if n := e.hub.Clients(); n != 0 {
		t.Errorf("Clients() = %d after shutdown, want 0", n)
	}
	// A dashboard connecting after shutdown is closed at once.
	_, _, err := e.dial(t).ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("read on a connection made after shutdown: %v, want close 1001", err)
	}
}

func TestHubForgetsClientsThatVanish(t *testing.T) {
	opt, waitClients := clientCounts(t)
	e := newEnv(t, agentui.Config{}, nil, opt)
	var conns []*websocket.Conn
	for range 3 {
		ws := e.dial(t)
		read(t, ws)
		conns = append(conns, ws)
	}
	waitClients(3)
	conns[0].UnderlyingConn().Close() // gone without a close frame
	waitClients(2)
	if err := conns[1].WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 5<<10))); err != nil { // over the read limit
		t.Fatalf("write: %v", err)
	}
	_ = conns[1].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := conns[1].ReadMessage(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Errorf("after an oversized message: %v, want close 1009", err)
	}
	waitClients(1)
	// The remaining client still gets events.
	e.hub.Publish(t.Context(), store.Event{Seq: 1, CallSID: "CA1", Kind: "k"})
	if m := read(t, conns[2]); m.Type != "event" || m.Event.Seq != 1 {
		t.Errorf("remaining client got %+v, want event 1", m)
	}
}

func TestTimelineAndCallsAPI(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	calls := &fakeCalls{
		live: []store.CallView{*callView("CA1", store.ViewGathering, t0)},
		timeline: map[string][]store.Event{"CA1": {
			{Seq: 1, At: t0, CallSID: "CA1", Kind: "call_started", Actor: "twilio", Detail: "incoming call"},
			{Seq: 2, At: t0.Add(time.Second), CallSID: "CA1", Kind: "number_entered", Actor: "caller", Detail: "SE ••••••••••85"},
		}},
	}
	e := newEnv(t, agentui.Config{}, calls)
	c := e.client(t)
	e.login(t, c)

	resp := e.get(t, c, "/agent/api/calls/CA1/timeline")
	var tl struct {
		Events []struct {
			Seq   int64  `json:"seq"`
			Kind  string `json:"kind"`
			Actor string `json:"actor"`
		} `json:"events"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tl); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("timeline: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if len(tl.Events) != 2 || tl.Events[1].Kind != "number_entered" || tl.Events[1].Actor != "caller" {
		t.Errorf("timeline = %+v, want the two events in order", tl.Events)
	}
	resp = e.get(t, c, "/agent/api/calls/CA-unknown/timeline")
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown call timeline: %d, want 404", resp.StatusCode)
	}
	resp = e.get(t, c, "/agent/api/calls")
	var list struct {
		Calls  []store.CallView `json:"calls"`
		Recent []store.CallView `json:"recent"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Calls) != 1 || list.Recent == nil {
		t.Errorf("calls = %+v, want one live call and an empty recent list", list)
	}
}
