#!/usr/bin/env bash
# docker/deps.sh ROLE... : install the Debian 12 packages mqlock needs.
#
#   build    compile mqlockd and mqlock (and configure the CMake project)
#   libs     the shared libraries mqlockd and mqlock need at run time
#   broker   mosquitto and its command-line clients
#   run      libs + broker: run mqlockd with a local broker
#   test     run tests/run.sh: unit and integration tests, format check
#   node     Node.js and npm, for the JavaScript client in clients/js
#   web      the same, for web/build.sh (the demo editor page)
#   browser  node + Chromium, for the browser tests in tests/browser
#   docs     gnuplot, for src/bench/plots.sh (the plots in docs/)
#   security openssl and mosquitto_passwd for broker-config/production/setup.sh,
#            and valgrind for the memcheck step of tests/run.sh
#   fuzz     clang and its libFuzzer and sanitizer runtimes, for tests/fuzz
#   ha       etcd (server and etcdctl), libcurl's headers and openssl:
#            mqlockd's high-availability mode and its tests (label ha)
#   etcd     etcd alone (server and etcdctl), for docker/compose-ha.yaml
#   python   the Python client in clients/python and its tests (pytest)
#   drf      python + Django, DRF, nginx and gunicorn, for examples/drf
#
# Example: docker/deps.sh build run test
#
# Installs only what is missing, so a second run does nothing and needs no
# network. Needs root (or nothing to install). Works on a minimal Debian 12
# (debootstrap --variant=minbase): it uses only bash, coreutils, dpkg and apt.
set -euo pipefail

# The CMake project configures its tests unconditionally: cmocka and the
# mosquitto and mosquitto_sub binaries must be present even just to build
# the programs. The broker plugin in src/broker needs mosquitto's plugin
# headers: mosquitto_plugin.h and mosquitto_broker.h (mosquitto-dev) and
# mosquitto.h, with the error and log constants (libmosquitto-dev).
pkgs_build=(
	gcc libc6-dev make cmake pkg-config ca-certificates
	libpaho-mqtt-dev libssl-dev libsqlite3-dev libcjson-dev
	libcmocka-dev mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev
	libsodium-dev libjwt-dev libcurl4-openssl-dev
)
pkgs_libs=(
	libpaho-mqtt1.3 libssl3 libsqlite3-0 libcjson1 libsodium23 libjwt0
	libcurl4
)
pkgs_broker=(
	mosquitto mosquitto-clients
)
pkgs_run=("${pkgs_libs[@]}" "${pkgs_broker[@]}")
# The integration tests are C programs (Paho, cmocka) that start mosquitto
# and mosquitto_sub, and make a test CA with openssl (mqlock over wss://);
# the sanitizer build needs gcc's libasan/libubsan, which come with gcc.
pkgs_test=(
	libcmocka-dev mosquitto mosquitto-clients
	clang-format procps openssl
)
# A Node.js installed another way (NodeSource's nodejs bundles npm and
# conflicts with Debian's npm) is used as it is.
pkgs_node=()
command -v node >/dev/null 2>&1 || pkgs_node+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs_node+=(npm)
pkgs_browser=("${pkgs_node[@]}" chromium)
pkgs_docs=(gnuplot-nox)
# openssl is not in a minimal Debian; mosquitto_passwd comes with mosquitto.
pkgs_security=(openssl mosquitto valgrind)
# libclang-rt-14-dev (libFuzzer, ASan, UBSan for clang) is only recommended
# by clang's packages, and recommends are not installed.
pkgs_fuzz=(clang libclang-rt-14-dev)
# mqlockd speaks to etcd through its v3 JSON gateway over HTTP(S) with
# libcurl (also in build and libs: mqlockd always links it). The tests start
# etcd members of their own (etcd-server), set up etcd users with etcdctl
# (etcd-client, also how people inspect the journal by hand) and make a
# throwaway CA and certificates for the TLS case with openssl.
pkgs_ha=(etcd-server etcd-client libcurl4-openssl-dev openssl)
pkgs_etcd=(etcd-server etcd-client)
# The Python client speaks MQTT 5 through paho-mqtt 1.6.1 and signs tickets
# with PyJWT; the example adds Django REST Framework, gunicorn to run it,
# nginx in front (its auth_request module guards the broker's WebSocket
# listener) and openssl for broker-config/production/setup.sh.
pkgs_python=(python3 python3-paho-mqtt python3-jwt python3-pytest)
pkgs_drf=("${pkgs_python[@]}" python3-django python3-djangorestframework
	gunicorn nginx openssl mosquitto mosquitto-clients)

