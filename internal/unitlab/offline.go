package unitlab

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/unitwrap"
)

// Offline returns an Env that does for the fixture's units, from the unit
// files of root, what systemd does (systemd.exec(5), "Environment"): PATH,
// then Environment= assignments (quoted words, each NAME=value), then
// EnvironmentFile= lines, which override them; then it runs the last
// ExecStart= (prefixes dropped, quoted words, no $ expansion: the fixture
// needs none) and reads the environment the program prints.
func Offline(root string) func(tb lab.TB, unit string) []string {
	return func(tb lab.TB, unit string) []string {
		tb.Helper()
		as, err := unitwrap.Assignments(unitwrap.Scope{Root: root}, unit)
		if err != nil {
			tb.Fatal(err)
		}
		env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		var files []string
		var execStart string
		for _, a := range as {
			if a.Section != "Service" {
				continue
			}
			switch a.Key {
			case "Environment":
				env = setAll(env, words(a.Value))
			case "EnvironmentFile":
				files = append(files, a.Value)
			case "ExecStart":
				execStart = a.Value
			}
		}
		for _, f := range files {
			env = setAll(env, environmentFile(tb, filepath.Join(root, strings.TrimPrefix(f, "-")), strings.HasPrefix(f, "-")))
		}
		argv := words(strings.TrimLeft(execStart, "-@:+!"))
		if len(argv) == 0 {
			tb.Fatalf("%s has no ExecStart", unit)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = env
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			tb.Fatalf("%s: %q: %v\n%s", unit, argv, err, errOut.String())
		}
		return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	}
}

// words splits a value into words as systemd does for Environment= and
// command lines: whitespace separates them; double and single quotes
// group, and a backslash escapes the next character.
func words(s string) []string {
	var out []string
	var w strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && quote != '\'':
			i++
			w.WriteByte(s[i])
			in = true
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			w.WriteByte(c)
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				out = append(out, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteByte(c)
			in = true
		}
	}
	if in {
		out = append(out, w.String())
	}
	return out
}

// environmentFile reads NAME=value lines; # and ; start comments, and a
// value in quotes loses them.
func environmentFile(tb lab.TB, path string, optional bool) []string {
	tb.Helper()
	f, err := os.Open(path)
	if optional && os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if v := words(value); len(v) == 1 {
			value = v[0]
		}
		out = append(out, strings.TrimSpace(name)+"="+value)
	}
	return out
}

// setAll sets each NAME=value of kvs in env, replacing an earlier value.
func setAll(env, kvs []string) []string {
	for _, kv := range kvs {
		name, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range env {
			if strings.HasPrefix(old, name+"=") {
				env[i], replaced = kv, true
			}
		}
		if !replaced {
			env = append(env, kv)
		}
	}
	return env
}
