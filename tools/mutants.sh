#!/usr/bin/env bash
# Mutation sweep over ripen's concurrency protocols: apply each hand-written
# mutant of tools/mutants.txt to a scratch copy of the committed tree, build
# it, run the suite, and report which mutants the suite kills. Documented in
# the README; not run in CI (about a minute a mutant on two cores).
#
#   tools/mutants.sh [-o DIR] [-t REV] [ID...]
#
#   -o DIR   where the report goes (default: mutants-out): report.md, and a
#            log per mutant
#   -t REV   take tests/, stress/ and fuzz/ from REV, the runtime from HEAD:
#            the kill rate of an older suite against the same mutants
#   ID...    only these mutants
#
# Each mutant runs first against the normal build (unit + short stress
# tiers); one that survives runs against the fault-injection build (ASan,
# LeakSanitizer, tiny capacities, yield points, window hooks, the fault
# sweep and the fuzzer). A test that already fails on the unmutated tree is
# left out and named in the report. A mutant that does not compile is
# reported as stillborn and does not count.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/mutants-out
tests_rev=""
while getopts "o:t:h" c; do
	case $c in
	o) out=$(realpath -m "$OPTARG") ;;
	t) tests_rev=$OPTARG ;;
	*) sed -n 2,21p "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
only=("$@")
mkdir -p "$out"
work=$(mktemp -d /tmp/ripen-mutants.XXXXXX)
trap 'rm -rf "$work"' EXIT
src=$work/src
mkdir -p "$src"
git -C "$root" archive HEAD | tar -x -C "$src"
if [ -n "$tests_rev" ]; then
	for d in tests stress fuzz; do
		rm -rf "${src:?}/$d"
		git -C "$root" archive "$tests_rev" "$d" | tar -x -C "$src"
	done
fi

setup() { # dir, args...
	local d=$1
	shift
	meson setup "$work/$d" "$src" "$@" >"$work/$d.setup.log" 2>&1 ||
		{ cat "$work/$d.setup.log"; exit 1; }
}
setup normal --buildtype=debugoptimized -Dbench=disabled
CC=clang setup fault -Dfault_injection=true -Dtiny=true -Dfuzz=true -Dyield_points=true \
	-Db_sanitize=address,undefined -Db_lundef=false -Dbench=disabled

export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# run_suite BUILD LOG [TEST...]: prints the names of the failing tests
run_suite() {
	local b=$1 log=$2
	shift 2
	local extra=()
	[ "$b" = fault ] && extra=(--setup asan)
	rm -f "$work/$b"/meson-logs/testlog*.json
	meson test -C "$work/$b" "${extra[@]}" --timeout-multiplier 0.25 --print-errorlogs \
		"$@" >"$log" 2>&1
	python3 - "$work/$b"/meson-logs/testlog*.json <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("result") not in ("OK", "EXPECTEDFAIL", "SKIP"):
        print(r["name"])
PY
}
test_names() { # BUILD minus the excluded ones (names without the "project:suite / " prefix)
	meson test -C "$work/$1" --list 2>/dev/null | sed 's/^[^/]* \/ //' |
		grep -vxF -f <(sed 's/^[^/]* \/ //' "$work/excluded.$1") || true
}

echo "baseline (no mutant)"
: >"$work/excluded.normal"
: >"$work/excluded.fault"
for b in normal fault; do
	ninja -C "$work/$b" >"$work/$b.build.log" 2>&1 || { tail -30 "$work/$b.build.log"; exit 1; }
	run_suite $b "$out/baseline.$b.log" >"$work/excluded.$b"
	[ -s "$work/excluded.$b" ] && echo "  $b: failing without a mutant, left out: $(tr '\n' ' ' <"$work/excluded.$b")"
done
mapfile -t tests_normal < <(test_names normal)
mapfile -t tests_fault < <(test_names fault)

