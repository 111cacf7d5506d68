package bytesize

import "testing"

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 900: "900 B", 1024: "1.0 KiB", 3 << 20: "3.0 MiB", 1536 << 30: "1.5 TiB"} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
	}
}
