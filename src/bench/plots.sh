#!/bin/sh
# plots.sh BENCH [OUTDIR]: run mqlock-bench BENCH over a range of clients and
# of queue lengths and draw, with gnuplot (Debian: gnuplot-nox, or
# docker/deps.sh docs):
#   OUTDIR/latency-vs-clients.png    latency percentiles against clients
#   OUTDIR/handover-vs-waiters.png   hand-over latency against clients in line
# OUTDIR defaults to docs/ next to this script.  Extra mqlock-bench flags can
# be given in BENCH_FLAGS (e.g. BENCH_FLAGS="--ops 1000").  The JSON lines are
# kept in OUTDIR/../build-plots/ only if KEEP=1; the figures in them are the
# ones the plots show.
set -eu

bench=${1:?usage: plots.sh BENCH [OUTDIR]}
here=$(cd "$(dirname "$0")" && pwd)
out=${2:-$here/../../docs}
flags=${BENCH_FLAGS:-}
clients=${CLIENTS:-"1 2 4 8 16 32 64"}
queues=${QUEUES:-"2,5,10,20,50,100"}
command -v gnuplot >/dev/null || {
	echo "plots.sh: gnuplot missing (docker/deps.sh docs)" >&2
	exit 1
}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# field JSON SIDE KEY: SIDE's value of KEY in one JSON line of mqlock-bench.
field() {
	printf '%s\n' "$1" |
		sed -e "s/.*\"$2\":{\([^}]*\)}.*/\1/" \
			-e "s/.*\"$3\":\([-0-9.e+]*\).*/\1/"
}

echo "plots.sh: latency against clients ($clients)" >&2
for n in $clients; do
	# shellcheck disable=SC2086 # flags are words on purpose
	line=$("$bench" latency --clients "$n" --json $flags)
	printf '%s\n' "$line" >>"$work/latency.jsonl"
	printf '%s' "$n" >>"$work/latency.dat"
	for side in mqlockd standin; do
		for k in p50_us p90_us p99_us ops_per_s; do
			printf ' %s' "$(field "$line" "$side" "$k")" \
				>>"$work/latency.dat"
		done
	done
	echo >>"$work/latency.dat"
done

echo "plots.sh: hand-over latency against queue length ($queues)" >&2
# shellcheck disable=SC2086
line=$("$bench" contention --queues "$queues" --json $flags)
printf '%s\n' "$line" >>"$work/contention.jsonl"
for k in $(printf '%s' "$queues" | tr ',' ' '); do
	printf '%s' "$k" >>"$work/handover.dat"
	for side in mqlockd standin; do
		for m in handover_p50_us handover_p90_us handover_p99_us \
			handovers_per_s; do
			printf ' %s' "$(field "$line" "$side" "k$k.$m")" \
				>>"$work/handover.dat"
		done
	done
	echo >>"$work/handover.dat"
done

when=$(date -u +%Y-%m-%d)
# Tics at the measured points: "1" 1, "2" 2, ...
tics() {
	for v in "$@"; do
		printf '"%s" %s,' "$v" "$v"
	done | sed 's/,$//'
}
ctics=$(tics $clients)
qtics=$(tics $(printf '%s' "$queues" | tr ',' ' '))
gnuplot <<GP
set terminal pngcairo size 900,560 font "sans,11"
set grid
set key outside right top
set logscale x 2
set autoscale xfix
set offsets graph 0.03, graph 0.03, 0, 0
set logscale y 10
set ylabel "latency of one lock operation (µs)"
set format y "%.0f"

set output "$out/latency-vs-clients.png"
set title "mqlockd and the ideal stand-in: latency against clients ($when)"
set xlabel "clients, each cycling acquire/release on its own lock"
set xtics ($ctics)
plot "$work/latency.dat" using 1:2 with linespoints lw 2 lc rgb "#1f77b4" pt 7 title "mqlockd p50", \
     "" using 1:3 with linespoints lw 2 lc rgb "#1f77b4" pt 5 dt 2 title "mqlockd p90", \
     "" using 1:4 with linespoints lw 2 lc rgb "#1f77b4" pt 9 dt 3 title "mqlockd p99", \
     "" using 1:6 with linespoints lw 2 lc rgb "#ff7f0e" pt 7 title "stand-in p50", \
     "" using 1:7 with linespoints lw 2 lc rgb "#ff7f0e" pt 5 dt 2 title "stand-in p90", \
     "" using 1:8 with linespoints lw 2 lc rgb "#ff7f0e" pt 9 dt 3 title "stand-in p99"

set output "$out/handover-vs-waiters.png"
set title "hand-over latency against clients lined up on one lock ($when)"
set xlabel "clients in line (holder + waiters)"
set xtics ($qtics)
set ylabel "release sent -> next holder sees granted (µs)"
plot "$work/handover.dat" using 1:2 with linespoints lw 2 lc rgb "#1f77b4" pt 7 title "mqlockd p50", \
     "" using 1:4 with linespoints lw 2 lc rgb "#1f77b4" pt 9 dt 3 title "mqlockd p99", \
     "" using 1:6 with linespoints lw 2 lc rgb "#ff7f0e" pt 7 title "stand-in p50", \
     "" using 1:8 with linespoints lw 2 lc rgb "#ff7f0e" pt 9 dt 3 title "stand-in p99"
GP
if [ "${KEEP:-0}" = 1 ]; then
	mkdir -p "$out/../build-plots"
	cp "$work"/*.jsonl "$work"/*.dat "$out/../build-plots/"
fi
echo "plots.sh: wrote $out/latency-vs-clients.png and" \
	"$out/handover-vs-waiters.png" >&2
