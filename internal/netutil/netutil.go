// Package netutil holds the small network facts several packages share.
package netutil

import (
	"net"
	"strings"
)

// IsLoopbackHost reports whether host (a name or an address, without a
// port) names this machine: localhost, 127.0.0.0/8 or ::1. Plain http and
// the demo's published secrets are accepted only there.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
