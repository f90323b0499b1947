package mptcpize

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/seccomp"
)

// runFilter runs the filter on d in x/net/bpf's virtual machine, which
// loads words big-endian as packet filters do; seccomp loads them in the
// machine's order, so every word of d is handed over swapped into
// big-endian.
func runFilter(t *testing.T, d seccomp.Data) uint32 {
	t.Helper()
	prog, err := Filter()
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]bpf.RawInstruction, len(prog))
	for i, in := range prog {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("the filter has instructions x/net/bpf does not know: %v", ins)
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	native, err := binary.Append(nil, binary.NativeEndian, d)
	if err != nil {
		t.Fatal(err)
	}
	in := make([]byte, len(native))
	for o := 0; o < len(native); o += 4 {
		binary.BigEndian.PutUint32(in[o:], binary.NativeEndian.Uint32(native[o:]))
	}
	v, err := vm.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(v)
}

// args puts int arguments in the low halves, with garbage in the high
// halves, which the kernel ignores for int arguments.
func args(a ...int) [6]uint64 {
	var out [6]uint64
	for i, v := range a {
		out[i] = 0xdead_beef_0000_0000 | uint64(uint32(int32(v)))
	}
	return out
}

func TestFilterSendsTCPStreamSocketsOnly(t *testing.T) {
	if !Supported() {
		t.Skip("no filter for this architecture")
	}
	native, compat := abis[0], abis[1]
	const notify, allow = unix.SECCOMP_RET_USER_NOTIF, unix.SECCOMP_RET_ALLOW
	type filterCase struct {
		name string
		d    seccomp.Data
		want uint32
	}
	cases := []filterCase{
		{"tcp4", seccomp.Data{Nr: native.socket, Arch: native.arch, Args: args(unix.AF_INET, unix.SOCK_STREAM, 0)}, notify},
		{"tcp6 explicit protocol", seccomp.Data{Nr: native.socket, Arch: native.arch, Args: args(unix.AF_INET6, unix.SOCK_STREAM, unix.IPPROTO_TCP)}, notify},
		{"tcp with flags", seccomp.Data{Nr: native.socket, Arch: native.arch, Args: args(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)}, notify},
		{"mptcp already", seccomp.Data{Nr: native.socket, Arch: native.arch, Args: args(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP)}, allow},
		{"udp", seccomp.Data{Nr: native.socket, Arch: native.arch, Args: args(unix.AF_INET, unix.SOCK_DGRAM, 0)}, allow},
		{"sctp stream", seccomp.Data{Nr: native.socket, Arch: native.arch, Args: args(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP)}, allow},
		{"seqpacket", seccomp.Data{Nr: native.socket, Arch: native.arch, Args: args(unix.AF_INET, unix.SOCK_SEQPACKET, 0)}, allow},
		{"unix stream", seccomp.Data{Nr: native.socket, Arch: native.arch, Args: args(unix.AF_UNIX, unix.SOCK_STREAM, 0)}, allow},
		{"netlink", seccomp.Data{Nr: native.socket, Arch: native.arch, Args: args(unix.AF_NETLINK, unix.SOCK_RAW, 0)}, allow},
		{"io_uring_setup", seccomp.Data{Nr: native.ioUringSetup, Arch: native.arch}, notify},
		{"another call", seccomp.Data{Nr: native.socket + 1, Arch: native.arch, Args: args(unix.AF_INET, unix.SOCK_STREAM, 0)}, allow},
		{"unknown arch", seccomp.Data{Nr: native.socket, Arch: 0x1234, Args: args(unix.AF_INET, unix.SOCK_STREAM, 0)}, allow},
		{"compat tcp", seccomp.Data{Nr: compat.socket, Arch: compat.arch, Args: args(unix.AF_INET, unix.SOCK_STREAM, 0)}, notify},
		{"compat udp", seccomp.Data{Nr: compat.socket, Arch: compat.arch, Args: args(unix.AF_INET, unix.SOCK_DGRAM, 0)}, allow},
		{"compat native number", seccomp.Data{Nr: native.socket, Arch: compat.arch, Args: args(unix.AF_INET, unix.SOCK_STREAM, 0)}, allow},
		// What can enter another network namespace reaches the
		// supervisor; the rest of the same calls does not.
		{"setns any namespace", seccomp.Data{Nr: native.setns, Arch: native.arch, Args: args(5, 0)}, notify},
		{"setns network namespace", seccomp.Data{Nr: native.setns, Arch: native.arch, Args: args(5, unix.CLONE_NEWNET)}, notify},
		{"setns pidfd, several namespaces", seccomp.Data{Nr: native.setns, Arch: native.arch, Args: args(5, unix.CLONE_NEWNET|unix.CLONE_NEWNS)}, notify},
		{"setns mount namespace", seccomp.Data{Nr: native.setns, Arch: native.arch, Args: args(5, unix.CLONE_NEWNS)}, allow},
		{"unshare -n", seccomp.Data{Nr: native.unshare, Arch: native.arch, Args: args(unix.CLONE_NEWNET | unix.CLONE_NEWNS)}, notify},
		{"unshare -m", seccomp.Data{Nr: native.unshare, Arch: native.arch, Args: args(unix.CLONE_NEWNS)}, allow},
		{"clone into a new network namespace", seccomp.Data{Nr: native.clone, Arch: native.arch, Args: args(unix.CLONE_NEWNET | int(unix.SIGCHLD))}, notify},
		{"clone a thread", seccomp.Data{Nr: native.clone, Arch: native.arch, Args: args(unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD)}, allow},
		{"fork", seccomp.Data{Nr: native.clone, Arch: native.arch, Args: args(int(unix.SIGCHLD))}, allow},
		{"clone3", seccomp.Data{Nr: native.clone3, Arch: native.arch, Args: args(0x1000, 88)}, unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{"compat setns", seccomp.Data{Nr: compat.setns, Arch: compat.arch, Args: args(5, unix.CLONE_NEWNET)}, notify},
		{"compat clone3", seccomp.Data{Nr: compat.clone3, Arch: compat.arch}, unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
	}
	if compat.socketcall >= 0 {
		cases = append(cases,
			filterCase{"socketcall socket", seccomp.Data{Nr: compat.socketcall, Arch: compat.arch, Args: args(sysSocketcallSocket, 0x1000)}, notify},
			filterCase{"socketcall connect", seccomp.Data{Nr: compat.socketcall, Arch: compat.arch, Args: args(3, 0x1000)}, allow},
		)
	}
	for _, c := range cases {
		if got := runFilter(t, c.d); got != c.want {
			t.Errorf("%s: filter returns %#x, want %#x", c.name, got, c.want)
		}
	}
}

func TestClassify(t *testing.T) {
	if !Supported() {
		t.Skip("no filter for this architecture")
	}
	native, compat := abis[0], abis[1]
	type classifyCase struct {
		name string
		d    seccomp.Data
		want call
	}
	cases := []classifyCase{
		{"socket", seccomp.Data{Nr: native.socket, Arch: native.arch, Args: args(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)},
			call{kind: makeMPTCP, domain: unix.AF_INET6, typ: unix.SOCK_STREAM | unix.SOCK_CLOEXEC, abi: native.name}},
		{"compat socket", seccomp.Data{Nr: compat.socket, Arch: compat.arch, Args: args(unix.AF_INET, unix.SOCK_STREAM, 0)},
			call{kind: makeMPTCP, domain: unix.AF_INET, typ: unix.SOCK_STREAM, abi: compat.name}},
		{"io_uring", seccomp.Data{Nr: native.ioUringSetup, Arch: native.arch}, call{kind: ioURing, abi: native.name}},
		{"setns", seccomp.Data{Nr: native.setns, Arch: native.arch, Args: args(5, 0)}, call{kind: netnsChange, abi: native.name}},
		{"compat unshare", seccomp.Data{Nr: compat.unshare, Arch: compat.arch, Args: args(unix.CLONE_NEWNET)}, call{kind: netnsChange, abi: compat.name}},
		{"clone", seccomp.Data{Nr: native.clone, Arch: native.arch, Args: args(unix.CLONE_NEWNET)}, call{kind: netnsChange, abi: native.name}},
		{"other", seccomp.Data{Nr: 0, Arch: native.arch}, call{kind: unexpected, abi: native.name}},
		{"unknown arch", seccomp.Data{Nr: native.socket, Arch: 1}, call{kind: unexpected}},
	}
	if compat.socketcall >= 0 {
		cases = append(cases, classifyCase{"socketcall", seccomp.Data{Nr: compat.socketcall, Arch: compat.arch, Args: args(1, 0x1000)}, call{kind: socketcall, abi: compat.name}})
	}
	for _, c := range cases {
		if got := classify(c.d); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}
