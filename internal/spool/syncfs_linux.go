//go:build linux

package spool

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncfsAbove is the batch size past which Sync flushes the whole file
// system once rather than each intent.
const syncfsAbove = 64

// syncFS flushes the file system holding dir (syncfs(2)).
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
