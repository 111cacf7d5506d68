// Package runlock is the flock(2) that makes the daemon a single instance
// and serialises spawning. Clients probe it; the daemon holds it.
package runlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// ErrLocked means another open file description (normally another process)
// holds the lock. It is the single-instance signal, not a failure.
var ErrLocked = errors.New("lock is held by another process")

// ErrUnsafe means the lock path is a symlink or another user's file: a
// planted file kache refuses, which needs a person to remove it.
var ErrUnsafe = errors.New("unsafe lock file")

// Lock is an exclusive flock(2) on a file. flock locks belong to the open
// file description, not the process: the kernel drops the lock when the
// holder dies, however it dies, so a kill -9 never leaves a stale lock. The
// same property makes two TryLock calls in one process conflict.
type Lock struct {
	f    *os.File
	path string
}

// TryLock takes the lock on path without waiting, creating the file 0600.
// It returns ErrLocked if someone else holds it.
func TryLock(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%w: %s is a symlink: remove it (kache never follows one here) or set KACHE_SOCKET_PATH to a private directory", ErrUnsafe, path)
	}
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := checkOwn(f, path); err != nil {
		f.Close()
		return nil, err
	}
	if err := Flock(f, false); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	return &Lock{f: f, path: path}, nil
}

// Flock takes an exclusive flock(2) on f: kache's one flock call (the run
// lock, the totals file's lock, upload claims). Without wait it returns
// ErrLocked at once if another open file description holds it. EINTR,
// which a signal arriving mid-call can cause, is retried. Closing f (its
// last descriptor) drops the lock.
func Flock(f *os.File, wait bool) error {
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	for {
		err := syscall.Flock(int(f.Fd()), how)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return ErrLocked
		}
		return err
	}
}

// WaitLock takes the lock, waiting until ctx ends. It polls TryLock with a
// short backoff instead of a blocking flock because a blocking flock cannot
// be cancelled: a goroutine stuck in it would outlive the deadline.
func WaitLock(ctx context.Context, path string) (*Lock, error) {
	delay := 2 * time.Millisecond
	for {
		l, err := TryLock(path)
		if !errors.Is(err, ErrLocked) {
			return l, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("wait for lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, 50*time.Millisecond)
	}
}

// Release drops the lock. The file stays: removing it would let a waiter
// lock the unlinked inode while a newcomer locks a fresh file of the same
// name, and both would believe they hold the lock.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("release lock %s: %w", l.path, err)
	}
	return nil
}

// LockHeld reports whether some process holds the lock on path, by taking
// and dropping it. A missing file means nobody holds it; the probe does not
// create one. The answer can be stale the moment it returns: use it to
// report, and TryLock to decide.
func LockHeld(path string) bool {
	if _, err := os.Stat(path); err != nil {
		return false
	}
	l, err := TryLock(path)
	if err != nil {
		return errors.Is(err, ErrLocked)
	}
	_ = l.Release()
	return false
}

// checkOwn refuses a lock file another user created: holding it, they
// could keep the daemon from ever starting.
func checkOwn(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%w: %s belongs to uid %d, not you: remove it or set KACHE_SOCKET_PATH to a private directory", ErrUnsafe, path, st.Uid)
	}
	return nil
}

// File is the locked file, for a daemon that hands its lock to a successor:
// a child that inherits the descriptor shares the open file description,
// and with it the flock, so the lock never falls free between the two.
func (l *Lock) File() *os.File { return l.f }

// Inherited adopts a lock passed by a predecessor as descriptor fd. It
// checks that fd is the file at path and that the flock is held through
// it (flock on a description that already holds it succeeds at once;
// on any other it would fail with EWOULDBLOCK while someone else holds it).
func Inherited(fd uintptr, path string) (*Lock, error) {
	f := os.NewFile(fd, path)
	if f == nil {
		return nil, fmt.Errorf("inherited run lock: fd %d is not open", fd)
	}
	syscall.CloseOnExec(int(fd))
	if err := sameFile(f, path); err != nil {
		f.Close()
		return nil, err
	}
	if err := Flock(f, false); err != nil {
		f.Close()
		return nil, fmt.Errorf("inherited run lock fd %d on %s is not held: %w", fd, path, err)
	}
	return &Lock{f: f, path: path}, nil
}

// sameFile reports an error unless f is the file now at path.
func sameFile(f *os.File, path string) error {
	a, err := f.Stat()
	if err != nil {
		return fmt.Errorf("inherited run lock: %w", err)
	}
	b, err := os.Lstat(path)
	if err != nil || !os.SameFile(a, b) {
		return fmt.Errorf("inherited run lock fd is not %s (%v): start the daemon without KACHE_HANDOVER", path, err)
	}
	return nil
}
