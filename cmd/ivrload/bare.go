package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

// The baseline is a bare net/http Twilio responder (virtualtwilio.Bare): it
// checks the request's X-Twilio-Signature as ivrd does and answers a fixed
// hold document. It runs as its own process
// (ivrload re-executed as "ivrload bare"), so that its CPU is measured apart
// from the load generator's, and it gets the same request pattern as ivrd:
// every webhook the virtual Twilio sends ivrd is sent to it too, at the same
// moment, signed for its URL (mirrorTransport).

// baselinePrefix starts the route of every request the baseline got:
// "baseline /twilio/hold" beside ivrd's "/twilio/hold".
const baselinePrefix = "baseline "

func baselineLabel(path string) string { return baselinePrefix + path }

func isBaseline(route string) bool { return strings.HasPrefix(route, baselinePrefix) }

// bareEnv, set in a process's environment, makes ivrload (or its test
// binary, see TestMain) the baseline responder.
const bareEnv = "IVRLOAD_BARE"

// bareToken is the auth token the baseline checks signatures with.
const bareToken = "baseline-auth-token"

// holdTwiML is a hold hop as ivrd answers it (testdata/screens golden "hold").
const holdTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/twilio/hold?s=7&amp;a=1&amp;n=4" actionOnEmptyResult="true" input="dtmf" method="POST" numDigits="1" timeout="1"><Pause length="7"/></Gather><Redirect method="POST">/twilio/hold?s=7&amp;a=1&amp;n=4</Redirect></Response>`

// runBare serves the baseline on --listen until ctx ends, printing its URL
// on stdout's first line once it listens.
func runBare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ivrload bare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: virtualtwilio.Bare(base, bareToken, holdTwiML)}
	fmt.Fprintln(stdout, base)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// baseline is the running baseline process.
type baseline struct {
	cmd  *exec.Cmd
	base string
	done chan error
}

// startBaseline starts the baseline process: this executable again, with
// bareEnv set.
func startBaseline(ctx context.Context, host string) (*baseline, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "bare", "--listen", net.JoinHostPort(host, "0"))
	cmd.Env = append(os.Environ(), bareEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	b := &baseline{cmd: cmd, done: make(chan error, 1)}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("baseline: no address: %w", err)
	}
	b.base = strings.TrimSpace(line)
	go func() { b.done <- cmd.Wait() }()
	return b, nil
}

func (b *baseline) stop() {
	b.cmd.Process.Signal(os.Interrupt)
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
	}
}

// mirrorTransport sends every webhook it carries to the baseline as well,
// at the same moment and signed for the baseline's URL, timed under
// the baseline's routes. The baseline's answer is read and dropped.
type mirrorTransport struct {
	next   http.RoundTripper
	mirror http.RoundTripper // to the baseline, timed
	base   string
	wg     *sync.WaitGroup
}

func (t mirrorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.GetBody != nil {
		if body, err := req.GetBody(); err == nil {
			b, _ := io.ReadAll(body)
			body.Close()
			if form, err := url.ParseQuery(string(b)); err == nil {
				target := t.base + req.URL.RequestURI()
				t.wg.Go(func() { t.send(req.Context(), target, form, b) })
			}
		}
	}
	return t.next.RoundTrip(req)
}

func (t mirrorTransport) send(ctx context.Context, target string, form url.Values, body []byte) {
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", virtualtwilio.Sign(bareToken, target, form))
	resp, err := t.mirror.RoundTrip(req)
	if err != nil {
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
