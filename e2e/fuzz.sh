#!/usr/bin/env bash
# Runs every fuzz target in the module for a while each and checks that no
# process of the run (the coordinator or a worker) grew past a memory
# budget: a parser of peer input that allocates what the input claims
# (a length bomb) shows up here as a worker's resident set, not as a
# crash. Not part of e2e/test.sh: it takes ~16 minutes at the defaults.
#
#   ./e2e/fuzz.sh                  every target, 60 s each, -parallel 2
#   FUZZTIME=10s ./e2e/fuzz.sh     shorter
#   ./e2e/fuzz.sh ./forwards       only the targets under one package
#
# Environment: FUZZTIME (60s), FUZZ_PARALLEL (2), MAX_RSS_MB (1024): the
# budget per process. A process above twice the budget is killed at once
# so a runaway target cannot take the machine down.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-60s}"
parallel="${FUZZ_PARALLEL:-2}"
budget_mb="${MAX_RSS_MB:-1024}"
pkgs=("${@:-./...}")

command -v /usr/bin/time > /dev/null || { echo "e2e/fuzz.sh: needs GNU time (/usr/bin/time)" >&2; exit 1; }

# package directory and target name, one pair per line.
mapfile -t targets < <(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(' $(go list -f '{{.Dir}}' "${pkgs[@]}") |
	while read -r file; do
		grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | sed "s|^func ||; s|^|$(dirname "$file") |"
	done | sort -u)

# Kills anything in this run's process group above twice the budget.
watchdog() {
	local pgid=$1
	while sleep 1; do
		ps -o pid=,rss= -g "$pgid" 2> /dev/null | while read -r pid rss; do
			if ((rss > budget_mb * 2 * 1024)); then
				echo "e2e/fuzz.sh: pid $pid at $((rss / 1024)) MB: killed" >&2
				kill -9 "$pid" 2> /dev/null || true
			fi
		done
	done
}
watchdog "$(ps -o pgid= $$ | tr -d ' ')" &
watchdog_pid=$!
trap 'kill $watchdog_pid 2> /dev/null || true' EXIT

failed=0
printf '%-40s %-26s %8s  %s\n' package target "max RSS" result
for entry in "${targets[@]}"; do
	dir=${entry% *}
	name=${entry#* }
	rel=./${dir#"$PWD"/}
	log=$(mktemp)
	status=0
	/usr/bin/time -f 'maxrss_kb=%M' -o "$log.time" \
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -parallel "$parallel" "$rel" > "$log" 2>&1 || status=$?
	rss_kb=$(sed -n 's/^maxrss_kb=//p' "$log.time" | tail -1)
	rss_mb=$((${rss_kb:-0} / 1024))
	result=ok
	if ((status != 0)); then
		result="FAILED (exit $status; output in $log)"
		failed=1
	elif ((rss_mb > budget_mb)); then
		result="OVER BUDGET (${budget_mb} MB)"
		failed=1
	fi
	printf '%-40s %-26s %5d MB  %s\n' "$rel" "$name" "$rss_mb" "$result"
	if [[ $result == ok ]]; then rm -f "$log" "$log.time"; fi
done
exit "$failed"
