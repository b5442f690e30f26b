#!/usr/bin/env bash
# Reproduces the load measurements of BENCHMARKS.md on this machine.
#
#   scripts/bench/run.sh [OUT_DIR]
#
# Every run gets a fresh database (a SQLite file, or a PostgreSQL database
# created and dropped on the server of TEST_DATABASE_URL), a fresh LMS
# stand-in (`fulfill lms-stub`) and a fresh service process (`fulfill
# serve`), driven by `fulfill loadtest --url` with --server-pid so that the
# service's peak RSS (VmHWM) is read from /proc. Results: OUT_DIR/*.json
# (the load tool's --json report), OUT_DIR/*.txt (its text report) and
# OUT_DIR/summary.md.
#
# Environment: TEST_DATABASE_URL (PostgreSQL; runs are skipped without it),
# DURATION (default 22s, of which WARMUP, default 2s, is left out of the
# figures), ENGINES (default "sqlite postgres"), STAGES
# (default "load rate outage pgbench"), QUIET_WAIT (seconds to wait for the
# machine to be idle before each run, default 120).
set -euo pipefail

cd "$(dirname "$0")/../.."
OUT=${1:-/tmp/fulfill-bench/$(date -u +%Y%m%dT%H%M%SZ)}
DURATION=${DURATION:-22s}
WARMUP=${WARMUP:-2s}
ENGINES=${ENGINES:-sqlite postgres}
STAGES=${STAGES:-load rate outage pgbench}
QUIET_WAIT=${QUIET_WAIT:-120}
PGURL=${TEST_DATABASE_URL:-}
LMS_PORT=${LMS_PORT:-18701}
SVC_PORT=${SVC_PORT:-18702}
SECRET=bench-secret
LMS_KEY=bench-lms-key
mkdir -p "$OUT"
BIN=$OUT/fulfill
go build -o "$BIN" ./cmd/fulfill
echo "results in $OUT"

STUB_PID=
SVC_PID=
SCRATCH_DB=
cleanup() {
	[ -n "$SVC_PID" ] && kill "$SVC_PID" 2>/dev/null && wait "$SVC_PID" 2>/dev/null || true
	[ -n "$STUB_PID" ] && kill "$STUB_PID" 2>/dev/null && wait "$STUB_PID" 2>/dev/null || true
	[ -n "$SCRATCH_DB" ] && drop_db "$SCRATCH_DB" || true
	SVC_PID= STUB_PID= SCRATCH_DB=
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# busy_cores prints how many cores the whole machine kept busy over 3 s.
busy_cores() {
	local a b
	a=$(head -1 /proc/stat)
	sleep 3
	b=$(head -1 /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN {
		split(a, x); split(b, y); t = 0; i = 0
		for (k = 2; k <= 9; k++) { t += y[k] - x[k] }
		i = (y[5] - x[5]) + (y[6] - x[6])
		printf "%.2f", (t - i) / 300 }'
}

# wait_quiet waits (up to QUIET_WAIT s) until other processes use < 0.3 core.
wait_quiet() {
	local deadline=$((SECONDS + QUIET_WAIT)) b
	while :; do
		b=$(busy_cores)
		if awk -v b="$b" 'BEGIN { exit !(b < 0.3) }'; then
			echo "  machine idle ($b cores busy)"
			return
		fi
		if [ $SECONDS -ge $deadline ]; then
			echo "  machine still busy ($b cores) after ${QUIET_WAIT}s; running anyway (see cpu.others)"
			return
		fi
	done
}

wait_http() { # url
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "no answer from $1" >&2
	return 1
}

pg_admin() { psql "$PGURL" -qAtX -v ON_ERROR_STOP=1 "$@"; }
drop_db() { pg_admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null; }
# new_db ENGINE NAME sets DB_URL to a fresh database (and SCRATCH_DB to the
# PostgreSQL database to drop). Not to be called in a subshell.
new_db() {
	if [ "$1" = sqlite ]; then
		rm -f "$OUT/$2.db" "$OUT/$2.db-wal" "$OUT/$2.db-shm"
		DB_URL="sqlite:$OUT/$2.db"
	else
		SCRATCH_DB=bench_$(date +%s)_$RANDOM
		pg_admin -c "CREATE DATABASE $SCRATCH_DB" >/dev/null
		# same server and options, other database
		DB_URL=$(echo "$PGURL" | sed -E "s#^(postgres(ql)?://[^/]+/)[^?]*#\1$SCRATCH_DB#")
	fi
}

start_stub() { # latency fail-rate
	"$BIN" lms-stub --addr "127.0.0.1:$LMS_PORT" --api-key "$LMS_KEY" --latency "$1" --fail-rate "$2" >"$OUT/stub.log" 2>&1 &
	STUB_PID=$!
	wait_http "http://127.0.0.1:$LMS_PORT/healthz"
}

start_service() { # db-url log
	"$BIN" serve --addr "127.0.0.1:$SVC_PORT" --db "$1" --lms-url "http://127.0.0.1:$LMS_PORT" --lms-api-key "$LMS_KEY" \
		--jwt-secret "$SECRET" --sandbox-secret bench-sandbox --retry-base 100ms --retry-cap 1s >/dev/null 2>"$2" &
	SVC_PID=$!
	wait_http "http://127.0.0.1:$SVC_PORT/healthz"
}

# remote_run NAME ENGINE LATENCY FAIL_RATE loadtest-flags...
remote_run() {
	local name=$1 engine=$2 latency=$3 fail=$4
	shift 4
	echo "== $name"
	wait_quiet
	new_db "$engine" "$name"
	start_stub "$latency" "$fail"
	start_service "$DB_URL" "$OUT/$name.server.log"
	"$BIN" loadtest --url "http://127.0.0.1:$SVC_PORT" --jwt-secret "$SECRET" --lms-url "http://127.0.0.1:$LMS_PORT" \
		--lms-api-key "$LMS_KEY" --server-pid "$SVC_PID" --json --progress 0 --settle 2m --warmup "$WARMUP" "$@" \
		>"$OUT/$name.json" 2>"$OUT/$name.txt" || echo "  (loadtest exited non-zero: see $OUT/$name.txt)"
	grep -E "orders/s|p50|VERIF|CPU|memory" "$OUT/$name.txt" | sed 's/^/  /' || true
	cleanup
}

# inproc_run NAME ENGINE loadtest-flags...
inproc_run() {
	local name=$1 engine=$2
	shift 2
	echo "== $name"
	wait_quiet
	new_db "$engine" "$name"
	"$BIN" loadtest --db "$DB_URL" --json --progress 0 "$@" >"$OUT/$name.json" 2>"$OUT/$name.txt" ||
		echo "  (loadtest exited non-zero: see $OUT/$name.txt)"
	grep -E "orders/s|Outage|VERIF|CPU" "$OUT/$name.txt" | sed 's/^/  /' || true
	cleanup
}

for engine in $ENGINES; do
	if [ "$engine" = postgres ] && [ -z "$PGURL" ]; then
		echo "TEST_DATABASE_URL not set: skipping PostgreSQL"
		continue
	fi
	case " $STAGES " in *" load "*)
		remote_run "$engine-lms0-c64" "$engine" 0 0 --concurrency 64 --duration "$DURATION"
		remote_run "$engine-lms0-c512" "$engine" 0 0 --concurrency 512 --duration "$DURATION"
		remote_run "$engine-lms200-c64" "$engine" 200ms 0 --concurrency 64 --duration "$DURATION"
		remote_run "$engine-lms200-c512" "$engine" 200ms 0 --concurrency 512 --duration "$DURATION"
		remote_run "$engine-fail30-c64" "$engine" 0 0.3 --concurrency 64 --duration "$DURATION"
		;;
	esac
	case " $STAGES " in *" rate "*)
		for rate in ${RATES:-100 200 300 400 1000}; do
			remote_run "$engine-lms0-rate$rate" "$engine" 0 0 --rate "$rate" --concurrency 512 --duration "$DURATION"
		done
		;;
	esac
	case " $STAGES " in *" outage "*)
		inproc_run "$engine-outage-short" "$engine" --orders 10000 --concurrency 64 --lms-outage --settle 5m
		inproc_run "$engine-outage-default" "$engine" --orders 10000 --concurrency 64 --lms-outage --settle 5m \
			--retry-base 2s --retry-cap 1h
		;;
	esac
