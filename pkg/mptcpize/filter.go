// Package mptcpize makes the TCP sockets of a process tree Multipath TCP
// sockets, whatever the program is (dynamic, static, Go), without its
// cooperation: a seccomp filter in the program stops every
// socket(AF_INET|AF_INET6, SOCK_STREAM, 0|IPPROTO_TCP) call, and the
// Supervisor, in another process, creates the socket with IPPROTO_MPTCP
// instead and installs it in the program as the call's result
// (SECCOMP_IOCTL_NOTIF_ADDFD). Where no MPTCP socket can be made, the call
// runs as the program made it, and a warning says why once.
//
// What it cannot see: sockets made through io_uring (IORING_OP_SOCKET) and
// through the 32-bit socketcall(2) multiplexer. Both are reported once when
// a program uses them. A 32-bit program's direct socket(2) calls are
// converted.
//
// The socket is made in the supervisor's network namespace, so a thread in
// another one must get its own. Reading a thread's namespace costs more than
// the rest of a conversion, so the filter also sends the calls that can move
// a thread or a new process to another network namespace (setns, unshare
// and clone with CLONE_NEWNET), and the supervisor reads namespaces only
// once one was made. clone3's flags are in memory the filter cannot read:
// clone3 fails with ENOSYS, and the C libraries fall back to clone, as on
// kernels before 5.3.
package mptcpize

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/seccomp"
)

// abi is one system-call table a process of this architecture can use.
type abi struct {
	name string
	// arch is its AUDIT_ARCH_* value in struct seccomp_data.
	arch uint32
	// socket, socketcall and ioUringSetup are its system call numbers;
	// -1 where the table has no such call.
	socket, socketcall, ioUringSetup int32
	// clone, clone3, unshare and setns are those of the calls that can
	// change a network namespace.
	clone, clone3, unshare, setns int32
}

// cloneNewNet is CLONE_NEWNET: in clone's and unshare's flags, and
// setns's nstype (where 0 means any namespace).
const cloneNewNet = unix.CLONE_NEWNET

// sysSocketcallSocket is socketcall(2)'s call number for socket
// (SYS_SOCKET in include/uapi/linux/net.h).
const sysSocketcallSocket = 1

// sockTypeMask is SOCK_TYPE_MASK (include/linux/net.h): the type without
// SOCK_NONBLOCK and SOCK_CLOEXEC.
const sockTypeMask = 0xf

// Supported says whether this architecture has a filter (amd64, arm64).
func Supported() bool { return len(abis) > 0 }

