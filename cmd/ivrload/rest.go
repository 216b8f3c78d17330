package main

import (
	"net"
	"net/http"
	"sync/atomic"

	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

// restAPI is the virtual Twilio's REST API on a loopback port, for ivrd's
// TWILIO_API_URL: ivrd interrupts the callers' holds through it. It is
// listening before ivrd starts; the calls it updates are the ones of the
// virtual Twilio set later with use. With fail, it answers every request
// 503, as Twilio's API does in an outage: ivrd's holds must then end by
// their safety-net hop.
type restAPI struct {
	url string
	srv *http.Server
	tw  atomic.Pointer[virtualtwilio.Twilio]
	// failed counts the requests refused with fail.
	failed atomic.Int64
}

func startREST(host string, fail bool) (*restAPI, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	r := &restAPI{url: "http://" + ln.Addr().String()}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tw := r.tw.Load()
		if fail {
			r.failed.Add(1)
			http.Error(w, `{"code":20503,"message":"Service Unavailable","status":503}`, http.StatusServiceUnavailable)
			return
		}
		if tw == nil {
			http.Error(w, "no calls yet", http.StatusNotFound)
			return
		}
		tw.RESTHandler().ServeHTTP(w, req)
	})}
	go r.srv.Serve(ln)
	return r, nil
}

// use makes tw's calls the ones updated.

func (r *restAPI) use(tw *virtualtwilio.Twilio) { r.tw.Store(tw) }

func (r *restAPI) close() { _ = r.srv.Close() }
