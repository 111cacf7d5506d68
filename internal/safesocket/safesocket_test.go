package safesocket

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrivateDir(t *testing.T) {
	base := t.TempDir()
	fresh := filepath.Join(base, "a", "b")
	if err := PrivateDir(fresh); err != nil {
		t.Fatalf("PrivateDir(new) = %v", err)
	}
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o700 {
		t.Errorf("created %v, want 0700", fi.Mode().Perm())
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := PrivateDir(open); err == nil || !strings.Contains(err.Error(), "chmod go-w") {
		t.Errorf("PrivateDir(0777) = %v; want a refusal naming chmod", err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(fresh, link); err != nil {
		t.Fatal(err)
	}
	if err := PrivateDir(link); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("PrivateDir(symlink) = %v; want a refusal", err)
	}
	if os.Getuid() != 0 {
		t.Skip("a directory of another user needs root to create (chown); run as root to cover it")
	}
	theirs := filepath.Join(base, "theirs")
	if err := os.Mkdir(theirs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := PrivateDir(theirs); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("PrivateDir(theirs) = %v; want a refusal naming the owner", err)
	}
}

// TestPrepareDirForeignSymlink (issue 16, defect 8): a symlink another user
// made where the socket directory goes is refused, even to a sticky
// world-writable directory that would itself be accepted; our own link is
// followed.
func TestPrepareDirForeignSymlink(t *testing.T) {
	base := t.TempDir()
	target := filepath.Join(base, "shm")
	if err := os.Mkdir(target, 0o1777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(target, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "kache-uid")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := PrepareDir(link); err != nil {
		t.Fatalf("our own link to a sticky dir: %v", err)
	}
	if os.Getuid() != 0 {
		t.Skip("making a link owned by another user needs root (lchown)")
	}
	if err := os.Lchown(link, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	err := PrepareDir(link)
	if err == nil || !strings.Contains(err.Error(), "symlink owned by uid 4242") {
		t.Fatalf("another user's link: %v, want a refusal", err)
	}
}
