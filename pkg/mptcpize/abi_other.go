//go:build !amd64 && !arm64

package mptcpize

// No filter is written for this architecture yet: `mptcpgd run` falls
// back to GODEBUG=multipathtcp=1 alone.
var abis []abi
