package netlinkmptcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"unsafe"

	"github.com/mdlayher/genetlink"
	"golang.org/x/sys/unix"
)

// quietSocket reads the endpoint table and the limits with raw system
// calls on a socket of its own. The runtime's monitor thread (sysmon)
// sleeps through raw calls, where each ordinary one wakes it to watch the
// call: on an idle daemon, whose safety net reads both every 30 s, that
// was two of every three wake-ups. Generic netlink answers these reads
// while they are sent and received, so they never wait for data; a call
// can wait for the host-wide generic-netlink lock behind another
// process's endpoint removal (some 15 ms), during which this thread keeps
// its processor.
type quietSocket struct {
	mu       sync.Mutex
	conn     *genetlink.Conn // owns the descriptor; never used to send
	rc       syscall.RawConn
	familyID uint16
	seq      uint32
	buf      []byte
}

// quietBufferSize holds one batch of a dump: the kernel fills a batch up
// to a page or two, and an endpoint takes about 100 bytes.
const quietBufferSize = 64 << 10

// errQuietIncomplete: a dump stopped short, so the ordinary path is taken.
var errQuietIncomplete = errors.New("the kernel's reply stopped short")

func newQuietSocket(cfg *Config, familyID uint16) (*quietSocket, error) {
	conn, err := dialConn(cfg)
	if err != nil {
		return nil, err
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		_ = conn.Close()
		return nil, opError("open generic netlink socket", err)
	}
	return &quietSocket{conn: conn, rc: rc, familyID: familyID, buf: make([]byte, quietBufferSize)}, nil
}

func (q *quietSocket) close() error { return q.conn.Close() }

// request sends cmd (a dump with dump set) and hands each reply's
// attributes to reply until the kernel is done.
func (q *quietSocket) request(cmd uint8, dump bool, reply func(attrs []byte) error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	flags := uint16(unix.NLM_F_REQUEST)
	if dump {
		flags |= unix.NLM_F_DUMP
	}
	var req [nlmsgHeaderLen + genlHeaderLen]byte
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], q.familyID)
	binary.NativeEndian.PutUint16(req[6:], flags)
	binary.NativeEndian.PutUint32(req[8:], q.seq)
	req[16], req[17] = cmd, familyVersion
	var err error
	cerr := q.rc.Control(func(fd uintptr) {
		if err = rawSend(fd, req[:]); err != nil {
			return
		}
		err = q.receive(fd, dump, reply)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// receive reads the replies to request q.seq: until NLMSG_DONE for a
// dump, one reply otherwise.
func (q *quietSocket) receive(fd uintptr, dump bool, reply func([]byte) error) error {
	for {
		n, errno := rawRecv(fd, q.buf)
		if errno == unix.EINTR {
			continue
		}
		if errno == unix.EAGAIN {
			return errQuietIncomplete
		}
		if errno != 0 {
			return errno
		}
		b := q.buf[:n]
		for len(b) >= nlmsgHeaderLen {
			l := int(binary.NativeEndian.Uint32(b[0:]))
			if l < nlmsgHeaderLen || l > len(b) {
				return fmt.Errorf("netlink message of %d bytes in %d", l, len(b))
			}
			typ, seq := binary.NativeEndian.Uint16(b[4:]), binary.NativeEndian.Uint32(b[8:])
			body := b[nlmsgHeaderLen:l]
			b = b[min(nlmsgAlign(l), len(b)):]
			if seq != q.seq {
				continue // a late reply to an earlier request
			}
			switch typ {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(body) < 4 {
					return errQuietIncomplete
				}
				if code := int32(binary.NativeEndian.Uint32(body)); code != 0 {
					return syscall.Errno(-code)
				}
				return nil
			case q.familyID:
				if len(body) < genlHeaderLen {
					return errQuietIncomplete
				}
				if err := reply(body[genlHeaderLen:]); err != nil {
					return err
				}
				if !dump {
					return nil
				}
			}
		}
	}
}

func nlmsgAlign(n int) int { return (n + 3) &^ 3 }

func rawSend(fd uintptr, b []byte) error {
	to := unix.RawSockaddrNetlink{Family: unix.AF_NETLINK}
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0,
		uintptr(unsafe.Pointer(&to)), unsafe.Sizeof(to))
	if errno != 0 {
		return errno
	}
	return nil
}

func rawRecv(fd uintptr, b []byte) (int, syscall.Errno) {
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_DONTWAIT, 0, 0)
	return int(n), errno
}

// endpoints is Client.Endpoints on the quiet socket.
func (q *quietSocket) endpoints() ([]Endpoint, error) {
	var eps []Endpoint
	err := q.request(cmdGetAddr, true, func(attrs []byte) error {
		e, err := parseEndpointMessage(attrs)
		eps = append(eps, e)
		return err
	})
	return eps, err
}

// limits is Client.Limits on the quiet socket.
func (q *quietSocket) limits() (Limits, error) {
	var l Limits
	got := false
	err := q.request(cmdGetLimits, false, func(attrs []byte) (err error) {
		l, err = parseLimits(attrs)
		got = true
		return err
	})
	if err == nil && !got {
		err = errQuietIncomplete
	}
	return l, err
}
