package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

// demoCalls is the demo's Twilio REST API for call updates (the service's
// TWILIO_API_URL): an update for a call placed by `demo --call` goes to
// that virtual Twilio; one for a call of the phone page goes to the page,
// over the event stream it opened for the call.
type demoCalls struct {
	terminal atomic.Pointer[virtualtwilio.Twilio] // demo --call

	mu    sync.Mutex
	pages map[string]chan demoUpdate // call SID -> the phone page's stream
}

type demoUpdate struct {
	URL    string `json:"url"`
	Method string `json:"method"`
}

func newDemoCalls() *demoCalls { return &demoCalls{pages: map[string]chan demoUpdate{}} }

// UpdateCall implements virtualtwilio.CallUpdater.
func (d *demoCalls) UpdateCall(sid, url, method string) error {
	if tw := d.terminal.Load(); tw != nil {
		if err := tw.UpdateCall(sid, url, method); err == nil {
			return nil
		}
	}
	d.mu.Lock()
	ch := d.pages[sid]
	d.mu.Unlock()
	if ch == nil {
		return virtualtwilio.ErrNoSuchCall
	}
	u := demoUpdate{URL: url, Method: method}
	for {
		select {
		case ch <- u:
			return nil
		default:
		}
		select { // the newest update wins
		case <-ch:
		default:
		}
	}
}

// streamEvery keeps an idle event stream open through proxies.
const streamEvery = 15 * time.Second

// handleStream is GET /demo/api/calls/{sid}/updates: a server-sent event
// stream on which the phone page receives its call's updates ("update",
// JSON {url, method}), as Twilio would act on them.
func (d *demoCalls) handleStream(w http.ResponseWriter, r *http.Request) {
	sid := chi.URLParam(r, "sid")
	if len(sid) != 34 {
		http.Error(w, "unknown call", http.StatusNotFound)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := make(chan demoUpdate, 1)
	d.mu.Lock()
	d.pages[sid] = ch
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if d.pages[sid] == ch {
			delete(d.pages, sid)
		}
		d.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": listening\n\n")
	flusher.Flush()
	tick := time.NewTicker(streamEvery)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case u := <-ch:
			b, _ := json.Marshal(u)
			fmt.Fprintf(w, "event: update\ndata: %s\n\n", b)
			flusher.Flush()
		case <-tick.C:
			fmt.Fprint(w, ": keepalive\n\n")
			flusher.Flush()
		}
	}
}
