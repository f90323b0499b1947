package netlinkmptcp

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

// The fake kernel answers a Client without a kernel, the way the kernel's
// generic netlink does: the family by name, acknowledgements for
// NLM_F_ACK, multi-part dumps, and errors with extended-ack text.

var testFamily = genetlink.Family{
	ID:      0x1d,
	Version: familyVersion,
	Name:    familyName,
	Groups: []genetlink.MulticastGroup{
		{ID: 9, Name: "mptcp_pm_cmds"},
		{ID: 10, Name: eventsGroupName},
	},
}

// kernelError makes the fake kernel refuse a request with an errno and an
// extended-acknowledgement text.
type kernelError struct {
	errno unix.Errno
	text  string
}

func (e kernelError) Error() string { return fmt.Sprintf("%v: %s", e.errno, e.text) }

// request is one request the fake kernel received.
type request struct {
	typ     netlink.HeaderType
	flags   netlink.HeaderFlags
	cmd     uint8
	version uint8
	attrs   []byte
}

func (r request) String() string {
	return fmt.Sprintf("type %#x cmd %d version %d flags %s attrs %x", uint16(r.typ), r.cmd, r.version, r.flags, r.attrs)
}

// handler answers one request with the attributes of each reply message.
type handler func(req request) ([][]byte, error)

type fakeKernel struct {
	mu       sync.Mutex
	requests []request
}

// sent returns the requests to the mptcp_pm family so far.
func (k *fakeKernel) sent() []request {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]request(nil), k.requests...)
}

// fakeConn returns a connection to a fake kernel that has family (nil: no
// mptcp_pm family at all) and answers its requests with h.
func fakeConn(t *testing.T, family *genetlink.Family, h handler) (*genetlink.Conn, *fakeKernel) {
	t.Helper()
	k := &fakeKernel{}
	serve := genltest.Func(func(greq genetlink.Message, nreq netlink.Message) ([]genetlink.Message, error) {
		req := request{typ: nreq.Header.Type, flags: nreq.Header.Flags, cmd: greq.Header.Command, version: greq.Header.Version, attrs: greq.Data}
		k.mu.Lock()
		k.requests = append(k.requests, req)
		k.mu.Unlock()
		attrs, err := h(req)
		if err != nil {
			return nil, err
		}
		replies := make([]genetlink.Message, 0, len(attrs))
		for _, a := range attrs {
			replies = append(replies, genetlink.Message{Header: genetlink.Header{Command: req.cmd, Version: familyVersion}, Data: a})
		}
		return replies, nil
	})
	if family != nil {
		serve = genltest.ServeFamily(*family, serve)
	}
	conn := genetlink.NewConn(nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) {
		if len(reqs) == 0 {
			return nil, fmt.Errorf("fake kernel: the client read without asking")
		}
		nreq := reqs[0]
		var greq genetlink.Message
		if err := greq.UnmarshalBinary(nreq.Data); err != nil {
			return nil, err
		}
		if family == nil && nreq.Header.Type == unix.GENL_ID_CTRL {
			return []netlink.Message{errorMessage(nreq, kernelError{errno: unix.ENOENT})}, nil
		}
		replies, err := serve(greq, nreq)
		if kerr, ok := err.(kernelError); ok {
			return []netlink.Message{errorMessage(nreq, kerr)}, nil
		}
		if err != nil {
			return nil, err
		}
		return wrapReplies(nreq, replies)
	}))
	t.Cleanup(func() { conn.Close() })
	return conn, k
}

// fakeClient is a Client on a fake kernel with the mptcp_pm family.
func fakeClient(t *testing.T, h handler) (*Client, *fakeKernel) {
	t.Helper()
	conn, k := fakeConn(t, &testFamily, h)
	c, err := newClient(conn)
	if err != nil {
		t.Fatalf("newClient on the fake kernel: %v", err)
	}
	return c, k
}

// wrapReplies frames generic-netlink replies as the kernel does: a dump is
// multi-part and ends with NLMSG_DONE, NLM_F_ACK adds an acknowledgement.
func wrapReplies(req netlink.Message, replies []genetlink.Message) ([]netlink.Message, error) {
	header := netlink.Header{Type: req.Header.Type, Sequence: req.Header.Sequence, PID: req.Header.PID}
	dump := req.Header.Flags&netlink.Dump == netlink.Dump
	var out []netlink.Message
	for _, r := range replies {
		b, err := r.MarshalBinary()
		if err != nil {
			return nil, err
		}
		h := header
		if dump {
			h.Flags = netlink.Multi
		}
		out = append(out, netlink.Message{Header: h, Data: b})
	}
	if dump {
		done := header
		done.Type, done.Flags = netlink.Done, netlink.Multi
		out = append(out, netlink.Message{Header: done, Data: make([]byte, 4)})
	}
	if req.Header.Flags&netlink.Acknowledge != 0 {
		out = append(out, errorMessage(req, kernelError{}))
	}
	return out, nil
}

// errorMessage is the kernel's NLMSG_ERROR for req: the negative errno (0
// for an acknowledgement), the request, and the text as an NLMSGERR_ATTR_MSG
// attribute.
func errorMessage(req netlink.Message, kerr kernelError) netlink.Message {
	reqBytes, err := req.MarshalBinary()
	if err != nil {
		panic(err)
	}
	data := binary.NativeEndian.AppendUint32(nil, uint32(-int32(kerr.errno)))
	data = append(data, reqBytes...)
	h := netlink.Header{Type: netlink.Error, Sequence: req.Header.Sequence, PID: req.Header.PID}
	if kerr.text != "" {
		h.Flags = netlink.AcknowledgeTLVs
		data = append(data, attr(unix.NLMSGERR_ATTR_MSG, append([]byte(kerr.text), 0))...)
	}
	return netlink.Message{Header: h, Data: data}
}

// Hand-built attribute bytes, independent of the encoder under test.

// attr is one netlink attribute with its padding.
func attr(typ uint16, payload []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// nest is a nested attribute (NLA_F_NESTED set) holding attrs.
func nest(typ uint16, attrs ...[]byte) []byte {
	var payload []byte
	for _, a := range attrs {
		payload = append(payload, a...)
	}
	return attr(typ|netlink.Nested, payload)
}

func concat(attrs ...[]byte) []byte {
	var b []byte
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func hostU16(v uint16) []byte { return binary.NativeEndian.AppendUint16(nil, v) }
func hostU32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func netU16(v uint16) []byte  { return binary.BigEndian.AppendUint16(nil, v) }
