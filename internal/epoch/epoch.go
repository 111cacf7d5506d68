// Package epoch is the build epoch: a binary's modification time, which a
// daemon compares with its clients' to notice that it is out of date.
package epoch

import "os"

// BinaryEpoch is the build epoch of the binary at exe: its modification
// time in nanoseconds (whole seconds miss installers that keep or normalise
// mtimes), or 0 if it cannot be read, which never triggers a restart.
func Of(exe string) int64 {
	fi, err := os.Stat(exe)
	if err != nil {
		return 0
	}
	return fi.ModTime().UnixNano()
}

// Epoch relations as status and responses report them.
const (
	Same        = "same"
	ClientNewer = "client_newer"
	DaemonNewer = "daemon_newer"
	Unknown     = "unknown"
)

// Relation compares a client's build epoch with a daemon's. Zero means
// unknown on either side and never triggers a restart.
func Relation(client, daemon int64) string {
	switch {
	case client == 0 || daemon == 0:
		return Unknown
	case client > daemon:
		return ClientNewer
	case client < daemon:
		return DaemonNewer
	}
	return Same
}
