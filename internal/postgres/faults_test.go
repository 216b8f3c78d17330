package postgres_test

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/postgres"
	"github.com/ivr/callerverify/internal/postgres/postgrestest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/internal/store/storetest"
	"github.com/jackc/pgx/v5/pgconn"
)

// proxy forwards TCP connections to the database and can cut them all
// and refuse new ones, as a network partition or a database restart does.
type proxy struct {
	t      *testing.T
	target string // host:port of the database
	addr   string // where the proxy listens

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
	wg    sync.WaitGroup
	gen   atomic.Int64 // freeze moves it on: older connections carry nothing

	// stall: see stallAfterNextSync.
	stall   atomic.Int32 // stallOff, stallArmed, stallOn
	replied chan struct{}
}

// The states of a proxy's stall.
const (
	stallOff   int32 = iota
	stallArmed       // the client's next Sync goes through, and nothing after it
	stallOn          // the client's messages are dropped
)

// syncMessage is the protocol's Sync message, which ends a batch of
// extended-protocol messages.
var syncMessage = []byte{'S', 0, 0, 0, 4}

// newProxy starts a proxy to the database dbURL names and returns it with
// dbURL pointed at it.
func newProxy(t *testing.T, dbURL string) (*proxy, string) {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(cfg.Host, "/") {
		t.Skip("the test database is on a Unix socket: no TCP to cut")
	}
	p := &proxy{t: t, target: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))}
	p.listen("127.0.0.1:0")
	t.Cleanup(p.cut)
	return p, viaAddr(t, dbURL, p.addr)
}

// viaAddr is dbURL with its host and port replaced by addr.
func viaAddr(t *testing.T, dbURL, addr string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	if !strings.HasPrefix(dbURL, "postgres://") && !strings.HasPrefix(dbURL, "postgresql://") {
		return dbURL + " host=" + host + " port=" + port // later keys win
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal("the test database URL does not parse")
	}
	u.Host = addr
	return u.String()
}

func (p *proxy) listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatalf("proxy listen: %v", err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.forward(ln, c)
		}
	})
}

// forward copies between c, which ln accepted, and a new connection to
// the database, unless the proxy was cut meanwhile.
func (p *proxy) forward(ln net.Listener, c net.Conn) {
	d, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != ln {
		c.Close()
		d.Close()
		return
	}
	p.conns = append(p.conns, c, d)
	gen := p.gen.Load()
	p.wg.Go(func() { p.copy(d, c, gen, true); d.Close() })
	p.wg.Go(func() { p.copy(c, d, gen, false); c.Close() })
}

// copy copies src to dst until either fails, dropping what it reads once
// a freeze came after gen. up is the client's side (src is the client).
func (p *proxy) copy(dst, src net.Conn, gen int64, up bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && p.gen.Load() == gen && !(up && p.stall.Load() == stallOn) {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			switch {
			case up && bytes.HasSuffix(buf[:n], syncMessage):
				p.stall.CompareAndSwap(stallArmed, stallOn)
			case !up && p.stall.Load() == stallOn:
				p.replyOnce()
			}
		}
		if err != nil {
			return
		}
	}
}

// stallAfterNextSync lets the client's next batch of messages (up to its
// Sync) through and then drops everything the clients send, while the
// server's answers still come back: a client that stops between two round
// trips of a transaction, as an instance does in a long GC pause, on a
// starved CPU or behind a lost network path. The channel it returns is
// closed once the server has answered that batch.
func (p *proxy) stallAfterNextSync() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.replied = make(chan struct{})
	p.stall.Store(stallArmed)
	return p.replied
}

// replyOnce closes the channel stallAfterNextSync returned, once.
func (p *proxy) replyOnce() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.replied:
	default:
		close(p.replied)
	}
}

// freeze makes every connection through the proxy carry nothing from now
// on, without closing it: a network path lost without a word. New
// connections work.
func (p *proxy) freeze() { p.gen.Add(1) }

// cut closes every connection through the proxy and stops accepting new
// ones: connecting to it is refused until restore.
func (p *proxy) cut() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// restore accepts connections again, on the same address.
func (p *proxy) restore() { p.listen(p.addr) }