// Filter returns the filter program: socket calls that make a TCP stream
// socket, socketcall(SYS_SOCKET, ...), io_uring_setup and the calls that
// can enter another network namespace are sent to the supervisor; clone3
// fails with ENOSYS; everything else is allowed.
func Filter() ([]unix.SockFilter, error) {
	if !Supported() {
		return nil, fmt.Errorf("no seccomp filter for this architecture")
	}
	var p program
	p.load(seccomp.OffsetArch)
	for _, a := range abis {
		p.jeq(a.arch, a.name, "")
	}
	p.ret(unix.SECCOMP_RET_ALLOW)
	for _, a := range abis {
		p.label(a.name)
		p.load(seccomp.OffsetNr)
		p.jeq(uint32(a.socket), "socket", "")
		if a.socketcall >= 0 {
			p.jeq(uint32(a.socketcall), a.name+"-socketcall", "")
		}
		if a.ioUringSetup >= 0 {
			p.jeq(uint32(a.ioUringSetup), "notify", "")
		}
		p.jeq(uint32(a.setns), "setns", "")
		p.jeq(uint32(a.unshare), "newnet", "")
		p.jeq(uint32(a.clone), "newnet", "")
		p.jeq(uint32(a.clone3), "enosys", "")
		p.ret(unix.SECCOMP_RET_ALLOW)
		if a.socketcall >= 0 {
			p.label(a.name + "-socketcall")
			p.load(seccomp.OffsetArgLow(0))
			p.jeq(sysSocketcallSocket, "notify", "allow")
		}
	}
	p.label("socket")
	p.load(seccomp.OffsetArgLow(0))
	p.jeq(unix.AF_INET, "type", "")
	p.jeq(unix.AF_INET6, "type", "allow")
	p.label("type")
	p.load(seccomp.OffsetArgLow(1))
	p.and(sockTypeMask)
	p.jeq(unix.SOCK_STREAM, "", "allow")
	p.load(seccomp.OffsetArgLow(2))
	p.jeq(0, "notify", "")
	p.jeq(unix.IPPROTO_TCP, "notify", "allow")
	p.label("setns")
	p.load(seccomp.OffsetArgLow(1))
	p.jeq(0, "notify", "")
	p.jset(cloneNewNet, "notify", "allow")
	p.label("newnet")
	p.load(seccomp.OffsetArgLow(0))
	p.jset(cloneNewNet, "notify", "allow")
	p.label("enosys")
	p.ret(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
	p.label("notify")
	p.ret(unix.SECCOMP_RET_USER_NOTIF)
	p.label("allow")
	p.ret(unix.SECCOMP_RET_ALLOW)
	return p.assemble()
}

// program is a classic BPF program under construction, with jumps to
// named labels ("" is the next instruction) resolved by assemble.
type program struct {
	ins    []instruction
	labels map[string]int
}

type instruction struct {
	unix.SockFilter
	jt, jf string
}

func (p *program) label(name string) {
	if p.labels == nil {
		p.labels = map[string]int{}
	}
	p.labels[name] = len(p.ins)
}

func (p *program) add(code uint16, k uint32, jt, jf string) {
	p.ins = append(p.ins, instruction{SockFilter: unix.SockFilter{Code: code, K: k}, jt: jt, jf: jf})
}

func (p *program) load(off uint32) { p.add(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off, "", "") }
func (p *program) and(k uint32)    { p.add(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, k, "", "") }
func (p *program) ret(k uint32)    { p.add(unix.BPF_RET|unix.BPF_K, k, "", "") }
func (p *program) jeq(k uint32, jt, jf string) {
	p.add(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, k, jt, jf)
}

// jset jumps to jt when A & k is not 0.
func (p *program) jset(k uint32, jt, jf string) {
	p.add(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, k, jt, jf)
}

func (p *program) assemble() ([]unix.SockFilter, error) {
	out := make([]unix.SockFilter, len(p.ins))
	for i, in := range p.ins {
		out[i] = in.SockFilter
		for _, j := range []struct {
			label string
			off   *uint8
		}{{in.jt, &out[i].Jt}, {in.jf, &out[i].Jf}} {
			if j.label == "" {
				continue
			}
			target, ok := p.labels[j.label]
			d := target - i - 1
			if !ok || d < 0 || d > 255 {
				return nil, fmt.Errorf("filter instruction %d: bad jump to %q", i, j.label)
			}
			*j.off = uint8(d)
		}
	}
	return out, nil
}

// call is what the supervisor is asked to do about one notification.
type call struct {
	kind callKind
	// domain and typ are the socket call's arguments, typ with its
	// SOCK_NONBLOCK and SOCK_CLOEXEC flags.
	domain, typ int
	abi         string
}

type callKind int

const (
	// makeMPTCP: a socket call for a TCP stream socket.
	makeMPTCP callKind = iota
	// socketcall: a 32-bit socketcall(SYS_SOCKET, args): its arguments are
	// in the program's memory, out of the filter's and our reach.
	socketcall
	// ioURing: the program sets up io_uring, whose socket operation the
	// filter never sees.
	ioURing
	// netnsChange: a call that may put a thread or a new process in
	// another network namespace.
	netnsChange
	// unexpected: anything else (the filter sends nothing else).
	unexpected
)

// classify says what a notification is about.
func classify(d seccomp.Data) call {
	for _, a := range abis {
		if d.Arch != a.arch {
			continue
		}
		switch d.Nr {
		case a.socket:
			return call{kind: makeMPTCP, domain: int(int32(d.Args[0])), typ: int(int32(d.Args[1])), abi: a.name}
		case a.socketcall:
			return call{kind: socketcall, abi: a.name}
		case a.ioUringSetup:
			return call{kind: ioURing, abi: a.name}
		case a.setns, a.unshare, a.clone:
			return call{kind: netnsChange, abi: a.name}
		}
		return call{kind: unexpected, abi: a.name}
	}
	return call{kind: unexpected}
}
