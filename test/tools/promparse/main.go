// Command promparse parses a Prometheus text exposition (format 0.0.4) read on stdin with the
// parser Prometheus itself uses, github.com/prometheus/common/expfmt's TextParser, so tests can
// check the server's /metrics against the real thing (test/helpers/expfmt.ts builds and runs it).
//
// It exits 1, with the parser's error on stderr, when the parser refuses the text. Otherwise it
// prints a JSON array of families, sorted by name, shaped like test/helpers/prometheus-text.ts's
// Family: {name, type, help, samples: [{name, labels, value, timestamp?}]}. Histograms and
// summaries are expanded back into the samples they were exposed as (`<name>_bucket{le}` with the
// cumulative counts, +Inf included, `<name>{quantile}`, `<name>_sum`, `<name>_count`), each only
// when the text had it. The parser keeps `le` and `quantile` as numbers; they are printed as
// JavaScript's String(number) prints them, as prom-client writes them. Values that JSON cannot
// hold are the strings "NaN", "+Inf" and "-Inf".
//
// Names are checked with the legacy scheme ([a-zA-Z_:][a-zA-Z0-9_:]*), what format 0.0.4
// allows. Like Prometheus, the parser drops families that have no sample and does not refuse a
// series exposed twice: the hand-written parser is the one that checks that.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

type family struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Help    *string  `json:"help"`
	Samples []sample `json:"samples"`
}

type sample struct {
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels"`
	Value     number            `json:"value"`
	Timestamp *int64            `json:"timestamp,omitempty"`
}

// number is a float64 whose NaN and infinities are written as strings.
type number float64

func (n number) MarshalJSON() ([]byte, error) {
	v := float64(n)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return json.Marshal(v)
}

func main() {
	parser := expfmt.NewTextParser(model.LegacyValidation)
	parsed, err := parser.TextToMetricFamilies(bufio.NewReader(os.Stdin))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	names := make([]string, 0, len(parsed))
	for name := range parsed {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]family, 0, len(names))
	for _, name := range names {
		f, err := convert(parsed[name])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		out = append(out, f)
	}
	w := bufio.NewWriter(os.Stdout)
	if err := json.NewEncoder(w).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}

func convert(mf *dto.MetricFamily) (family, error) {
	name := mf.GetName()
	f := family{Name: name, Help: mf.Help, Samples: []sample{}}
	for _, m := range mf.GetMetric() {
		labels := func(extra ...string) map[string]string {
			l := make(map[string]string, len(m.GetLabel())+len(extra)/2)
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			for i := 0; i+1 < len(extra); i += 2 {
				l[extra[i]] = extra[i+1]
			}
			return l
		}
		add := func(n string, l map[string]string, v float64) {
			f.Samples = append(f.Samples, sample{Name: n, Labels: l, Value: number(v), Timestamp: m.TimestampMs})
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			f.Type = "counter"
			add(name, labels(), m.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			f.Type = "gauge"
			add(name, labels(), m.GetGauge().GetValue())
		case dto.MetricType_UNTYPED:
			f.Type = "untyped"
			add(name, labels(), m.GetUntyped().GetValue())
		case dto.MetricType_SUMMARY:
			f.Type = "summary"
			s := m.GetSummary()
			for _, q := range s.GetQuantile() {
				add(name, labels(model.QuantileLabel, jsNumber(q.GetQuantile())), q.GetValue())
			}
			if s.SampleSum != nil {
				add(name+"_sum", labels(), s.GetSampleSum())
			}
			if s.SampleCount != nil {
				add(name+"_count", labels(), float64(s.GetSampleCount()))
			}
		case dto.MetricType_HISTOGRAM:
			f.Type = "histogram"
			h := m.GetHistogram()
			for _, b := range h.GetBucket() {
				add(name+"_bucket", labels(model.BucketLabel, jsNumber(b.GetUpperBound())),
					countOf(b.CumulativeCount, b.CumulativeCountFloat))
			}
			if h.SampleSum != nil {
				add(name+"_sum", labels(), h.GetSampleSum())
			}
			if h.SampleCount != nil || h.SampleCountFloat != nil {
				add(name+"_count", labels(), countOf(h.SampleCount, h.SampleCountFloat))
			}
		default:
			return f, fmt.Errorf("family %s: type %s has no counterpart in the text format", name, mf.GetType())
		}
	}
	return f, nil
}

// countOf is a count the parser kept as an integer, or as a float when the text had a fraction.
func countOf(integer *uint64, float *float64) float64 {
	if float != nil {
		return *float
	}
	if integer != nil {
		return float64(*integer)
	}
	return 0
}

// jsNumber prints v as JavaScript's String(v) does: fixed notation from 1e-7 up to 1e21,
// exponent notation (1e-8, 1.5e+21) outside, +Inf/-Inf/NaN as Prometheus writes them.
func jsNumber(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case v == 0:
		return "0"
	}
	if a := math.Abs(v); a >= 1e-7 && a < 1e21 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	s := strconv.FormatFloat(v, 'e', -1, 64) // 1e-08, 1.5e+21
	mantissa, exponent, _ := strings.Cut(s, "e")
	sign, digits := exponent[:1], strings.TrimLeft(exponent[1:], "0")
	return mantissa + "e" + sign + digits
}
