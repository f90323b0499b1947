package lab

import (
	"slices"
	"testing"
)

func TestRisenCountersListsOnlyWhatRoseUnderThePrefix(t *testing.T) {
	before := map[string]uint64{"MPTcpExtMPFailTx": 1, "MPTcpExtDataCsumErr": 0, "MPTcpExtMPRstTx": 3, "TcpExtTCPAbortOnData": 0}
	after := map[string]uint64{"MPTcpExtMPFailTx": 2, "MPTcpExtDataCsumErr": 4, "MPTcpExtMPRstTx": 3, "TcpExtTCPAbortOnData": 7, "MPTcpExtNew": 1}
	got := RisenCounters(before, after, "MPTcpExt")
	want := []string{"MPTcpExtDataCsumErr +4", "MPTcpExtMPFailTx +1", "MPTcpExtNew +1"}
	if !slices.Equal(got, want) {
		t.Errorf("RisenCounters = %q, want %q", got, want)
	}
	if got := RisenCounters(after, before, ""); got != nil {
		t.Errorf("RisenCounters of falling counters = %q, want none", got)
	}
}
