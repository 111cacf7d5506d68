package cli_test

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// delayProxy is a TCP proxy in front of the S3 server that holds every
// chunk a client sends for delay before forwarding it, as a remote too slow
// for the drain cap would. Responses flow back unchanged. Closing the proxy
// ends every connection and every pending delay.
type delayProxy struct {
	ln     net.Listener
	target string
	delay  time.Duration
	done   chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

// startDelayProxy listens on a free loopback port in front of endpoint
// (http://host:port) and closes when the test ends.
func startDelayProxy(t *testing.T, endpoint string, delay time.Duration) *delayProxy {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &delayProxy{ln: ln, target: u.Host, delay: delay, done: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *delayProxy) endpoint() string { return "http://" + p.ln.Addr().String() }

func (p *delayProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go p.pipe(c)
	}
}

// track remembers c for close; false (and c closed) if the proxy is closed.
func (p *delayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns = append(p.conns, c)
	return true
}

// pipe forwards one connection: server to client at once, client to
// server one delayed chunk at a time.
func (p *delayProxy) pipe(c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil || !p.track(up) {
		return
	}
	defer up.Close()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_, _ = io.Copy(c, up)
		c.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 && !p.forward(up, buf[:n]) {
			return
		}
		if err != nil {
			return
		}
	}
}

// forward writes b to up after the delay; false if the proxy closed first
// or the write failed.
func (p *delayProxy) forward(up net.Conn, b []byte) bool {
	t := time.NewTimer(p.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.done:
		return false
	}
	_, err := up.Write(b)
	return err == nil
}

func (p *delayProxy) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	close(p.done)
	p.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	p.wg.Wait()
}
