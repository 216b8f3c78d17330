package netutil_test

import (
	"testing"

	"github.com/ivr/callerverify/internal/netutil"
)

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost": true, "127.0.0.1": true, "127.8.9.10": true, "::1": true,
		"": false, "0.0.0.0": false, "10.0.0.1": false, "localhost.example.com": false, "[::1]": false, "example.com": false,
	} {
		if got := netutil.IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
