package show

import (
	"strings"
	"testing"
)

func TestRenderListsWrappedUnits(t *testing.T) {
	var b strings.Builder
	err := Render(&b, Report{Units: []WrappedUnit{
		{Unit: "iperf3.service"},
		{Unit: "sync.service", User: true, Warning: "ExecStart changed since `mptcpgd enable`"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Units under mptcpgd run", "  iperf3.service\n", "  sync.service (user)\n    warning: ExecStart changed"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("show lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := Render(&b, Report{}); err != nil || strings.Contains(b.String(), "mptcpgd run") {
		t.Errorf("show without wrapped units mentions them: %v\n%s", err, b.String())
	}
}
