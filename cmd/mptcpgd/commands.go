package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"syscall"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/capability"
	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/control"
	"github.com/mptcpgd/mptcpgd/pkg/daemon"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netnslock"
	"github.com/mptcpgd/mptcpgd/pkg/show"
)

func check(o options, explicit bool, stdout, stderr io.Writer) error {
	cfg, err := config.Load(o.config, explicit)
	if err != nil {
		return err
	}
	if err := config.ServiceCanRead(o.config); err != nil {
		fmt.Fprintf(stderr, "mptcpgd: warning: %v\n", err)
	}
	// The same checks as start-up and reload; what cannot be checked here
	// (without privileges, say) is said, not passed over.
	warnings, err := daemon.Validate(cfg)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "mptcpgd: warning: %s\n", w)
	}
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, cfg.TOML())
	return err
}

func showCmd(o options, explicit bool, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rep show.Report
	if err := control.Query(ctx, o.socket, control.Status, &rep); err != nil {
		// A daemon may well run: say so rather than show the kernel's
		// view as if none did.
		if errors.Is(err, fs.ErrPermission) {
			return err
		}
		cfg, cerr := config.Load(o.config, explicit)
		if cerr != nil {
			return cerr
		}
		st, ierr := daemon.Inspect(cfg, o.state)
		if ierr != nil {
			return ierr
		}
		rep = show.Report{Version: version, Status: st, Note: err.Error()}
	}
	rep.Units = wrappedUnits()
	// The kernel is this host's, the daemon's too: ask it here, so that a
	// daemon of another version need not say.
	if f, err := netlinkmptcp.ProbeFeatures(nil); err == nil {
		rep.Kernel = &show.Kernel{Version: fmt.Sprintf("%d.%d", f.Major, f.Minor), Lacks: f.Missing()}
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return show.Render(stdout, rep)
}

func cleanup(o options, explicit bool, stdout io.Writer) error {
	if ok, err := capability.NetAdmin(); err != nil || !ok {
		return errors.Join(errors.New("cleanup needs root or CAP_NET_ADMIN: it removes endpoints, rules and routes"), err)
	}
	// Held while cleaning up: a daemon that started meanwhile would put
	// everything back.
	lock, err := netnslock.Acquire(netnslock.Dir())
	if err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	defer lock.Release()
	cfg, err := config.Load(o.config, explicit)
	if err != nil {
		return err
	}
	res, err := daemon.Cleanup(cfg, o.state)
	for _, ep := range res.Endpoints {
		fmt.Fprintf(stdout, "removed endpoint id %d %s\n", ep.ID, ep.Addr)
	}
	for _, r := range res.Rules {
		fmt.Fprintf(stdout, "removed rule from %s lookup %d\n", r.Src.Addr(), r.Table)
	}
	fmt.Fprintf(stdout, "removed %d routes\n", len(res.Routes))
	if res.Limits != nil {
		fmt.Fprintf(stdout, "restored limits: %s\n", res.Limits)
	}
	return err
}

// reloadTimeout bounds the wait for the daemon's verdict; systemd's own
// for ExecReload= is 90 s.
const reloadTimeout = time.Minute

func reload(o options) error {
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	err := control.Query(ctx, o.socket, control.Reload, nil)
	var refusal *control.Refusal
	if errors.As(err, &refusal) {
		return fmt.Errorf("reload refused, the daemon keeps its running configuration: %s", refusal.Reason)
	}
	return err
}

// adopt takes over the foreign endpoints on addresses mptcpgd would manage
// (after a lost state file): through the running daemon if one answers,
// else in the state file, for the daemon to converge when it starts. With
// --dry-run it only lists them.
func adopt(o options, explicit bool, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var took []netlinkmptcp.Endpoint
	if o.dryRun {
		var rep show.Report
		if err := control.Query(ctx, o.socket, control.Status, &rep); err != nil {
			cfg, cerr := config.Load(o.config, explicit)
			if cerr != nil {
				return cerr
			}
			if rep.Status, err = daemon.Inspect(cfg, o.state); err != nil {
				return err
			}
		}
		for _, e := range rep.Status.Endpoints {
			if e.Takeable {
				took = append(took, e.Endpoint)
			}
		}
		printAdopted(stdout, took, "would adopt")
		return nil
	}
	err := control.Query(ctx, o.socket, control.Adopt, &took)
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ECONNREFUSED) {
		return err
	}
	if err != nil {
		if ok, cerr := capability.NetAdmin(); cerr != nil || !ok {
			return errors.Join(errors.New("adopt needs root or CAP_NET_ADMIN"), cerr)
		}
		lock, lerr := netnslock.Acquire(netnslock.Dir())
		if lerr != nil {
			return fmt.Errorf("adopt: %w", lerr)
		}
		defer lock.Release()
		cfg, cerr := config.Load(o.config, explicit)
		if cerr != nil {
			return cerr
		}
		if took, err = daemon.Adopt(cfg, o.state); err != nil {
			return err
		}
	}
	printAdopted(stdout, took, "adopted")
	return nil
}

func printAdopted(w io.Writer, eps []netlinkmptcp.Endpoint, verb string) {
	if len(eps) == 0 {
		fmt.Fprintln(w, "no foreign endpoint holds an address mptcpgd manages")
		return
	}
	for _, ep := range eps {
		fmt.Fprintf(w, "%s endpoint %s: mptcpgd converges it to the configuration\n", verb, ep)
	}
}

// rejoinNow asks the daemon to retry every failed join now.
func rejoinNow(o options) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return control.Query(ctx, o.socket, control.Rejoin, nil)
}
