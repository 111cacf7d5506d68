// Package receipt is `kache flush`: what was handed over before it was
// called (the intents in the spool, and the uploads finished or failed
// since the last flush), the wait until each is settled, and the receipt
// of each confirmed entry read back from the remote through the daemon.
// It only reads the spool and the events log; the cli prints its Report.
package receipt

import (
	"errors"
	"fmt"
	"time"
)

// Outcomes of a flush, which the cli maps to their own exit codes
// (docs/exit-codes.md) so that a CI job can fail on a lost cache write.
var (
	// ErrFailed: an entry handed over failed permanently.
	ErrFailed = errors.New("uploads failed")
	// ErrPending: the timeout passed with uploads still pending and none
	// failed. Their intents stay in the spool.
	ErrPending = errors.New("uploads still pending")
)

// The states of an Item.
const (
	Confirmed = "confirmed"
	Failed    = "failed"
	Pending   = "pending"
)

// Item is one entry flush waits for, and what became of it.
type Item struct {
	Key       string    `json:"key"`
	Status    string    `json:"status"` // confirmed, failed, pending
	Path      string    `json:"path"`
	CreatedAt time.Time `json:"created_at"` // when the intent was written
	Remote    string    `json:"remote,omitempty"`
	Object    string    `json:"object,omitempty"`
	Bytes     int64     `json:"bytes,omitempty"`
	SHA256    string    `json:"sha256,omitempty"`
	Error     string    `json:"error,omitempty"`
}

// Report is the items with their counts: flush's --json output.
type Report struct {
	Confirmed int     `json:"confirmed"`
	Failed    int     `json:"failed"`
	Pending   int     `json:"pending"`
	Entries   []*Item `json:"entries"`
}

// Tally counts items by status (Entries is never nil: JSON shows []).
func Tally(items []*Item) Report {
	r := Report{Entries: items}
	if r.Entries == nil {
		r.Entries = []*Item{}
	}
	for _, it := range items {
		switch it.Status {
		case Confirmed:
			r.Confirmed++
		case Failed:
			r.Failed++
		default:
			r.Pending++
		}
	}
	return r
}

// Err is the flush's outcome: ErrFailed if any failed, else ErrPending if
// any is pending, else nil.
func (r Report) Err() error {
	n := len(r.Entries)
	switch {
	case r.Failed > 0:
		return fmt.Errorf("%w: %d of %d", ErrFailed, r.Failed, n)
	case r.Pending > 0:
		return fmt.Errorf("%w: %d of %d", ErrPending, r.Pending, n)
	}
	return nil
}

func pending(items []*Item) int {
	n := 0
	for _, it := range items {
		if it.Status == Pending {
			n++
		}
	}
	return n
}
