package launch

import "strings"

// goDebugMPTCP makes Go's net package ask for MPTCP sockets itself (Go
// 1.21+), and fall back to TCP by itself where the kernel refuses them, so
// Go programs need no conversion at all.
const goDebugMPTCP = "multipathtcp=1"

// MergeGODEBUG returns env with multipathtcp=1 in GODEBUG. The first
// GODEBUG entry (the one Go reads) keeps its other settings in their order;
// a multipathtcp setting in it is replaced, since mptcpgd run exists to make
// the program's TCP sockets MPTCP ones. Without a GODEBUG entry one is
// added. Nothing else in env changes.
func MergeGODEBUG(env []string) []string {
	out := make([]string, 0, len(env)+1)
	merged := false
	for _, kv := range env {
		value, ok := strings.CutPrefix(kv, "GODEBUG=")
		if !ok || merged {
			out = append(out, kv)
			continue
		}
		var keep []string
		for _, setting := range strings.Split(value, ",") {
			if setting != "" && !strings.HasPrefix(setting, "multipathtcp=") {
				keep = append(keep, setting)
			}
		}
		out = append(out, "GODEBUG="+strings.Join(append(keep, goDebugMPTCP), ","))
		merged = true
	}
	if !merged {
		out = append(out, "GODEBUG="+goDebugMPTCP)
	}
	return out
}
