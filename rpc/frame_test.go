package rpc

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

// endless is a reader that never sends a newline and counts what it gave.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.n += len(p)
	return len(p), nil
}

func TestReadFrameStopsAtTheCap(t *testing.T) {
	src := &endless{}
	_, err := readFrame(bufio.NewReaderSize(src, readBufferSize))
	if !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("endless line: got %v, want errFrameTooLarge", err)
	}
	if src.n > MaxFrame+readBufferSize {
		t.Fatalf("read %d bytes of an endless line, want at most the cap plus one buffer (%d)", src.n, MaxFrame+readBufferSize)
	}
}

func TestReadFrameLines(t *testing.T) {
	r := bufio.NewReaderSize(strings.NewReader("a\n"+strings.Repeat("b", 40000)+"\ntail"), 16)
	for _, want := range []string{"a", strings.Repeat("b", 40000)} {
		got, err := readFrame(r)
		if err != nil || string(got) != want {
			t.Fatalf("got %d bytes, %v; want %d bytes", len(got), err, len(want))
		}
	}
	if got, err := readFrame(r); string(got) != "tail" || err != io.EOF {
		t.Fatalf("unterminated tail: got %q, %v", got, err)
	}
	if got, err := readFrame(r); len(got) != 0 || err != io.EOF {
		t.Fatalf("at EOF: got %q, %v", got, err)
	}
}

func TestEncodeResponseRefusesOversizedAnswer(t *testing.T) {
	resp := OKResponse()
	resp.Status = &Status{Exe: strings.Repeat("e", MaxFrame)}
	line := encodeResponse(resp)
	if len(line) > MaxFrame || !strings.Contains(string(line), `"internal"`) {
		t.Fatalf("oversized answer encoded as %d bytes starting %.80q", len(line), line)
	}
}

func TestFrameReaderChargesTheBudget(t *testing.T) {
	// Growing a buffer holds the old and the new one at once, and both are
	// charged: a 40000-byte line peaks at 32 KiB + 64 KiB.
	b := &budget{max: 128 << 10}
	long := strings.Repeat("y", 40000)
	f := frameReader{r: bufio.NewReaderSize(strings.NewReader(long+"\n"+strings.Repeat("z", 100000)+"\n"), 16), budget: b}
	if got, err := f.next(); err != nil || string(got) != long {
		t.Fatalf("a line within the budget: got %d bytes, %v", len(got), err)
	}
	if u := b.used.Load(); u < 40000 || u > b.max {
		t.Fatalf("a 40000-byte line holds %d bytes of a %d-byte budget", u, b.max)
	}
	if _, err := f.next(); !errors.Is(err, errOverBudget) {
		t.Fatalf("a line over the budget: got %v, want errOverBudget", err)
	}
	f.release()
	if u := b.used.Load(); u != 0 {
		t.Fatalf("after release %d bytes are still charged", u)
	}
}
