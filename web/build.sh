#!/usr/bin/env bash
# web/build.sh [DIR] : assemble the demo editor's web root (default run/www).
#
# The web root is what mosquitto's websockets listener serves with http_dir
# (broker-config/mosquitto.conf): the page from web/demo, the client
# clients/js/mqlock.js and mqtt.js's browser bundle. The bundle comes from
# clients/js/node_modules; `npm ci` fills that in when it is missing or older
# than clients/js/package-lock.json, so a second run needs no network.
# Needs node and npm (docker/deps.sh web).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/run/www}

say() {
	echo "web/build: $*"
}

js=$root/clients/js
if [ ! -f "$js/node_modules/mqtt/dist/mqtt.esm.js" ] ||
	[ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; then
	say "npm ci in clients/js"
	(cd "$js" && npm ci --no-audit --no-fund)
fi

files=(
	"$root/web/demo/index.html"
	"$root/web/demo/demo.css"
	"$root/web/demo/boot.js"
	"$root/web/demo/demo.js"
	"$js/mqlock.js"
	"$js/mqlock-lock.js"
	"$js/node_modules/mqtt/dist/mqtt.esm.js"
)

# Build next to the target and swap, so that a running broker never serves
# a half-copied directory.
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp "${files[@]}" "$tmp/"
chmod 755 "$tmp"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
say "web root ready in $out (${#files[@]} files)"
