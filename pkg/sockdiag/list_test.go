package sockdiag

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

// fakeKernel is a socket-diagnostics connection whose kernel is answer: it
// gets each request's payload (the header is checked here) and returns the
// replies, which fakeKernel sends as a dump, or a syscall.Errno, which it
// sends as the kernel's error message.
func fakeKernel(t *testing.T, answer func(req []byte) ([]netlink.Message, error)) *netlink.Conn {
	t.Helper()
	conn := nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) {
		req := reqs[0]
		if req.Header.Type != unix.SOCK_DIAG_BY_FAMILY || req.Header.Flags != netlink.Request|netlink.Dump {
			t.Errorf("request header %+v, want SOCK_DIAG_BY_FAMILY with flags request,dump", req.Header)
		}
		replies, err := answer(req.Data)
		var errno syscall.Errno
		if errors.As(err, &errno) {
			msgs, err := nltest.Error(int(errno), reqs)
			// The request's dump flags would read as NLM_F_ACK_TLVS.
			msgs[0].Header.Flags = 0
			return msgs, err
		}
		if err != nil {
			return nil, err
		}
		out := make([]netlink.Message, 0, len(replies)+1)
		for _, m := range replies {
			m.Header = netlink.Header{Type: unix.SOCK_DIAG_BY_FAMILY, Flags: netlink.Multi, Sequence: req.Header.Sequence, PID: req.Header.PID}
			out = append(out, m)
		}
		return append(out, netlink.Message{
			Header: netlink.Header{Type: netlink.Done, Flags: netlink.Multi, Sequence: req.Header.Sequence, PID: req.Header.PID},
			Data:   make([]byte, 4),
		}), nil
	})
	t.Cleanup(func() { conn.Close() })
	return conn
}

// requestName names a request by what it asks for.
func requestName(req []byte) string {
	name := "tcp"
	if len(req) > reqSize {
		name = "mptcp"
	}
	if req[0] == unix.AF_INET6 {
		return name + "_ipv6"
	}
	return name + "_ipv4"
}

func TestListDumpsAndMatches(t *testing.T) {
	replies := map[string][][]byte{
		"mptcp_ipv4": {diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0, info{token: 7, subflows: 1}.encode(96))},
		"mptcp_ipv6": {diagMsg(unix.AF_INET6, StateEstablished, local6, remote6, 0, info{token: 8}.encode(96))},
		"tcp_ipv4": {
			diagMsg(unix.AF_INET, StateEstablished, join4, remote4, 42, ulp("mptcp",
				attr(subflowAttrTokenLoc, u32(7)), attr(subflowAttrIDLoc, u8(1)))),
			diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0, ulp("mptcp",
				attr(subflowAttrTokenLoc, u32(7)), attr(subflowAttrFlags, u32(subflowFlagMCapRem|subflowFlagMCapLoc)))),
			diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0), // a plain TCP connection
		},
		"tcp_ipv6": {diagMsg(unix.AF_INET6, StateEstablished, local6, remote6, 0, ulp("mptcp",
			attr(subflowAttrTokenLoc, u32(8)), attr(subflowAttrFlags, u32(subflowFlagMCapRem))))},
	}
	var asked []string
	got, err := list(fakeKernel(t, func(req []byte) ([]netlink.Message, error) {
		name := requestName(req)
		asked = append(asked, name)
		var msgs []netlink.Message
		for _, b := range replies[name] {
			msgs = append(msgs, netlink.Message{Data: b})
		}
		return msgs, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"mptcp_ipv4", "mptcp_ipv6", "tcp_ipv4", "tcp_ipv6"}; !cmp.Equal(asked, want) {
		t.Errorf("dumps %v, want %v", asked, want)
	}
	want := []Connection{
		{Token: 7, Local: local4, Remote: remote4, State: StateEstablished, JoinedSubflows: 1, ByteCounters: true, Subflows: []Subflow{
			{Local: local4, Remote: remote4, State: StateEstablished, Initial: true},
			{Local: join4, Remote: remote4, State: StateEstablished, LocalID: 1, IfIndex: 42},
		}},
		{Token: 8, Local: local6, Remote: remote6, State: StateEstablished, ServerSide: true, ByteCounters: true, Subflows: []Subflow{
			{Local: local6, Remote: remote6, State: StateEstablished, Initial: true},
		}},
	}
	if diff := cmp.Diff(want, got, equateAddrs); diff != "" {
		t.Errorf("list() (-want +got):\n%s", diff)
	}
}

func TestListErrors(t *testing.T) {
	good := func(req []byte) ([]netlink.Message, error) {
		if requestName(req) == "mptcp_ipv4" {
			return []netlink.Message{{Data: diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0, info{token: 7}.encode(96))}}, nil
		}
		return nil, nil
	}
	tests := []struct {
		name    string
		fail    string // the dump that fails
		err     error
		wantErr []string
		wantIs  error
	}{
		{
			name:    "no MPTCP socket diagnostics",
			fail:    "mptcp_ipv4",
			err:     unix.ENOENT,
			wantErr: []string{"list MPTCP connections (IPv4): the kernel has no MPTCP socket diagnostics (CONFIG_INET_MPTCP_DIAG, module mptcp_diag)", "no such file or directory"},
			wantIs:  unix.ENOENT,
		},
		{
			name:    "MPTCP dump refused",
			fail:    "mptcp_ipv6",
			err:     unix.EPERM,
			wantErr: []string{"list MPTCP connections (IPv6): ", "operation not permitted"},
			wantIs:  unix.EPERM,
		},
		{
			name:    "TCP dump refused",
			fail:    "tcp_ipv4",
			err:     unix.EACCES,
			wantErr: []string{"list MPTCP subflows (IPv4 TCP sockets): ", "permission denied"},
			wantIs:  unix.EACCES,
		},
		{
			name:    "undecodable MPTCP reply",
			fail:    "mptcp_ipv6",
			wantErr: []string{"list MPTCP connections (IPv6): socket diagnostics message of 3 bytes, want at least 72"},
		},
		{
			name:    "undecodable TCP reply",
			fail:    "tcp_ipv6",
			wantErr: []string{"list MPTCP subflows (IPv6 TCP sockets): socket diagnostics message of 3 bytes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := list(fakeKernel(t, func(req []byte) ([]netlink.Message, error) {
				if requestName(req) != tt.fail {
					return good(req)
				}
				if tt.err != nil {
					return nil, tt.err
				}
				return []netlink.Message{{Data: []byte{2, 1, 0}}}, nil
			}))
			if err == nil {
				t.Fatal("list() succeeded")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("list() error %q does not contain %q", err, want)
				}
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("list() error %v does not match %v", err, tt.wantIs)
			}
		})
	}
}

// TestListWithoutIPv6: a kernel without IPv6 has no AF_INET6 diagnostics
// and answers ENOENT; the IPv4 connections are still listed.
func TestListWithoutIPv6(t *testing.T) {
	var asked []string
	got, err := list(fakeKernel(t, func(req []byte) ([]netlink.Message, error) {
		asked = append(asked, requestName(req))
		switch {
		case req[0] == unix.AF_INET6:
			return nil, unix.ENOENT
		case requestName(req) == "mptcp_ipv4":
			return []netlink.Message{{Data: diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0, info{token: 7}.encode(96))}}, nil
		}
		return nil, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Token != 7 {
		t.Errorf("list() = %+v, want the IPv4 connection", got)
	}
	if want := []string{"mptcp_ipv4", "mptcp_ipv6", "tcp_ipv4"}; !cmp.Equal(asked, want) {
		t.Errorf("dumps %v, want %v", asked, want)
	}
}
