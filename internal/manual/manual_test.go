package manual

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgd/mptcpgd/pkg/config"
)

func TestParseReference(t *testing.T) {
	text := `# title line
#
# Intro.

[a]
# One.
#
#   literal
x = 1

# Entries:
#
# [[e]]
# # Doc of m.
# m = "eth1"
`
	got, err := ParseReference(text)
	if err != nil {
		t.Fatal(err)
	}
	want := Reference{
		Intro: []string{"", "Intro."},
		Sections: []Section{
			{Name: "a", Keys: []Key{{Name: "x", Doc: []string{"One.", "", "  literal"}, Example: "x = 1"}}},
			{Name: "e", Array: true, Doc: []string{"Entries:", ""}, Keys: []Key{{Name: "m", Doc: []string{"Doc of m."}, Example: `m = "eth1"`}}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseReference (-want +got):\n%s", diff)
	}
}

func TestParseReferenceRefuses(t *testing.T) {
	for _, text := range []string{
		"x = 1\n",                       // a key outside a table
		"[a]\nnot a key\n",              // neither key nor comment
		"# [[e]]\n# # doc\n# not key\n", // the same in the example
		"# [[e]]\nm = 1\n",              // a live line after the example
	} {
		if _, err := ParseReference(text); err == nil {
			t.Errorf("ParseReference(%q) succeeded", text)
		}
	}
}

func TestSentences(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"One. Two.", []string{"One.", "Two."}},
		{"A 1.5 s wait, e.g.x, ok", []string{"A 1.5 s wait, e.g.x, ok"}},
		{"Why? Because! Yes: no.", []string{"Why?", "Because!", "Yes: no."}},
		{`Default "30s".`, []string{`Default "30s".`}},
	}
	for _, tt := range tests {
		if got := sentences(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("sentences(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// reference parses the repository's reference configuration.
func reference(t *testing.T) Reference {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", "..", "configs", "mptcpgd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ParseReference(string(text))
	if err != nil {
		t.Fatalf("configs/mptcpgd.toml: %v", err)
	}
	return ref
}

// TestEveryKeyDocumented: every key of the configuration's schema is in the
// reference configuration, with its default, and in mptcpgd.toml(5).
func TestEveryKeyDocumented(t *testing.T) {
	ref := reference(t)
	page := Page5(ref, nil, time.Now())
	for _, name := range config.Keys() {
		table, key, _ := strings.Cut(name, ".")
		i := slices.IndexFunc(ref.Sections, func(s Section) bool { return s.Name == table })
		if i < 0 {
			t.Errorf("configs/mptcpgd.toml has no table [%s] (key %s)", table, name)
			continue
		}
		k, ok := ref.Sections[i].Key(key)
		if !ok {
			t.Errorf("configs/mptcpgd.toml lacks the key %s", name)
			continue
		}
		doc := strings.Join(k.Doc, " ")
		if !strings.Contains(doc, "Default") && !strings.Contains(doc, "Required") {
			t.Errorf("configs/mptcpgd.toml: %s's comment does not say its default: %q", name, doc)
		}
		if !strings.Contains(page, "\n.It Cm "+key+"\n") || !strings.Contains(page, "\n.Dl "+key+" = ") {
			t.Errorf("mptcpgd.toml(5) lacks the key %s or its example", name)
		}
	}
}

// TestMandocLint: both pages are clean under mandoc -Tlint, but for the
// pages they refer to, which need not be installed where the test runs.
func TestMandocLint(t *testing.T) {
	if _, err := exec.LookPath("mandoc"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mandoc is not installed (scripts/deps.sh installs it)")
		}
		t.Skip("mandoc is not installed (scripts/deps.sh installs it)")
	}
	dir := t.TempDir()
	pages := map[string]string{
		"mptcpgd.8":      Page8(time.Now()),
		"mptcpgd.toml.5": Page5(reference(t), []Example{{Name: "x.toml", Text: "[a]\n.x = \"1\"\n"}}, time.Now()),
	}
	for name, text := range pages {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command("mandoc", "-Tlint", path).CombinedOutput()
		for line := range strings.Lines(string(out)) {
			if strings.Contains(line, "referenced manual not found") || strings.Contains(line, "mandoc.db") {
				continue
			}
			t.Errorf("mandoc -Tlint %s: %s", name, strings.TrimSpace(line))
		}
	}
}

func TestBashCompletion(t *testing.T) {
	script := Bash()
	for _, c := range CommandNames() {
		if !strings.Contains(script, "\t"+c+") ") {
			t.Errorf("bash completion lacks the command %s", c)
		}
	}
	for _, f := range Flags {
		if !strings.Contains(script, "--"+f.Name) {
			t.Errorf("bash completion lacks --%s", f.Name)
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	// Completing "mptcpgd sh" and "mptcpgd show --js" and a value.
	for line, want := range map[string]string{
		"mptcpgd sh":                   "show",
		"mptcpgd show --js":            "--json",
		"mptcpgd --log-level w":        "warn",
		"mptcpgd enable --u":           "--user",
		"mptcpgd --config x adopt --d": "--dry-run",
	} {
		words := strings.Fields(line)
		prog := script + "\nCOMP_WORDS=(" + strings.Join(words, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n_mptcpgd\necho \"${COMPREPLY[*]}\"\n"
		out, err := exec.Command(bash, "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		if !slices.Contains(strings.Fields(string(out)), want) {
			t.Errorf("completing %q = %q, want %s among them", line, out, want)
		}
	}
}
