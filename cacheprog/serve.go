package cacheprog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/internal/buildlog"
	"github.com/kunobi-ninja/kache/internal/store"
)

// Daemon is what a session asks of kache's daemon (the Rust wrapper's
// interface): checks never start it, uploads may.
type Daemon interface {
	// RemoteCheck asks whether key is on the remote, downloading it into
	// the store if so; offline or any error is a miss.
	RemoteCheck(ctx context.Context, key string, deadline time.Duration) (bool, error)
	// Upload writes the entries' intents into the spool, then hands them
	// over (key → store path); it may start the daemon.
	Upload(ctx context.Context, entries map[string]string) error
}

// Options are a session's surroundings, filled by the cli.
type Options struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Store  store.Store
	// UseStore is false when the store is unusable (no cache dir): gets
	// miss and puts are kept in scratch files for the session.
	UseStore bool
	// CacheDir holds builds.jsonl; "" records nothing.
	CacheDir string
	// Daemon is nil when no remote is configured.
	Daemon        Daemon
	CheckDeadline time.Duration
	// CloseWait bounds how long close waits to hand uploads over; the
	// intents are in the spool whatever happens.
	CloseWait time.Duration
	// LeaseEvery is how often the entries served are marked used, so the
	// daemon's eviction never takes a file the go command may still read.
	LeaseEvery time.Duration
}

// maxGets bounds the gets answered at once (each may wait on the remote).
const maxGets = 16

// session is one run of `kache cacheprog`: one go command.
type session struct {
	o       Options
	in      *reader
	outMu   sync.Mutex
	outBuf  []byte // a response being written, under outMu
	gets    sync.WaitGroup
	sem     chan struct{}
	mu      sync.Mutex
	counts  buildlog.GoCounts
	notes   []string
	remote  *remote
	up      *uploads
	leases  *leases
	scratch scratch
}

// Serve answers the go command's requests on o.Stdin until close or the
// end of input. It returns an error only for input that breaks the
// protocol (wrapping ErrProtocol); kache's own failures are misses.
func Serve(ctx context.Context, o Options) error {
	start := time.Now()
	s := &session{o: o, in: newReader(o.Stdin), sem: make(chan struct{}, maxGets),
		remote: &remote{d: o.Daemon, deadline: o.CheckDeadline}, leases: startLeases(o.Store, o.LeaseEvery)}
	if o.Daemon != nil {
		s.up = startUploads(o.Daemon)
	}
	s.respond(Response{KnownCommands: []string{cmdGet, cmdPut, cmdClose}})
	closeReq, err := s.run(ctx)
	s.gets.Wait()
	s.end(closeReq)
	s.record(start, err)
	return err
}

// run reads and dispatches requests; it returns the close request, if
// one came.
func (s *session) run(ctx context.Context) (*Request, error) {
	for {
		req, err := s.in.next()
		if err == io.EOF {
			return nil, nil // the go command went away without close
		}
		if err != nil {
			return nil, err
		}
		switch req.Command {
		case cmdGet:
			s.dispatchGet(ctx, req)
		case cmdPut:
			if err := s.put(req); err != nil {
				return nil, err
			}
		case cmdClose:
			return req, nil
		default:
			msg := fmt.Sprintf("kache cacheprog: unknown command %q (known: get, put, close)", req.Command)
			fmt.Fprintln(s.o.Stderr, msg)
			s.respond(Response{ID: req.ID, Err: msg})
		}
	}
}

// end hands the uploads over (bounded), answers close, and drops the
// session's scratch files, which the go command no longer reads.
func (s *session) end(closeReq *Request) {
	if s.up != nil {
		s.note(s.up.close(s.o.CloseWait))
	}
	s.note(s.remote.problem())
	s.leases.stop()
	if closeReq != nil {
		s.respond(Response{ID: closeReq.ID})
	}
	s.scratch.remove()
}

