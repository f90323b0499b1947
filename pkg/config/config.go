// Package config reads mptcpgd's configuration file (/etc/mptcpgd.toml) into
// a validated Config, and answers the questions the daemon asks of it: which
// interfaces are managed and with which endpoint settings, and how many
// subflows to allow.
//
// Every key is optional and defaults to the value in Default. Problems are
// reported as "FILE:LINE: KEY: what is wrong"; keys inside [[interface]]
// entries are named interface[N].key with N counted from 1, in file order.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// DefaultPath is where the daemon looks for its configuration when none is
// named on the command line. Only this path may be absent.
const DefaultPath = "/etc/mptcpgd.toml"

// BuiltinSource is Config.Source for the built-in defaults.
const BuiltinSource = "built-in defaults"

// Log levels and formats, as written in the file. The levels are the names
// zapcore.Level parses.
const (
	LevelDebug = "debug"
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"

	FormatAuto    = "auto"    // journal under systemd, console on a TTY, json otherwise
	FormatJournal = "journal" // native journald fields
	FormatJSON    = "json"
	FormatConsole = "console"
)

// MinResyncInterval is the shortest safety-net resync period: a full
// resync dumps every link, address, route, rule and endpoint.
const MinResyncInterval = time.Second

// CheckLevel says whether level is a log level this configuration knows.
func CheckLevel(level string) error {
	switch level {
	case LevelDebug, LevelInfo, LevelWarn, LevelError:
		return nil
	}
	return fmt.Errorf("unknown level %s (want debug, info, warn or error)", quote(level))
}

// Config is a validated configuration.
type Config struct {
	// Source is the file the configuration came from, or BuiltinSource.
	Source     string
	Daemon     Daemon
	Log        Log
	Limits     Limits
	Endpoints  Endpoints
	Interfaces []Interface
	Routing    Routing
	Rejoin     Rejoin
	// NetworkManager is the [networkmanager] table.
	NetworkManager NetworkManager
	Metrics        Metrics
	// lines are the keys' lines in Source, for Validate's errors.
	lines map[string]int
}

// Daemon is the [daemon] table.
type Daemon struct {
	// ResyncInterval is the period of the safety-net full resync, at
	// least MinResyncInterval; 0 disables it.
	ResyncInterval time.Duration
	// CleanupOnExit removes our endpoints, rules and routes on stop.
	CleanupOnExit bool
}

// Log is the [log] table.
type Log struct {
	// Level is one of LevelDebug, LevelInfo, LevelWarn, LevelError.
	Level string
	// Format is one of FormatAuto, FormatJournal, FormatJSON, FormatConsole.
	Format string
}

// Limits is the [limits] table: the kernel's per-namespace MPTCP limits.
type Limits struct {
	// Subflows is the subflow limit, 0..8; ignored (and 0) when
	// SubflowsAuto is set.
	Subflows uint32
	// SubflowsAuto derives the subflow limit from the number of managed
	// endpoints: see SubflowsFor.
	SubflowsAuto bool
	// AddAddrAccepted is the ADD_ADDR limit, 0..8.
	AddAddrAccepted uint32
}

// SubflowsFor returns the subflow limit to apply when managedEndpoints
// endpoints are ours: the configured number, or with "auto"
// min(8, max(2, 2 x managedEndpoints)).
func (l Limits) SubflowsFor(managedEndpoints int) uint32 {
	if !l.SubflowsAuto {
		return l.Subflows
	}
	n := max(2, 2*max(managedEndpoints, 0))
	return uint32(min(netlinkmptcp.MaxLimit, n))
}

// Endpoints is the [endpoints] table: which addresses become endpoints, and
// their default flags.
type Endpoints struct {
	// Flags are the default endpoint flags (never IMPLICIT, never SIGNAL
	// with FULLMESH).
	Flags netlinkmptcp.Flags
	// IPv4 and IPv6 say which address families are managed (at least one).
	IPv4, IPv6 bool
	// Include and Exclude are interface name globs (path.Match syntax): an
	// interface is managed when an Include glob matches it and no Exclude
	// glob does, unless an [[interface]] entry matches it first.
	Include, Exclude []string
	// SkipLinkLocal, SkipULA and SkipTemporary leave those addresses alone.
	SkipLinkLocal bool
	SkipULA       bool
	SkipTemporary bool
	// RequireDefaultRoute manages an address only while its interface has a
	// default route in a table that is not ours.
	RequireDefaultRoute bool
}

// Interface is one [[interface]] entry: per-interface overrides.
type Interface struct {
	// Match is an interface name or glob (path.Match syntax).
	Match string
	// Flags override Endpoints.Flags when not nil.
	Flags *netlinkmptcp.Flags
	// Gateway4 and Gateway6 override the learned gateways when valid.
	Gateway4, Gateway6 netip.Addr
	// Port is announced with signal endpoints; 0 means none.
	Port uint16
	// Priority ranks the interface's addresses when there are more
	// candidates than endpoint slots: higher wins.
	Priority int
	// Manage false leaves matching interfaces alone.
	Manage bool
	// OnLink installs the configured gateways on-link (RTNH_F_ONLINK)
	// although they lie outside the interface's prefixes, as some
	// providers route them.
	OnLink bool
}

