package sockdiag

import (
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzParse decodes socket diagnostics replies as both kinds of dump: no
// input may panic, and whatever decodes has addresses of a known family.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(captureDir, "*.hex"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no captured replies in %s: %v", captureDir, err)
	}
	for _, file := range files {
		for _, m := range readCapture(f, strings.TrimSuffix(filepath.Base(file), ".hex")) {
			f.Add(m.Data)
		}
	}
	f.Add([]byte{})
	f.Add(diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0, info{token: 1}.encode(20)))
	f.Add(diagMsg(unix.AF_INET6, StateEstablished, local6, remote6, 0, ulp("mptcp", nest(ulpInfoMPTCP, attr(subflowAttrTokenLoc, u32(1))))))
	f.Add(diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0, attr(diagAttrULPInfo, []byte{0xff, 0xff, 3, 0})))

	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := parseConnection(b); err == nil {
			if !c.Local.Addr().IsValid() || !c.Remote.Addr().IsValid() {
				t.Fatalf("decoded a connection without addresses: %+v", c)
			}
		}
		if rec, ok, err := parseSubflow(b); err == nil && ok {
			if rec.token == 0 || !rec.Local.Addr().IsValid() || !rec.Remote.Addr().IsValid() {
				t.Fatalf("decoded a subflow without token or addresses: %+v", rec)
			}
		}
	})
}
