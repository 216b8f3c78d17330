package agentui_test

import (
	"context"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ivr/callerverify/agentui"
	"github.com/ivr/callerverify/internal/store"
)

// BenchmarkHubFanout1000 measures, over loopback, the time from Publish to
// the 1,000th dashboard receiving the event (p50/p99 per event), and the
// heap held per connected dashboard (both ends of the connection: the
// client side here is gorilla/websocket too, so the server's share is
// roughly half).
//
//	go test -run '^$' -bench HubFanout -benchtime 200x ./agentui/
func BenchmarkHubFanout1000(b *testing.B) {
	const clients = 1000
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	calls := &fakeCalls{live: []store.CallView{*callView("CA1", store.ViewGathering, t0)}}
	e := newEnv(b, agentui.Config{}, calls)
	cookie, err := e.s.Login(context.Background(), testAgent, testPass)
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{"Origin": {e.origin}, "Cookie": {cookie.Name + "=" + cookie.Value}}
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/agent/ws"

	var remaining atomic.Int64
	roundDone := make(chan time.Time, 1)
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, 0, clients)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	for range clients {
		ws, _, err := websocket.DefaultDialer.Dial(url, h)
		if err != nil {
			b.Fatalf("dial: %v", err)
		}
		if _, _, err := ws.ReadMessage(); err != nil { // snapshot
			b.Fatalf("snapshot: %v", err)
		}
		conns = append(conns, ws)
		wg.Go(func() {
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
				if remaining.Add(-1) == 0 {
					roundDone <- time.Now()
				}
			}
		})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heapPerClient := float64(after.HeapInuse-before.HeapInuse) / clients
	goroutinesPerClient := float64(runtime.NumGoroutine()-g0) / clients
	stackPerClient := float64(after.StackInuse-before.StackInuse) / clients

	lat := make([]time.Duration, 0, b.N)
	ev := store.Event{CallSID: "CA1", Kind: "verification_pending", Actor: "system", Detail: "waiting for BankID",
		Call: callView("CA1", store.ViewAwaitingBankID, t0)}
	seq := int64(0)
	for b.Loop() {
		seq++
		ev.Seq = seq
		remaining.Store(clients)
		start := time.Now()
		e.hub.Publish(context.Background(), ev)
		lat = append(lat, (<-roundDone).Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(heapPerClient, "heap-B/client")
	b.ReportMetric(goroutinesPerClient, "goroutines/client")
	b.ReportMetric(stackPerClient, "stack-B/client")
	if e.hub.Clients() != clients {
		b.Errorf("Clients() = %d, want %d: a client was dropped", e.hub.Clients(), clients)
	}
	for _, ws := range conns {
		ws.Close()
	}
	wg.Wait()
}
