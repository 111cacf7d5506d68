package supervisor

import "os"

// BinaryEpoch is the build epoch of the binary at exe: its modification
// time in nanoseconds (whole seconds miss installers that keep or normalise
// mtimes), or 0 if it cannot be read, which never triggers a restart.
func BinaryEpoch(exe string) int64 {
	fi, err := os.Stat(exe)
	if err != nil {
		return 0
	}
	return fi.ModTime().UnixNano()
}
