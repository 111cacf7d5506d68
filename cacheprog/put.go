package cacheprog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// put stores a put's body and answers with the file holding it. Only a
// protocol error is returned; kache's own failures are answered (with a
// DiskPath when the object could be kept anywhere at all).
func (s *session) put(req *Request) error {
	if req.BodySize < 0 {
		return protocolErr("put %d: negative BodySize %d", req.ID, req.BodySize)
	}
	idErr := checkID("ActionID", req.ActionID)
	if idErr == nil {
		idErr = checkID("OutputID", req.OutputID)
	}
	if idErr != nil {
		if _, err := s.discardBody(req); err != nil {
			return err
		}
		s.respond(Response{ID: req.ID, Err: fmt.Sprintf("kache cacheprog: put %d: %v", req.ID, idErr)})
		return nil
	}
	key := Key(req.ActionID)
	p, err := begin(s.o.Store, s.o.UseStore, key, req.OutputID, s.scratch.file)
	if err != nil {
		if _, perr := s.discardBody(req); perr != nil {
			return perr
		}
		s.note(err)
		s.respond(Response{ID: req.ID, Err: fmt.Sprintf("%v: %v", errNoPlace, err)})
		return nil
	}
	return s.write(req, key, p)
}

// write reads the body into p and places it.
func (s *session) write(req *Request, key string, p *pending) error {
	if req.BodySize > 0 {
		if _, err := s.in.body(req.ID, req.BodySize, p); err != nil {
			p.abort()
			if errors.Is(err, ErrProtocol) {
				return err
			}
			s.note(err)
			s.respond(Response{ID: req.ID, Err: fmt.Sprintf("%v: %v", errNoPlace, err)})
			return nil
		}
	}
	path, placed, leftover, err := p.finish()
	if err != nil {
		s.note(err)
		s.respond(Response{ID: req.ID, Err: fmt.Sprintf("%v: %v", errNoPlace, err)})
		return nil
	}
	s.scratch.keep(leftover)
	s.note(p.err)
	s.mu.Lock()
	s.counts.Puts++
	s.counts.BytesIn += req.BodySize
	s.mu.Unlock()
	if placed {
		s.leases.add(key)
		if s.up != nil {
			s.up.add(key, filepath.Dir(path))
		}
	}
	s.respond(Response{ID: req.ID, DiskPath: path})
	return nil
}

func (s *session) discardBody(req *Request) (int64, error) {
	if req.BodySize <= 0 {
		return 0, nil
	}
	return s.in.body(req.ID, req.BodySize, io.Discard)
}

// scratch is the session's own directory for objects the store could not
// take, made on first use and removed when the session ends, with any
// leftover entry directories.
type scratch struct {
	mu        sync.Mutex
	dir       string
	n         int
	leftovers []string
}

// file creates a new scratch file.
func (sc *scratch) file() (*os.File, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.dir == "" {
		d, err := os.MkdirTemp("", "kache-cacheprog-")
		if err != nil {
			return nil, err
		}
		sc.dir = d
	}
	sc.n++
	return os.OpenFile(filepath.Join(sc.dir, fmt.Sprintf("object-%d", sc.n)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
}

// keep notes a directory to remove at the end.
func (sc *scratch) keep(dir string) {
	if dir == "" {
		return
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.leftovers = append(sc.leftovers, dir)
}

func (sc *scratch) remove() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, d := range append(sc.leftovers, sc.dir) {
		if d != "" {
			os.RemoveAll(d)
		}
	}
}