usage() {
	echo "usage: $0 ROLE...   (roles: build libs broker run test node web browser docs security fuzz ha python drf etcd)" >&2
	exit 64
}

[ "$#" -gt 0 ] || usage

wanted=()
for role in "$@"; do
	case "$role" in
	build) wanted+=("${pkgs_build[@]}") ;;
	libs) wanted+=("${pkgs_libs[@]}") ;;
	broker) wanted+=("${pkgs_broker[@]}") ;;
	run) wanted+=("${pkgs_run[@]}") ;;
	test) wanted+=("${pkgs_test[@]}") ;;
	node | web) wanted+=("${pkgs_node[@]}") ;;
	browser) wanted+=("${pkgs_browser[@]}") ;;
	docs) wanted+=("${pkgs_docs[@]}") ;;
	security) wanted+=("${pkgs_security[@]}") ;;
	fuzz) wanted+=("${pkgs_fuzz[@]}") ;;
	ha) wanted+=("${pkgs_ha[@]}") ;;
	etcd) wanted+=("${pkgs_etcd[@]}") ;;
	python) wanted+=("${pkgs_python[@]}") ;;
	drf) wanted+=("${pkgs_drf[@]}") ;;
	*)
		echo "deps: unknown role '$role'" >&2
		usage
		;;
	esac
done

# One dpkg-query for all of them; packages dpkg never heard of are simply
# absent from its answer.
declare -A seen=() ok=()
unique=()
for pkg in "${wanted[@]}"; do
	[ -z "${seen[$pkg]:-}" ] || continue
	seen[$pkg]=1
	unique+=("$pkg")
done
while read -r pkg status; do
	[ "$status" != "install ok installed" ] || ok[${pkg%%:*}]=1
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${unique[@]}" 2>/dev/null || true)

missing=()
for pkg in "${unique[@]}"; do
	[ -n "${ok[$pkg]:-}" ] || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "deps: $*: nothing to install (${#unique[@]} packages present)"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi

# Whether Debian's own mosquitto service could be started by this install
# (see the end of the script).
mosquitto_new=0 etcd_new=0 nginx_new=0
for pkg in "${missing[@]}"; do
	[ "$pkg" != mosquitto ] || mosquitto_new=1
	[ "$pkg" != etcd-server ] || etcd_new=1
	[ "$pkg" != nginx ] || nginx_new=1
done

log=$(mktemp)
trap 'rm -f "$log"' EXIT

export DEBIAN_FRONTEND=noninteractive
echo "deps: installing ${missing[*]}"
start=$SECONDS
if ! apt-get -q update >"$log" 2>&1 ||
	! apt-get -q -y install --no-install-recommends "${missing[@]}" \
		>>"$log" 2>&1; then
	cat "$log" >&2
	echo "deps: apt-get failed (output above)" >&2
	exit 1
fi
echo "deps: installed ${#missing[@]} packages in $((SECONDS - start)) s"

# On a machine running systemd, installing the mosquitto package also enables
# and starts Debian's system broker on 127.0.0.1:1883 (and at every boot).
# mqlock's scripts start their own broker with broker-config/mosquitto.conf
# on that port, so turn the system one off again, but only when this run
# installed it: a broker someone set up on purpose is left alone.
if [ "$mosquitto_new" -eq 1 ] && [ -d /run/systemd/system ] &&
	command -v systemctl >/dev/null 2>&1; then
	if systemctl disable --now mosquitto.service >/dev/null 2>&1; then
		echo "deps: stopped and disabled Debian's mosquitto.service" \
			"(systemctl enable --now mosquitto brings it back)"
	fi
fi
# The same for etcd-server, whose etcd.service would serve a one-member
# cluster on 127.0.0.1:2379; mqlock's tests start members of their own.
if [ "$etcd_new" -eq 1 ] && [ -d /run/systemd/system ] &&
	command -v systemctl >/dev/null 2>&1; then
	if systemctl disable --now etcd.service >/dev/null 2>&1; then
		echo "deps: stopped and disabled Debian's etcd.service" \
			"(systemctl enable --now etcd brings it back)"
	fi
fi
# The same for nginx, which Debian starts on port 80: examples/drf/run.sh
# runs its own on a loopback port.
if [ "$nginx_new" -eq 1 ] && [ -d /run/systemd/system ] &&
	command -v systemctl >/dev/null 2>&1; then
	if systemctl disable --now nginx.service >/dev/null 2>&1; then
		echo "deps: stopped and disabled Debian's nginx.service" \
			"(systemctl enable --now nginx brings it back)"
	fi
fi
