// Package nmdbus reads from NetworkManager, over the D-Bus system bus, what
// nmpolicy decides on: its devices, their applied connections' MPTCP flags
// and whether it gave them default routes; plus NetworkManager.conf's
// defaults (which D-Bus does not expose) and net.mptcp.enabled. Watch
// follows NetworkManager's signals and reads again after each burst of
// them, rather than trusting what each one says.
package nmdbus

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/mptcpgd/mptcpgd/pkg/nmpolicy"
)

const (
	busName      = "org.freedesktop.NetworkManager"
	rootPath     = dbus.ObjectPath("/org/freedesktop/NetworkManager")
	deviceIface  = "org.freedesktop.NetworkManager.Device"
	ipConfig4    = "org.freedesktop.NetworkManager.IP4Config"
	ipConfig6    = "org.freedesktop.NetworkManager.IP6Config"
	propertiesIf = "org.freedesktop.DBus.Properties"
)

// Files are where the reader looks for NetworkManager.conf and the sysctl.
type Files struct {
	// Main is NetworkManager.conf; ConfDirs hold its conf.d snippets, in
	// rising precedence: a snippet shadows one of the same name in an
	// earlier directory.
	Main     string
	ConfDirs []string
	// Sysctl is net.mptcp.enabled.
	Sysctl string
}

// DefaultFiles are NetworkManager's own paths.
var DefaultFiles = Files{
	Main:     "/etc/NetworkManager/NetworkManager.conf",
	ConfDirs: []string{"/usr/lib/NetworkManager/conf.d", "/run/NetworkManager/conf.d", "/etc/NetworkManager/conf.d"},
	Sysctl:   "/proc/sys/net/mptcp/enabled",
}

// Reader reads NetworkManager's state from one bus connection.
type Reader struct {
	conn  *dbus.Conn
	files Files
}

// Dial connects to the system bus. It fails when there is none (no
// dbus-daemon, or a sandbox without its socket); NetworkManager not running
// is not an error (Read then says so).
func Dial(files Files) (*Reader, error) {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return nil, fmt.Errorf("connect to the D-Bus system bus: %w", err)
	}
	return &Reader{conn: conn, files: files}, nil
}

// Close closes the bus connection.
func (r *Reader) Close() error { return r.conn.Close() }

// Read reads what NetworkManager does with MPTCP now; ctx bounds the calls.
func (r *Reader) Read(ctx context.Context) (nmpolicy.Report, error) {
	readAt := time.Now()
	var owned bool
	if err := r.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, busName).Store(&owned); err != nil {
		return nmpolicy.Report{}, fmt.Errorf("ask the bus whether %s runs: %w", busName, err)
	}
	if !owned {
		return nmpolicy.Report{ReadAt: readAt}, nil
	}
	root := r.conn.Object(busName, rootPath)
	rep := nmpolicy.Report{Running: true, ReadAt: readAt}
	if v, err := getProperty(ctx, root, busName, "Version"); err == nil {
		rep.Version, _ = v.Value().(string)
	}
	var devices []dbus.ObjectPath
	if err := root.CallWithContext(ctx, busName+".GetDevices", 0).Store(&devices); err != nil {
		return nmpolicy.Report{}, fmt.Errorf("list NetworkManager's devices: %w", err)
	}
	host := nmpolicy.Host{SysctlEnabled: readSysctl(r.files.Sysctl)}
	conf := readConf(r.files)
	for _, p := range devices {
		d, ok := r.device(ctx, p)
		if !ok {
			continue
		}
		host.ConfFlags, host.ConfSource = nmpolicy.ConfDefault(conf, d.Interface)
		v := nmpolicy.Decide(d, host)
		rep.Devices = append(rep.Devices, nmpolicy.DeviceVerdict{
			Interface: d.Interface, Profile: d.Profile, On: v.On, Flags: v.Flags.String(), Reason: v.Reason,
		})
	}
	slices.SortFunc(rep.Devices, func(a, b nmpolicy.DeviceVerdict) int { return strings.Compare(a.Interface, b.Interface) })
	return rep, nil
}

