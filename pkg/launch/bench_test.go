package launch_test

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// BenchmarkSocketClose measures socket(AF_INET, SOCK_STREAM) + close() in
// a C program (sockprobe bench), b.N times in one process, which reports
// its own time per pair as ns/op (the process start is not in it):
//
//   - tcp: plain TCP, for reference;
//   - mptcp-native: the program asks for IPPROTO_MPTCP itself;
//   - mptcpgd-run: it asks for TCP and mptcpgd run's supervisor makes the
//     socket MPTCP;
//   - mptcpize: it asks for TCP and mptcpd's mptcpize (LD_PRELOAD)
//     changes the protocol in libc (skipped without /usr/bin/mptcpize).
//
// Run it alone on the machine, e.g.
//
//	go test -run '^$' -bench SocketClose -benchtime 100000x -count 5 ./pkg/launch
func BenchmarkSocketClose(b *testing.B) {
	ns := lab.New(b, "bench")
	probe := tool(b, "sockprobe")
	mptcpize, _ := exec.LookPath("mptcpize")
	cases := []struct {
		name  string
		proto int
		wrap  []string
	}{
		{"tcp", unix.IPPROTO_TCP, nil},
		{"mptcp-native", unix.IPPROTO_MPTCP, nil},
		{"mptcpgd-run", 0, []string{tool(b, "mptcpgd"), "run", "--"}},
		{"mptcpize", 0, []string{mptcpize, "run"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if c.name == "mptcpize" && mptcpize == "" {
				b.Skip("mptcpize is not installed (Debian package mptcpize)")
			}
			args := append(append([]string{}, c.wrap...), probe, "bench", strconv.Itoa(b.N), strconv.Itoa(c.proto))
			out, err := ns.Command(b.Context(), args[0], args[1:]...).CombinedOutput()
			if err != nil {
				b.Fatalf("%q: %v\n%s", args, err, out)
			}
			got := lines(string(out))
			if c.name != "tcp" && !strings.HasSuffix(got["ns/op"], "protocol 262") {
				b.Fatalf("%s: the sockets were not MPTCP: %s", c.name, out)
			}
			ns, err := strconv.ParseFloat(strings.Fields(got["ns/op"])[0], 64)
			if err != nil {
				b.Fatalf("%q: %v", out, err)
			}
			b.ReportMetric(ns, "ns/op")
		})
	}
}
