package launch

import (
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPlanSignals(t *testing.T) {
	none := func(syscall.Signal) bool { return false }
	hupIgnored := func(s syscall.Signal) bool { return s == unix.SIGHUP }
	cases := []struct {
		name      string
		terminal  bool
		ignored   func(syscall.Signal) bool
		noForward []syscall.Signal
		forward   []syscall.Signal
		ignore    []syscall.Signal
	}{
		{"service", false, none, nil,
			[]syscall.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2, unix.SIGALRM, unix.SIGWINCH},
			[]syscall.Signal{unix.SIGPIPE}},
		{"service whose stop signal systemd sends to all", false, none, []syscall.Signal{unix.SIGTERM, unix.SIGCONT},
			[]syscall.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGALRM, unix.SIGWINCH},
			[]syscall.Signal{unix.SIGPIPE, unix.SIGTERM}},
		{"terminal", true, none, nil,
			[]syscall.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2, unix.SIGALRM, unix.SIGWINCH},
			[]syscall.Signal{unix.SIGPIPE, unix.SIGTTOU}},
		{"nohup", false, hupIgnored, nil,
			[]syscall.Signal{unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2, unix.SIGALRM, unix.SIGWINCH},
			[]syscall.Signal{unix.SIGPIPE}},
	}
	for _, c := range cases {
		got := planSignals(c.terminal, c.ignored, c.noForward)
		if !slices.Equal(got.forward, c.forward) || !slices.Equal(got.ignore, c.ignore) {
			t.Errorf("%s: forward %v ignore %v, want forward %v ignore %v", c.name, got.forward, got.ignore, c.forward, c.ignore)
		}
	}
	if forwardTarget(42, true) != -42 || forwardTarget(42, false) != 42 {
		t.Error("forwardTarget: want the process group with a terminal, the process without")
	}
}

func TestParseSignals(t *testing.T) {
	got, err := ParseSignals("SIGTERM, hup,10,,sigusr2")
	want := []syscall.Signal{unix.SIGTERM, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseSignals: %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"SIGFOO", "0", "99", "TERM;HUP"} {
		if _, err := ParseSignals(bad); err == nil {
			t.Errorf("ParseSignals(%q) accepted", bad)
		}
	}
}

func TestChildConfigRoundTrip(t *testing.T) {
	for _, c := range []childConfig{{}, {noNewPrivs: true, ignored: 1<<0 | 1<<14, socket: 7}} {
		got, err := parseChildConfig(c.String())
		if err != nil || got != c {
			t.Errorf("%+v read back as %+v, %v", c, got, err)
		}
	}
	for _, bad := range []string{"", "nnp=1", "nnp=2,ignored=0,socket=3", "nnp=1,ignored=zz,socket=3", "nnp=1,ignored=0,socket=3,x"} {
		if _, err := parseChildConfig(bad); err == nil {
			t.Errorf("parseChildConfig(%q) accepted", bad)
		}
	}
}
