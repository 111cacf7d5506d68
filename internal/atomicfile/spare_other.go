//go:build !linux

package atomicfile

import (
	"os"
	"syscall"
	"time"
)

// listSpares returns some names in dir.
func listSpares(dir string) []string {
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(spareList)
	return names
}

func changeTime(st *syscall.Stat_t) time.Time { return time.Unix(st.Ctimespec.Unix()) }
