//go:build !linux

package supervisor

// unmapBinary is Linux's; elsewhere the heap is still given back.
func unmapBinary() error { return nil }
