//go:build pprof

package main

// Benchmark builds only (go build -tags pprof ./cmd/ivrd): the runtime
// profiles on IVR_PPROF_LISTEN, a loopback address, so that a load run can
// see where ivrd's CPU goes. Release builds have no such listener.

import (
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"

	"github.com/ivr/callerverify/internal/netutil"
)

func init() {
	addr := os.Getenv("IVR_PPROF_LISTEN")
	if addr == "" {
		return
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || !netutil.IsLoopbackHost(host) {
		log.Fatalf("IVR_PPROF_LISTEN=%q: want a loopback host:port", addr)
	}
	go func() { log.Println(http.ListenAndServe(addr, nil)) }()
}
