package cacheprog

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// appendResponse appends r as the JSON line json.Marshal would give (the
// same fields, the same omissions), written by hand for the responses of
// every get (a hit or a miss): the warm build's one hot path, where
// reflection and time's MarshalJSON cost more than the rest of the
// encoding. Anything else, or a path that needs escapes, goes through
// json.Marshal.
func appendResponse(b []byte, r Response) ([]byte, error) {
	if r.Err != "" || r.KnownCommands != nil || !plainString(r.DiskPath) || (r.Time != nil && !plainTime(*r.Time)) {
		j, err := json.Marshal(r)
		return append(append(b, j...), '\n'), err
	}
	b = strconv.AppendInt(append(b, `{"ID":`...), r.ID, 10)
	if r.Miss {
		b = append(b, `,"Miss":true`...)
	}
	if len(r.OutputID) > 0 {
		b = base64.StdEncoding.AppendEncode(append(b, `,"OutputID":"`...), r.OutputID)
		b = append(b, '"')
	}
	if r.Size != 0 {
		b = strconv.AppendInt(append(b, `,"Size":`...), r.Size, 10)
	}
	if r.Time != nil {
		b = append(r.Time.AppendFormat(append(b, `,"Time":"`...), time.RFC3339Nano), '"')
	}
	if r.DiskPath != "" {
		b = append(append(append(b, `,"DiskPath":"`...), r.DiskPath...), '"')
	}
	return append(b, "}\n"...), nil
}

// plainString reports whether s is printable ASCII that JSON and
// json.Marshal write as is: no quote, backslash, control or HTML
// character, nothing past 0x7e.
func plainString(s string) bool {
	for i := range len(s) {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

// plainByte tells the bytes plainString accepts, one lookup a byte of
// every get's DiskPath.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = !strings.ContainsRune(`"\<>&`, rune(c))
	}
	return t
}()

// plainTime reports whether t is a time MarshalJSON writes as RFC 3339
// (it refuses years outside 0–9999).
func plainTime(t time.Time) bool { y := t.Year(); return y >= 0 && y <= 9999 }
