package runlock

import (
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/kunobi-ninja/kache/internal/testenv"
	"go.uber.org/goleak"
)

// TestMain runs the tests under goleak, or in a child holds a lock.
func TestMain(m *testing.M) {
	testenv.RunAct(testenv.Acts{
		"hold-lock": func(path string) int { // take the lock, say so, hold it until stdin closes
			l, err := TryLock(path)
			if err != nil {
				fmt.Println("error:", err)
				return 1
			}
			fmt.Println("locked")
			_, _ = io.Copy(io.Discard, os.Stdin)
			_ = l.Release()
			return 0
		},
	})
	goleak.VerifyTestMain(m)
}
