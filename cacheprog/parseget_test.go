package cacheprog

import (
	"encoding/json"
	"reflect"
	"testing"
)

// parseGetSeeds are lines parseGet must take (the go command's gets) and
// lines it must leave to json.Unmarshal.
var parseGetSeeds = []string{
	`{"ID":1,"Command":"get","ActionID":"n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="}`,
	`{"ID":9223372036854775807,"Command":"get","ActionID":"AAAA"}` + "\n",
	`{"ID":9223372036854775808,"Command":"get","ActionID":"AAAA"}`,
	`{"ID":01,"Command":"get","ActionID":"AAAA"}`,
	`{"ID":-1,"Command":"get","ActionID":"AAAA"}`,
	`{"ID":2,"Command":"get","ActionID":""}`,
	`{"ID":2,"Command":"get","ActionID":"AAA"}`,
	`{"ID":2,"Command":"get","ActionID":"A\/AA"}`,
	`{"ID":2,"Command":"get","ActionID":"AAAA","OutputID":"AAAA"}`,
	`{"ID":2,"Command":"put","ActionID":"AAAA"}`,
	`{"ID":2, "Command":"get","ActionID":"AAAA"}`,
	`{"ID":2,"Command":"get","ActionID":"AAAA"} x`,
	`{"id":2,"Command":"get","ActionID":"AAAA"}`,
	`{"ID":2,"Command":"get","ActionID":"AA==AA=="}`,
}

// TestParseGetIsUnmarshal: the go command's gets take the fast path, and
// every line it takes decodes as json.Unmarshal decodes it.
func TestParseGetIsUnmarshal(t *testing.T) {
	for i, line := range parseGetSeeds {
		_, ok := parseGet([]byte(line))
		if (i < 2) != ok {
			t.Errorf("%q: fast path %v, want %v", line, ok, i < 2)
		}
		sameAsUnmarshal(t, []byte(line))
	}
}

func FuzzParseGet(f *testing.F) {
	for _, s := range parseGetSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(sameAsUnmarshal)
}

func sameAsUnmarshal(t *testing.T, line []byte) {
	req, ok := parseGet(line)
	if !ok {
		return
	}
	var want Request
	if err := json.Unmarshal(line, &want); err != nil {
		t.Fatalf("%q: parseGet took it, json.Unmarshal fails: %v", line, err)
	}
	if !reflect.DeepEqual(*req, want) {
		t.Fatalf("%q: parseGet %+v, json.Unmarshal %+v", line, *req, want)
	}
}
