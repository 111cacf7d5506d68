package atomicfile

import (
	"bytes"
	"encoding/binary"
	"syscall"
	"time"
)

// listSpares returns up to a buffer's worth of names in dir with one small
// getdents(2): os.File.Readdirnames asks the kernel for 8 KiB of entries
// whatever it is asked for, which costs 40 µs against 11 µs here in a
// directory of thousands of spares (docs/benchmarks.md).
func listSpares(dir string) []string {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer syscall.Close(fd)
	var buf [1024]byte
	n, err := syscall.Getdents(fd, buf[:])
	if err != nil {
		return nil
	}
	return direntNames(buf[:n])
}

// direntNames parses linux_dirent64 records (ino u64, off s64, reclen
// u16, type u8, name NUL-terminated), skipping "." and "..".
func direntNames(b []byte) []string {
	var names []string
	for len(b) >= 19 {
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen < 19 || reclen > len(b) {
			break
		}
		name := b[19:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if s := string(name); s != "." && s != ".." && s != "" {
			names = append(names, s)
		}
		b = b[reclen:]
	}
	return names
}

func changeTime(st *syscall.Stat_t) time.Time { return time.Unix(st.Ctim.Unix()) }
