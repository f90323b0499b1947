package mptcpize

import "golang.org/x/sys/unix"

// x86-64 processes can also make 32-bit calls (int 0x80), which use the
// i386 table (arch/x86/entry/syscalls/syscall_32.tbl).
var abis = []abi{
	{name: "x86-64", arch: unix.AUDIT_ARCH_X86_64, socket: 41, socketcall: -1, ioUringSetup: 425, clone: 56, clone3: 435, unshare: 272, setns: 308},
	{name: "i386", arch: unix.AUDIT_ARCH_I386, socket: 359, socketcall: 102, ioUringSetup: 425, clone: 120, clone3: 435, unshare: 310, setns: 346},
}
