package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadFile runs Load on KACHE_CONFIG=path, failing the test if it does not
// return within a deadline (a FIFO would block it forever).
func loadFile(t *testing.T, path string) (Config, error) {
	t.Helper()
	type result struct {
		c   Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := Load(env(map[string]string{"KACHE_CONFIG": path}))
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		return r.c, r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("Load(%s) did not return in 10s", path)
		return Config{}, nil
	}
}

func wantInvalid(t *testing.T, err error, parts ...string) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want an error wrapping ErrInvalid", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("message %q should contain %q", err, p)
		}
	}
}

func TestConfigMustBeARegularFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "config.toml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, kind := range map[string]string{"/dev/zero": "character device", fifo: "named pipe", t.TempDir(): "directory"} {
		_, err := loadFile(t, path)
		wantInvalid(t, err, path, kind, "KACHE_CONFIG")
	}
}

// TestFIFOSwappedInAfterTheStatIsRefused covers the second check, on the
// opened file: it opens a FIFO the way readFile does and hands it over.
func TestFIFOSwappedInAfterTheStatIsRefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "config.toml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = readRegular(fifo, f)
	wantInvalid(t, err, fifo, "named pipe")
}

func TestSymlinkedConfigIsRead(t *testing.T) {
	real := writeConfig(t, "[s3]\nbucket = \"linked\"\n")
	link := filepath.Join(t.TempDir(), "config.toml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	c, err := loadFile(t, link)
	if err != nil || c.S3.Bucket != "linked" {
		t.Fatalf("a symlinked config: %+v, %v", c.S3, err)
	}
}

func TestConfigSizeCap(t *testing.T) {
	line := "# " + strings.Repeat("c", 97) + "\n" // 100 bytes of comment
	full := strings.Repeat(line, MaxFileSize/100) + strings.Repeat("#", MaxFileSize%100)
	if _, err := loadFile(t, writeConfig(t, full)); err != nil {
		t.Fatalf("a config of exactly %d bytes: %v", len(full), err)
	}
	path := writeConfig(t, full+"\n")
	_, err := loadFile(t, path)
	wantInvalid(t, err, path, "over 1048576 bytes")
}

func TestConfigMustBeUTF8(t *testing.T) {
	for _, tc := range []struct{ body, line string }{
		{"\xff\xfe\n", "line 1"},                            // a UTF-16 byte order mark, which TOML decoding accepts as empty
		{"# ok\n[s3]\nbucket = \"a\xe9b\"\n", "line 3"},     // Latin-1 é
		{"[s3]\nregion = \"eu\"\n\xc0\xaf = 1\n", "line 3"}, // overlong encoding
	} {
		path := writeConfig(t, tc.body)
		_, err := loadFile(t, path)
		wantInvalid(t, err, path, tc.line, "UTF-8")
	}
}

func TestDeepNestingIsRefusedBeforeDecoding(t *testing.T) {
	for _, body := range []string{
		"a = " + strings.Repeat("{b=", 300000),
		"a = " + strings.Repeat("[", 500000),
		"[s3]\nprefix = '" + strings.Repeat("[", 100) + "'\nbucket = \"x\"\n" + "a = " + strings.Repeat("[", 40),
	} {
		path := writeConfig(t, body)
		start := time.Now()
		_, err := loadFile(t, path)
		wantInvalid(t, err, path, "nested over 32")
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("refusing %d bytes of nesting took %s", len(body), d)
		}
	}
}

func TestBracketsInStringsAndCommentsAreNotNesting(t *testing.T) {
	deep := strings.Repeat("[{", 50)
	body := "# " + deep + "\n[s3]\nprefix = \"" + deep + "\\\"" + deep + "\"\nregion = '" + deep + "'\nbucket = \"\"\"\n" + deep + "\"\"\"\nendpoint = '''" + deep + "'''\n"
	c, err := loadFile(t, writeConfig(t, body))
	if err != nil || c.S3.Region != deep {
		t.Fatalf("brackets inside strings and comments: %+v, %v", c.S3, err)
	}
}
