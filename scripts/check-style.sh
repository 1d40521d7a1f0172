#!/bin/sh
# Style gate for CI: clang-format, clang-tidy (braces, bugprone-*) and a
# forbidden-token check in the spirit of DPDK's checkpatches.sh.
set -u
build=${1:-build}
fail=0
files=$(git ls-files '*.c' '*.h')
libs=$(git ls-files 'platform/*.c' 'crypto/*.c' 'infer/*.c' 'sched/*.c' 'dataplane/*.c')

for f in $files; do
	clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "style: not clang-formatted: $f"; fail=1; }
done

# Libraries never print or end the process; nobody uses the unsafe string calls.
# (fprintf to a FILE the caller asked for is output, not printing; comments are skipped)
bad=$(grep -nE '\b(printf|perror|puts|exit|abort)\s*\(|fprintf\s*\(\s*std(out|err)' $libs /dev/null |
	grep -vE 'snprintf|^[^:]+:[0-9]+:\s*(\*|/\*|//)')
[ -z "$bad" ] || { echo "style: library code that prints or exits:"; echo "$bad"; fail=1; }
bad=$(grep -nE '\b(strcpy|strcat|sprintf|gets)\s*\(|__sync_|%ll[dux]|#include "\.\./' $files /dev/null)
[ -z "$bad" ] || { echo "style: forbidden token:"; echo "$bad"; fail=1; }

if [ -f "$build/compile_commands.json" ]; then
	# shellcheck disable=SC2086
	clang-tidy -p "$build" --quiet $(git ls-files '*.c') >/tmp/bx-tidy.log 2>&1 ||
		{ grep -E 'error:' /tmp/bx-tidy.log | head -40; fail=1; }
fi
[ $fail -eq 0 ] && echo "style: ok"
exit $fail
