package netlinkmptcp

import (
	"strings"
	"testing"
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
	// Each row is the first version with a feature and the one just
	// before it.
	tests := []struct {
		major, minor int
		want         Features
	}{
		{5, 11, Features{}},
		{5, 12, Features{Events: true, UserChosenIDs: true, Ports: true}},
		{5, 14, Features{Events: true, UserChosenIDs: true, Ports: true}},
		{5, 15, Features{Events: true, UserChosenIDs: true, Ports: true, Fullmesh: true}},
		{5, 17, Features{Events: true, UserChosenIDs: true, Ports: true, Fullmesh: true}},
		{5, 18, Features{Events: true, UserChosenIDs: true, Ports: true, Fullmesh: true, Implicit: true}},
		{5, 19, Features{Events: true, UserChosenIDs: true, Ports: true, Fullmesh: true, Implicit: true, UserspacePM: true}},
		{6, 1, Features{Events: true, UserChosenIDs: true, Ports: true, Fullmesh: true, Implicit: true, UserspacePM: true}},
		{6, 2, Features{Events: true, UserChosenIDs: true, Ports: true, Fullmesh: true, Implicit: true, UserspacePM: true, ListenerEvents: true}},
		{6, 8, Features{Events: true, UserChosenIDs: true, Ports: true, Fullmesh: true, Implicit: true, UserspacePM: true, ListenerEvents: true}},
		{6, 9, Features{Events: true, UserChosenIDs: true, Ports: true, Fullmesh: true, Implicit: true, UserspacePM: true, ListenerEvents: true, TokenInGetAddr: true}},
		{6, 17, Features{Events: true, UserChosenIDs: true, Ports: true, Fullmesh: true, Implicit: true, UserspacePM: true, ListenerEvents: true, TokenInGetAddr: true}},
		{6, 18, Features{Events: true, UserChosenIDs: true, Ports: true, Fullmesh: true, Implicit: true, UserspacePM: true, ListenerEvents: true, TokenInGetAddr: true, Laminar: true}},
		{7, 0, Features{Events: true, UserChosenIDs: true, Ports: true, Fullmesh: true, Implicit: true, UserspacePM: true, ListenerEvents: true, TokenInGetAddr: true, Laminar: true}},
	}
	for _, tt := range tests {
		tt.want.Major, tt.want.Minor = tt.major, tt.minor
		if got := FeaturesFor(tt.major, tt.minor); got != tt.want {
			t.Errorf("FeaturesFor(%d, %d) =\n %+v, want\n %+v", tt.major, tt.minor, got, tt.want)
		}
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
