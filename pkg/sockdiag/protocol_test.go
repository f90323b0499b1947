package sockdiag

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"
)

// The expected bytes below are little-endian, as the kernel's on the
// machines we test on; the requests' ports and addresses are zero, so only
// the native-endian idiag_states and attribute words differ elsewhere.
func requireLittleEndian(t *testing.T) {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the expected bytes are those of a little-endian machine")
	}
}

func TestRequestEncode(t *testing.T) {
	requireLittleEndian(t)
	zeroID := strings.Repeat("00", 48) // struct inet_diag_sockid: every socket
	tests := []struct {
		name string
		req  request
		want string
	}{
		{
			// AF_INET, u8 protocol TCP (the attribute carries the real one),
			// idiag_ext INET_DIAG_INFO, states 0x1bfe (1..12 but LISTEN),
			// then INET_DIAG_REQ_PROTOCOL = 262.
			name: "MPTCP IPv4",
			req:  mptcpRequest(unix.AF_INET),
			want: "02060200" + "fe1b0000" + zeroID + "08000300" + "06010000",
		},
		{
			name: "MPTCP IPv6",
			req:  mptcpRequest(unix.AF_INET6),
			want: "0a060200" + "fe1b0000" + zeroID + "08000300" + "06010000",
		},
		{
			// TCP fits the u8: no attribute. States 0x0bbe leave out
			// LISTEN, TIME-WAIT and NEW-SYN-RECV.
			name: "TCP IPv4",
			req:  subflowRequest(unix.AF_INET),
			want: "02060200" + "be0b0000" + zeroID,
		},
		{
			name: "TCP IPv6",
			req:  subflowRequest(unix.AF_INET6),
			want: "0a060200" + "be0b0000" + zeroID,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hex.EncodeToString(tt.req.encode()); got != tt.want {
				t.Errorf("encode() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// Builders of kernel replies.

// diagMsg lays out struct inet_diag_msg followed by attrs.
func diagMsg(family uint8, state State, local, remote netip.AddrPort, ifIndex uint32, attrs ...[]byte) []byte {
	b := make([]byte, msgSize)
	b[0], b[1] = family, uint8(state)
	binary.BigEndian.PutUint16(b[4:], local.Port())
	binary.BigEndian.PutUint16(b[6:], remote.Port())
	put := func(dst []byte, a netip.Addr) {
		if family == unix.AF_INET6 {
			s := a.As16()
			copy(dst, s[:])
			return
		}
		s := a.As4()
		copy(dst, s[:])
	}
	put(b[8:24], local.Addr())
	put(b[24:40], remote.Addr())
	binary.NativeEndian.PutUint32(b[40:], ifIndex)
	binary.NativeEndian.PutUint32(b[68:], 12345) // idiag_inode: not read
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

// attr is one netlink attribute, padded to 4 bytes.
func attr(typ uint16, data []byte) []byte {
	b := make([]byte, 4, 4+len(data)+3)
	binary.NativeEndian.PutUint16(b[0:], uint16(4+len(data)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// nest is an attribute holding attrs, without the NLA_F_NESTED flag, as
// the kernel sends INET_DIAG_ULP_INFO.
func nest(typ uint16, attrs ...[]byte) []byte {
	var data []byte
	for _, a := range attrs {
		data = append(data, a...)
	}
	return attr(typ, data)
}

func u8(v uint8) []byte { return []byte{v} }

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// info is struct mptcp_info of size bytes (96 on 6.10+, 48 before 6.5).
type info struct {
	subflows, addAddrSignal, addAddrAccepted, subflowsMax, localAddrUsed uint8
	flags, token                                                         uint32
	bytesSent, bytesReceived                                             uint64
}

func (i info) encode(size int) []byte {
	b := make([]byte, 96)
	b[infoSubflows], b[infoAddAddrSignal], b[infoAddAddrAccepted], b[infoSubflowsMax] = i.subflows, i.addAddrSignal, i.addAddrAccepted, i.subflowsMax
	b[infoLocalAddrUsed] = i.localAddrUsed
	binary.NativeEndian.PutUint32(b[infoFlags:], i.flags)
	binary.NativeEndian.PutUint32(b[infoToken:], i.token)
	binary.NativeEndian.PutUint64(b[16:], 0x1111) // write_seq: not read
	binary.NativeEndian.PutUint64(b[infoBytesSent:], i.bytesSent)
	binary.NativeEndian.PutUint64(b[infoBytesReceived:], i.bytesReceived)
	return attr(diagAttrInfo, b[:size])
}

// ulp is INET_DIAG_ULP_INFO with name and, if any, MPTCP attributes.
func ulp(name string, mptcp ...[]byte) []byte {
	attrs := [][]byte{attr(ulpInfoName, append([]byte(name), 0))}
	if mptcp != nil {
		attrs = append(attrs, nest(ulpInfoMPTCP, mptcp...))
	}
	return nest(diagAttrULPInfo, attrs...)
}

var (
	local4  = netip.MustParseAddrPort("192.0.2.2:41000")
	remote4 = netip.MustParseAddrPort("192.0.2.1:8080")
	join4   = netip.MustParseAddrPort("198.51.100.2:45001")
	local6  = netip.MustParseAddrPort("[2001:db8:1::2]:41001")
	remote6 = netip.MustParseAddrPort("[2001:db8:1::1]:8080")
	mapped  = func(ap netip.AddrPort) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
	}
)

func TestParseConnection(t *testing.T) {
	full := info{subflows: 1, addAddrSignal: 2, addAddrAccepted: 3, subflowsMax: 4, localAddrUsed: 5,
		token: 0xdeadbeef, bytesSent: 1 << 40, bytesReceived: 7}
	tests := []struct {
		name    string
		msg     []byte
		want    Connection
		wantErr string
	}{
		{
			name: "IPv4 with the whole struct",
			msg:  diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0, attr(8, u8(0)), full.encode(96)),
			want: Connection{Token: 0xdeadbeef, Local: local4, Remote: remote4, State: StateEstablished,
				JoinedSubflows: 1, MaxSubflows: 4, AddAddrSignal: 2, AddAddrAccepted: 3, LocalAddrUsed: 5,
				BytesSent: 1 << 40, BytesReceived: 7, ByteCounters: true},
		},
		{
			name: "IPv6",
			msg:  diagMsg(unix.AF_INET6, StateFinWait1, local6, remote6, 0, full.encode(96)),
			want: Connection{Token: 0xdeadbeef, Local: local6, Remote: remote6, State: StateFinWait1,
				JoinedSubflows: 1, MaxSubflows: 4, AddAddrSignal: 2, AddAddrAccepted: 3, LocalAddrUsed: 5,
				BytesSent: 1 << 40, BytesReceived: 7, ByteCounters: true},
		},
		{
			name: "IPv6 socket with an IPv4 peer: IPv4-mapped addresses come out as IPv4",
			msg:  diagMsg(unix.AF_INET6, StateEstablished, mapped(local4), mapped(remote4), 0, info{token: 9}.encode(96)),
			want: Connection{Token: 9, Local: local4, Remote: remote4, State: StateEstablished, ByteCounters: true},
		},
		{
			name: "fallback to TCP",
			msg:  diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0, info{token: 9, flags: infoFlagFallback}.encode(96)),
			want: Connection{Token: 9, Local: local4, Remote: remote4, State: StateEstablished, Fallback: true, ByteCounters: true},
		},
		{
			name: "older kernel without byte counters: unknown, not zero",
			msg:  diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0, full.encode(48)),
			want: Connection{Token: 0xdeadbeef, Local: local4, Remote: remote4, State: StateEstablished,
				JoinedSubflows: 1, MaxSubflows: 4, AddAddrSignal: 2, AddAddrAccepted: 3, LocalAddrUsed: 5},
		},
		{
			name:    "MPTCP info too short for the token",
			msg:     diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0, full.encode(12)),
			wantErr: "MPTCP socket 192.0.2.2:41000: MPTCP info of 12 bytes, want at least 16",
		},
		{
			name:    "no MPTCP info",
			msg:     diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0),
			wantErr: "MPTCP info of 0 bytes",
		},
		{
			name:    "truncated attribute",
			msg:     diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0, []byte{8, 0, 2}),
			wantErr: "decode MPTCP socket 192.0.2.2:41000",
		},
		{
			name:    "unknown address family",
			msg:     diagMsg(unix.AF_UNIX, StateEstablished, local4, remote4, 0, full.encode(96)),
			wantErr: "address family 1, want AF_INET or AF_INET6",
		},
		{
			name:    "short message",
			msg:     diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0)[:71],
			wantErr: "socket diagnostics message of 71 bytes, want at least 72",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConnection(tt.msg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseConnection() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, equateAddrs); diff != "" {
				t.Errorf("parseConnection() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseSubflow(t *testing.T) {
	mptcpAttrs := func(flags uint32) [][]byte {
		return [][]byte{
			attr(1, u32(0x0badcafe)), // TOKEN_REM: the peer's token, not ours
			attr(subflowAttrTokenLoc, u32(0xdeadbeef)),
			attr(4, make([]byte, 8)), // MAP_SEQ, u64
			attr(subflowAttrFlags, u32(flags)),
			attr(subflowAttrIDRem, u8(3)),
			attr(subflowAttrIDLoc, u8(2)),
		}
	}
	joined := Subflow{Local: join4, Remote: remote4, State: StateEstablished, LocalID: 2, RemoteID: 3, IfIndex: 42}
	with := func(f func(*Subflow)) Subflow {
		s := joined
		f(&s)
		return s
	}
	tests := []struct {
		name      string
		msg       []byte
		want      Subflow
		wantFlags uint32
		notOurs   bool
		wantErr   string
	}{
		{
			name:      "joined subflow bound to a device",
			msg:       diagMsg(unix.AF_INET, StateEstablished, join4, remote4, 42, attr(diagAttrInfo, make([]byte, 232)), ulp("mptcp", mptcpAttrs(0x4|0x8|0x40)...)),
			want:      joined,
			wantFlags: 0x4 | 0x8 | 0x40,
		},
		{
			name:      "initial subflow of the side that opened it",
			msg:       diagMsg(unix.AF_INET, StateEstablished, join4, remote4, 42, ulp("mptcp", mptcpAttrs(subflowFlagMCapRem|subflowFlagMCapLoc)...)),
			want:      with(func(s *Subflow) { s.Initial = true }),
			wantFlags: subflowFlagMCapRem | subflowFlagMCapLoc,
		},
		{
			name:      "backup asked by the peer",
			msg:       diagMsg(unix.AF_INET, StateEstablished, join4, remote4, 42, ulp("mptcp", mptcpAttrs(subflowFlagBackupRem)...)),
			want:      with(func(s *Subflow) { s.Backup = true }),
			wantFlags: subflowFlagBackupRem,
		},
		{
			name:      "backup asked by this host",
			msg:       diagMsg(unix.AF_INET, StateEstablished, join4, remote4, 42, ulp("mptcp", mptcpAttrs(subflowFlagBackupLoc)...)),
			want:      with(func(s *Subflow) { s.Backup = true }),
			wantFlags: subflowFlagBackupLoc,
		},
		{
			name: "IPv4-mapped",
			msg:  diagMsg(unix.AF_INET6, StateSynSent, mapped(join4), mapped(remote4), 0, ulp("mptcp", mptcpAttrs(0)...)),
			want: with(func(s *Subflow) { s.State, s.IfIndex = StateSynSent, 0 }),
		},
		{
			name:    "plain TCP socket",
			msg:     diagMsg(unix.AF_INET, StateEstablished, join4, remote4, 0, attr(diagAttrInfo, make([]byte, 232))),
			notOurs: true,
		},
		{
			name:    "another ULP",
			msg:     diagMsg(unix.AF_INET, StateEstablished, join4, remote4, 0, ulp("tls", attr(1, u32(7)))),
			notOurs: true,
		},
		{
			name:    "MPTCP ULP without its information",
			msg:     diagMsg(unix.AF_INET, StateEstablished, join4, remote4, 0, ulp("mptcp")),
			notOurs: true,
		},
		{
			name:    "no token yet",
			msg:     diagMsg(unix.AF_INET, StateSynSent, join4, remote4, 0, ulp("mptcp", attr(subflowAttrTokenLoc, u32(0)))),
			notOurs: true,
		},
		{
			name:    "token of the wrong size",
			msg:     diagMsg(unix.AF_INET, StateEstablished, join4, remote4, 0, ulp("mptcp", attr(subflowAttrTokenLoc, []byte{1, 2}))),
			wantErr: "decode TCP socket 198.51.100.2:45001",
		},
		{
			name:    "malformed ULP nest",
			msg:     diagMsg(unix.AF_INET, StateEstablished, join4, remote4, 0, attr(diagAttrULPInfo, []byte{9, 0, 1})),
			wantErr: "decode TCP socket 198.51.100.2:45001",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, ok, err := parseSubflow(tt.msg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseSubflow() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ok == tt.notOurs {
				t.Fatalf("parseSubflow() ok = %t, want %t (record %+v)", ok, !tt.notOurs, rec)
			}
			if !ok {
				return
			}
			if rec.token != 0xdeadbeef || rec.flags != tt.wantFlags {
				t.Errorf("token %08x flags %#x, want deadbeef and %#x", rec.token, rec.flags, tt.wantFlags)
			}
			if diff := cmp.Diff(tt.want, rec.Subflow, equateAddrs); diff != "" {
				t.Errorf("parseSubflow() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAssemble(t *testing.T) {
	sf := func(local string, localID uint8, initial bool, flags uint32) subflowRecord {
		return subflowRecord{token: 1, flags: flags, Subflow: Subflow{
			Local: netip.MustParseAddrPort(local), Remote: remote4, LocalID: localID, Initial: initial}}
	}
	withToken := func(r subflowRecord, token uint32) subflowRecord {
		r.token = token
		return r
	}
	conns := []Connection{{Token: 2, Local: local4}, {Token: 1, Local: local4}, {Token: 3}}
	got := assemble(conns, []subflowRecord{
		sf("198.51.100.2:45002", 2, false, 0),
		sf("198.51.100.2:45001", 1, false, 0),
		sf("192.0.2.2:41000", 0, true, subflowFlagMCapRem|subflowFlagMCapLoc),
		withToken(sf("192.0.2.2:41001", 0, true, subflowFlagMCapRem), 2),
		withToken(sf("192.0.2.9:41009", 0, true, 0), 99), // its connection closed between the dumps
	})
	want := []Connection{
		{Token: 1, Local: local4, Subflows: []Subflow{
			sf("192.0.2.2:41000", 0, true, 0).Subflow,
			sf("198.51.100.2:45001", 1, false, 0).Subflow,
			sf("198.51.100.2:45002", 2, false, 0).Subflow,
		}},
		{Token: 2, Local: local4, ServerSide: true, Subflows: []Subflow{sf("192.0.2.2:41001", 0, true, 0).Subflow}},
		{Token: 3},
	}
	if diff := cmp.Diff(want, got, equateAddrs); diff != "" {
		t.Errorf("assemble() (-want +got):\n%s", diff)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{
		StateEstablished: "established", StateFinWait2: "fin-wait-2", StateClose: "close",
		StateNewSynRecv: "new-syn-recv", 0: "state(0)", 13: "state(13)",
	} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", s, got, want)
		}
	}
}

// equateAddrs lets cmp compare netip values, which have unexported fields.
var equateAddrs = cmpopts.EquateComparable(netip.AddrPort{}, netip.Addr{})
