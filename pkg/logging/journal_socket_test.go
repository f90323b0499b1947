package logging

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// go-systemd's journal writes to a fixed path, so the datagram test runs the
// test binary again in a private mount namespace with a tmpfs over /run, where
// it listens on that path itself: the host's journal never sees these entries.
const (
	// journalChildEnv makes the test binary act as the child; its value is
	// the parent's mount namespace, which the child must not be in.
	journalChildEnv   = "MPTCPGD_LOGGING_JOURNAL_CHILD"
	journalSocketPath = "/run/systemd/journal/socket"
	endOfCase         = "end of case"
)

func TestMain(m *testing.M) {
	if parentNS := os.Getenv(journalChildEnv); parentNS != "" {
		if err := runJournalChild(parentNS); err != nil {
			fmt.Fprintln(os.Stderr, "journal child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// datagramCase logs through a logger built from opt; want lists the
// datagrams journald should receive, decoded.
type datagramCase struct {
	name string
	opt  Options
	log  func(*Logger, AtomicLevel)
	want []map[string]string
	// raw must appear in one of the datagrams byte for byte.
	raw []byte
}

var datagramCases = []datagramCase{
	{
		name: "fields",
		opt:  Options{Format: "journal"},
		log: func(l *Logger, _ AtomicLevel) {
			l.Named("pm").With(zap.String(FieldIface, "eth1")).Info("endpoint added",
				zap.Stringer(FieldAddr, netip.MustParseAddr("2001:db8::2")),
				zap.Uint8(FieldEndpointID, 3),
				zap.Int(FieldTable, 10002),
				zap.Duration("hold_down", time.Second),
				zap.String("gw-family", "ipv6"),
				zap.Error(errors.New("address exists")))
		},
		want: []map[string]string{{
			"PRIORITY":          "6",
			"MESSAGE":           `pm: endpoint added iface=eth1 addr=2001:db8::2 endpoint_id=3 table=10002 hold_down=1s gw-family=ipv6 error="address exists"`,
			"SYSLOG_IDENTIFIER": "mptcpgd",
			"LOGGER":            "pm",
			"IFACE":             "eth1",
			"ADDR":              "2001:db8::2",
			"ENDPOINT_ID":       "3",
			"TABLE":             "10002",
			"HOLD_DOWN":         "1s",
			"GW_FAMILY":         "ipv6",
			"ERROR":             "address exists",
		}},
	},
	{
		name: "multi-line message",
		opt:  Options{Format: "journal", Identifier: "mptcpgd-test"},
		log: func(l *Logger, _ AtomicLevel) {
			l.Warn("line one\nline two")
		},
		want: []map[string]string{{
			"PRIORITY":          "4",
			"MESSAGE":           "line one\nline two",
			"SYSLOG_IDENTIFIER": "mptcpgd-test",
		}},
		// journald's binary form: name, newline, little-endian 64-bit
		// length, the bytes, newline.
		raw: append(append([]byte("MESSAGE\n"), binary.LittleEndian.AppendUint64(nil, 17)...), "line one\nline two\n"...),
	},
	{
		name: "levels",
		opt:  Options{Format: "journal", Level: "warn"},
		log: func(l *Logger, level AtomicLevel) {
			l.Info("filtered")
			l.Error("failed")
			level.SetLevel(zap.DebugLevel)
			l.Debug("debug after level change")
		},
		want: []map[string]string{
			{"PRIORITY": "3", "MESSAGE": "failed", "SYSLOG_IDENTIFIER": "mptcpgd"},
			{"PRIORITY": "7", "MESSAGE": "debug after level change", "SYSLOG_IDENTIFIER": "mptcpgd"},
		},
	},
	{
		// The child points JOURNAL_STREAM at its standard error, as systemd
		// does for a service whose output goes to the journal.
		name: "auto format under systemd",
		opt:  Options{Format: "auto"},
		log: func(l *Logger, _ AtomicLevel) {
			l.Info("auto")
		},
		want: []map[string]string{{"PRIORITY": "6", "MESSAGE": "auto", "SYSLOG_IDENTIFIER": "mptcpgd"}},
	},
}

func TestJournalDatagrams(t *testing.T) {
	requireRoot(t, "needs root to mount a private /run for the journal socket")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), journalChildEnv+"="+ns)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A new mount namespace, with every mount made private so that the
	// tmpfs over /run stays inside it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if err := cmd.Run(); err != nil {
		t.Fatalf("journal child: %v\nstderr:\n%s", err, stderr.String())
	}
	// go-systemd complains on stderr about field names journald refuses,
	// and zap reports failed sends there.
	if stderr.Len() > 0 {
		t.Errorf("journal child wrote to stderr:\n%s", stderr.String())
	}
	var got map[string][][]byte
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("decode child output: %v\n%s", err, stdout.String())
	}
	for _, c := range datagramCases {
		t.Run(c.name, func(t *testing.T) {
			var decoded []map[string]string
			for _, d := range got[c.name] {
				fields, err := parseDatagram(d)
				if err != nil {
					t.Fatalf("datagram %q: %v", d, err)
				}
				decoded = append(decoded, fields)
			}
			if diff := cmp.Diff(c.want, decoded); diff != "" {
				t.Errorf("datagrams (-want +got):\n%s", diff)
			}
			if c.raw != nil && !bytes.Contains(bytes.Join(got[c.name], nil), c.raw) {
				t.Errorf("no datagram contains %q; got %q", c.raw, got[c.name])
			}
		})
	}
}

