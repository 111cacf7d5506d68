package cacheprog

import (
	"encoding/json"
	"testing"
	"time"
)

// TestAppendResponseIsJSONMarshal: the hand-written encoding of a
// response is byte for byte json.Marshal's, for hits, misses and the
// cases it hands to json.Marshal (escapes, errors, odd times), failing
// where json.Marshal fails.
func TestAppendResponseIsJSONMarshal(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 30, 0, 123456789, time.FixedZone("x", 3600))
	whole := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	far := time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range []Response{
		{},
		{ID: 7, Miss: true},
		{ID: -3, Miss: true},
		{ID: 12, OutputID: []byte{0, 1, 2, 250, 251, 252, 253}, Size: 1 << 40, Time: &now, DiskPath: "/home/u/.cache/kache/store/go-ab/cd"},
		{ID: 13, OutputID: []byte("x"), Time: &whole, DiskPath: "/a/b"},
		{ID: 14, DiskPath: `/odd "path"\with<html>&é`},
		{ID: 15, Time: &far},
		{ID: 16, Err: "kache cacheprog: unknown command \"frob\""},
		{KnownCommands: []string{"get", "put", "close"}},
		{ID: 17, DiskPath: "/tab\there"},
	} {
		want, werr := json.Marshal(r)
		got, err := appendResponse(nil, r)
		if werr != nil || err != nil {
			if werr == nil || err == nil {
				t.Errorf("%+v: error %v, json.Marshal's %v", r, err, werr)
			}
			continue
		}
		if string(got) != string(want)+"\n" {
			t.Errorf("%+v:\n got %s (%v)\nwant %s", r, got, err, want)
		}
	}
}
