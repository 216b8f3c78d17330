package agentui

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/ivr/callerverify/internal/store"
)

// Websocket timings and limits.
const (
	writeWait    = 10 * time.Second // a write taking longer drops the client
	pongWait     = 60 * time.Second // no pong (or message) for this long drops the client
	pingPeriod   = 25 * time.Second
	readLimit    = 4 << 10 // dashboards send nothing but control frames
	sendBuffer   = 1024    // messages queued per client before it counts as too slow (a burst of calls must fit)
	eventQueue   = 4096    // events queued between Publish and Run
	maxRecent    = 200     // ended calls kept for the "recent" list
	sweepEvery   = 15 * time.Second
	defaultKeep  = 24 * time.Hour // how long ended calls stay in the hub without a Config
	loadTimeout  = 10 * time.Second
	closeExpired = 4001 // websocket close code: the session ended; log in again
)

// Hub fans call events out to connected dashboards. One goroutine, Run, owns
// the set of clients and the calls a newly connected dashboard must see; each
// connection has one reader and one writer goroutine.
//
// Publish never blocks: events go to a buffered queue. When the queue is full
// the event is dropped, and Run reloads its view from Calls (when a Server has
// attached one) and sends every client a fresh snapshot, so no dashboard is
// left showing a state that silently missed a change.
type Hub struct {
	log        *slog.Logger
	events     chan store.Event
	register   chan *client
	unregister chan *client
	sources    chan source
	resync     chan struct{}
	done       chan struct{} // closed when Run begins to stop

	clients atomic.Int64
	dropped atomic.Int64 // events dropped because the queue was full
	lossy   atomic.Bool  // a drop was logged and no resync has happened since

	mu      sync.Mutex // guards stopped and Add on conns
	stopped bool
	conns   sync.WaitGroup // reader and writer goroutines

	onClients func(n int) // tests: called by Run when the client count changes
}

// source is where Run (re)loads the calls a snapshot holds.
type source struct {
	calls Calls
	keep  time.Duration
	now   func() time.Time
}

// client is one websocket connection.
type client struct {
	send      chan []byte
	ws        *websocket.Conn
	alive     func() bool // reports whether the agent's session is still valid
	closeCode int         // set by Run before it closes send
}

