//go:build !linux

package uploader

// yieldToBuilds is a no-op where threads have no priority of their own.
func yieldToBuilds() {}
