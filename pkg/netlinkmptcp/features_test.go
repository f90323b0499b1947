package netlinkmptcp

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseRelease(t *testing.T) {
	tests := []struct {
		release      string
		major, minor int
	}{
		{"6.18.44-fc-v669", 6, 18},
		{"5.15.0-91-generic", 5, 15},
		{"6.1.0-27-amd64", 6, 1},
		{"6.9-rc1", 6, 9},
		{"5.19", 5, 19},
		{"10.0.1", 10, 0},
	}
	for _, tt := range tests {
		major, minor, err := ParseRelease(tt.release)
		if err != nil || major != tt.major || minor != tt.minor {
			t.Errorf("ParseRelease(%q) = %d, %d, %v; want %d, %d", tt.release, major, minor, err, tt.major, tt.minor)
		}
	}
	for _, bad := range []string{"", "linux", "6", "6.", "x.18", "6.rc1", "-6.1", "6.99999999999999999999"} {
		if major, minor, err := ParseRelease(bad); err == nil {
			t.Errorf("ParseRelease(%q) = %d, %d; want an error", bad, major, minor)
		}
	}
}

func TestFeaturesFor(t *testing.T) {
	// The first version with each feature: FeaturesFor has it from there
	// on, and not in the version just before.
	since := []struct {
		name         string
		has          func(Features) bool
		major, minor int
	}{
		{"Events", func(f Features) bool { return f.Events }, 5, 12},
		{"UserChosenIDs", func(f Features) bool { return f.UserChosenIDs }, 5, 12},
		{"Ports", func(f Features) bool { return f.Ports }, 5, 12},
		{"Fullmesh", func(f Features) bool { return f.Fullmesh }, 5, 15},
		{"Implicit", func(f Features) bool { return f.Implicit }, 5, 18},
		{"UserspacePM", func(f Features) bool { return f.UserspacePM }, 5, 19},
		{"ListenerEvents", func(f Features) bool { return f.ListenerEvents }, 6, 2},
		{"ByteCounters", func(f Features) bool { return f.ByteCounters }, 6, 5},
		{"TokenInGetAddr", func(f Features) bool { return f.TokenInGetAddr }, 6, 9},
		{"SubflowsTotal", func(f Features) bool { return f.SubflowsTotal }, 6, 10},
		{"UserspaceSubflowIfIndex", func(f Features) bool { return f.UserspaceSubflowIfIndex }, 6, 13},
		{"Laminar", func(f Features) bool { return f.Laminar }, 6, 18},
	}
	before := func(major, minor int) (int, int) {
		if minor > 0 {
			return major, minor - 1
		}
		return major - 1, 99
	}
	for _, s := range since {
		if !s.has(FeaturesFor(s.major, s.minor)) || !s.has(FeaturesFor(s.major, s.minor+1)) || !s.has(FeaturesFor(s.major+1, 0)) {
			t.Errorf("%s: missing from %d.%d on", s.name, s.major, s.minor)
		}
		if bm, bn := before(s.major, s.minor); s.has(FeaturesFor(bm, bn)) || s.has(FeaturesFor(5, 6)) {
			t.Errorf("%s: present before %d.%d", s.name, s.major, s.minor)
		}
	}
	if f := FeaturesFor(6, 1); f.Major != 6 || f.Minor != 1 {
		t.Errorf("FeaturesFor(6, 1) says version %d.%d", f.Major, f.Minor)
	}
}

