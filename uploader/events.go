package uploader

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/kunobi-ninja/kache/internal/regfile"
)

// Event kinds written to the events log.
const (
	EventUploadDone     = "upload_done"
	EventUploadSkipped  = "upload_skipped"
	EventUploadFailed   = "upload_failed"
	EventUploadRetry    = "upload_retry"
	EventDownloadDone   = "download_done"
	EventDownloadFailed = "download_failed"
)

// MaxEventsSize is the size past which the events log is rotated to
// <file>.1, keeping one previous generation.
const MaxEventsSize = 1 << 20

// Event is one line of the events log.
type Event struct {
	TS    time.Time `json:"ts"`
	Kind  string    `json:"kind"`
	Key   string    `json:"key"`
	Bytes int64     `json:"bytes,omitempty"`
	Error string    `json:"error,omitempty"`
	Ms    int64     `json:"ms,omitempty"`
}

// EventLog appends transfer events, one JSON line each, to a file that a
// monitor reads directly, so it can show what happened even when the daemon
// is offline. It is bounded (see MaxEventsSize). Writes are serialized; an
// error is logged and never stops a transfer. A nil *EventLog records nothing.
type EventLog struct {
	path  string
	limit int64
	log   *slog.Logger

	mu     sync.Mutex
	f      *os.File
	size   int64
	closed bool
}

// NewEventLog returns a log appending to path, or nil (record nothing) when
// path is empty. The file is opened at the first event.
func NewEventLog(path string, log *slog.Logger) *EventLog {
	if path == "" {
		return nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &EventLog{path: path, limit: MaxEventsSize, log: log}
}

// Record appends e, stamping it with the current time if TS is zero.
func (l *EventLog) Record(e Event) {
	if l == nil {
		return
	}
	if e.TS.IsZero() {
		e.TS = time.Now().UTC()
	}
	line, err := json.Marshal(e)
	if err != nil {
		l.log.Warn("events log: encode", "err", err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.write(append(line, '\n')); err != nil {
		l.log.Warn("events log: write", "file", l.path, "err", err)
	}
}

// Close closes the file; later events are dropped.
func (l *EventLog) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.closeFile()
}

func (l *EventLog) write(line []byte) error {
	if l.closed {
		return nil
	}
	if err := l.open(); err != nil {
		return err
	}
	n, err := l.f.Write(line)
	l.size += int64(n)
	if err != nil {
		l.closeFile() // reopen at the next event
		return err
	}
	if l.size >= l.limit {
		return l.rotate()
	}
	return nil
}

func (l *EventLog) open() error {
	if l.f != nil {
		return nil
	}
	f, err := regfile.OpenAppend(l.path, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// rotate renames the full file to <file>.1, replacing the previous
// generation; the next event starts a new file.
func (l *EventLog) rotate() error {
	if err := l.closeFile(); err != nil {
		return err
	}
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	return nil
}

func (l *EventLog) closeFile() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f, l.size = nil, 0
	return err
}
