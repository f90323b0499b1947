package config

import (
	"slices"
	"testing"
)

func TestKeys(t *testing.T) {
	keys := Keys()
	for _, k := range []string{"daemon.resync_interval", "limits.subflows", "interface.match", "routing.protocol"} {
		if !slices.Contains(keys, k) {
			t.Errorf("Keys() lacks %s: %v", k, keys)
		}
	}
	if !slices.IsSorted(keys) {
		t.Errorf("Keys() is not sorted: %v", keys)
	}
}
