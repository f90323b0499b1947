package metrics

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ContentType is the text exposition's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Text renders every family in the Prometheus text exposition format. A
// family without series is written with its HELP and TYPE only.
func (r *Registry) Text() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b bytes.Buffer
	for _, f := range r.families {
		b.WriteString("# HELP ")
		b.WriteString(f.name)
		b.WriteByte(' ')
		b.WriteString(escapeHelp(f.help))
		b.WriteString("\n# TYPE ")
		b.WriteString(f.name)
		b.WriteByte(' ')
		b.WriteString(f.kind.String())
		b.WriteByte('\n')
		keys := make([]string, 0, len(f.series))
		for k := range f.series {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			s := f.series[k]
			if f.kind != KindHistogram {
				writeSample(&b, f.name, f.labels, s.values, "", "", s.value)
				continue
			}
			var cum uint64
			for i, c := range s.counts {
				cum += c
				le := math.Inf(1)
				if i < len(f.buckets) {
					le = f.buckets[i]
				}
				writeSample(&b, f.name+"_bucket", f.labels, s.values, "le", formatFloat(le), float64(cum))
			}
			writeSample(&b, f.name+"_sum", f.labels, s.values, "", "", s.sum)
			writeSample(&b, f.name+"_count", f.labels, s.values, "", "", float64(s.count))
		}
	}
	return b.Bytes()
}

func writeSample(b *bytes.Buffer, name string, labels, values []string, extraLabel, extraValue string, v float64) {
	b.WriteString(name)
	if len(labels) > 0 || extraLabel != "" {
		b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(l)
			b.WriteString(`="`)
			b.WriteString(escapeLabel(values[i]))
			b.WriteByte('"')
		}
		if extraLabel != "" {
			if len(labels) > 0 {
				b.WriteByte(',')
			}
			b.WriteString(extraLabel)
			b.WriteString(`="`)
			b.WriteString(extraValue)
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(formatFloat(v))
	b.WriteByte('\n')
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }
