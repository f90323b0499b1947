// Package order holds the comparison helpers that several packages sort
// with, so that one ordering rule has one definition.
package order

// FalseFirst compares two booleans for sorting: false before true, as
// cmp.Compare orders numbers. With a.Is6() it puts IPv4 before IPv6.
func FalseFirst(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