// Rejoin is the [rejoin] table: how a path that comes back is joined again
// (docs/architecture.md, "Rejoin").
type Rejoin struct {
	// GatewayTimeout bounds the wait for a gateway to answer before an
	// endpoint is (re-)added anyway; 0 does not wait.
	GatewayTimeout time.Duration
	// JoinTimeout is how long a connection may go without a subflow from
	// an endpoint after it was added before the join counts as failed.
	JoinTimeout time.Duration
	// RetryMax caps the doubling wait between retries of a failed join.
	RetryMax time.Duration
}

// What [networkmanager] mptcp_devices may say.
const (
	NMLeave  = "leave"  // NetworkManager's MPTCP devices are its own
	NMManage = "manage" // manage them anyway
)

// NetworkManager is the [networkmanager] table: what to do with the devices
// on which NetworkManager (1.40+) manages MPTCP endpoints itself
// (connection.mptcp-flags). On every reapply it removes the endpoints on
// its devices that it does not want, ours too, so the two would fight.
type NetworkManager struct {
	// MPTCPDevices is NMLeave or NMManage.
	MPTCPDevices string
}

// LeaveToNetworkManager says whether interfaces on which NetworkManager
// manages MPTCP are left to it.
func (c *Config) LeaveToNetworkManager() bool {
	return c.NetworkManager.MPTCPDevices != NMManage
}

// Metrics is the [metrics] table: where the daemon publishes its metrics
// besides the control socket (`mptcpgd metrics`). Both outputs are off by
// default; they are set up when the daemon starts, not on reload.
type Metrics struct {
	// Textfile is the node_exporter textfile-collector file to keep
	// up to date ("" for none): an absolute path ending in ".prom".
	Textfile string
	// TextfileInterval is how often the file is brought up to date; it is
	// rewritten only when the metrics changed.
	TextfileInterval time.Duration
	// Listen is the address of the HTTP listener serving /metrics
	// (invalid for none).
	Listen netip.AddrPort
}

// Routing is the [routing] table: per-interface source routing.
type Routing struct {
	// Enabled installs a rule and a table for each managed address.
	Enabled bool
	// TableBase plus the interface's ifindex is its routing table.
	TableBase uint32
	// RulePriority is the priority of our `from ADDR lookup TABLE` rules.
	RulePriority uint32
	// Protocol tags our routes and rules: what carries it is ours.
	Protocol uint8
}

// Default returns the built-in configuration, used when no file exists at
// DefaultPath and as the base every file's keys override.
func Default() *Config {
	return &Config{
		Source: BuiltinSource,
		Daemon: Daemon{
			ResyncInterval: 30 * time.Second,
		},
		Log: Log{
			Level:  LevelInfo,
			Format: FormatAuto,
		},
		Limits: Limits{
			Subflows:        4,
			AddAddrAccepted: 4,
		},
		Endpoints: Endpoints{
			Flags:         netlinkmptcp.FlagSubflow,
			IPv4:          true,
			IPv6:          true,
			Include:       []string{"*"},
			Exclude:       []string{"lo", "docker*", "br-*", "virbr*", "veth*", "tun*", "tap*", "wg*"},
			SkipLinkLocal: true,
			SkipTemporary: true,
		},
		Routing: Routing{
			Enabled:      true,
			TableBase:    10000,
			RulePriority: 10000,
			Protocol:     177,
		},
		Rejoin: Rejoin{
			GatewayTimeout: 30 * time.Second,
			JoinTimeout:    5 * time.Second,
			RetryMax:       time.Minute,
		},
		NetworkManager: NetworkManager{MPTCPDevices: NMLeave},
		Metrics: Metrics{
			TextfileInterval: 15 * time.Second,
		},
	}
}

// Load reads and parses the configuration file at path. When explicit is
// false (the path was not named by the user) and the file does not exist,
// it returns the built-in defaults; a missing explicitly named file is an
// error. A file larger than MaxSize is refused unread.
func Load(path string, explicit bool) (*Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return Default(), nil
	}
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("read configuration: %w: %s", err, chmodHint(path))
	}
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	if len(data) > MaxSize {
		return nil, tooLarge(path)
	}
	return Parse(path, data)
}

// ServiceCanRead says, as an error, when the file at path is not readable
// by others, which the unit's dynamic user is: the service would not start.
// It returns nil for a readable or a missing file.
func ServiceCanRead(path string) error {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o004 != 0 {
		return nil
	}
	return fmt.Errorf("%s has mode %04o: %s", path, fi.Mode().Perm(), chmodHint(path))
}

func chmodHint(path string) string {
	return "the systemd unit runs mptcpgd as an unprivileged dynamic user, which reads the configuration as \"others\": chmod 0644 " + path
}