func TestCheckFlags(t *testing.T) {
	tests := []struct {
		major, minor int
		flags        Flags
		wantErr      []string // words the error must contain; nil: no error
	}{
		{5, 10, FlagSignal | FlagSubflow | FlagBackup, nil},
		{5, 10, FlagSubflow | FlagFullmesh, []string{"fullmesh", "5.15", "5.10"}},
		{5, 15, FlagSubflow | FlagFullmesh, nil},
		{6, 1, FlagSubflow | FlagLaminar, []string{"laminar", "6.18", "6.1"}},
		{6, 18, FlagSubflow | FlagLaminar, nil},
		{5, 17, FlagImplicit, []string{"implicit", "5.18"}},
		{6, 18, FlagSubflow | 0x40, []string{"0x40", "unknown"}},
	}
	for _, tt := range tests {
		err := FeaturesFor(tt.major, tt.minor).CheckFlags(tt.flags)
		if tt.wantErr == nil {
			if err != nil {
				t.Errorf("%d.%d CheckFlags(%v): %v, want nil", tt.major, tt.minor, tt.flags, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%d.%d CheckFlags(%v) = nil, want an error", tt.major, tt.minor, tt.flags)
			continue
		}
		for _, w := range tt.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%d.%d CheckFlags(%v) = %q, does not mention %q", tt.major, tt.minor, tt.flags, err, w)
			}
		}
	}
}

func TestKernelFeatures(t *testing.T) {
	f, err := KernelFeatures()
	if err != nil {
		t.Fatal(err)
	}
	if f != FeaturesFor(f.Major, f.Minor) || f.Major < 2 {
		t.Errorf("KernelFeatures() = %+v, inconsistent with its own version", f)
	}
}

func TestParseFamilyInfo(t *testing.T) {
	op := func(id uint32) []byte {
		return nest(1, attr(unix.CTRL_ATTR_OP_ID, hostU32(id)), attr(unix.CTRL_ATTR_OP_FLAGS, hostU32(0)))
	}
	group := func(i uint16, name string, id uint32) []byte {
		return nest(i, attr(unix.CTRL_ATTR_MCAST_GRP_NAME, append([]byte(name), 0)), attr(unix.CTRL_ATTR_MCAST_GRP_ID, hostU32(id)))
	}
	reply := concat(
		attr(unix.CTRL_ATTR_FAMILY_NAME, append([]byte(familyName), 0)),
		attr(unix.CTRL_ATTR_FAMILY_ID, hostU16(0x1d)),
		attr(unix.CTRL_ATTR_VERSION, hostU32(1)),
		nest(unix.CTRL_ATTR_OPS, op(cmdAddAddr), op(cmdGetAddr), op(cmdAnnounce), op(cmdRemove), op(cmdSubflowCreate), op(cmdSubflowDestroy)),
		nest(unix.CTRL_ATTR_MCAST_GROUPS, group(1, "mptcp_pm_cmds", 9), group(2, eventsGroupName, 10)),
	)
	f, err := parseFamilyInfo(reply)
	if err != nil {
		t.Fatal(err)
	}
	if f.id != 0x1d || f.eventsGroup() != 10 || len(f.commands) != 6 || !f.commands[cmdSubflowCreate] || f.commands[cmdSetFlags] {
		t.Errorf("parseFamilyInfo = %+v", f)
	}
	var got Features
	got.applyFamily(f)
	if !got.Events || !got.UserChosenIDs || !got.Ports || !got.UserspacePM {
		t.Errorf("features from the family = %+v, want events, ids, ports and the userspace PM", got)
	}
	delete(f.commands, cmdSubflowDestroy)
	delete(f.groups, eventsGroupName)
	got = Features{}
	got.applyFamily(f)
	if got.Events || got.UserChosenIDs || got.UserspacePM {
		t.Errorf("features from a family without events and SUBFLOW_DESTROY = %+v", got)
	}
	if _, err := parseFamilyInfo(attr(unix.CTRL_ATTR_FAMILY_NAME, append([]byte(familyName), 0))); err == nil {
		t.Error("parseFamilyInfo without an id: no error")
	}
}

