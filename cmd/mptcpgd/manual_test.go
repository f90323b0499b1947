package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/manual"
)

// helpFlag is a flag as the flag package's help prints it.
var helpFlag = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)

// TestManualCoversCommandsAndFlags: every command this program dispatches
// and every flag its help prints is in mptcpgd(8) (internal/manual, which
// bash completion is generated from too).
func TestManualCoversCommandsAndFlags(t *testing.T) {
	page := manual.Page8(time.Now())
	for _, cmd := range dispatchedCommands(t) {
		if cmd == "help" {
			continue
		}
		if !slices.Contains(manual.CommandNames(), cmd) || !strings.Contains(page, "\n.It Cm "+cmd) {
			t.Errorf("mptcpgd(8) lacks the command %q (internal/manual)", cmd)
		}
	}
	for _, args := range [][]string{{"-h"}, {"run", "-h"}, {"enable", "-h"}, {"disable", "-h"}} {
		var stdout, stderr bytes.Buffer
		run(args, &stdout, &stderr)
		flags := helpFlag.FindAllStringSubmatch(stderr.String()+stdout.String(), -1)
		if len(flags) == 0 {
			t.Fatalf("mptcpgd %s printed no flags:\n%s", strings.Join(args, " "), stderr.String())
		}
		cmd := ""
		if len(args) > 1 {
			cmd = args[0]
		}
		for _, m := range flags {
			f := m[1]
			if _, ok := manual.FlagNamed(f); !ok || !strings.Contains(page, "\n.It Fl \\-"+f) {
				t.Errorf("mptcpgd(8) lacks the flag --%s of mptcpgd %s", f, cmd)
			}
		}
	}
}

// dispatchedCommands are the commands run and its callers switch on: the
// string cases of every switch on a variable named cmd in this package.
func dispatchedCommands(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var cmds []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sw, ok := n.(*ast.SwitchStmt)
			if !ok {
				return true
			}
			if id, ok := sw.Tag.(*ast.Ident); !ok || id.Name != "cmd" {
				return true
			}
			for _, s := range sw.Body.List {
				for _, e := range s.(*ast.CaseClause).List {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if v, err := strconv.Unquote(lit.Value); err == nil && v != "" && !slices.Contains(cmds, v) {
							cmds = append(cmds, v)
						}
					}
				}
			}
			return true
		})
	}
	if len(cmds) < 5 {
		t.Fatalf("found only the commands %v in the switches on cmd: has run changed shape?", cmds)
	}
	return cmds
}
