package service

import (
	"reflect"
	"strings"
	"testing"

	"howett.net/plist"
)

func TestLaunchdPlistGolden(t *testing.T) {
	data, err := LaunchdPlist(goldenOptions("darwin"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "kache.plist", data)
}

// TestLaunchdPlistParses decodes the plist generically, as launchd would,
// and checks each key's type and value.
func TestLaunchdPlistParses(t *testing.T) {
	o := goldenOptions("darwin")
	o.Env["KACHE_CACHE_DIR"] = `/Users/dev/odd <dir> & "x"`
	data, err := LaunchdPlist(o)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	format, err := plist.Unmarshal(data, &m)
	if err != nil {
		t.Fatal(err)
	}
	if format != plist.XMLFormat || !strings.HasPrefix(string(data), "<?xml") {
		t.Errorf("format %s, want XML", plist.FormatNames[format])
	}
	want := map[string]any{
		"Label":            Label,
		"ProgramArguments": []any{o.Exe, "daemon", "run"},
		"EnvironmentVariables": map[string]any{"KACHE_CONFIG": "/Users/dev/kache.toml",
			"KACHE_CACHE_DIR": `/Users/dev/odd <dir> & "x"`},
		"RunAtLoad":         true,
		"KeepAlive":         map[string]any{"SuccessfulExit": false},
		"ExitTimeOut":       uint64(45),
		"ThrottleInterval":  uint64(5),
		"ProcessType":       "Background",
		"StandardErrorPath": "/Users/dev/Library/Caches/kache/daemon.log",
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("plist decodes to\n%#v\nwant\n%#v", m, want)
	}
}

func TestLaunchdPlistWithoutEnv(t *testing.T) {
	o := goldenOptions("darwin")
	o.Env = nil
	data, err := LaunchdPlist(o)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if _, err := plist.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["EnvironmentVariables"]; ok {
		t.Error("empty EnvironmentVariables written")
	}
}

// Values that XML must escape survive a round trip through a real parser.
func TestLaunchdPlistEscapes(t *testing.T) {
	o := goldenOptions("darwin")
	o.Exe = "/Users/d&v/<kache>/\"bin\"/kache's"
	o.Env["KACHE_CONFIG"] = "/a&b/c<d>.toml"
	data, err := LaunchdPlist(o)
	if err != nil {
		t.Fatal(err)
	}
	var job launchdJob
	if _, err := plist.Unmarshal(data, &job); err != nil {
		t.Fatalf("parse: %v\n%s", err, data)
	}
	if job.ProgramArguments[0] != o.Exe || job.EnvironmentVariables["KACHE_CONFIG"] != o.Env["KACHE_CONFIG"] {
		t.Errorf("decoded %+v; want the exe and env back unchanged", job)
	}
}
