#!/usr/bin/env bash
# examples/drf/run.sh [--no-install] [MQLOCKD-FLAG...] : the Django example, in one command.
#
# Installs its Debian packages (docker/deps.sh build run drf web), builds
# mqlockd, prepares the run directory and starts, all on 127.0.0.1:
#
#   mosquitto  the production broker profile (broker-config/production:
#              setup.sh's accounts, ACLs, certificates and plugin), its
#              listeners moved to loopback ports: MQTT over TLS on
#              :$DRFDEMO_BROKER_PORT (8885) for Django (user services), the
#              coordinator's TLS listener on :$DRFDEMO_COORD_PORT (8886), and
#              WebSocket on :$DRFDEMO_WS_PORT (8081), for nginx alone (user
#              editors)
#   mqlockd    --ticket-key run/ticket.key --require-ticket (and MQLOCKD-FLAGs)
#   gunicorn   the Django app, two worker processes, on a Unix socket in the
#              run directory (reachable only through nginx)
#   nginx      http://127.0.0.1:$DRFDEMO_PORT/ (8000): the app, its static
#              files, and /mqtt, the broker's WebSocket listener, for requests
#              whose Django session is valid (auth_request to /mqlock/auth)
#
# Sign in as alice / alice-demo, bob / bob-demo or carol / carol-demo.
# Ctrl-C (or SIGTERM) stops all four.
#
#   --no-install   install nothing and build nothing (the tests use it)
#
# Environment: DRFDEMO_RUN (run directory, default examples/drf/run),
# DRFDEMO_PORT, DRFDEMO_BROKER_PORT, DRFDEMO_COORD_PORT, DRFDEMO_WS_PORT,
# MQLOCKD_BIN and MQLOCK_AUTH_PLUGIN (an mqlockd and a broker plugin to use
# instead of building build/mqlockd and build/src/broker/mqlock_auth.so).
#
# Meant for root on Debian 12 (to install packages); once they are installed
# an ordinary user can run it too.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

install=1
if [ "${1:-}" = "--no-install" ]; then
	install=0
	shift
fi

port=${DRFDEMO_PORT:-8000}
broker_port=${DRFDEMO_BROKER_PORT:-8885}
coord_port=${DRFDEMO_COORD_PORT:-8886}
ws_port=${DRFDEMO_WS_PORT:-8081}
run=${DRFDEMO_RUN:-$here/run}

say() {
	echo "drf: $*"
}

die() {
	echo "drf: $*" >&2
	exit 1
}

port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

check_ports() {
	local p
	for p in "$port" "$broker_port" "$coord_port" "$ws_port"; do
		! port_open "$p" || die "port $p on 127.0.0.1 is in use; stop what listens there," \
			"or choose others with DRFDEMO_PORT, DRFDEMO_BROKER_PORT," \
			"DRFDEMO_COORD_PORT, DRFDEMO_WS_PORT"
	done
}

check_ports

# --- packages and builds -------------------------------------------------------
if [ "$install" -eq 1 ]; then
	"$root/docker/deps.sh" build run drf web
fi
mqlockd=${MQLOCKD_BIN:-}
plugin=${MQLOCK_AUTH_PLUGIN:-}
if [ -z "$mqlockd" ] || [ -z "$plugin" ]; then
	if [ "$install" -eq 1 ]; then
		say "building mqlockd and the broker plugin in build/ (Release)"
		cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
		cmake --build "$root/build" -j2 --target mqlockd mqlock_auth
	fi
	mqlockd=${mqlockd:-$root/build/mqlockd}
	plugin=${plugin:-$root/build/src/broker/mqlock_auth.so}
