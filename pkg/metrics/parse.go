package metrics

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Sample is one line of an exposition.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Family is a parsed metric family.
type Family struct {
	Name, Help string
	Kind       Kind
	Samples    []Sample
}

// Parse reads a text exposition strictly, as this package writes it and as
// Prometheus reads it: every family is declared with TYPE (and
// perhaps HELP) before its samples and only once, names and labels are valid, counters end in
// _total and are not negative, no series appears twice, and every
// histogram has cumulative buckets ending at +Inf that agree with its
// _count. `mptcpgd top` reads the daemon's metrics with it; tests use it to
// check the format.
func Parse(text []byte) ([]Family, error) {
	var fams []Family
	byName := map[string]int{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		fail := func(format string, args ...any) error {
			return fmt.Errorf("line %d: %s: %q", n, fmt.Sprintf(format, args...), line)
		}
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "# HELP "), strings.HasPrefix(line, "# TYPE "):
			fields := strings.SplitN(line[len("# HELP "):], " ", 2)
			name := fields[0]
			if !validName(name) || len(fields) < 2 {
				return nil, fail("bad %s line", line[2:6])
			}
			i, ok := byName[name]
			if !ok {
				i = len(fams)
				byName[name] = i
				fams = append(fams, Family{Name: name})
			} else if i != len(fams)-1 || len(fams[i].Samples) > 0 {
				return nil, fail("family %s declared again", name)
			}
			f := &fams[i]
			if strings.HasPrefix(line, "# HELP ") {
				if f.Help != "" {
					return nil, fail("second HELP")
				}
				f.Help = unescape(fields[1], false)
				continue
			}
			if f.Kind != 0 {
				return nil, fail("second TYPE")
			}
			switch fields[1] {
			case "counter":
				f.Kind = KindCounter
				if !strings.HasSuffix(name, "_total") {
					return nil, fail("counter does not end in _total")
				}
			case "gauge":
				f.Kind = KindGauge
			case "histogram":
				f.Kind = KindHistogram
			default:
				return nil, fail("unknown type %s", fields[1])
			}
		case strings.HasPrefix(line, "#"):
			continue
		default:
			s, err := parseSample(line)
			if err != nil {
				return nil, fail("%v", err)
			}
			if len(fams) == 0 || fams[len(fams)-1].Kind == 0 || !belongs(fams[len(fams)-1], s.Name) {
				return nil, fail("sample outside its family's TYPE")
			}
			f := &fams[len(fams)-1]
			key := seriesKey(s)
			if seen[key] {
				return nil, fail("series repeated")
			}
			seen[key] = true
			if f.Kind == KindCounter && !(s.Value >= 0) {
				return nil, fail("counter is negative or NaN")
			}
			f.Samples = append(f.Samples, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, f := range fams {
		if f.Kind == KindHistogram {
			if err := checkHistogram(f); err != nil {
				return nil, err
			}
		}
	}
	return fams, nil
}

func belongs(f Family, name string) bool {
	if f.Kind != KindHistogram {
		return name == f.Name
	}
	rest, ok := strings.CutPrefix(name, f.Name)
	return ok && (rest == "_bucket" || rest == "_sum" || rest == "_count")
}

func seriesKey(s Sample) string {
	var b strings.Builder
	b.WriteString(s.Name)
	for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
		b.WriteString("\xff" + k + "=" + s.Labels[k])
	}
	return b.String()
}

// checkHistogram checks each series of a histogram family: buckets in
// ascending order of le, cumulative, the last +Inf and equal to _count.
func checkHistogram(f Family) error {
	type acc struct {
		le, cum  float64
		buckets  int
		count    float64
		hasCount bool
	}
	series := map[string]*acc{}
	var order []string
	for _, s := range f.Samples {
		base := Sample{Labels: maps.Clone(s.Labels)}
		delete(base.Labels, "le")
		key := seriesKey(base)
		a, ok := series[key]
		if !ok {
			a = &acc{le: math.Inf(-1)}
			series[key] = a
			order = append(order, key)
		}
		switch s.Name {
		case f.Name + "_bucket":
			le, err := parseValue(s.Labels["le"])
			if _, has := s.Labels["le"]; !has || err != nil {
				return fmt.Errorf("%s: bucket without a valid le", f.Name)
			}
			if le <= a.le || s.Value < a.cum || a.hasCount {
				return fmt.Errorf("%s: buckets out of order or not cumulative at le=%v", f.Name, le)
			}
			a.le, a.cum = le, s.Value
			a.buckets++
		case f.Name + "_count":
			a.count, a.hasCount = s.Value, true
		}
	}
	for _, k := range order {
		a := series[k]
		if a.buckets == 0 || !math.IsInf(a.le, 1) || !a.hasCount || a.count != a.cum {
			return fmt.Errorf("%s: a series lacks its +Inf bucket or its _count, or they differ", f.Name)
		}
	}
	return nil
}

// parseSample reads `name{l="v",...} value [timestamp]`.
func parseSample(line string) (Sample, error) {
	end := strings.IndexAny(line, "{ ")
	if end < 0 {
		return Sample{}, fmt.Errorf("no value")
	}
	s := Sample{Name: line[:end], Labels: map[string]string{}}
	if !validName(s.Name) {
		return Sample{}, fmt.Errorf("bad metric name")
	}
	rest := line[end:]
	if rest[0] == '{' {
		rest = rest[1:]
		for !strings.HasPrefix(rest, "}") {
			eq := strings.Index(rest, `="`)
			if eq < 0 {
				return Sample{}, fmt.Errorf("bad label")
			}
			name := rest[:eq]
			if !validLabel(name) {
				return Sample{}, fmt.Errorf("bad label name %q", name)
			}
			if _, dup := s.Labels[name]; dup {
				return Sample{}, fmt.Errorf("label %s repeated", name)
			}
			rest = rest[eq+2:]
			i := 0
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' {
					i++
				}
			}
			if i >= len(rest) {
				return Sample{}, fmt.Errorf("unterminated label value")
			}
			s.Labels[name] = unescape(rest[:i], true)
			rest = rest[i+1:]
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
				if strings.HasPrefix(rest, "}") {
					return Sample{}, fmt.Errorf("trailing comma")
				}
			} else if !strings.HasPrefix(rest, "}") {
				return Sample{}, fmt.Errorf("labels not separated by a comma")
			}
		}
		rest = rest[1:]
	}
	fields := strings.Split(strings.TrimPrefix(rest, " "), " ")
	if !strings.HasPrefix(rest, " ") || len(fields) < 1 || len(fields) > 2 {
		return Sample{}, fmt.Errorf("want one space, a value and an optional timestamp")
	}
	v, err := parseValue(fields[0])
	if err != nil {
		return Sample{}, err
	}
	if len(fields) == 2 {
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			return Sample{}, fmt.Errorf("bad timestamp")
		}
	}
	s.Value = v
	return s, nil
}

func parseValue(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || strings.ContainsAny(s, "_xXpP") || strings.EqualFold(s, "inf") || strings.EqualFold(s, "infinity") {
		return 0, fmt.Errorf("bad value %q", s)
	}
	return v, nil
}

// unescape undoes the exposition's escapes: \\ and \n, and in label values
// \" too.
func unescape(s string, quote bool) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch c := s[i+1]; {
			case c == 'n':
				b.WriteByte('\n')
				i++
				continue
			case c == '\\', c == '"' && quote:
				b.WriteByte(c)
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
