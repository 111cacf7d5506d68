package cli_test

import (
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"
)

// faultProxy is an HTTP proxy in front of the S3 server that answers a
// share of requests with a fault instead of forwarding them: 500
// InternalError, 503 ServiceUnavailable, 503 SlowDown, or a stall in the
// middle of the request body (half the body read, then nothing for a
// while, then the connection dropped). Its random source is seeded, so a
// run's schedule is fixed up to the order in which requests arrive.
type faultProxy struct {
	srv   *http.Server
	ln    net.Listener
	rp    *httputil.ReverseProxy
	stall time.Duration

	mu    sync.Mutex
	rng   *rand.Rand
	rate  float64 // share of requests faulted; 0 forwards everything
	count map[string]int
}

// startFaultProxy listens on a free loopback port in front of endpoint.
func startFaultProxy(t *testing.T, endpoint string, seed uint64, stall time.Duration) *faultProxy {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, rp: httputil.NewSingleHostReverseProxy(u), stall: stall, rng: seeded(seed), count: map[string]int{}}
	p.rp.ErrorLog = log.New(io.Discard, "", 0) // refused dials during the outage are expected
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

func (p *faultProxy) endpoint() string { return "http://" + p.ln.Addr().String() }

// setRate changes the share of requests faulted.
func (p *faultProxy) setRate(r float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate = r
}

// requests is how many requests reached the proxy.
func (p *faultProxy) requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count["requests"]
}

// faults is how many of each fault were served.
func (p *faultProxy) faults() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.count {
		if k != "requests" {
			out[k] = v
		}
	}
	return out
}

// draw picks this request's fault, "" for none.
func (p *faultProxy) draw(hasBody bool) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count["requests"]++
	if p.rng.Float64() >= p.rate {
		return ""
	}
	kinds := []string{"500", "503", "SlowDown"}
	if hasBody {
		kinds = append(kinds, "stall")
	}
	k := kinds[p.rng.IntN(len(kinds))]
	p.count[k]++
	return k
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p.draw(r.ContentLength > 1) {
	case "":
		p.rp.ServeHTTP(w, r)
	case "500":
		s3Error(w, 500, "InternalError", "We encountered an internal error. Please try again.")
	case "503":
		s3Error(w, 503, "ServiceUnavailable", "Please reduce your request rate.")
	case "SlowDown":
		s3Error(w, 503, "SlowDown", "Please reduce your request rate.")
	case "stall":
		p.stallMidBody(w, r)
	}
}

// stallMidBody reads half the request body, goes quiet, then drops the
// connection with no response at all.
func (p *faultProxy) stallMidBody(w http.ResponseWriter, r *http.Request) {
	_, _ = io.CopyN(io.Discard, r.Body, r.ContentLength/2)
	select {
	case <-time.After(p.stall):
	case <-r.Context().Done():
	}
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
	}
}

// s3Error answers as S3 does, with the error document.
func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>chaos</RequestId></Error>`, code, msg)
}