func TestALostDatabase(t *testing.T) {
	url := postgrestest.Schema(t, postgrestest.URL(t))
	p, proxied := newProxy(t, url)
	db := postgrestest.OpenURL(t, proxied)
	writer := postgrestest.OpenURL(t, url) // another instance, still connected
	ch := listen(t, db)
	waitListening(t, writer, ch)
	if err := db.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	p.cut()
	start := time.Now()
	err := db.Ping(t.Context())
	if err == nil {
		t.Fatal("Ping succeeded with the database cut off")
	}
	t.Logf("Ping with the database cut off: %v after %v", err, time.Since(start).Round(time.Millisecond))
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Ping took %v to fail; want about the connect timeout at most", took)
	}
	// Committed while the listener is away: not delivered, hence the resync.
	if err := writer.AppendEvent(t.Context(), storetest.NewEvent("CA1", "missed", storetest.Epoch)); err != nil {
		t.Fatal(err)
	}

	p.restore()
	start = time.Now()
	if d := next(t, ch); !d.resync {
		t.Fatalf("first delivery after the outage = %+v, want a resync", d)
	}
	t.Logf("resync %v after the database came back", time.Since(start).Round(time.Millisecond))
	e := storetest.NewEvent("CA1", "after", storetest.Epoch)
	if err := writer.AppendEvent(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, ch, 1); len(got) != 1 || got[0] != e.Seq {
		t.Errorf("after the outage: %v, want %d", got, e.Seq)
	}
	// Connections in the pool that the cut broke fail once each, and are
	// dropped; a readiness probe asks again.
	deadline := time.Now().Add(5 * time.Second)
	failed := 0
	for err := db.Ping(t.Context()); err != nil; err = db.Ping(t.Context()) {
		if failed++; time.Now().After(deadline) {
			t.Fatalf("Ping after the outage: %v", err)
		}
	}
	t.Logf("Ping works again after %d failures on broken pooled connections", failed)
}

// TestListenNoticesASilentlyLostConnection freezes the listener's
// connection: nothing arrives and nothing closes it. The heartbeat (made
// short here) finds it dead, and Listen connects again and resyncs.
func TestListenNoticesASilentlyLostConnection(t *testing.T) {
	url := postgrestest.Schema(t, postgrestest.URL(t))
	p, proxied := newProxy(t, url)
	db := postgrestest.OpenURL(t, proxied)
	postgres.SetListenHeartbeat(db, 100*time.Millisecond, 200*time.Millisecond)
	writer := postgrestest.OpenURL(t, url)
	ch := listen(t, db)
	waitListening(t, writer, ch)

	p.freeze()
	start := time.Now()
	if d := next(t, ch); !d.resync {
		t.Fatalf("first delivery after the freeze = %+v, want a resync", d)
	}
	t.Logf("resync %v after the connection went silent", time.Since(start).Round(time.Millisecond))
	e := storetest.NewEvent("CA1", "after", storetest.Epoch)
	if err := writer.AppendEvent(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, ch, 1); len(got) != 1 || got[0] != e.Seq {
		t.Errorf("after the resync: %v, want %d", got, e.Seq)
	}
}

// TestAStalledStartHoldsNoLock stalls an instance right after it sent a
// verification's start, as a long GC pause, a starved CPU or a lost network
// path does. Every start takes the global limit's lock; a start that held
// it until its instance came back to send COMMIT kept every start of every
// other instance waiting meanwhile. The start is one round trip now: the
// server commits it, and the locks go, before it answers.
func TestAStalledStartHoldsNoLock(t *testing.T) {
	url := postgrestest.Schema(t, postgrestest.URL(t))
	p, proxied := newProxy(t, url)
	// The proxy reads the protocol: no TLS on a's connection.
	a := postgrestest.OpenURL(t, withParam(withParam(proxied, "pool_max_conns", "1"), "sslmode", "disable")) // the instance that stalls
	b := postgrestest.OpenURL(t, url)                                                                        // another instance
	limits := []store.Limit{
		{Scope: store.LimitNumber, Key: "h", Max: 100, Window: time.Hour},
		{Scope: store.LimitGlobal, Max: 100, Window: time.Hour},
	}
	start := func(ctx context.Context, db *postgres.DB, sid string) error {
		v := storetest.NewVerification("v"+sid, sid, store.VerPending, storetest.At(time.Second))
		_, err := db.StartVerification(ctx, nil, v, limits, storetest.NewEvent(sid, "verification_started", storetest.Epoch))
		return err
	}
	for _, sid := range []string{"CA1", "CA2", "CA3"} {
		storetest.MustCreateCall(t, b, storetest.NewCall(sid, storetest.Epoch))
	}
	// Once, so that a's connection has its statements prepared: the next
	// start is then the start's own messages alone.
	if err := start(t.Context(), a, "CA1"); err != nil {
		t.Fatalf("first start: %v", err)
	}

	replied := p.stallAfterNextSync()
	stalled := make(chan error, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	go func() { stalled <- start(ctx, a, "CA2") }()
	select {
	case <-replied:
	case <-ctx.Done():
		t.Fatal("the server never answered the stalled instance's start")
	}
	// The server has answered a's start and a has gone quiet.
	bctx, bcancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer bcancel()
	if err := start(bctx, b, "CA3"); err != nil {
		t.Fatalf("another instance's start while the first instance is stalled: %v; "+
			"want it through (the stalled start must not hold the global limit's lock)", err)
	}
	if err := <-stalled; err != nil {
		t.Errorf("the stalled instance's start: %v, want it stored (the server had all of it)", err)
	}
	if _, err := b.Verification(t.Context(), "vCA2"); err != nil {
		t.Errorf("the stalled instance's verification: %v", err)
	}
}
