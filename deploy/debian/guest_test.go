//go:build guest

package debian_test

import (
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/guest"
	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// The Debian package (make deb) under Debian 12's systemd, installed,
// upgraded, removed and purged as an administrator does, and beside
// Debian's mptcpd. The guest's own network namespace is the client of a lab
// topology with uplinks eth1 and eth2.

const (
	service = "mptcpgd.service"
	conf    = "/etc/mptcpgd.toml"
	// ownRulePriority is the default rule_priority: our rules' priority.
	ownRulePriority = "10000"
	// guestWait bounds waits in the guest, which runs under software
	// emulation beside other work; it asserts nothing about speed.
	guestWait = 90 * time.Second
)

// editedConfig is the administrator's change: IPv4 only.
const editedConfig = "# edited by the administrator\n[endpoints]\nfamilies = [\"ipv4\"]\n"

// newestDeb is the package make deb built last.
func newestDeb(t *testing.T) string {
	t.Helper()
	debs, _ := filepath.Glob(filepath.Join(guest.Repo(t), "bin", "mptcpgd_*.deb"))
	if len(debs) == 0 {
		t.Fatal("no bin/mptcpgd_*.deb in the checkout: make test-guest runs make deb first")
	}
	newest, when := "", int64(0)
	for _, d := range debs {
		if fi, err := os.Stat(d); err == nil && fi.ModTime().UnixNano() > when {
			newest, when = d, fi.ModTime().UnixNano()
		}
	}
	return newest
}

// higherVersion repacks deb with a version that sorts after its own: the
// next build, for the upgrade.
func higherVersion(t *testing.T, deb string) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pkg")
	guest.Must(t, "dpkg-deb", "-R", deb, dir)
	control := filepath.Join(dir, "DEBIAN", "control")
	text, err := os.ReadFile(control)
	if err != nil {
		t.Fatal(err)
	}
	old := strings.TrimSpace(guest.Must(t, "dpkg-deb", "-f", deb, "Version"))
	next := old + "+next1"
	if err := os.WriteFile(control, []byte(strings.Replace(string(text), "Version: "+old+"\n", "Version: "+next+"\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "next.deb")
	guest.Must(t, "dpkg-deb", "--root-owner-group", "-b", dir, out)
	return out, next
}

func dpkg(t *testing.T, args ...string) string {
	t.Helper()
	return guest.Must(t, "env", append([]string{"DEBIAN_FRONTEND=noninteractive", "dpkg"}, args...)...)
}

// status is the package's dpkg status ("install ok installed", ...), ""
// when dpkg does not know it.
func status(pkg string) string {
	out, err := guest.Run("dpkg-query", "-W", "-f=${Status}", pkg)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// purgeAll purges our package and mptcpd's, so that the guest's other
// tests find neither.
func purgeAll() {
	_, _ = guest.Run("env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "-P", "mptcpgd", "mptcpd-plugins", "mptcpd", "libmptcpd3", "libell0")
	_, _ = guest.Run("systemctl", "daemon-reload")
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// ids are the endpoint ids of addrs.
func ids(t *testing.T, addrs ...netip.Addr) map[netip.Addr]uint8 {
	t.Helper()
	eps := guest.Endpoints(t)
	out := map[netip.Addr]uint8{}
	for _, a := range addrs {
		e, ok := eps[a]
		if !ok {
			t.Fatalf("no endpoint for %s: %v", a, eps)
		}
		out[a] = e.ID
	}
	return out
}

// ownRouting is what of ours is in the RPDB and the routing tables.
func ownRouting(t *testing.T) string {
	t.Helper()
	return guest.Must(t, "ip", "rule", "show", "pref", ownRulePriority) +
		guest.Must(t, "ip", "route", "show", "table", "all", "proto", "177")
}

func TestGuestDebLifecycle(t *testing.T) {
	guest.Require(t)
	repo := guest.Repo(t)
	t.Cleanup(purgeAll)

	// A unit that make install left in /etc/systemd/system would hide the
	// package's: make uninstall removes it and says so.
	guest.Must(t, "make", "-C", repo, "-o", "build", "install")
	if out := guest.Must(t, "make", "-C", repo, "uninstall"); !strings.Contains(out, "hid the unit of the Debian package") {
		t.Errorf("make uninstall did not say that the unit it removes hid the package's:\n%s", out)
	}
	if exists("/etc/systemd/system/mptcpgd.service") || exists("/usr/local/sbin/mptcpgd") {
		t.Fatal("make uninstall left the unit or the binary")
	}

	top := lab.NewTopology(t, lab.TopologyOptions{Variant: lab.DHCP, Client: lab.Machine(t), RateMbit: 20, Checksums: true})
	top.Server.IP("mptcp", "limits", "set", "subflows", "4", "add_addr_accepted", "4")
	eth1, eth2 := top.Uplinks[0].Addr4, top.Uplinks[1].Addr4
	limitsBefore := guest.Limits(t)
	deb := newestDeb(t)

	// Install: enabled, started, endpoints in the kernel once dpkg returns
	// (Type=notify: the start waited for READY=1).
	dpkg(t, "-i", deb)
	if got := guest.Property(t, service, "ActiveState"); got != "active" {
		t.Fatalf("after dpkg -i the service is %s, want active\n%s", got, guest.Must(t, "journalctl", "--no-pager", "-u", service))
	}
	if got, _ := guest.Run("systemctl", "is-enabled", service); strings.TrimSpace(got) != "enabled" {
		t.Errorf("after dpkg -i the service is %q, want enabled", got)
	}
	if got := guest.Property(t, service, "FragmentPath"); got != "/lib/systemd/system/mptcpgd.service" {
		t.Errorf("the unit systemd runs is %s, want the package's", got)
	}
	before := ids(t, eth1, eth2)
	if ownRouting(t) == "" {
		t.Error("no rule at our priority and no route of ours while the service runs")
	}
	if limits := guest.Limits(t); limits == limitsBefore {
		t.Errorf("the limits are still %v: the daemon did not set its own", limits)
	}

	// Upgrade with a changed conffile: kept, the service restarted, the
	// endpoints adopted with their ids, and a transfer over both uplinks
	// goes on undisturbed.
	if err := os.WriteFile(conf, []byte(editedConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	next, version := higherVersion(t, deb)
	// 128 MiB over two 20 Mbit/s uplinks, about 30 s: long enough for the
	// upgrade.
	tr := lab.StartTransfer(t, top, top.ServerAddr(lab.V4), 128<<20)
	lab.WaitFor(t, guestWait, "a subflow over eth2", func() error { return guest.SubflowFrom(tr, eth2) })
	pid := guest.Property(t, service, "MainPID")
	dpkg(t, "-i", next)
	if got := strings.TrimSpace(guest.Must(t, "dpkg-query", "-W", "-f=${Version}", "mptcpgd")); got != version {
		t.Errorf("installed version %s after the upgrade, want %s", got, version)
	}
	if got, _ := os.ReadFile(conf); string(got) != editedConfig {
		t.Errorf("the upgrade replaced the administrator's %s:\n%s", conf, got)
	}
	if got := guest.Property(t, service, "ActiveState"); got != "active" {
		t.Fatalf("after the upgrade the service is %s, want active", got)
	}
	if guest.Property(t, service, "MainPID") == pid {
		t.Error("the upgrade did not restart the service: it runs the old binary")
	}
	if after := ids(t, eth1, eth2); !maps.Equal(before, after) {
		t.Errorf("the upgrade re-created endpoints (ids %v, then %v): connections lost their subflows", before, after)
	}
	if err := guest.SubflowFrom(tr, eth2); err != nil {
		t.Errorf("after the upgrade the transfer has no subflow over eth2: %v", err)
	}
	select {
	case <-tr.Received():
		t.Fatal("the transfer ended before the upgrade did: it proves nothing, make it longer")
	default:
	}
	res := tr.Wait(t)
	if res.WriteErr != nil {
		t.Fatalf("sending across the upgrade: %v", res.WriteErr)
	}
	lab.CheckStream(t, res.Report, top.Client, top.Server)

	// Remove: our endpoints, rules and routes gone and the limits restored
	// before the binary went; the conffile kept.
	dpkg(t, "-r", "mptcpgd")
	if exists("/usr/sbin/mptcpgd") {
		t.Error("dpkg -r left /usr/sbin/mptcpgd")
	}
	if got := guest.Property(t, service, "ActiveState"); got == "active" {
		t.Error("the service still runs after dpkg -r")
	}
	eps := guest.Endpoints(t)
	for _, a := range []netip.Addr{eth1, eth2} {
		if e, ok := eps[a]; ok {
			t.Errorf("dpkg -r left the endpoint %v", e)
		}
	}
	if r := ownRouting(t); r != "" {
		t.Errorf("dpkg -r left rules or routes of ours:\n%s", r)
	}
	if got := guest.Limits(t); got != limitsBefore {
		t.Errorf("limits after dpkg -r: %v, want those found before: %v", got, limitsBefore)
	}
	if got, _ := os.ReadFile(conf); string(got) != editedConfig {
		t.Errorf("dpkg -r did not keep %s: %q", conf, got)
	}
	if got := status("mptcpgd"); got != "deinstall ok config-files" {
		t.Errorf("dpkg status after -r: %q", got)
	}

	// Purge: the conffiles and the state directory gone.
	dpkg(t, "-P", "mptcpgd")
	for _, p := range []string{conf, "/etc/iproute2/rt_protos.d/mptcpgd.conf", "/var/lib/mptcpgd", "/var/lib/private/mptcpgd", "/etc/systemd/system/mptcpgd.service"} {
		if exists(p) {
			t.Errorf("dpkg -P left %s", p)
		}
	}
	if got := status("mptcpgd"); got != "" && got != "unknown ok not-installed" {
		t.Errorf("dpkg status after -P: %q", got)
	}
}

// TestGuestDebBesideMptcpd: the packages install side by side; their
// services exclude each other (our unit's Conflicts=mptcp.service): the
// one started last runs.
func TestGuestDebBesideMptcpd(t *testing.T) {
	guest.Require(t)
	repo := guest.Repo(t)
	t.Cleanup(purgeAll)
	lab.NewTopology(t, lab.TopologyOptions{Variant: lab.DHCP, Client: lab.Machine(t)})
	mptcpd, _ := filepath.Glob(filepath.Join(repo, "bin", "guest-debs", "*.deb"))
	if len(mptcpd) == 0 {
		t.Fatal("no bin/guest-debs/*.deb: make test-guest fetches Debian's mptcpd (make guest-debs)")
	}

	dpkg(t, "-i", newestDeb(t))
	if got := guest.Property(t, service, "ActiveState"); got != "active" {
		t.Fatalf("after dpkg -i the service is %s, want active", got)
	}
	dpkg(t, append([]string{"-i"}, mptcpd...)...)
	if got := status("mptcpd"); got != "install ok installed" {
		t.Fatalf("mptcpd did not install beside mptcpgd: %q", got)
	}
	states := func() []string {
		return []string{guest.Property(t, "mptcp.service", "ActiveState"), guest.Property(t, service, "ActiveState")}
	}
	if got := states(); !slices.Equal(got, []string{"active", "inactive"}) {
		t.Errorf("after installing mptcpd: mptcp.service, mptcpgd.service %v, want active, inactive", got)
	}
	guest.Must(t, "systemctl", "start", service)
	if got := states(); !slices.Equal(got, []string{"inactive", "active"}) {
		t.Errorf("after systemctl start mptcpgd: mptcp.service, mptcpgd.service %v, want inactive, active", got)
	}
	guest.Must(t, "systemctl", "start", "mptcp.service")
	if got := states(); !slices.Equal(got, []string{"active", "inactive"}) {
		t.Errorf("after systemctl start mptcp: mptcp.service, mptcpgd.service %v, want active, inactive", got)
	}
}