fi
[ -x "$mqlockd" ] || die "$mqlockd not found (build it, or set MQLOCKD_BIN)"
[ -f "$plugin" ] || die "$plugin not found (build it, or set MQLOCK_AUTH_PLUGIN)"
js=$root/clients/js
if [ ! -f "$js/node_modules/mqtt/dist/mqtt.esm.js" ]; then
	[ "$install" -eq 1 ] || die "clients/js/node_modules is missing: npm ci in clients/js"
	say "npm ci in clients/js"
	(cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
fi
mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
gunicorn_bin=$(command -v gunicorn || echo /usr/bin/gunicorn)
for bin in "$mosquitto_bin" "$nginx_bin" "$gunicorn_bin"; do
	[ -x "$bin" ] || die "$bin not found (docker/deps.sh drf installs it)"
done

# --- the run directory ------------------------------------------------------------
# Secrets are made once and kept: the ticket key (shared by Django and
# mqlockd), Django's secret key, the broker's passwords.
mkdir -p "$run"
chmod 700 "$run"
run=$(cd "$run" && pwd)
case "$run" in
*' '* | *'#'* | *'&'* | *'\'* | *';'* | *'{'* | *'}'* | *'|'* | *'"'* | *"'"*)
	die "the run directory must not contain spaces or # & \\ ; { } | quotes: $run" ;;
esac
umask 077
[ -s "$run/ticket.key" ] || openssl rand -hex 32 >"$run/ticket.key"
[ -s "$run/secret.key" ] || openssl rand -base64 48 >"$run/secret.key"
if [ ! -f "$run/broker/coordinator-id" ]; then
	say "making the broker's accounts, ACLs and certificates in $run/broker"
	rm -rf "$run/broker"
	"$root/broker-config/production/setup.sh" --plugin "$plugin" "$run/broker" >/dev/null
fi
mkdir -p "$run/nginx/tmp"

# mosquitto: the production profile as setup.sh wrote it, with its three
# listeners on this example's loopback ports, this build's plugin, and its
# state and log in the run directory. Each line it changes must be there.
edits=(
	"^listener 8883\$|listener $broker_port 127.0.0.1"
	"^listener 8080 127.0.0.1\$|listener $ws_port 127.0.0.1"
	"^listener 8884 127.0.0.1\$|listener $coord_port 127.0.0.1"
	"^plugin .*|plugin $plugin"
	"^persistence_location .*|persistence_location $run/"
	"^log_dest stderr\$|log_dest file $run/mosquitto.log"
)
sed_args=()
for e in "${edits[@]}"; do
	grep -q -- "${e%%|*}" "$run/broker/mosquitto.conf" ||
		die "broker-config/production/mosquitto.conf has no line matching '${e%%|*}';" \
			"examples/drf/run.sh needs updating"
	sed_args+=(-e "s|$e|")
done
{
	echo "# Written by examples/drf/run.sh from $run/broker/mosquitto.conf."
	sed "${sed_args[@]}" "$run/broker/mosquitto.conf"
	# Started as root, mosquitto would drop to the mosquitto user, which may
	# not reach a checkout under /root: it keeps the privileges of whoever
	# ran this script (a loopback-only example).
	echo "user $(id -un)"
} >"$run/mosquitto.conf"

# nginx: the only way in. WebSocket upgrades on /mqtt pass to the broker only
# after Django said 204 to the same cookies (auth_request).
cat >"$run/nginx/nginx.conf" <<EOF
# Written by examples/drf/run.sh; changes are lost on the next run.
worker_processes 1;
pid $run/nginx/nginx.pid;
error_log $run/nginx/error.log warn;
# Workers run as whoever ran this script (as root they would otherwise be
# www-data, which may not reach a checkout under /root).
user $(id -un) $(id -gn);
events {
	worker_connections 512;
}
http {
	include /etc/nginx/mime.types;
	default_type application/octet-stream;
	access_log $run/nginx/access.log;
	client_body_temp_path $run/nginx/tmp/body;
	proxy_temp_path $run/nginx/tmp/proxy;
	fastcgi_temp_path $run/nginx/tmp/fastcgi;
	uwsgi_temp_path $run/nginx/tmp/uwsgi;
	scgi_temp_path $run/nginx/tmp/scgi;
	server_tokens off;

	map \$http_upgrade \$connection_upgrade {
		default upgrade;
		'' close;
	}
	upstream django {
		server unix:$run/gunicorn.sock;
	}

	server {
		listen 127.0.0.1:$port;
		server_name 127.0.0.1 localhost;

		location /static/ {
			alias $run/static/;
		}

		# The broker's WebSocket listener, for logged-in users only.
		location = /mqtt {
			auth_request /_mqlock_auth;
			proxy_pass http://127.0.0.1:$ws_port;
			proxy_http_version 1.1;
			proxy_set_header Upgrade \$http_upgrade;
			proxy_set_header Connection \$connection_upgrade;
			proxy_set_header Host \$http_host;
			# Longer than 1.5 x the pages' MQTT keepalive (60 s).
			proxy_read_timeout 300s;
			proxy_send_timeout 300s;
		}
		location = /_mqlock_auth {
			internal;
			proxy_pass http://django/mqlock/auth;
			proxy_pass_request_body off;
			proxy_set_header Content-Length "";
			proxy_set_header Host \$http_host;
			proxy_set_header X-Original-URI \$request_uri;
		}

		location / {
			proxy_pass http://django;
			proxy_set_header Host \$http_host;
			proxy_set_header X-Forwarded-For \$remote_addr;
		}
	}
}
EOF

export DRFDEMO_RUN=$run DRFDEMO_BROKER_PORT=$broker_port
export PYTHONPATH=$root/clients/python${PYTHONPATH:+:$PYTHONPATH}
python=/usr/bin/python3
manage() {
	(cd "$here" && "$python" manage.py "$@")
}

say "preparing the database and static files in $run"
manage migrate --noinput >/dev/null
manage drfdemo_setup
manage collectstatic --noinput --clear >/dev/null
mkdir -p "$run/static/mqlock"
cp "$js/mqlock.js" "$js/node_modules/mqtt/dist/mqtt.esm.js" "$run/static/mqlock/"
if [ -f "$js/mqlock-lock.js" ]; then
	cp "$js/mqlock-lock.js" "$run/static/mqlock/"
else
	say "warning: clients/js/mqlock-lock.js is missing: the editor page will not load"
fi
chmod -R go+rX "$run/static"

# --- start --------------------------------------------------------------------------
pids=()
stop_all() {
	local i
	trap - INT TERM EXIT
	# nginx, gunicorn, mqlockd, mosquitto: the reverse of the start order.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[$i]}" 2>/dev/null || true
		wait "${pids[$i]}" 2>/dev/null || true
	done
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_until() { # SECONDS WHAT COMMAND...
	local end=$((SECONDS + $1)) what=$2
	shift 2
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || die "timed out waiting for $what"
		sleep 0.1
	done
}

check_ports
"$mosquitto_bin" -c "$run/mosquitto.conf" &
pids+=($!)
wait_until 10 mosquitto port_open "$broker_port"

wait_until 10 "the coordinator's listener" port_open "$coord_port"
"$mqlockd" --broker "ssl://127.0.0.1:$coord_port" --cafile "$run/broker/ca.crt" \
	--username coordinator --password-file "$run/broker/passwords/coordinator" \
	--client-id "$(cat "$run/broker/coordinator-id")" --db "$run/mqlock.db" \
	--ticket-key "$run/ticket.key" --require-ticket "$@" 2>>"$run/mqlockd.log" &
pids+=($!)
# The backend's own view of the coordinator, with its own settings.
manage mqlock_status --wait 15 || die "mqlockd did not come online (see $run/mqlockd.log)"

rm -f "$run/gunicorn.sock"
(cd "$here" && exec "$gunicorn_bin" --bind "unix:$run/gunicorn.sock" --workers 2 \
	--access-logfile "$run/gunicorn-access.log" --error-logfile "$run/gunicorn.log" \
	drfdemo.wsgi:application) &
pids+=($!)
wait_until 15 gunicorn test -S "$run/gunicorn.sock"

"$nginx_bin" -p "$run/nginx" -c "$run/nginx/nginx.conf" -e "$run/nginx/error.log" \
	-g 'daemon off;' &
pids+=($!)
wait_until 10 nginx port_open "$port"

say "ready: http://127.0.0.1:$port/ (sign in as alice / alice-demo, bob / bob-demo)"
say "logs in $run; Ctrl-C stops everything"
set +e
wait -n "${pids[@]}"
status=$?
set -e
say "a server exited ($status); stopping the others"
exit 1
