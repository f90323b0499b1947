package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/control"
	"github.com/mptcpgd/mptcpgd/pkg/daemon"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/show"
)

func check(o options, explicit bool, stdout io.Writer) error {
	cfg, err := config.Load(o.config, explicit)
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
	if err := control.Query(ctx, o.socket, "status", &rep); err != nil {
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
	// The kernel is this host's, the daemon's too: ask it here, so that a
	// daemon of another version need not say.
	if f, err := netlinkmptcp.ProbeFeatures(nil); err == nil {
		rep.Kernel = &f
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return show.Render(stdout, rep)
}

func cleanup(o options, explicit bool, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var rep show.Report
	if control.Query(ctx, o.socket, "status", &rep) == nil {
		return fmt.Errorf("mptcpgd is running (its control socket %s answers) and would put everything back: stop it first, e.g. systemctl stop mptcpgd", o.socket)
	}
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