// NewHub returns a Hub; start it with Run.
func NewHub(log *slog.Logger) *Hub {
	return &Hub{
		log:        log,
		events:     make(chan store.Event, eventQueue),
		register:   make(chan *client),
		unregister: make(chan *client),
		sources:    make(chan source, 1),
		resync:     make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
}

// Publish queues e for every connected dashboard. It never blocks: when the
// queue is full the event is dropped and dashboards are resynced from a
// fresh snapshot. It implements ivr.Publisher.
func (h *Hub) Publish(_ context.Context, e store.Event) {
	select {
	case h.events <- e:
	default:
		h.dropped.Add(1)
		if h.lossy.CompareAndSwap(false, true) {
			h.log.Warn("hub queue full: dropping events, dashboards will resync")
		}
		select {
		case h.resync <- struct{}{}:
		default:
		}
	}
}

// Clients returns the number of connected dashboards.
func (h *Hub) Clients() int { return int(h.clients.Load()) }

// Dropped returns how many events Publish dropped because the queue was full.
func (h *Hub) Dropped() int64 { return h.dropped.Load() }

// attach gives Run a source of calls; Run loads from it and resyncs clients.
func (h *Hub) attach(s source) {
	select {
	case h.sources <- s:
	default: // one pending already; the newer one waits its turn in Run
		go func() {
			select {
			case h.sources <- s:
			case <-h.done:
			}
		}()
	}
}

// Run owns the clients and the calls view until ctx ends; then it sends
// every websocket a close frame, waits for their goroutines and returns.
// Call it once.
func (h *Hub) Run(ctx context.Context) {
	st := &hubState{calls: map[string]store.CallView{}, keep: defaultKeep, now: time.Now}
	clients := map[*client]struct{}{}
	var src *source
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()

	broadcast := func(msg []byte) {
		for c := range clients {
			select {
			case c.send <- msg:
			default: // too slow: drop it; it reconnects and gets a fresh snapshot
				h.drop(clients, c, websocket.CloseTryAgainLater)
				h.log.Info("dashboard dropped: too slow")
			}
		}
	}
	stale := false // the last load failed; the sweep retries it
	load := func() {
		if src == nil {
			return
		}
		lctx, cancel := context.WithTimeout(ctx, loadTimeout)
		defer cancel()
		err := st.load(lctx, src)
		if err != nil {
			h.log.Error("load calls for dashboards", "err", err)
		}
		stale = err != nil
	}

	attach := func(s source) {
		src = &s
		st.keep, st.now = s.keep, s.now
		load()
		broadcast(st.snapshot())
	}

	for {
		// A source attached before a client registered is loaded first, so
		// that client's snapshot already holds the live calls.
		select {
		case s := <-h.sources:
			attach(s)
			continue
		default:
		}
		select {
		case <-ctx.Done():
			h.stop(clients)
			return
		case s := <-h.sources:
			attach(s)
		case <-h.resync:
			h.lossy.Store(false)
			load()
			broadcast(st.snapshot())
		case c := <-h.register:
			clients[c] = struct{}{}
			h.setClients(len(clients))
			c.send <- st.snapshot() // send is empty and buffered, so the snapshot comes first
		case c := <-h.unregister:
			h.drop(clients, c, websocket.CloseNormalClosure)
		case ev := <-h.events:
			broadcast(st.apply(ev))
		case <-sweep.C:
			if stale {
				load()
				broadcast(st.snapshot())
			}
			st.sweep()
		}
	}
}

// drop removes c and tells its writer to close the connection.
func (h *Hub) drop(clients map[*client]struct{}, c *client, code int) {
	if _, ok := clients[c]; !ok {
		return
	}
	delete(clients, c)
	h.setClients(len(clients))
	c.closeCode = code
	close(c.send)
}

func (h *Hub) setClients(n int) {
	h.clients.Store(int64(n))
	if h.onClients != nil {
		h.onClients(n)
	}
}

func (h *Hub) stop(clients map[*client]struct{}) {
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
	close(h.done)
	for c := range clients {
		h.drop(clients, c, websocket.CloseGoingAway)
	}
	h.conns.Wait()
}

// serve runs a websocket connection until it ends: the writer runs in the
// calling goroutine, the reader in a new one. alive is asked at every ping.
func (h *Hub) serve(ws *websocket.Conn, alive func() bool) {
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		closeWS(ws, websocket.CloseGoingAway, "shutting down")
		return
	}
	h.conns.Add(2)
	h.mu.Unlock()

	c := &client{send: make(chan []byte, sendBuffer), ws: ws, alive: alive}
	select {
	case h.register <- c:
	case <-h.done:
		closeWS(ws, websocket.CloseGoingAway, "shutting down")
		h.conns.Add(-2)
		return
	}
	go h.read(c)
	h.write(c)
}

func closeWS(ws *websocket.Conn, code int, text string) {
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(writeWait))
	_ = ws.Close()
}

// read discards what the dashboard sends, keeps the read deadline moving on
// pongs, and unregisters the client when the connection fails or closes.
func (h *Hub) read(c *client) {
	defer h.conns.Done()
	defer func() {
		select {
		case h.unregister <- c:
		case <-h.done:
		}
	}()
	c.ws.SetReadLimit(readLimit)
	_ = c.ws.SetReadDeadline(time.Now().Add(pongWait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			return
		}
		// Read the message through: the limit counts a fragmented message's
		// frames only as they are read, not when NextReader skips them.
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
	}
}

// write sends queued messages and pings until send is closed or a write
// fails, then closes the connection (which ends read).
func (h *Hub) write(c *client) {
	defer h.conns.Done()
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	for {
		select {
		case msg, ok := <-c.send:
			if !ok {
				closeWS(c.ws, c.closeCode, "")
				return
			}
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
				_ = c.ws.Close()
				return
			}
		case <-ping.C:
			if c.alive != nil && !c.alive() {
				closeWS(c.ws, closeExpired, "session ended")
				return
			}
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				_ = c.ws.Close()
				return
			}
		}
	}
}

// hubState is the calls view Run keeps for snapshots: live calls and calls
// that ended within keep (at most maxRecent of those).
type hubState struct {
	calls map[string]store.CallView
	keep  time.Duration
	now   func() time.Time
	snap  []byte // cached encoded snapshot; nil after a change
}

