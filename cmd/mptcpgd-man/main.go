// Command mptcpgd-man writes mptcpgd's manual pages, mptcpgd(8) and
// mptcpgd.toml(5), and its bash completion (make man): the commands and
// flags from internal/manual, the configuration keys from the commented
// reference configuration.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/manual"
)

func main() {
	configs := flag.String("configs", "configs", "`dir`ectory of mptcpgd.toml (the reference) and the example configurations")
	out := flag.String("out", "bin/man", "`dir`ectory to write mptcpgd.8, mptcpgd.toml.5 and mptcpgd.bash to")
	date := flag.String("date", time.Now().UTC().Format(time.DateOnly), "the pages' date, YYYY-MM-DD (make man: the commit's)")
	flag.Parse()
	if err := write(*configs, *out, *date); err != nil {
		fmt.Fprintf(os.Stderr, "mptcpgd-man: %v\n", err)
		os.Exit(1)
	}
}

// examples are the example configurations the page shows, in configs/.
var examples = []string{"client.toml", "server.toml"}

func write(configs, out, date string) error {
	day, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return fmt.Errorf("-date: %w", err)
	}
	text, err := os.ReadFile(filepath.Join(configs, "mptcpgd.toml"))
	if err != nil {
		return err
	}
	ref, err := manual.ParseReference(string(text))
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(configs, "mptcpgd.toml"), err)
	}
	var exs []manual.Example
	for _, name := range examples {
		b, err := os.ReadFile(filepath.Join(configs, name))
		if err != nil {
			return err
		}
		exs = append(exs, manual.Example{Name: name, Text: string(b)})
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for name, content := range map[string]string{
		"mptcpgd.8":      manual.Page8(day),
		"mptcpgd.toml.5": manual.Page5(ref, exs, day),
		"mptcpgd.bash":   manual.Bash(),
	} {
		if err := os.WriteFile(filepath.Join(out, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
