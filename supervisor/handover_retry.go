package supervisor

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sigterm is what stops a successor that never became ready.
const sigterm = syscall.SIGTERM

// dupCloexec duplicates fd close-on-exec in one call, so a child started
// meanwhile by another goroutine cannot inherit it.
func dupCloexec(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }

// retryTimer is the backoff after a failed hand-over: 1 s, doubling up to
// 5 min. Only the loop touches it.
type retryTimer struct {
	delay time.Duration
	t     *time.Timer
}

func newRetryTimer() *retryTimer { return &retryTimer{delay: handoverRetryFirst} }

// arm starts the wait before the next try and doubles the one after.
func (r *retryTimer) arm() {
	r.disarm()
	r.t = time.NewTimer(r.delay)
	r.delay = min(r.delay*2, handoverRetryMax)
}

// disarm cancels a pending retry.
func (r *retryTimer) disarm() {
	if r.t != nil {
		r.t.Stop()
		r.t = nil
	}
}

func (r *retryTimer) armed() bool { return r.t != nil }

// C fires when the retry is due; nil (never) when none is armed.
func (r *retryTimer) C() <-chan time.Time {
	if r.t == nil {
		return nil
	}
	return r.t.C
}
