package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ivr/callerverify/internal/store"
)

// dashboards are agent dashboards connected over websockets, spread over
// the instances in turn. Each counts the events it receives (by sequence
// number) and the delay from the event's timestamp to its arrival, and
// keeps when each approval reached it.
type dashboards struct {
	conns    []*websocket.Conn
	instance []int // the instance each is connected to
	fanout   samples
	fanoutBy []samples // fanout of the dashboards on each instance
	wg       sync.WaitGroup

	msgs        atomic.Int64
	disconnects atomic.Int64 // connections the server closed during the run
	closing     atomic.Bool

	mu       sync.Mutex
	seen     [][]uint64             // per dashboard: bitset of event seqs received
	approved []map[string]time.Time // per dashboard: arrival of each call's verification_approved
	badMsg   int
	span     map[int64][2]time.Time // per event: first and last arrival over all dashboards
}

// login logs the load-test agent in at the public URL and returns the
// session cookie.
func login(public, password string) (*http.Cookie, error) {
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, public+"/agent/login", strings.NewReader(url.Values{"name": {agentName}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", public)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("dashboard login: %w", err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Value != "" {
			return c, nil
		}
	}
	return nil, fmt.Errorf("dashboard login: status %d and no session cookie", resp.StatusCode)
}

// connectDashboards opens n websockets with one agent session, logged in
// at the public URL: dashboard i to instance i mod len(bases), directly,
// as a browser that loaded the dashboard from the public URL (its Origin).
func connectDashboards(ctx context.Context, bases []string, public, password string, n int) (*dashboards, error) {
	d := &dashboards{seen: make([][]uint64, n), approved: make([]map[string]time.Time, n), span: map[int64][2]time.Time{},
		fanoutBy: make([]samples, len(bases)), instance: make([]int, n)}
	if n == 0 {
		return d, nil
	}
	cookie, err := login(public, password)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Origin", public)
	h.Set("Cookie", cookie.Name+"="+cookie.Value)
	dialer := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 1024}
	for i := range n {
		inst := i % len(bases)
		wsURL := "ws" + strings.TrimPrefix(bases[inst], "http") + "/agent/ws"
		d.approved[i] = map[string]time.Time{}
		c, resp, err := dialer.DialContext(ctx, wsURL, h)
		if err != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			d.close()
			return nil, fmt.Errorf("dashboard %d: websocket: %w (status %d)", i, err, status)
		}
		d.conns = append(d.conns, c)
		d.instance[i] = inst
		d.wg.Add(1)
		go d.read(i, c)
	}
	return d, nil
}

func (d *dashboards) read(i int, c *websocket.Conn) {
	defer d.wg.Done()
	for {
		_, msg, err := c.ReadMessage()
		arrived := time.Now()
		if err != nil {
			if !d.closing.Load() {
				d.disconnects.Add(1)
			}
			return
		}
		d.msgs.Add(1)
		if !bytes.HasPrefix(msg, []byte(`{"type":"event"`)) {
			continue
		}
		seq, _ := strconv.ParseInt(field(msg, `"seq":`, ','), 10, 64)
		at, err := time.Parse(time.RFC3339Nano, field(msg, `"at":"`, '"'))
		if err != nil || seq <= 0 {
			d.mu.Lock()
			d.badMsg++
			d.mu.Unlock()
			continue
		}
		d.fanout.add(arrived.Sub(at))
		d.fanoutBy[d.instance[i]].add(arrived.Sub(at))
		d.mu.Lock()
		bs := d.seen[i]
		for int(seq/64) >= len(bs) {
			bs = append(bs, make([]uint64, max(len(bs), 16))...)
		}
		bs[seq/64] |= 1 << (seq % 64)
		d.seen[i] = bs
		if sp, ok := d.span[seq]; !ok {
			d.span[seq] = [2]time.Time{arrived, arrived}
		} else {
			sp[0], sp[1] = minT(sp[0], arrived), maxT(sp[1], arrived)
			d.span[seq] = sp
		}
		if field(msg, `"kind":"`, '"') == approvedKind {
			sid := field(msg, `"callSid":"`, '"')
			if _, ok := d.approved[i][sid]; !ok {
				d.approved[i][sid] = arrived
			}
		}
		d.mu.Unlock()
	}
}

// field returns the text after key up to end, "" if key is absent.
func field(msg []byte, key string, end byte) string {
	i := bytes.Index(msg, []byte(key))
	if i < 0 {
		return ""
	}
	rest := msg[i+len(key):]
	j := bytes.IndexByte(rest, end)
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// approvedKind is the event whose arrival times approval → dashboard.
const approvedKind = string(store.EventApproved)

// approvedAt is when dashboard i received call sid's approval.
func (d *dashboards) approvedAt(i int, sid string) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.approved[i][sid]
	return at, ok
}

// has reports whether dashboard i received seq.
func (d *dashboards) has(i int, seq int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	bs := d.seen[i]
	return int(seq/64) < len(bs) && bs[seq/64]&(1<<(seq%64)) != 0
}

// settle returns once no message has reached any dashboard for quiet, or
// after bound.
func (d *dashboards) settle(quiet, bound time.Duration) {
	end := time.Now().Add(bound)
	last, lastChange := d.msgs.Load(), time.Now()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for time.Now().Before(end) && time.Since(lastChange) < quiet {
		<-t.C
		if n := d.msgs.Load(); n != last {
			last, lastChange = n, time.Now()
		}
	}
}

func (d *dashboards) close() {
	d.closing.Store(true)
	for _, c := range d.conns {
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.Close()
	}
	d.wg.Wait()
}

func minT(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxT(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// spread is, per event, the time from its arrival at the first dashboard
// to its arrival at the last: the hub's fan-out alone.
func (d *dashboards) spread() summary {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]time.Duration, 0, len(d.span))
	for _, sp := range d.span {
		out = append(out, sp[1].Sub(sp[0]))
	}
	return summarize(out)
}