done

case " $STAGES " in *" pgbench "*)
	if [ -n "$PGURL" ]; then
		echo "== pgbench -N -c 64 -j 2 -T 30"
		wait_quiet
		PGBENCH=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench | tail -1)
		SCRATCH_DB=pgbench_$(date +%s)_$RANDOM
		pg_admin -c "CREATE DATABASE $SCRATCH_DB" >/dev/null
		url=$(echo "$PGURL" | sed -E "s#^(postgres(ql)?://[^/]+/)[^?]*#\1$SCRATCH_DB#")
		"$PGBENCH" -i -s 10 -q "$url" >"$OUT/pgbench-init.txt" 2>&1
		"$PGBENCH" -N -c 64 -j 2 -T 30 "$url" >"$OUT/pgbench.txt" 2>&1
		grep -E "tps|latency" "$OUT/pgbench.txt" | sed 's/^/  /' || true
		cleanup
	fi
	;;
esac

# summary.md: one row per load run.
{
	echo "| run | orders/s | p50 ms | p99 ms | max ms | p99 ms incl. warm-up | errors | answered | verified | settle s | service VmHWM MB | CPU cores: service / PostgreSQL / LMS stand-in / loadtest / others |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
	for f in "$OUT"/*.json; do
		[ -s "$f" ] || continue
		jq -r --arg n "$(basename "$f" .json)" '"| \($n) | \(.orders_per_second*10|round/10) | \(.latency_ms.p50*10|round/10) | \(.latency_ms.p99*10|round/10) | \(.latency_ms.max|round) | \(if .latency_ms_all then (.latency_ms_all.p99*10|round/10) else "-" end) | \(.errors|to_entries|map("\(.key) \(.value)")|join(", ")) | \(.answered_status|to_entries|map("\(.key) \(.value)")|join(", ")) | \(.verified) | \(.settle.waited_seconds*10|round/10)\(if .outage then " (recovery \(.outage.recovery_seconds*10|round/10))" else "" end) | \(if .memory then (.memory.vm_hwm_mb|round) else "-" end) | \(.cpu.service_process // "-") / \(.cpu.postgres // "-") / \(.cpu.other_fulfill_processes // "-") / \(.cpu.this_process // "-") / \(.cpu.others // "-") |"' "$f"
	done
	if [ -f "$OUT/pgbench.txt" ]; then
		echo
		echo "pgbench -N -c 64 -j 2 -T 30 (scale 10):"
		grep -E "^tps|latency average" "$OUT/pgbench.txt" | sed 's/^/    /'
	fi
} >"$OUT/summary.md"
cat "$OUT/summary.md"
