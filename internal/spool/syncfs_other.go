//go:build !linux

package spool

import "errors"

// syncfsAbove: no syncfs here, so Sync always fsyncs each intent.
const syncfsAbove = int(^uint(0) >> 1)

func syncFS(string) error { return errors.New("syncfs: not on this OS") }
