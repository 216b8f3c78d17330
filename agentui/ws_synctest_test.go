package agentui_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ivr/callerverify/agentui"
	"github.com/ivr/callerverify/internal/store"
)

// pipeListener is an in-memory net.Listener: inside a synctest bubble a
// real socket would stop the fake clock.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "ivr.test:80" }

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// bubble is a dashboard server inside a synctest bubble.
type bubble struct {
	store  *memStore
	hub    *agentui.Hub
	srv    *agentui.Server
	ln     *pipeListener
	cookie *http.Cookie
	stop   func()
}

func newBubble(t *testing.T, cfg agentui.Config) *bubble {
	t.Helper()
	b := &bubble{store: newMemStore(), hub: agentui.NewHub(discardLog()), ln: newPipeListener()}
	if err := agentui.AddAgent(t.Context(), b.store, testAgent, testPass, time.Now()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hubDone := make(chan struct{})
	go func() { b.hub.Run(ctx); close(hubDone) }()
	var err error
	b.srv, err = agentui.NewServer(cfg, b.store, &fakeCalls{live: []store.CallView{}}, b.hub, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: b.srv.Handler()}
	serveDone := make(chan struct{})
	go func() { _ = hs.Serve(b.ln); close(serveDone) }()
	b.stop = func() {
		cancel()
		<-hubDone
		_ = hs.Close()
		<-serveDone
	}
	if b.cookie, err = b.srv.Login(t.Context(), testAgent, testPass); err != nil {
		t.Fatal(err)
	}
	return b
}

// dial opens a dashboard websocket; reading it (which answers pings) is up
// to the caller.
func (b *bubble) dial(t *testing.T) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{NetDialContext: b.ln.dial}
	h := http.Header{"Origin": {"http://ivr.test"}, "Cookie": {b.cookie.Name + "=" + b.cookie.Value}}
	ws, _, err := d.DialContext(t.Context(), "ws://ivr.test/agent/ws", h)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return ws
}

// readAll reads ws until it fails and returns the error.
func readAll(ws *websocket.Conn) <-chan error {
	errc := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				errc <- err
				return
			}
		}
	}()
	return errc
}

func TestWebsocketKeepAlive(t *testing.T) {
	t.Run("a dashboard that answers pings stays connected", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newBubble(t, agentui.Config{})
			ws := b.dial(t)
			errc := readAll(ws) // reading answers pings with pongs
			time.Sleep(10 * time.Minute)
			synctest.Wait()
			if n := b.hub.Clients(); n != 1 {
				t.Errorf("Clients() = %d after 10 min of pings, want 1", n)
			}
			b.stop()
			if err := <-errc; !websocket.IsCloseError(err, websocket.CloseGoingAway) {
				t.Errorf("read after shutdown: %v, want close 1001", err)
			}
		})
	})
	t.Run("a dashboard that stops answering is dropped", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newBubble(t, agentui.Config{})
			ws := b.dial(t) // never read: no pongs, and writes to it stall
			time.Sleep(2 * time.Minute)
			synctest.Wait()
			if n := b.hub.Clients(); n != 0 {
				t.Errorf("Clients() = %d, want 0", n)
			}
			ws.Close()
			b.stop()
		})
	})
}

func TestWebsocketClosesWhenTheSessionEnds(t *testing.T) {
	tests := []struct {
		name string
		cfg  agentui.Config
		end  func(b *bubble)
	}{
		{"at logout", agentui.Config{}, func(b *bubble) {
			_ = b.store.DeleteSession(context.Background(), firstSessionID(b.store))
		}},
		{"at the absolute lifetime", agentui.Config{SessionTTL: 5 * time.Minute}, func(*bubble) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBubble(t, tt.cfg)
				errc := readAll(b.dial(t))
				tt.end(b)
				time.Sleep(10 * time.Minute)
				var ce *websocket.CloseError
				select {
				case err := <-errc:
					if !errors.As(err, &ce) || ce.Code != 4001 {
						t.Errorf("read: %v, want close 4001 (session ended)", err)
					}
				default:
					t.Error("websocket still open 10 min after the session ended")
				}
				b.stop()
			})
		})
	}
}

func firstSessionID(m *memStore) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.sessions {
		return id
	}
	return ""
}
