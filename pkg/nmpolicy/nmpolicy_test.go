package nmpolicy

import "testing"

func TestDecide(t *testing.T) {
	wired := func(flags Flags, v4, v6 bool) Device {
		return Device{Interface: "eth1", Profile: "wired1", ProfileFlags: flags, DefaultRoute4: v4, DefaultRoute6: v6}
	}
	on := Host{SysctlEnabled: true}
	off := Host{}
	conf := Host{SysctlEnabled: true, ConfFlags: Enabled | Signal, ConfSource: "/etc/NetworkManager/conf.d/mptcp.conf"}
	tests := []struct {
		name   string
		dev    Device
		host   Host
		want   Verdict
		reason string
	}{
		{"no connection", Device{Interface: "eth1"}, on,
			Verdict{}, "no connection applied"},
		{"built-in default with a default route", wired(0, true, false), on,
			Verdict{On: true, IPv4: true, Flags: Enabled | Subflow},
			"profile 'wired1' takes NetworkManager's default mptcp-flags enabled,subflow (IPv4 only: NetworkManager gave it no IPv6 default route)"},
		{"built-in default, both families", wired(0, true, true), on,
			Verdict{On: true, IPv4: true, IPv6: true, Flags: Enabled | Subflow},
			"profile 'wired1' takes NetworkManager's default mptcp-flags enabled,subflow"},
		{"built-in default without a default route", wired(0, false, false), on,
			Verdict{Flags: Enabled | Subflow},
			"profile 'wired1' takes NetworkManager's default mptcp-flags enabled,subflow, off without a default route from NetworkManager"},
		{"built-in default with the sysctl off", wired(0, true, true), off,
			Verdict{Flags: Enabled | Subflow},
			"profile 'wired1' takes NetworkManager's default mptcp-flags enabled,subflow, off while net.mptcp.enabled is 0"},
		{"NetworkManager.conf's default", wired(0, false, true), conf,
			Verdict{On: true, IPv6: true, Flags: Enabled | Signal},
			"profile 'wired1' takes mptcp-flags enabled,signal from /etc/NetworkManager/conf.d/mptcp.conf (IPv6 only: NetworkManager gave it no IPv4 default route)"},
		{"the profile beats NetworkManager.conf", wired(Disabled, true, true), conf,
			Verdict{Flags: Disabled},
			"profile 'wired1' has mptcp-flags disabled"},
		{"disabled wins over other flags", wired(Disabled|Enabled|Subflow, true, true), on,
			Verdict{Flags: Disabled},
			"profile 'wired1' has mptcp-flags disabled,enabled,subflow"},
		{"a flag implies enabled", wired(Subflow, true, false), on,
			Verdict{On: true, IPv4: true, Flags: Enabled | Subflow},
			"profile 'wired1' has mptcp-flags subflow (IPv4 only: NetworkManager gave it no IPv6 default route)"},
		{"also-without-default-route", wired(Enabled|AlsoWithoutDefaultRoute|Signal, false, false), on,
			Verdict{On: true, IPv4: true, IPv6: true, Flags: Enabled | AlsoWithoutDefaultRoute | Signal},
			"profile 'wired1' has mptcp-flags enabled,also-without-default-route,signal"},
		{"also-without-sysctl", wired(AlsoWithoutSysctl|Subflow|Backup, true, true), off,
			Verdict{On: true, IPv4: true, IPv6: true, Flags: Enabled | AlsoWithoutSysctl | Subflow | Backup},
			"profile 'wired1' has mptcp-flags also-without-sysctl,subflow,backup"},
		{"also-without-sysctl still wants a default route", wired(AlsoWithoutSysctl, false, false), off,
			Verdict{Flags: Enabled | AlsoWithoutSysctl},
			"profile 'wired1' has mptcp-flags also-without-sysctl, off without a default route from NetworkManager"},
		{"signal drops fullmesh, unknown bits go", wired(Signal|Fullmesh|0x10000, true, false), on,
			Verdict{On: true, IPv4: true, Flags: Enabled | Signal},
			"profile 'wired1' has mptcp-flags signal,fullmesh,0x10000 (IPv4 only: NetworkManager gave it no IPv6 default route)"},
		{"activating, no default route yet", Device{Interface: "eth1", Profile: "wired1", Activating: true}, on,
			Verdict{On: true, IPv4: true, IPv6: true, Flags: Enabled | Subflow},
			"profile 'wired1' takes NetworkManager's default mptcp-flags enabled,subflow (activating)"},
		{"activating with the sysctl off", Device{Interface: "eth1", Profile: "wired1", Activating: true}, off,
			Verdict{Flags: Enabled | Subflow},
			"profile 'wired1' takes NetworkManager's default mptcp-flags enabled,subflow, off while net.mptcp.enabled is 0"},
		{"a quote in the profile's name", Device{Profile: "Bob's LTE", ProfileFlags: Disabled}, on,
			Verdict{Flags: Disabled}, `profile 'Bob'\''s LTE' has mptcp-flags disabled`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.dev, tt.host)
			if got.Reason != tt.reason {
				t.Errorf("reason %q, want %q", got.Reason, tt.reason)
			}
			got.Reason = ""
			if got != tt.want {
				t.Errorf("got %+v (flags %s), want %+v (flags %s)", got, got.Flags, tt.want, tt.want.Flags)
			}
		})
	}
}

