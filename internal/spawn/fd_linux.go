//go:build linux

package spawn

// fdDir lists this process's open descriptors.
const fdDir = "/proc/self/fd"
