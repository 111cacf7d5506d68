package cacheprog_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"testing"

	"github.com/kunobi-ninja/kache/cacheprog"
)

// BenchmarkGetRoundTrip: local hits one at a time through the real
// `kache cacheprog` over os/exec's pipes, as the go command waits on
// each of its gets: the request written, the response line read back.
// What a warm build pays per action beyond its own work; cpu-µs/get is
// the cache program's own CPU (its start-up spread over b.N). On a
// shared machine both swing with the load: alternate the binaries
// compared, or count instructions under valgrind --tool=callgrind (with
// GODEBUG=asyncpreemptoff=1) at two values of b.N.
func BenchmarkGetRoundTrip(b *testing.B) {
	const entries = 256
	r := &rig{root: b.TempDir()}
	r.cacheDir = r.root + "/kache"
	var fill script
	for i := range entries {
		fill.put(int64(i+1), fmt.Sprint("action", i), bytes.Repeat([]byte("x"), 100+i))
	}
	fill.req(cacheprog.Request{ID: 999, Command: "close"})
	cmd := exec.Command(kacheBin, "cacheprog")
	cmd.Env, cmd.Stdin = r.goEnv(false), &fill
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("fill: %v\n%s", err, out)
	}
	var gets [entries][]byte
	for i := range gets {
		var s script
		s.req(cacheprog.Request{ID: int64(i + 1), Command: "get", ActionID: actionID(fmt.Sprint("action", i))})
		gets[i] = s.Bytes()
	}
	cmd = exec.Command(kacheBin, "cacheprog")
	cmd.Env = r.goEnv(false)
	in, err := cmd.StdinPipe()
	must(b, err)
	outp, err := cmd.StdoutPipe()
	must(b, err)
	must(b, cmd.Start())
	out := bufio.NewReader(outp)
	if _, err := out.ReadBytes('\n'); err != nil { // the capabilities
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := in.Write(gets[i%entries]); err != nil {
			b.Fatal(err)
		}
		line, err := out.ReadBytes('\n')
		if err != nil || bytes.Contains(line, []byte(`"Miss"`)) {
			b.Fatalf("response %q: %v", line, err)
		}
	}
	b.StopTimer()
	in.Write([]byte(`{"ID":1000,"Command":"close"}` + "\n"))
	in.Close()
	io.Copy(io.Discard, out)
	must(b, cmd.Wait())
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/get")
}