func TestConfDefault(t *testing.T) {
	main := ConfFile{Path: "/etc/NetworkManager/NetworkManager.conf", Text: "[main]\nplugins=ifupdown,keyfile\n\n[connection]\nconnection.mptcp-flags=0x22\n"}
	later := ConfFile{Path: "/etc/NetworkManager/conf.d/50-mptcp.conf", Text: "# signal on the uplink\n[connection-uplink]\nmatch-device=interface-name:eth*\nconnection.mptcp-flags=0x12\n\n[connection]\nipv6.ip6-privacy=2\n"}
	exact := ConfFile{Path: "/etc/NetworkManager/conf.d/60-lte.conf", Text: "[connection]\nconnection.mptcp-flags = 1\n[connection-lte]\nmatch-device=mac:00:11:22:33:44:55;interface-name:=wwan0\nconnection.mptcp-flags=0x62\n"}
	tests := []struct {
		name   string
		files  []ConfFile
		iface  string
		flags  Flags
		source string
	}{
		{"none", nil, "eth0", 0, ""},
		{"main file", []ConfFile{main}, "eth0", Enabled | Subflow, main.Path},
		{"a later file's matching section wins", []ConfFile{main, later}, "eth1", Enabled | Signal, later.Path},
		{"a section that does not match is skipped", []ConfFile{main, later}, "wlan0", Enabled | Subflow, main.Path},
		{"named sections before plain [connection]", []ConfFile{main, later, exact}, "wwan0", Enabled | Subflow | Backup, exact.Path},
		{"plain [connection] of the latest file", []ConfFile{main, later, exact}, "eth1", Disabled, exact.Path},
		{"0 means unset", []ConfFile{{Path: "x", Text: "[connection]\nconnection.mptcp-flags=0\n"}}, "eth0", 0, ""},
		{"an unreadable value is skipped", []ConfFile{main, {Path: "x", Text: "[connection]\nconnection.mptcp-flags=enabled,subflow\n"}}, "eth0", Enabled | Subflow, main.Path},
		{"other sections are not connection defaults", []ConfFile{{Path: "x", Text: "[device]\nconnection.mptcp-flags=0x22\n"}}, "eth0", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags, source := ConfDefault(tt.files, tt.iface)
			if flags != tt.flags || source != tt.source {
				t.Errorf("got %s from %q, want %s from %q", flags, source, tt.flags, tt.source)
			}
		})
	}
}

func TestDisableCommand(t *testing.T) {
	if got, want := DisableCommand("Bob's LTE"), `nmcli connection modify 'Bob'\''s LTE' connection.mptcp-flags disabled`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
