#!/bin/sh
# plot_ha.sh BENCH [OUTDIR]: run `mqlock-bench ha` RUNS times (default 3)
# and draw, with gnuplot (Debian: gnuplot-nox, or docker/deps.sh docs),
# OUTDIR/ha-vs-sqlite.png: one operation's latency with one client (p50,
# p99) for mqlockd on sqlite, mqlockd on etcd, etcd's own put and fenced
# transaction, and the p50 budget (etcd put p50 + sqlite p50); and the
# throughput with 32 clients.  Each bar is the median of the runs; the
# JSON lines are printed on stdout, so the figures can be checked.
# OUTDIR defaults to docs/ next to this script; BENCH_FLAGS adds flags.
set -eu

bench=${1:?usage: plot_ha.sh BENCH [OUTDIR]}
here=$(cd "$(dirname "$0")" && pwd)
out=${2:-$here/../../docs}
flags=${BENCH_FLAGS:-}
runs=${RUNS:-3}
command -v gnuplot >/dev/null || {
	echo "plot_ha.sh: gnuplot missing (docker/deps.sh docs)" >&2
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

# median FILE: the median of the numbers in FILE, one a line.
median() {
	sort -g "$1" | awk '{v[NR] = $1} END {
		if (NR % 2) print v[(NR + 1) / 2];
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

i=0
while [ "$i" -lt "$runs" ]; do
	i=$((i + 1))
	echo "plot_ha.sh: run $i of $runs (load $(cut -d' ' -f1 /proc/loadavg))" >&2
	# shellcheck disable=SC2086 # flags are words on purpose
	line=$("$bench" ha --json $flags)
	printf '%s\n' "$line"
	for k in lat.p50_us lat.p99_us tput.ops_per_s; do
		field "$line" sqlite "$k" >>"$work/sqlite-$k"
		field "$line" etcd "$k" >>"$work/etcd-$k"
	done
	for k in etcd_put_p50_us etcd_put_p99_us etcd_txn_p50_us \
		etcd_txn_p99_us; do
		field "$line" etcd "$k" >>"$work/$k"
	done
done

s50=$(median "$work/sqlite-lat.p50_us")
s99=$(median "$work/sqlite-lat.p99_us")
e50=$(median "$work/etcd-lat.p50_us")
e99=$(median "$work/etcd-lat.p99_us")
p50=$(median "$work/etcd_put_p50_us")
p99=$(median "$work/etcd_put_p99_us")
t50=$(median "$work/etcd_txn_p50_us")
t99=$(median "$work/etcd_txn_p99_us")
st=$(median "$work/sqlite-tput.ops_per_s")
et=$(median "$work/etcd-tput.ops_per_s")
budget=$(awk "BEGIN {print $p50 + $s50}")
cat >"$work/lat.dat" <<EOF
"p50" $s50 $e50 $p50 $t50 $budget
"p99" $s99 $e99 $p99 $t99 -
EOF
cat >"$work/tput.dat" <<EOF
"on sqlite" $st 16744206
"on etcd" $et 2062260
EOF

when=$(date -u +%Y-%m-%d)
gnuplot <<GP
set terminal pngcairo size 1000,560 font "sans,11"
set output "$out/ha-vs-sqlite.png"
set multiplot layout 1,2 title "mqlockd on etcd (3 members) and on sqlite, median of $runs runs ($when)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key outside bottom center horizontal maxrows 3 width -4
set datafile missing "-"
set title "one lock operation, 1 client"
set ylabel "latency (µs)"
set yrange [0:*]
plot "$work/lat.dat" using 2:xtic(1) title "mqlockd on sqlite" lc rgb "#ff7f0e", \
     "" using 3 title "mqlockd on etcd" lc rgb "#1f77b4", \
     "" using 4 title "etcd put (floor)" lc rgb "#7f7f7f", \
     "" using 5 title "etcd fenced txn" lc rgb "#bcbd22", \
     "" using 6 title "budget: put p50 + sqlite p50" lc rgb "#2ca02c"
set title "throughput, 32 clients x 4 locks"
set ylabel "lock operations / s"
set key off
set style data boxes
set boxwidth 0.5
set xrange [-0.7:1.7]
plot "$work/tput.dat" using 0:2:3:xtic(1) lc rgb variable
unset multiplot
GP
echo "plot_ha.sh: wrote $out/ha-vs-sqlite.png" >&2
