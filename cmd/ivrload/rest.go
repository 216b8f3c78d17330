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
// virtual Twilio set later with use.
type restAPI struct {
	url string
	srv *http.Server
	tw  atomic.Pointer[virtualtwilio.Twilio]
}

func startREST(host string) (*restAPI, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	r := &restAPI{url: "http://" + ln.Addr().String()}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tw := r.tw.Load()
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