python3 - "$root/tools/mutants.txt" "$work/mutants" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read()
os.makedirs(sys.argv[2], exist_ok=True)
recs = re.split(r'^=== ', text, flags=re.M)[1:]
for r in recs:
    head, body = r.split('\n', 1)
    mid, proto, path = re.match(r'(\S+) \[(\w+)\] (\S+)', head).groups()
    assert body.startswith('---\n'), mid
    old, new = body[4:].split('\n+++\n', 1)
    # comment lines ("# ...") between records end up after the replacement
    # text: drop them (a C line never starts with a hash and a space)
    lines = new.rstrip('\n').split('\n')
    while lines and (lines[-1].startswith('# ') or lines[-1].strip() == ''):
        lines.pop()
    new = '\n'.join(lines)
    new = new + '\n' if new else ''
    d = os.path.join(sys.argv[2], mid)
    os.makedirs(d)
    open(os.path.join(d, 'meta'), 'w').write(f'{proto} {path}\n')
    open(os.path.join(d, 'old'), 'w').write(old.rstrip('\n') + '\n')
    open(os.path.join(d, 'new'), 'w').write(new)
PY

apply() { # ID -> 0 applied, 1 not exactly once
	python3 - "$src/$2" "$work/mutants/$1/old" "$work/mutants/$1/new" <<'PY'
import sys
path, old, new = sys.argv[1], open(sys.argv[2]).read(), open(sys.argv[3]).read()
s = open(path).read()
if s.count(old) != 1:
    sys.exit(1)
open(path, 'w').write(s.replace(old, new))
PY
}

report=$out/report.md
{
	echo "# Mutation sweep: $(git -C "$root" rev-parse --short HEAD)${tests_rev:+, suite from $tests_rev}"
	echo
	[ -s "$work/excluded.normal" ] && echo "Left out (fail unmutated, normal build): $(tr '\n' ' ' <"$work/excluded.normal")"
	[ -s "$work/excluded.fault" ] && echo "Left out (fail unmutated, fault build): $(tr '\n' ' ' <"$work/excluded.fault")"
	echo
	echo "| mutant | protocol | result | killed by |"
	echo "|---|---|---|---|"
} >"$report"
killed=0 survived=0 stillborn=0
for d in "$work"/mutants/*/; do
	id=$(basename "$d")
	if [ ${#only[@]} -gt 0 ] && ! printf '%s\n' "${only[@]}" | grep -qxF "$id"; then
		continue
	fi
	read -r proto path <"$d/meta"
	cp "$src/$path" "$work/orig"
	result="" by=""
	if ! apply "$id" "$path"; then
		result="stillborn (text not found exactly once)"
	elif ! ninja -C "$work/normal" >"$out/$id.build.log" 2>&1 ||
	     ! ninja -C "$work/fault" >>"$out/$id.build.log" 2>&1; then
		result="stillborn (does not compile)"
	else
		by=$(run_suite normal "$out/$id.normal.log" "${tests_normal[@]}" | tr '\n' ' ')
		if [ -z "$by" ]; then
			by=$(run_suite fault "$out/$id.fault.log" "${tests_fault[@]}" | sed 's/^/fault:/' | tr '\n' ' ')
		fi
		if [ -n "$by" ]; then result=killed; else result=SURVIVED; fi
	fi
	cp "$work/orig" "$src/$path"
	case $result in
	killed) killed=$((killed + 1)) ;;
	SURVIVED) survived=$((survived + 1)) ;;
	*) stillborn=$((stillborn + 1)) ;;
	esac
	printf '  %-32s %-10s %s %s\n' "$id" "[$proto]" "$result" "$by"
	echo "| $id | $proto | $result | $by |" >>"$report"
done
# rebuild the unmutated tree so the scratch builds end clean
ninja -C "$work/normal" >/dev/null 2>&1
total=$((killed + survived))
{
	echo
	echo "Killed $killed of $total ($([ $total -gt 0 ] && echo $((100 * killed / total)) || echo 0)%); $survived survived; $stillborn stillborn."
} | tee -a "$report"
