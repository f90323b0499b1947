package unitwrap

import (
	"slices"
	"strings"
	"testing"
)

func TestParseUnitFile(t *testing.T) {
	text := "# comment\n[Unit]\nDescription = a demo \n\n[Service]\r\n; another\nExecStart=/bin/foo \\\n  --bar \\\n# skipped inside a continuation\n  --baz\nEnvironment=\"A=1 2\" B=3\nnot an assignment\nExecStart=\n"
	got := parseUnitFile(text)
	want := []assignment{
		{"Unit", "Description", "a demo"},
		{"Service", "ExecStart", "/bin/foo    --bar    --baz"},
		{"Service", "Environment", `"A=1 2" B=3`},
		{"Service", "ExecStart", ""},
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseUnitFile:\n got %q\nwant %q", got, want)
	}
}

func TestWordSpans(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"/bin/foo a b", []string{"/bin/foo", "a", "b"}},
		{`  /bin/foo "a b" 'c d'e \"x y`, []string{"/bin/foo", `"a b"`, `'c d'e`, `\"x`, "y"}},
		{`/bin/sh -c 'echo "hi there"; exit 0'`, []string{"/bin/sh", "-c", `'echo "hi there"; exit 0'`}},
		{"", nil},
	}
	for _, c := range cases {
		var got []string
		for _, sp := range wordSpans(c.in) {
			got = append(got, c.in[sp[0]:sp[1]])
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("wordSpans(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFamilyFilter(t *testing.T) {
	cases := []struct {
		values    []string
		unix, any bool
	}{
		{nil, true, true},
		{[]string{"AF_INET AF_INET6"}, false, true},
		{[]string{"AF_INET", "AF_UNIX"}, true, true},
		{[]string{"~AF_UNIX AF_PACKET"}, false, true},
		{[]string{"~AF_UNIX", "AF_UNIX"}, true, true},
		{[]string{"AF_UNIX AF_INET", "~AF_UNIX"}, false, true},
		{[]string{"AF_INET", ""}, true, true},
		{[]string{"none"}, false, false},
	}
	for _, c := range cases {
		var f familyFilter
		for _, v := range c.values {
			f.apply(v)
		}
		if f.allows("AF_UNIX") != c.unix || f.none() == c.any {
			t.Errorf("%q: allows AF_UNIX %t, none %t; want %t, %t", c.values, f.allows("AF_UNIX"), f.none(), c.unix, !c.any)
		}
	}
}

func TestWrapCommand(t *testing.T) {
	cases := []struct {
		cmd       string
		noForward []string
		want      string
	}{
		{"/usr/bin/iperf3 -s", nil, "/usr/sbin/mptcpgd run -- /usr/bin/iperf3 -s"},
		{"-/usr/bin/foo --x='a b'", []string{"SIGTERM"}, "-/usr/sbin/mptcpgd run --no-forward=SIGTERM -- /usr/bin/foo --x='a b'"},
		{"+!!/usr/bin/foo $ARGS %i", nil, "+!!/usr/sbin/mptcpgd run -- /usr/bin/foo $ARGS %i"},
		{"@/usr/sbin/sshd sshd -D", []string{"SIGTERM", "SIGHUP"}, "/usr/sbin/mptcpgd run --no-forward=SIGTERM,SIGHUP --argv0 sshd -- /usr/sbin/sshd -D"},
		{`-@/bin/sh "my sh" -c 'x y'`, nil, `-/usr/sbin/mptcpgd run --argv0 "my sh" -- /bin/sh -c 'x y'`},
	}
	for _, c := range cases {
		got, err := wrapCommand(c.cmd, "/usr/sbin/mptcpgd", c.noForward)
		if err != nil || got != c.want {
			t.Errorf("wrapCommand(%q) = %q, %v; want %q", c.cmd, got, err, c.want)
		}
	}
	if got, _ := wrapCommand("/bin/true", "/opt/my tools/mptcpgd%1", nil); got != `"/opt/my tools/mptcpgd%%1" run -- /bin/true` {
		t.Errorf("a wrapper path with a space and a percent sign: %q", got)
	}
	for _, bad := range []string{"@/bin/sh", "-"} {
		if _, err := wrapCommand(bad, "/w", nil); err == nil {
			t.Errorf("wrapCommand(%q) accepted", bad)
		}
	}
}

func TestRender(t *testing.T) {
	svc := func(lines ...string) service {
		var s service
		s.apply(parseUnitFile("[Service]\n" + strings.Join(lines, "\n")))
		return s
	}
	cases := []struct {
		name      string
		svc       service
		has, lack []string
	}{
		{"plain", svc("ExecStart=/bin/foo"),
			[]string{"ExecStart=\nExecStart=/w run --no-forward=SIGTERM -- /bin/foo\n", "# mptcpgd-wraps: ExecStart=/bin/foo\n"},
			[]string{"SystemCallFilter", "RestrictAddressFamilies", "NotifyAccess"}},
		{"hardened notify", svc("Type=notify", "ExecStart=/bin/foo", "SystemCallFilter=@system-service", "RestrictAddressFamilies=AF_INET"),
			[]string{"\nSystemCallFilter=seccomp\n", "\nRestrictAddressFamilies=AF_UNIX\n", "\nNotifyAccess=all\n"}, nil},
		{"unix allowed, notify access all already", svc("Type=notify", "NotifyAccess=all", "ExecStart=/bin/foo", "RestrictAddressFamilies=AF_UNIX AF_INET"),
			nil, []string{"RestrictAddressFamilies", "NotifyAccess", "SystemCallFilter"}},
		{"filter reset", svc("ExecStart=/bin/foo", "SystemCallFilter=@system-service", "SystemCallFilter="),
			nil, []string{"SystemCallFilter"}},
		{"KillMode=mixed forwards everything", svc("KillMode=mixed", "ExecStart=/bin/foo"), []string{"/w run -- /bin/foo"}, []string{"--no-forward"}},
		{"own signals", svc("KillSignal=SIGINT", "RestartKillSignal=QUIT", "SendSIGHUP=yes", "ExecStart=/bin/foo"),
			[]string{"--no-forward=SIGINT,SIGQUIT,SIGHUP -- /bin/foo"}, nil},
		{"oneshot with a reset", svc("Type=oneshot", "ExecStart=/bin/a", "ExecStart=", "ExecStart=/bin/b", "ExecStart=/bin/c x"),
			[]string{"-- /bin/b\nExecStart=/w run --no-forward=SIGTERM -- /bin/c x\n", "ExecStart=/bin/b\n# mptcpgd-wraps: ExecStart=/bin/c x\n"},
			[]string{"/bin/a"}},
	}
	for _, c := range cases {
		d, err := render("demo.service", c.svc, "/w", []string{"/etc/systemd/system/demo.service.d"})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		for _, h := range c.has {
			if !strings.Contains(d.text, h) {
				t.Errorf("%s: the drop-in lacks %q:\n%s", c.name, h, d.text)
			}
		}
		for _, l := range c.lack {
			if strings.Contains(d.text, l) {
				t.Errorf("%s: the drop-in has %q:\n%s", c.name, l, d.text)
			}
		}
		wraps, created := readRecord(d.text)
		if !slices.Equal(wraps, c.svc.execStart) || !slices.Equal(created, []string{"/etc/systemd/system/demo.service.d"}) {
			t.Errorf("%s: the record reads back as %q, %q", c.name, wraps, created)
		}
		if got := parseUnitFile(d.text); len(got) == 0 || got[0] != (assignment{"Service", "ExecStart", ""}) {
			t.Errorf("%s: the drop-in does not start [Service] with ExecStart=: %q", c.name, got)
		}
	}
	for _, bad := range []service{svc("Type=simple"), svc("ExecStart=/bin/foo", "RestrictAddressFamilies=none"), svc("ExecStart=/bin/foo", "KillSignal=SIGNOPE")} {
		if _, err := render("demo.service", bad, "/w", nil); err == nil {
			t.Errorf("render accepted %+v", bad)
		}
	}
}

func TestDropInNames(t *testing.T) {
	got := dropInNames("foo-bar@baz-1.service")
	want := []string{"foo-bar@baz-1.service", "foo-bar@.service", "foo-.service", "service"}
	if !slices.Equal(got, want) {
		t.Errorf("dropInNames = %q, want %q", got, want)
	}
}