// dispatchGet answers a get: a local hit, or a miss with no remote to
// ask, at once on the reading goroutine (a few syscalls: handing it to
// another goroutine would cost more, on a loaded machine far more); a
// local miss that may wait on the remote on a goroutine of its own.
func (s *session) dispatchGet(ctx context.Context, req *Request) {
	if err := checkID("ActionID", req.ActionID); err != nil {
		s.respond(Response{ID: req.ID, Err: fmt.Sprintf("kache cacheprog: request %d: %v", req.ID, err)})
		return
	}
	key := Key(req.ActionID)
	if s.o.UseStore {
		if o, ok := lookup(s.o.Store, key); ok {
			s.respond(s.hit(req.ID, key, o, false))
			return
		}
	}
	if !s.o.UseStore || s.o.Daemon == nil {
		s.respond(s.miss(req.ID))
		return
	}
	s.goRemote(ctx, req.ID, key)
}

// goRemote answers a local miss from the remote on a goroutine of its
// own, at most maxGets at once, so one get waiting on the remote does not
// hold up the others.
func (s *session) goRemote(ctx context.Context, id int64, key string) {
	s.sem <- struct{}{}
	s.gets.Add(1)
	go func() {
		defer func() { <-s.sem; s.gets.Done() }()
		defer func() {
			if r := recover(); r != nil { // a bug of kache's is a miss, not a dead build
				s.note(fmt.Errorf("kache bug answering get %d: %v", id, r))
				s.respond(Response{ID: id, Miss: true})
			}
		}()
		s.respond(s.remoteGet(ctx, id, key))
	}()
}

// remoteGet answers a local miss from the remote, if it has the entry.
func (s *session) remoteGet(ctx context.Context, id int64, key string) Response {
	if s.remote.check(ctx, key) {
		if o, ok := lookup(s.o.Store, key); ok {
			return s.hit(id, key, o, true)
		}
	}
	return s.miss(id)
}

func (s *session) miss(id int64) Response {
	s.mu.Lock()
	s.counts.Gets++
	s.counts.Misses++
	s.mu.Unlock()
	return Response{ID: id, Miss: true}
}

func (s *session) hit(id int64, key string, o object, remote bool) Response {
	s.leases.add(key)
	s.mu.Lock()
	s.counts.Gets++
	if remote {
		s.counts.RemoteHits++
	} else {
		s.counts.Hits++
	}
	s.counts.BytesOut += o.size
	s.mu.Unlock()
	t := o.time
	return Response{ID: id, OutputID: o.outputID, Size: o.size, Time: &t, DiskPath: o.path}
}

// checkID checks an ActionID or OutputID: the go command's are 32 bytes.
func checkID(what string, id []byte) error {
	if len(id) == 0 || len(id) > maxActionID {
		return fmt.Errorf("%s of %d bytes, want 1 to %d", what, len(id), maxActionID)
	}
	return nil
}

// respond writes one response line; a failed write means the go command
// is gone, which the next read sees.
func (s *session) respond(r Response) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	b, err := appendResponse(s.outBuf[:0], r)
	if err != nil {
		return
	}
	s.outBuf = b
	_, _ = s.o.Stdout.Write(b)
}

// note keeps a problem for the session's record.
func (s *session) note(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.notes) < 4 {
		s.notes = append(s.notes, err.Error())
	}
}

// record appends the session's line to builds.jsonl.
func (s *session) record(start time.Time, err error) {
	if s.o.CacheDir == "" {
		return
	}
	s.note(err)
	s.mu.Lock()
	counts, notes := s.counts, s.notes
	s.mu.Unlock()
	counts.CPUMs = cpuMs()
	r := buildlog.Record{At: start, Tool: "go", Pid: os.Getpid(), Outcome: buildlog.GoSession,
		Ms: float64(time.Since(start).Microseconds()) / 1000, Go: &counts}
	if err != nil {
		r.Exit = 2
	}
	r.Reason = strings.Join(notes, "; ")
	_ = buildlog.Append(filepath.Join(s.o.CacheDir, "builds.jsonl"), r)
}

// cpuMs is this process's CPU time so far, user and system.
func cpuMs() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}

// errNoPlace is a put kache could keep nowhere.
var errNoPlace = errors.New("kache cacheprog: cannot keep the object anywhere")

// GoCommandPid is the go command that started this cache program, 0 when
// the parent is something else (a test speaking the protocol itself): the
// build the daemon's uploads wait for (docs/lifecycle.md).
func GoCommandPid() int {
	ppid := os.Getppid()
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(ppid) + "/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "go" {
		return 0
	}
	return ppid
}
