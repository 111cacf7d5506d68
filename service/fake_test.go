package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeScript stands in for systemctl, launchctl and loginctl: it appends
// its name and arguments to $FAKE_LOG, then looks its command line up in
// $FAKE_RULES, lines of "glob|exit code|stderr message"; the first match
// decides, and no match means success.
const fakeScript = `#!/bin/sh
name=$(basename "$0")
line="$name $*"
printf '%s\n' "$line" >> "$FAKE_LOG"
if [ -f "$FAKE_RULES" ]; then
	while IFS='|' read -r pat code msg; do
		case "$line" in
		$pat) printf '%s\n' "$msg" >&2; exit "$code" ;;
		esac
	done < "$FAKE_RULES"
fi
exit 0
`

// fakes is the recording stand-in for the service-manager commands.
type fakes struct {
	t     *testing.T
	log   string
	rules string
}

// installFakes puts the stand-ins first on PATH for the rest of the test.
func installFakes(t *testing.T) *fakes {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"systemctl", "launchctl", "loginctl"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(fakeScript), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := &fakes{t: t, log: filepath.Join(dir, "calls.log"), rules: filepath.Join(dir, "rules")}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_LOG", f.log)
	t.Setenv("FAKE_RULES", f.rules)
	return f
}

// rule makes commands matching glob fail with code and msg (code 0: succeed
// and print msg).
func (f *fakes) rule(glob, code, msg string) {
	f.t.Helper()
	file, err := os.OpenFile(f.rules, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		f.t.Fatal(err)
	}
	defer file.Close()
	if _, err := file.WriteString(glob + "|" + code + "|" + msg + "\n"); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakes) clearRules() { os.Remove(f.rules) }

// calls returns the commands run since the last call, and forgets them.
func (f *fakes) calls() []string {
	f.t.Helper()
	data, err := os.ReadFile(f.log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	os.Remove(f.log)
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// expect asserts the exact command sequence since the last check.
func (f *fakes) expect(want ...string) {
	f.t.Helper()
	got := f.calls()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		f.t.Fatalf("commands run:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
