package metrics

import (
	"math"
	"strings"
	"testing"
)

func TestTextRoundTrip(t *testing.T) {
	r := NewRegistry()
	joins := r.Counter("x_joins_total", "Joins.\nSecond line with a \\ backslash.", "interface", "errno")
	up := r.Gauge("x_up", "Up.", "interface")
	lat := r.Histogram("x_write_duration_seconds", "Latency.", []float64{0.001, 0.01, 0.1}, "op")
	r.Counter("x_empty_total", "Nothing yet.")
	joins.Add(3, "eth0", "EHOSTUNREACH")
	joins.Inc(`we"ird\name`+"\n", "")
	up.Set(1, "eth0")
	up.Set(0, "eth1")
	for _, v := range []float64{0.0005, 0.001, 0.05, 2} {
		lat.Observe(v, "add")
	}

	text := r.Text()
	fams, err := Parse(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if len(fams) != 4 {
		t.Fatalf("got %d families, want 4:\n%s", len(fams), text)
	}
	if fams[0].Help != "Joins.\nSecond line with a \\ backslash." || fams[0].Kind != KindCounter {
		t.Errorf("first family: %+v", fams[0])
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, s := range f.Samples {
			got[seriesKey(s)] = s.Value
		}
	}
	want := map[string]float64{
		seriesKey(Sample{Name: "x_joins_total", Labels: map[string]string{"interface": "eth0", "errno": "EHOSTUNREACH"}}):   3,
		seriesKey(Sample{Name: "x_joins_total", Labels: map[string]string{"interface": `we"ird\name` + "\n", "errno": ""}}): 1,
		seriesKey(Sample{Name: "x_up", Labels: map[string]string{"interface": "eth1"}}):                                     0,
		seriesKey(Sample{Name: "x_write_duration_seconds_bucket", Labels: map[string]string{"op": "add", "le": "0.001"}}):   2,
		seriesKey(Sample{Name: "x_write_duration_seconds_bucket", Labels: map[string]string{"op": "add", "le": "0.1"}}):     3,
		seriesKey(Sample{Name: "x_write_duration_seconds_bucket", Labels: map[string]string{"op": "add", "le": "+Inf"}}):    4,
		seriesKey(Sample{Name: "x_write_duration_seconds_count", Labels: map[string]string{"op": "add"}}):                   4,
		seriesKey(Sample{Name: "x_write_duration_seconds_sum", Labels: map[string]string{"op": "add"}}):                     2.0515,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || math.Abs(g-v) > 1e-9 {
			t.Errorf("%q = %v (present %v), want %v\n%s", k, g, ok, v, text)
		}
	}
	if again := r.Text(); string(again) != string(text) {
		t.Errorf("rendering twice differs:\n%s\n%s", text, again)
	}
	up.Reset()
	if strings.Contains(string(r.Text()), "x_up{") {
		t.Error("Reset left series behind")
	}
}

func TestParseRejects(t *testing.T) {
	head := "# HELP a_total A.\n# TYPE a_total counter\n"
	hist := "# TYPE h histogram\n"
	for name, text := range map[string]string{
		"sample before TYPE":        "a_total 1\n",
		"HELP without TYPE":         "# HELP a_total A.\na_total 1\n",
		"counter without _total":    "# TYPE a counter\na 1\n",
		"negative counter":          head + "a_total -1\n",
		"repeated series":           head + "a_total{x=\"1\"} 1\na_total{x=\"1\"} 2\n",
		"family declared twice":     head + "a_total 1\n# TYPE a_total counter\n",
		"bad label name":            head + "a_total{1x=\"1\"} 1\n",
		"unterminated label":        head + "a_total{x=\"1} 1\n",
		"trailing comma":            head + "a_total{x=\"1\",} 1\n",
		"no separator":              head + "a_total{x=\"1\"y=\"2\"} 1\n",
		"bad value":                 head + "a_total 0x10\n",
		"two spaces":                head + "a_total  1\n",
		"other family's sample":     head + "b_total 1\n",
		"unknown type":              "# TYPE a summary\n",
		"histogram without +Inf":    hist + "h_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
		"histogram not cumulative":  hist + "h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
		"histogram count disagrees": hist + "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
		"histogram le out of order": hist + "h_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
	} {
		if _, err := Parse([]byte(text)); err == nil {
			t.Errorf("%s: accepted:\n%s", name, text)
		}
	}
}

func TestRegistrationChecks(t *testing.T) {
	for name, f := range map[string]func(r *Registry){
		"counter without _total": func(r *Registry) { r.Counter("a", "") },
		"bad name":               func(r *Registry) { r.Gauge("a-b", "") },
		"le label":               func(r *Registry) { r.Gauge("a", "", "le") },
		"twice":                  func(r *Registry) { r.Gauge("a", ""); r.Gauge("a", "") },
		"unsorted buckets":       func(r *Registry) { r.Histogram("h", "", []float64{2, 1}) },
		"wrong label count":      func(r *Registry) { r.Gauge("a", "", "x").Set(1) },
		"counter decreases":      func(r *Registry) { r.Counter("a_total", "").Add(-1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f(NewRegistry())
		}()
	}
}
