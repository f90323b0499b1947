package mptcpize

import "golang.org/x/sys/unix"

// arm64 processes can also run 32-bit ARM (EABI) code, whose table
// (arch/arm/tools/syscall.tbl) has no socketcall.
var abis = []abi{
	{name: "arm64", arch: unix.AUDIT_ARCH_AARCH64, socket: 198, socketcall: -1, ioUringSetup: 425, clone: 220, clone3: 435, unshare: 97, setns: 268},
	{name: "arm", arch: unix.AUDIT_ARCH_ARM, socket: 281, socketcall: -1, ioUringSetup: 425, clone: 120, clone3: 435, unshare: 337, setns: 375},
}