// device reads one device; false when it has no connection applied, or
// went away meanwhile.
func (r *Reader) device(ctx context.Context, p dbus.ObjectPath) (nmpolicy.Device, bool) {
	obj := r.conn.Object(busName, p)
	var props map[string]dbus.Variant
	if err := obj.CallWithContext(ctx, propertiesIf+".GetAll", 0, deviceIface).Store(&props); err != nil {
		return nmpolicy.Device{}, false
	}
	ac, _ := props["ActiveConnection"].Value().(dbus.ObjectPath)
	if ac == "" || ac == "/" {
		return nmpolicy.Device{}, false
	}
	d := nmpolicy.Device{Interface: str(props["IpInterface"])}
	if d.Interface == "" {
		d.Interface = str(props["Interface"])
	}
	var settings map[string]map[string]dbus.Variant
	var version uint64
	if err := obj.CallWithContext(ctx, deviceIface+".GetAppliedConnection", 0, uint32(0)).Store(&settings, &version); err != nil {
		return nmpolicy.Device{}, false
	}
	con := settings["connection"]
	d.Profile = str(con["id"])
	if f, ok := con["mptcp-flags"].Value().(uint32); ok {
		d.ProfileFlags = nmpolicy.Flags(f)
	}
	// NMDeviceState: prepare (40) to secondaries (90) are the steps of an
	// activation, activated is 100.
	if st, ok := props["State"].Value().(uint32); ok && st >= 40 && st < 100 {
		d.Activating = true
	}
	d.DefaultRoute4 = r.hasDefaultRoute(ctx, props["Ip4Config"], ipConfig4)
	d.DefaultRoute6 = r.hasDefaultRoute(ctx, props["Ip6Config"], ipConfig6)
	return d, d.Profile != ""
}

// hasDefaultRoute tells whether the device's IP configuration holds a
// default route in the main table.
func (r *Reader) hasDefaultRoute(ctx context.Context, cfg dbus.Variant, iface string) bool {
	p, _ := cfg.Value().(dbus.ObjectPath)
	if p == "" || p == "/" {
		return false
	}
	v, err := getProperty(ctx, r.conn.Object(busName, p), iface, "RouteData")
	if err != nil {
		return false
	}
	routes, _ := v.Value().([]map[string]dbus.Variant)
	for _, rt := range routes {
		prefix, _ := rt["prefix"].Value().(uint32)
		table, hasTable := rt["table"].Value().(uint32)
		kind, hasType := rt["type"].Value().(string)
		if prefix == 0 && (!hasTable || table == 0 || table == 254) && (!hasType || kind == "unicast") {
			return true
		}
	}
	return false
}

func getProperty(ctx context.Context, obj dbus.BusObject, iface, name string) (dbus.Variant, error) {
	var v dbus.Variant
	err := obj.CallWithContext(ctx, propertiesIf+".Get", 0, iface, name).Store(&v)
	return v, err
}

func str(v dbus.Variant) string {
	s, _ := v.Value().(string)
	return s
}

// readSysctl tells whether net.mptcp.enabled is on; unreadable is off, as
// NetworkManager takes it.
func readSysctl(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// readConf reads NetworkManager.conf and its conf.d snippets in the order
// NetworkManager does: the main file, then the snippets by name, a name in
// a later directory shadowing the same name in an earlier one. Unreadable
// files are skipped, as they would be were they absent.
func readConf(f Files) []nmpolicy.ConfFile {
	var out []nmpolicy.ConfFile
	if b, err := os.ReadFile(f.Main); err == nil {
		out = append(out, nmpolicy.ConfFile{Path: f.Main, Text: string(b)})
	}
	byName := map[string]string{}
	for _, dir := range f.ConfDirs {
		names, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
		for _, n := range names {
			byName[filepath.Base(n)] = n
		}
	}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		p := byName[name]
		if b, err := os.ReadFile(p); err == nil {
			out = append(out, nmpolicy.ConfFile{Path: p, Text: string(b)})
		}
	}
	return out
}
