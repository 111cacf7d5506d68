//go:build darwin

package spawn

// fdDir lists this process's open descriptors.
const fdDir = "/dev/fd"
