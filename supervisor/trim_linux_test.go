//go:build linux

package supervisor

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// rssFile is this process's file-backed resident memory, in kB.
func rssFile(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// Unmapping the binary's read-only pages lowers the resident set, and the
// process runs on unharmed (the pages fault back in as they are used).
func TestUnmapBinaryLowersRSS(t *testing.T) {
	before := rssFile(t)
	if err := unmapBinary(); err != nil {
		t.Fatal(err)
	}
	after := rssFile(t)
	if after >= before {
		t.Errorf("RssFile %d kB after unmapBinary, %d kB before; want less", after, before)
	}
	if got := strings.Repeat("ok", 2); got != "okok" { // code and data still work
		t.Fatal("the process misbehaves after unmapBinary")
	}
}

func TestReadOnlyMapping(t *testing.T) {
	exe := "/usr/bin/kache-daemon"
	cases := map[string]bool{
		"00400000-00962000 r-xp 00000000 fe:00 99 /usr/bin/kache-daemon": true,
		"00962000-00f16000 r--p 00562000 fe:00 99 /usr/bin/kache-daemon": true,
		"00f16000-00f7a000 rw-p 00b16000 fe:00 99 /usr/bin/kache-daemon": false, // data: never
		"7f00-7f10 r-xp 00000000 fe:00 12 /usr/lib/libc.so.6":            false,
		"7f00-7f10 rw-p 00000000 00:00 0":                                false,
		"garbage":                                                        false,
	}
	for line, want := range cases {
		if _, _, ok := readOnlyMapping(line, exe); ok != want {
			t.Errorf("readOnlyMapping(%q) = %v, want %v", line, ok, want)
		}
	}
}
