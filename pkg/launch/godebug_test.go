package launch

import (
	"slices"
	"testing"
)

func TestMergeGODEBUG(t *testing.T) {
	cases := []struct {
		name     string
		env, out []string
	}{
		{"none", []string{"PATH=/bin", "A=1"}, []string{"PATH=/bin", "A=1", "GODEBUG=multipathtcp=1"}},
		{"empty", []string{"GODEBUG="}, []string{"GODEBUG=multipathtcp=1"}},
		{"others kept in order", []string{"X=1", "GODEBUG=http2client=0,gctrace=1", "Y=2"},
			[]string{"X=1", "GODEBUG=http2client=0,gctrace=1,multipathtcp=1", "Y=2"}},
		{"replaces a setting", []string{"GODEBUG=multipathtcp=0,x509sha1=1,multipathtcp=2"}, []string{"GODEBUG=x509sha1=1,multipathtcp=1"}},
		{"already set", []string{"GODEBUG=multipathtcp=1"}, []string{"GODEBUG=multipathtcp=1"}},
		{"stray commas", []string{"GODEBUG=,gctrace=1,,"}, []string{"GODEBUG=gctrace=1,multipathtcp=1"}},
		{"only the first entry", []string{"GODEBUG=a=1", "GODEBUG=b=2"}, []string{"GODEBUG=a=1,multipathtcp=1", "GODEBUG=b=2"}},
		{"similar names untouched", []string{"GODEBUGX=1", "XGODEBUG=2"}, []string{"GODEBUGX=1", "XGODEBUG=2", "GODEBUG=multipathtcp=1"}},
		{"values with equals and quotes", []string{`GODEBUG=a="b c",d=e=f`}, []string{`GODEBUG=a="b c",d=e=f,multipathtcp=1`}},
	}
	for _, c := range cases {
		in := slices.Clone(c.env)
		if got := MergeGODEBUG(c.env); !slices.Equal(got, c.out) {
			t.Errorf("%s: %q, want %q", c.name, got, c.out)
		}
		if !slices.Equal(in, c.env) {
			t.Errorf("%s: the input was modified", c.name)
		}
	}
}
