package manual

import (
	"strings"
	"time"
)

// Example is an example configuration file for the page.
type Example struct {
	Name string // its name in configs/, e.g. client.toml
	Text string
}

// Page5 is mptcpgd.toml(5), from the reference configuration and the
// example files.
func Page5(ref Reference, examples []Example, date time.Time) string {
	var w mdocWriter
	w.header(date, "mptcpgd.toml", "5", "mptcpgd.toml", "configuration of the mptcpgd Multipath TCP path manager")
	w.line(".Sh DESCRIPTION")
	w.line(".Xr mptcpgd 8")
	w.line("reads")
	w.line(".Pa /etc/mptcpgd.toml ,")
	w.line("a TOML file.")
	w.plainText(ref.Intro)
	w.line(".Pp")
	w.line("Each key below is shown with its default value as an example line.")
	w.line("The reference file with these comments is")
	w.line(".Pa /usr/share/doc/mptcpgd/examples/mptcpgd.toml")
	w.line("in the Debian package, and the package's own")
	w.line(".Pa /etc/mptcpgd.toml .")
	for _, s := range ref.Sections {
		if s.Array {
			w.line(".Ss [[%s]]\\&", s.Name)
		} else {
			w.line(".Ss [%s]\\&", s.Name)
		}
		if len(s.Doc) > 0 {
			w.plainText(s.Doc)
		}
		w.line(".Bl -tag -width Ds")
		for i := 0; i < len(s.Keys); {
			// A key and those that share its comment.
			n := 1
			for i+n < len(s.Keys) && s.Keys[i+n].Shared {
				n++
			}
			group := s.Keys[i : i+n]
			for _, k := range group {
				w.line(".It Cm %s", k.Name)
			}
			w.plainText(group[0].Doc)
			w.line(".Pp")
			w.line("Example:")
			for _, k := range group {
				w.line(".Dl %s", strings.ReplaceAll(escape(k.Example, false), `"`, `\(dq`))
			}
			i += n
		}
		w.line(".El")
	}
	w.line(".Sh FILES")
	w.line(".Bl -tag -width Ds")
	w.line(".It Pa /etc/mptcpgd.toml")
	w.line("The configuration;")
	w.line(".Ql mptcpgd check")
	w.line("validates it.")
	w.line(".El")
	if len(examples) > 0 {
		w.line(".Sh EXAMPLES")
		for i, e := range examples {
			if i > 0 {
				w.line(".Pp")
			}
			w.line(".Pa %s :", e.Name)
			w.line(".Bd -literal -offset indent")
			for _, l := range strings.Split(strings.TrimRight(e.Text, "\n"), "\n") {
				w.line("%s", escape(l, false))
			}
			w.line(".Ed")
		}
	}
	w.line(".Sh SEE ALSO")
	w.line(".Xr mptcpgd 8")
	return w.String()
}
