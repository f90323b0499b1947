#!/bin/sh
# Prints this checkout's version as a Debian version, from git describe, so
# that every later commit sorts higher (dpkg --compare-versions):
#   v1.2.3                       1.2.3
#   v1.2.3, 5 commits later      1.2.3+git5.gabc1234
#   no v* tag yet                0~git115.gabc1234 (115 commits)
#   uncommitted changes          the above + "+dirty"
# A hyphen in a tag (v1.0-rc1) becomes a tilde: it sorts before 1.0.
set -eu

desc=$(git describe --tags --long --dirty --match 'v[0-9]*' 2>/dev/null || true)
if [ -z "$desc" ]; then
	desc=$(git describe --always --dirty)
	hash=${desc%-dirty}
	version="0~git$(git rev-list --count HEAD).g$hash"
else
	base=${desc%-dirty}
	hash=${base##*-}
	rest=${base%-*}
	count=${rest##*-}
	tag=${rest%-*}
	version=$(printf '%s' "${tag#v}" | tr -- - '~')
	if [ "$count" != 0 ]; then
		version="$version+git$count.$hash"
	fi
fi
case $desc in
*-dirty) version="$version+dirty" ;;
esac
echo "$version"
