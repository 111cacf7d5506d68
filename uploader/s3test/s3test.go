// Package s3test runs a real S3 server (versitygw, POSIX backend) for tests,
// so the S3 remote is tested against the protocol, signing and error codes
// of a real server rather than a fake. Tests using it never skip: a missing
// versitygw fails the test with the command that installs it.
package s3test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/config"
)

// Fixed test settings; scripts/versitygw.sh uses the same ones.
const (
	Bucket    = "kache-test"
	AccessKey = "kacheaccess"
	Secret    = "kachesecret123"
	Region    = "us-east-1"

	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
)

// Server is one versitygw process serving Root on 127.0.0.1.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	Bucket    string
	AccessKey string
	Secret    string
	Root      string // the backend directory; the bucket is Root/Bucket

	t    testing.TB
	bin  string
	addr string
	log  string
	proc *process // nil while stopped
}

// process is one run of versitygw; done closes when it has exited.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs versitygw on a free loopback port with a fresh root holding
// the bucket, waits until it answers, and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &Server{Bucket: Bucket, AccessKey: AccessKey, Secret: Secret, Root: filepath.Join(dir, "root"),
		t: t, bin: bin, log: filepath.Join(dir, "versitygw.log")}
	if err := os.MkdirAll(filepath.Join(s.Root, Bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	for try := 0; ; try++ { // another process may take the port between pick and bind
		s.addr, err = freeAddr()
		if err == nil {
			s.Endpoint = "http://" + s.addr
			err = s.start()
		}
		if err == nil {
			return s
		}
		if try == 2 {
			t.Fatalf("start versitygw: %v", err)
		}
	}
}

// Binary finds versitygw on PATH, in $GOBIN, $(go env GOPATH)/bin or
// /root/go/bin.
func Binary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	for _, d := range append(dirs, "/root/go/bin") {
		p := filepath.Join(d, "versitygw")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", errors.New("versitygw not installed: run scripts/versitygw.sh install")
}

// freeAddr picks a loopback port the kernel just reported free.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start launches the process and waits until it answers HTTP or exits.
func (s *Server) start() error {
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	// --keep-alive: like AWS, keep connections open between requests (the
	// default closes each one, which would hide connection reuse bugs).
	cmd := exec.Command(s.bin, "--access", s.AccessKey, "--secret", s.Secret,
		"--port", s.addr, "--quiet", "--keep-alive", "posix", s.Root)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that forked the server exits,
		// not the process: a goroutine of the code under test that locks
		// a thread and exits (an upload worker does) could take the
		// forking thread with it and kill the server mid-test (it did:
		// TestPoolS3FiveHundredUploadsDrained lost its server with one
		// upload left). This goroutine keeps its thread until the server
		// has exited.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return err
	}
	s.proc = p
	if err := s.waitReady(p); err != nil {
		s.Stop()
		return fmt.Errorf("%w; log %s:\n%s", err, s.log, tail(s.log))
	}
	return nil
}

// waitReady polls until the server answers any HTTP response (an unsigned
// request gets 403), the process exits, or the deadline passes.
func (s *Server) waitReady(p *process) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("versitygw exited: %v", p.err)
		default:
		}
		if resp, err := client.Get(s.Endpoint + "/"); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-p.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("versitygw did not answer on %s within %s", s.Endpoint, startTimeout)
}

// Stop ends the server: SIGTERM, then SIGKILL if it has not exited within
// a deadline. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	p := s.proc
	if p == nil {
		return
	}
	s.proc = nil
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(stopTimeout):
	}
	p.cmd.Process.Kill()
	<-p.done
}

// Restart starts a stopped server again on the same port and root, for
// tests of "S3 down for a while". Call it from the test goroutine.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("restart versitygw on %s: %v", s.addr, err)
	}
}

// Env is the environment that points kache and the AWS SDK at the server.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.Secret,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true",
		"KACHE_S3_ENDPOINT=" + s.Endpoint,
		"KACHE_S3_BUCKET=" + s.Bucket,
	}
}

// SetEnv applies Env to this test's process with t.Setenv, so the
// standard AWS credential chain finds the server's keys.
func (s *Server) SetEnv(t testing.TB) {
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// Config is the [s3] settings for the server.
func (s *Server) Config() config.S3 {
	return config.S3{Bucket: s.Bucket, Region: Region, Endpoint: s.Endpoint, Concurrency: config.DefaultConcurrency}
}

// ObjectPath is the file holding the object with this full key (prefix
// included), to compare or corrupt its bytes.
func (s *Server) ObjectPath(key string) string {
	return filepath.Join(s.Root, s.Bucket, filepath.FromSlash(key))
}

// tail returns the end of the log, for failure messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
