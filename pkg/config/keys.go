package config

import (
	"slices"
	"strings"
)

// Keys lists every key a configuration file may set, as TABLE.KEY (the
// [[interface]] entries' as interface.KEY), sorted. It is read from the
// schema, so that documentation can be checked against it.
func Keys() []string {
	var keys []string
	for table, ts := range schema {
		for key := range ts.keys {
			keys = append(keys, table+"."+key)
		}
	}
	slices.SortFunc(keys, strings.Compare)
	return keys
}