// runJournalChild listens on the journal socket in a private /run, logs every
// datagramCase and writes the datagrams each produced to stdout as JSON.
func runJournalChild(parentNS string) error {
	ns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return err
	}
	if ns == parentNS {
		return fmt.Errorf("still in the parent's mount namespace %s: refusing to mount over /run", ns)
	}
	if err := unix.Mount("tmpfs", "/run", "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs on /run: %w", err)
	}
	if err := os.MkdirAll("/run/systemd/journal", 0o755); err != nil {
		return err
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: journalSocketPath, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()

	var st unix.Stat_t
	if err := unix.Fstat(2, &st); err != nil {
		return err
	}
	if err := os.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino)); err != nil {
		return err
	}

	// Each case ends with a marker entry, so that the datagrams of a case
	// are exactly those read before its marker, with no waiting for
	// entries that should not come.
	marker, _, err := New(Options{Format: "journal", Level: "error"})
	if err != nil {
		return err
	}
	got := make(map[string][][]byte)
	buf := make([]byte, 1<<16)
	for _, c := range datagramCases {
		l, level, err := New(c.opt)
		if err != nil {
			return fmt.Errorf("case %s: %w", c.name, err)
		}
		c.log(l, level)
		marker.Error(endOfCase)
		for {
			// Only a guard against hanging when an entry never arrives.
			if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				return err
			}
			n, err := conn.Read(buf)
			if err != nil {
				return fmt.Errorf("case %s: read journal socket: %w", c.name, err)
			}
			d := bytes.Clone(buf[:n])
			if bytes.Contains(d, []byte("\nMESSAGE="+endOfCase+"\n")) {
				break
			}
			got[c.name] = append(got[c.name], d)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(got)
}

// parseDatagram decodes journald's native protocol: NAME=value lines, or
// NAME, newline, a little-endian 64-bit length, the value and a newline.
func parseDatagram(b []byte) (map[string]string, error) {
	fields := make(map[string]string)
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("unterminated field %q", b)
		}
		line := b[:nl]
		var name, value string
		if eq := bytes.IndexByte(line, '='); eq >= 0 {
			name, value = string(line[:eq]), string(line[eq+1:])
			b = b[nl+1:]
		} else {
			name = string(line)
			rest := b[nl+1:]
			if len(rest) < 8 {
				return nil, fmt.Errorf("field %s: no length", name)
			}
			n := binary.LittleEndian.Uint64(rest)
			rest = rest[8:]
			if uint64(len(rest)) < n+1 || rest[n] != '\n' {
				return nil, fmt.Errorf("field %s: length %d does not fit %q", name, n, rest)
			}
			value = string(rest[:n])
			b = rest[n+1:]
		}
		if _, dup := fields[name]; dup {
			return nil, fmt.Errorf("field %s sent twice", name)
		}
		fields[name] = value
	}
	return fields, nil
}

// requireRoot skips a test that needs root, except under CI=true, where CI
// runs as root and such a skip is a failure.
func requireRoot(t *testing.T, reason string) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, reason)
	}
}
