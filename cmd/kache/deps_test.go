package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The client starts on every compile: it must link none of what only the
// daemon needs, whose package initialisation alone cost about 1.5 ms a
// start when kache was one binary.
func TestClientLinksNothingHeavy(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "urfave_cli_no_docs netgo osusergo", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	heavy := []string{"github.com/aws/", "github.com/klauspost/compress", "github.com/fsnotify/fsnotify",
		"gopkg.in/natefinch/lumberjack", "howett.net/plist", "encoding/xml",
		"github.com/kunobi-ninja/kache/supervisor", "github.com/kunobi-ninja/kache/uploader",
		"github.com/prometheus/", "google.golang.org/protobuf", "github.com/charmbracelet/",
		// crypto/sha256 alone brings the FIPS module's package inits
		// (about 0.3 ms a start here); no client call needs a secure hash.
		"crypto/"}
	for _, dep := range strings.Fields(string(out)) {
		for _, h := range heavy {
			if strings.HasPrefix(dep, h) {
				t.Errorf("kache links %s; keep it in kache-daemon", dep)
			}
		}
	}
}
