#!/usr/bin/env bash
# Reproduces the "Paid checkout (--paid)" runs of BENCHMARKS.md: in-process
# `fulfill loadtest`, free then paid, on each engine, every run on a fresh
# database (a new SQLite file, or a PostgreSQL database created and dropped
# on the server of TEST_DATABASE_URL), each started once the machine is
# idle.
#
#   scripts/bench/paid.sh [OUT_DIR]
#
# Environment: TEST_DATABASE_URL (PostgreSQL; skipped without it), ENGINES
# (default "sqlite postgres"), DURATION (default 15s), CONCURRENCY (default
# 32), RATE (open-loop run, default 300), QUIET_WAIT (seconds to wait for
# an idle machine, default 180), TRIES (default 3). Results: OUT_DIR/*.json,
# OUT_DIR/*.txt (the last try of each run) and every try as *.tryN.*.
set -euo pipefail

cd "$(dirname "$0")/../.."
OUT=${1:-/tmp/fulfill-bench/paid-$(date -u +%Y%m%dT%H%M%SZ)}
ENGINES=${ENGINES:-sqlite postgres}
DURATION=${DURATION:-15s}
CONCURRENCY=${CONCURRENCY:-32}
RATE=${RATE:-300}
QUIET_WAIT=${QUIET_WAIT:-180}
PGURL=${TEST_DATABASE_URL:-}
mkdir -p "$OUT"
BIN=$OUT/fulfill
go build -o "$BIN" ./cmd/fulfill
echo "results in $OUT"

SCRATCH_DB=
drop_db() { psql -q "$PGURL" -c "DROP DATABASE IF EXISTS $1" >/dev/null 2>&1 || true; }
cleanup() { [ -n "$SCRATCH_DB" ] && drop_db "$SCRATCH_DB"; SCRATCH_DB=; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# quiet waits (up to QUIET_WAIT s) until the machine used < 0.3 core over 3 s.
quiet() {
	local end=$((SECONDS + QUIET_WAIT)) a b busy
	while :; do
		a=$(head -1 /proc/stat)
		sleep 3
		b=$(head -1 /proc/stat)
		busy=$(awk -v a="$a" -v b="$b" 'BEGIN { split(a, x); split(b, y); t = 0
			for (k = 2; k <= 9; k++) t += y[k] - x[k]
			printf "%.2f", (t - (y[5] - x[5]) - (y[6] - x[6])) / 300 }')
		awk -v b="$busy" 'BEGIN { exit !(b < 0.3) }' && return 0
		[ $SECONDS -ge $end ] && { echo "machine still busy ($busy cores); running anyway"; return 0; }
	done
}

# fresh_db ENGINE prints a --db URL of a new, empty database.
fresh_db() {
	if [ "$1" = sqlite ]; then
		local f=$OUT/run-$RANDOM.db
		rm -f "$f" "$f-wal" "$f-shm"
		echo "sqlite:$f"
		return
	fi
	SCRATCH_DB=lt_paid_$(date +%s)_$RANDOM
	psql -q "$PGURL" -c "CREATE DATABASE $SCRATCH_DB" >/dev/null
	# the same server and options as TEST_DATABASE_URL, another database
	echo "$PGURL" | sed -E "s#/[^/?]+(\?|$)#/$SCRATCH_DB\1#"
}

# run NAME ENGINE ARGS...: one run on a fresh database (DBOPT, e.g.
# "&max_idle_conns=40", is appended to a PostgreSQL URL). A run during
# which other work used more than 0.3 core is done again (at most TRIES
# times, default 3); every try is kept as NAME.tryN.*.
run() {
	local name=$1 engine=$2
	shift 2
	if [ "$engine" = postgres ] && [ -z "$PGURL" ]; then
		echo "skip $name: TEST_DATABASE_URL not set"
		return
	fi
	local db try others
	for try in $(seq 1 "${TRIES:-3}"); do
		quiet
		db=$(fresh_db "$engine")
		[ "$engine" = postgres ] && db="$db${DBOPT:-}"
		echo "== $name (try $try): fulfill loadtest --db <fresh $engine>${DBOPT:+ (${DBOPT})} $*"
		"$BIN" loadtest --db "$db" --progress 0 --json "$@" >"$OUT/$name.try$try.json" 2>"$OUT/$name.try$try.txt" ||
			echo "$name: FAILED (see $OUT/$name.try$try.txt)"
		cleanup
		cp "$OUT/$name.try$try.json" "$OUT/$name.json"
		cp "$OUT/$name.try$try.txt" "$OUT/$name.txt"
		grep -E "orders/s|latency of|basket POST|accept notification|open loop|accepted .* = orders|VERIF|CPU" "$OUT/$name.txt" || true
		others=$(grep -o '"others": [0-9.]*' "$OUT/$name.json" | grep -o '[0-9.]*$' || echo 9)
		awk -v o="$others" 'BEGIN { exit !(o <= 0.3) }' && return 0
		echo "   other work used $others cores during $name"
	done
}

for e in $ENGINES; do
	run "$e-free" "$e" --concurrency "$CONCURRENCY" --duration "$DURATION"
	run "$e-paid" "$e" --paid --concurrency "$CONCURRENCY" --duration "$DURATION"
	run "$e-paid-dup10" "$e" --paid --paid-duplicates 0.1 --concurrency "$CONCURRENCY" --duration "$DURATION"
	run "$e-paid-rate$RATE" "$e" --paid --paid-duplicates 0.1 --rate "$RATE" --concurrency 256 --duration "$DURATION"
done
# PostgreSQL with as many idle connections kept as open ones (the default
# max_idle_conns=10 of a 40-connection pool closes and reopens connections
# under load).
case " $ENGINES " in *" postgres "*)
	DBOPT="&max_idle_conns=40" run postgres-free-idle40 postgres --concurrency "$CONCURRENCY" --duration "$DURATION"
	DBOPT="&max_idle_conns=40" run postgres-paid-idle40 postgres --paid --concurrency "$CONCURRENCY" --duration "$DURATION"
	;;
esac
