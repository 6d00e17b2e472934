#!/usr/bin/env bash
# docker/run-local.sh [MQLOCKD-FLAG...] : build mqlock and run it locally.
#
# Installs the build and run packages (docker/deps.sh), builds build/ in
# Release mode, starts mosquitto with broker-config/mosquitto.conf on
# 127.0.0.1:1883 (MQTT) and 127.0.0.1:8080 (WebSocket), then runs mqlockd in
# the foreground with its journal in run/mqlock.db. Extra arguments go to
# mqlockd, e.g. `docker/run-local.sh --idle-timeout 120 --grace 5`.
# Ctrl-C or SIGTERM stops mqlockd, then the broker.
#
# Meant for root on Debian 12 (to install packages); once they are installed
# an ordinary user can run it too. Works from any current directory.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

say() {
	echo "run-local: $*"
}

die() {
	echo "run-local: $*" >&2
	exit 1
}

# True when something accepts TCP connections on 127.0.0.1:$1. Uses bash's
# /dev/tcp, so it needs neither ss nor nc.
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

check_ports() {
	local port
	for port in 1883 8080; do
		if port_open "$port"; then
			die "port $port on 127.0.0.1 is already in use; stop whatever" \
				"listens there (another broker or run-local.sh?) and retry." \
				"If it is Debian's mosquitto service:" \
				"systemctl disable --now mosquitto"
		fi
	done
}

# Refuse before spending minutes on a build, and again just before starting.
check_ports

"$root/docker/deps.sh" build run

# Only the two programs: running mqlock must not depend on every test
# compiling (tests/run.sh builds those). tests/run.sh configures build/ the
# same way plus -DMQLOCK_WERROR=ON, which is left as it is, so that after a
# test run there is nothing to rebuild.
say "configuring and building build/ (Release)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2 --target mqlockd mqlock

mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$mosquitto_bin" ] || die "mosquitto not found"

check_ports
mkdir -p run/www

# The demo editor page, served by the broker on port 8080 (http_dir). It
# needs Node.js and npm (and the npm registry once); without them mqlock
# runs all the same.
web=no
if [ -x web/build.sh ] && command -v node >/dev/null 2>&1 &&
	command -v npm >/dev/null 2>&1; then
	if web/build.sh run/www; then
		web=yes
	else
		say "warning: web/build.sh failed; no demo page this time"
	fi
fi

broker_pid=
mqlockd_pid=

# Stop mqlockd first, so that it can publish its offline status and
# disconnect cleanly, then the broker, which saves its state on SIGTERM.
stop() {
	local pid
	for pid in "$mqlockd_pid" "$broker_pid"; do
		[ -n "$pid" ] || continue
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	mqlockd_pid=
	broker_pid=
}

# shellcheck disable=SC2317  # reached through the traps below
on_signal() {
	echo
	say "stopping"
	stop
	exit "$1"
}

trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap stop EXIT

say "starting mosquitto (log: run/mosquitto.log)"
"$mosquitto_bin" -c broker-config/mosquitto.conf >>run/mosquitto.log 2>&1 &
broker_pid=$!

for _ in $(seq 100); do
	port_open 1883 && break
	kill -0 "$broker_pid" 2>/dev/null || break
	sleep 0.1
done
if ! port_open 1883; then
	tail -n 20 run/mosquitto.log >&2 || true
	die "mosquitto did not start listening on 127.0.0.1:1883 (log above)"
fi

cat <<'EOF'

  Broker: tcp://127.0.0.1:1883 and ws://127.0.0.1:8080 (log: run/mosquitto.log)
  Watch every lock change in another terminal:
      mosquitto_sub -v -t 'locks/#'
  Try it: README.md, "A five-minute tour", or
      build/mqlock acquire doc-1 -- sleep 30
EOF
if [ "$web" = yes ]; then
	echo "  Demo editor: http://127.0.0.1:8080/?user=Alice&lock=doc-1"
	echo "      and in a second window http://127.0.0.1:8080/?user=Bob&lock=doc-1"
else
	echo "  Demo editor page: docker/deps.sh web, then run this again"
fi
cat <<'EOF'
  Ctrl-C stops mqlockd and the broker. State stays in run/.

EOF

# mqlockd runs as a background job that the script waits for: bash runs a
# trap only between commands, so a foreground mqlockd would delay our
# reaction to SIGTERM until it exited by itself.
build/mqlockd --broker tcp://127.0.0.1:1883 --db ./run/mqlock.db "$@" &
mqlockd_pid=$!

status=0
wait "$mqlockd_pid" || status=$?
mqlockd_pid=
say "mqlockd exited with status $status; stopping mosquitto"
stop
exit "$status"
