#!/bin/bash
# make test: the host suite, Debian's kernels and the systemd guest, all
# three even when one fails; then a short summary of what failed and why,
# last, where a reader of only the end of the output (CI) finds it.
set -uo pipefail
make=${MAKE:-make}
out=out/summary
rm -rf "$out"
mkdir -p "$out"

rc=0
$make --no-print-directory test-host 2>&1 | tee "$out/host.log" || rc=1
$make --no-print-directory test-kernels VMTEST_SUMMARY="$out/kernels.txt" || rc=1
$make --no-print-directory test-guest VMTEST_SUMMARY="$out/guest.txt" || rc=1

echo
echo "== make test: summary =="
if grep -q -e '^--- FAIL' -e '^FAIL' "$out/host.log"; then
	echo "host suite: FAIL"
	# The failed tests and their first messages (go test's "file.go:N:"),
	# then the daemon's log lines (zaptest's logger.go), which say what
	# happened but not why it failed.
	grep -E -e '^\s*--- FAIL' -e '^FAIL\s' -e '^\s+[[:alnum:]_.-]+\.go:[0-9]+: ' "$out/host.log" | grep -v -E '^\s+logger\.go:' | head -n 20 | cut -c1-240
	grep -E '^\s+logger\.go:[0-9]+: ' "$out/host.log" | head -n 6 | cut -c1-240
	# A package that ran out of time names the tests still running, above
	# a goroutine dump long enough to push that out of a kept tail.
	awk '/^panic: test timed out/ { p = 1; print; next }
		p && /^[[:space:]]+(running tests:|Test)/ { print; next }
		{ p = 0 }' "$out/host.log" | head -n 20
else
	echo "host suite: ok"
fi
for part in kernels guest; do
	echo "-- test-$part:"
	if [ -s "$out/$part.txt" ]; then
		cat "$out/$part.txt"
	else
		echo "no summary: it stopped before running a guest (see above)"
	fi
done
exit $rc
