package cibatest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// notifyTimeout bounds one ping notification.
const notifyTimeout = 10 * time.Second

// pingTarget is where a ping mode request is announced when it ends (CIBA
// Core §10.2), and whether that happened.
type pingTarget struct {
	endpoint, token string
	timer           *time.Timer
	done            bool // sent or dropped: never twice
}

// scheduleLocked arms the notification of a new ping request for its
// scripted outcome or its expiry. Timers run on the fake clock inside
// synctest.
func (b *Broker) scheduleLocked(r *request, now time.Time) {
	if r.ping == nil || r.ping.done || b.closed {
		return
	}
	b.armLocked(r, r.finalAt().Sub(now))
}

// notifyLocked sends the notification of a request decided by hand or
// cancelled, from a timer goroutine so that the caller does not wait for
// the client.
func (b *Broker) notifyLocked(r *request) {
	if r.ping == nil || r.ping.done || b.closed {
		return
	}
	b.armLocked(r, 0)
}

func (b *Broker) armLocked(r *request, d time.Duration) {
	r.stopTimer()
	r.ping.timer = time.AfterFunc(max(d, 0), func() { b.notifyDue(r) })
}

// stopTimer stops the request's notification timer, if any. The caller
// holds b.mu.
func (r *request) stopTimer() {
	if r.ping != nil && r.ping.timer != nil {
		r.ping.timer.Stop()
	}
}

// notifyDue runs when a ping request's timer fires: if the request has
// ended it POSTs {"auth_req_id":…} to the client's notification endpoint
// with the client_notification_token as bearer token, once, without retries.
func (b *Broker) notifyDue(r *request) {
	b.mu.Lock()
	if b.closed || r.ping.done {
		b.mu.Unlock()
		return
	}
	now := b.now()
	st, _, _ := r.status(now)
	if st == StatePending {
		// Config.Now runs behind the timers: look again later.
		b.armLocked(r, max(r.finalAt().Sub(now), time.Second))
		b.mu.Unlock()
		return
	}
	r.ping.done = true
	if b.dropping || (st == StateExpired && b.cfg.SilentExpiry) {
		b.mu.Unlock()
		return
	}
	endpoint, token, id, hc := r.ping.endpoint, r.ping.token, r.authReqID, b.fetchClient
	b.sending.Add(1)
	b.mu.Unlock()
	defer b.sending.Done()

	send(hc, endpoint, token, id)
	b.mu.Lock()
	b.notes++
	b.mu.Unlock()
}

// send POSTs one notification; the answer does not matter.
func send(hc *http.Client, endpoint, token, authReqID string) {
	if hc == nil {
		hc = http.DefaultClient
	}
	body, _ := json.Marshal(map[string]string{"auth_req_id": authReqID})
	ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// Notifications returns how many ping notifications were sent (POSTed,
// whatever the client answered); dropped ones are not counted.
func (b *Broker) Notifications() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.notes
}

// SetDropNotifications makes the broker lose (true) or send again (false)
// the ping notifications of requests ending from now on, to simulate a
// notification that never arrives. A dropped notification is not sent
// later: the client has to poll.
func (b *Broker) SetDropNotifications(drop bool) {
	b.mu.Lock()
	b.dropping = drop
	b.mu.Unlock()
}

// Close stops the ping notification timers and waits for notifications in
// flight. The broker keeps serving, but sends no more notifications.
func (b *Broker) Close() {
	b.mu.Lock()
	b.closed = true
	for _, r := range b.reqs {
		r.stopTimer()
	}
	b.mu.Unlock()
	b.sending.Wait()
}