// Messages sent to dashboards.
type (
	snapshotMsg struct {
		Type   string           `json:"type"` // "snapshot"
		Calls  []store.CallView `json:"calls"`
		Recent []store.CallView `json:"recent"`
	}
	eventMsg struct {
		Type  string          `json:"type"` // "event"
		Event eventJSON       `json:"event"`
		Call  *store.CallView `json:"call,omitempty"`
	}
	eventJSON struct {
		Seq            int64     `json:"seq"`
		At             time.Time `json:"at"`
		Kind           string    `json:"kind"`
		Actor          string    `json:"actor"`
		Detail         string    `json:"detail"`
		CallSID        string    `json:"callSid"`
		VerificationID string    `json:"verificationId,omitempty"`
	}
)

func toEventJSON(e store.Event) eventJSON {
	return eventJSON{Seq: e.Seq, At: e.At, Kind: string(e.Kind), Actor: e.Actor, Detail: e.Detail,
		CallSID: e.CallSID, VerificationID: e.VerificationID}
}

func (st *hubState) load(ctx context.Context, src *source) error {
	live, err := src.calls.LiveCalls(ctx)
	if err != nil {
		return err
	}
	recent, err := src.calls.RecentCalls(ctx, st.now().Add(-st.keep))
	if err != nil {
		return err
	}
	st.calls = make(map[string]store.CallView, len(live)+len(recent))
	for _, cv := range recent {
		st.calls[cv.CallSID] = cv
	}
	for _, cv := range live {
		st.calls[cv.CallSID] = cv
	}
	st.snap = nil
	st.sweep()
	return nil
}

// apply records the call an event carries and returns the message for
// dashboards. A call view older than the one held (an event queued before a
// reload) does not replace it; the message then carries the newer view.
func (st *hubState) apply(e store.Event) []byte {
	m := eventMsg{Type: "event", Event: toEventJSON(e)}
	if e.Call != nil {
		cv := *e.Call
		if cv.CallSID == "" {
			cv.CallSID = e.CallSID
		}
		if old, ok := st.calls[cv.CallSID]; ok && cv.UpdatedAt.Before(old.UpdatedAt) {
			cv = old
		} else {
			st.calls[cv.CallSID] = cv
			st.snap = nil
		}
		m.Call = &cv
	}
	b, _ := json.Marshal(m) // plain structs: cannot fail
	return b
}

// sweep forgets ended calls older than keep, and all but the newest
// maxRecent ended calls.
func (st *hubState) sweep() {
	cutoff := st.now().Add(-st.keep)
	var ended []store.CallView
	for sid, cv := range st.calls {
		if cv.EndedAt == nil {
			continue
		}
		if cv.EndedAt.Before(cutoff) {
			delete(st.calls, sid)
			st.snap = nil
			continue
		}
		ended = append(ended, cv)
	}
	if len(ended) > maxRecent {
		slices.SortFunc(ended, func(a, b store.CallView) int { return b.EndedAt.Compare(*a.EndedAt) })
		for _, cv := range ended[maxRecent:] {
			delete(st.calls, cv.CallSID)
		}
		st.snap = nil
	}
}

// snapshot returns the encoded snapshot: live calls oldest first, ended
// calls most recently ended first. Dashboards show a call that ended less
// than a minute ago among the live ones.
func (st *hubState) snapshot() []byte {
	if st.snap != nil {
		return st.snap
	}
	m := snapshotMsg{Type: "snapshot", Calls: []store.CallView{}, Recent: []store.CallView{}}
	for _, cv := range st.calls {
		if cv.EndedAt == nil {
			m.Calls = append(m.Calls, cv)
		} else {
			m.Recent = append(m.Recent, cv)
		}
	}
	slices.SortFunc(m.Calls, func(a, b store.CallView) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.CallSID, b.CallSID))
	})
	slices.SortFunc(m.Recent, func(a, b store.CallView) int {
		return cmp.Or(b.EndedAt.Compare(*a.EndedAt), cmp.Compare(a.CallSID, b.CallSID))
	})
	st.snap, _ = json.Marshal(m)
	return st.snap
}
