package service

import (
	"strings"
	"testing"
	"time"

	"howett.net/plist"
)

// TestStopTimeoutFollowsTheDrain: a longer drain_timeout_secs must give the
// service manager a longer stop timeout, or it SIGKILLs a draining daemon.
func TestStopTimeoutFollowsTheDrain(t *testing.T) {
	o := Options{Exe: "/usr/bin/kache", Socket: "/tmp/k.sock", Home: "/home/u", UID: 1000, StopTimeout: 75 * time.Second}
	unit, _ := SystemdUnits(o)
	if !strings.Contains(unit, "\nTimeoutStopSec=75s\n") {
		t.Fatalf("kache.service does not wait 75 s:\n%s", unit)
	}
	data, err := LaunchdPlist(o)
	if err != nil {
		t.Fatal(err)
	}
	var job map[string]any
	if _, err := plist.Unmarshal(data, &job); err != nil {
		t.Fatal(err)
	}
	if got := job["ExitTimeOut"]; got != uint64(75) {
		t.Fatalf("ExitTimeOut = %v (%T), want 75", got, got)
	}
	o.StopTimeout = 0
	if unit, _ := SystemdUnits(o); !strings.Contains(unit, "\nTimeoutStopSec=45s\n") {
		t.Fatalf("default stop timeout is not 45 s:\n%s", unit)
	}
}