func TestParsePolicyDump(t *testing.T) {
	// Policy 0 is the command's top level; attribute 1 points at policy 1,
	// the address nest.
	policyAttr := func(typ uint16) []byte { return nest(typ, attr(unix.NL_POLICY_TYPE_ATTR_TYPE, hostU32(1))) }
	opPolicy := attr(unix.CTRL_ATTR_FAMILY_ID, hostU16(0x1d))
	opPolicy = append(opPolicy, nest(unix.CTRL_ATTR_OP_POLICY, nest(cmdGetAddr, attr(unix.CTRL_ATTR_POLICY_DO, hostU32(0)), attr(unix.CTRL_ATTR_POLICY_DUMP, hostU32(0))))...)
	top := func(attrs ...uint16) []byte {
		var as [][]byte
		for _, a := range attrs {
			as = append(as, policyAttr(a))
		}
		return concat(attr(unix.CTRL_ATTR_FAMILY_ID, hostU16(0x1d)), nest(unix.CTRL_ATTR_POLICY, nest(0, as...)))
	}
	addrNest := concat(attr(unix.CTRL_ATTR_FAMILY_ID, hostU16(0x1d)), nest(unix.CTRL_ATTR_POLICY, nest(1, policyAttr(addrAttrFamily), policyAttr(addrAttrAddr4))))

	tests := []struct {
		name    string
		replies [][]byte
		token   bool
	}{
		// 6.9+: GET_ADDR has a policy of its own with TOKEN.
		{"own policy with token", [][]byte{opPolicy, top(attrAddr, attrToken), addrNest}, true},
		// 6.7, 6.8: its own policy, no TOKEN.
		{"own policy", [][]byte{opPolicy, top(attrAddr), addrNest}, false},
		// Before 6.7: the family's one policy, TOKEN for the userspace commands.
		{"family policy", [][]byte{opPolicy, top(attrAddr, attrRcvAddAddrs, attrSubflows, attrToken, attrLocID, attrAddrRemote), addrNest}, false},
	}
	for _, tt := range tests {
		attrs, err := parsePolicyDump(tt.replies, cmdGetAddr)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !attrs[attrAddr] {
			t.Errorf("%s: attributes %v, want the top level's", tt.name, attrs)
		}
		if got := tokenInGetAddr(attrs); got != tt.token {
			t.Errorf("%s: tokenInGetAddr = %v, want %v", tt.name, got, tt.token)
		}
	}
	if attrs, err := parsePolicyDump([][]byte{top(attrAddr)}, cmdGetAddr); err != nil || attrs != nil {
		t.Errorf("a dump without the command's policy = %v, %v; want nil: the kernel did not say", attrs, err)
	}
}

func TestApplyInfoSize(t *testing.T) {
	tests := []struct {
		size                        int
		byteCounters, subflowsTotal bool
	}{
		{48, false, false}, // 6.1
		{80, true, false},  // 6.5
		{96, true, true},   // 6.10
		{128, true, true},
	}
	for _, tt := range tests {
		var f Features
		f.applyInfoSize(tt.size)
		if f.ByteCounters != tt.byteCounters || f.SubflowsTotal != tt.subflowsTotal {
			t.Errorf("struct mptcp_info of %d bytes: byte counters %v, subflows total %v; want %v, %v", tt.size, f.ByteCounters, f.SubflowsTotal, tt.byteCounters, tt.subflowsTotal)
		}
	}
}

func TestMissing(t *testing.T) {
	if got := FeaturesFor(6, 18).Missing(); len(got) != 0 {
		t.Errorf("6.18 lacks %q, want nothing", got)
	}
	got := strings.Join(FeaturesFor(6, 1).Missing(), "\n")
	for _, want := range []string{"listener events (Linux 6.2)", "laminar endpoints (Linux 6.18)"} {
		if !strings.Contains(got, want) {
			t.Errorf("6.1 lacks %q; want it to name %q", got, want)
		}
	}
	if strings.Contains(got, "fullmesh") {
		t.Errorf("6.1 lacks %q; it has fullmesh", got)
	}
}
