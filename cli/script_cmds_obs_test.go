package cli_test

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kunobi-ninja/kache/internal/totals"
	"github.com/rogpeppe/go-internal/testscript"
)

// Script commands for the observability scenarios (history, totals, flush).
func init() {
	for name, fn := range map[string]func(*testscript.TestScript, bool, []string){
		"waittotal": cmdWaitTotal,
		"metrics":   cmdMetrics,
	} {
		if _, dup := scriptCmds[name]; dup {
			panic("script command " + name + " defined twice")
		}
		scriptCmds[name] = fn
	}
}

// cmdWaitTotal waits until the lasting totals file counts N completed
// uploads: what the daemon has flushed to disk, not what it holds.
//
//	waittotal N
func cmdWaitTotal(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waittotal N")
	}
	n, err := strconv.ParseInt(args[0], 10, 64)
	ts.Check(err)
	path := totals.File(paths(ts).CacheDir)
	deadline := time.Now().Add(15 * time.Second)
	for {
		t, err := totals.Load(path)
		if err == nil && t.Counters.UploadsCompleted == n {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waittotal: %s counts %d completed uploads, not %d, after 15s", path, t.Counters.UploadsCompleted, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cmdMetrics parses FILE with the Prometheus project's own parser for
// FORMAT (openmetrics or prometheus) and checks sample values:
//
//	metrics FORMAT FILE [NAME[{LABEL=VALUE}] WANT]...
//
// For a histogram NAME, the value checked is its sample count.
func cmdMetrics(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args)%2 != 0 {
		ts.Fatalf("usage: metrics FORMAT FILE [NAME{LABEL=VALUE} WANT]...")
	}
	families := parseMetrics(ts, args[0], ts.MkAbs(args[1]))
	for i := 2; i < len(args); i += 2 {
		got, ok := sampleValue(families, args[i])
		if !ok {
			ts.Fatalf("metrics: no sample %s", args[i])
		}
		if strconv.FormatFloat(got, 'f', -1, 64) != args[i+1] {
			ts.Fatalf("metrics: %s = %v, want %s", args[i], got, args[i+1])
		}
	}
}

func parseMetrics(ts *testscript.TestScript, format, path string) map[string]*dto.MetricFamily {
	f, err := os.Open(path)
	ts.Check(err)
	defer f.Close()
	if format == "prometheus" {
		p := expfmt.NewTextParser(model.LegacyValidation)
		families, err := p.TextToMetricFamilies(f)
		ts.Check(err)
		return families
	}
	dec := expfmt.NewDecoder(f, expfmt.FmtOpenMetrics_1_0_0)
	families := map[string]*dto.MetricFamily{}
	for {
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if errors.Is(err, io.EOF) {
			return families
		}
		ts.Check(err)
		families[mf.GetName()] = &mf
	}
}

// sampleValue finds NAME or NAME{LABEL=VALUE} (one label at most).
func sampleValue(families map[string]*dto.MetricFamily, spec string) (float64, bool) {
	name, label, _ := strings.Cut(strings.TrimSuffix(spec, "}"), "{")
	lname, lvalue, _ := strings.Cut(label, "=")
	mf, ok := families[name]
	if !ok {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if label != "" && !hasLabel(m, lname, lvalue) {
			continue
		}
		switch {
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}
