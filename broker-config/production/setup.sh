#!/usr/bin/env bash
# broker-config/production/setup.sh [--host NAME]... [--days N] [--plugin PATH]
#                                   DIR [ROLE=USER[:PASSWORD]]...
#
# Makes everything the production broker profile needs, in DIR (created,
# mode 700; it must not already hold a profile):
#
#   DIR/mosquitto.conf     this directory's mosquitto.conf, its paths set to
#                          DIR and to the plugin
#   DIR/passwd-tls         password file of the TLS listener (port 8883):
#                          services, monitors, admins
#   DIR/passwd-ws          password file of the WebSocket listener
#                          (127.0.0.1:8080): editors
#   DIR/passwd-coordinator password file of the coordinator's listener
#                          (127.0.0.1:8884): coordinator
#   DIR/acl-tls, acl-ws, acl-coordinator
#                          this directory's ACLs, with the usernames chosen
#   DIR/coordinator-id     the coordinator's MQTT client id, "mqlockd-" and
#                          32 random hex digits: a SECRET (mode 600; 640 with
#                          group mosquitto when run as root). The plugin
#                          reserves it for the coordinator's account, so
#                          knowing it lets nobody in; keep it out of logs,
#                          tickets and shell histories all the same.
#   DIR/passwords/USER     each user's password on one line, mode 600: give
#                          DIR/passwords/coordinator to mqlockd --password-file
#   DIR/ca.crt, ca.key     a local certificate authority (ca.key mode 600)
#   DIR/server.crt, .key   the broker's TLS certificate, signed by that CA,
#                          for localhost, 127.0.0.1 and every --host NAME
#
# The roles are coordinator, editors, services, monitors and admins (see the
# ACLs). By default each role's username is the role's name and its password
# is 32 random hex digits. ROLE=USER names the user; ROLE=USER:PASSWORD also
# sets the password (visible to other local users in `ps` while this runs:
# prefer the generated ones and read them from DIR/passwords).
#
#   --host NAME    also valid for NAME (a DNS name or an IP address);
#                  repeatable
#   --days N       validity of the server certificate (default 825; the CA
#                  gets ten years)
#   --plugin PATH  the broker plugin mqlock_auth.so (default: the installed
#                  /usr/local/lib/mqlock/mqlock_auth.so, else the one in this
#                  checkout's build/src/broker/)
#
# Needs openssl and mosquitto_passwd (docker/deps.sh security). When run as
# root on a host with a "mosquitto" user, the files the broker reads are made
# readable by that group too, since the broker drops to that user.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
roles=(coordinator editors services monitors admins)
# Where the shipped mosquitto.conf expects the files.
default_dir=/etc/mqlock/broker

die() {
	echo "setup: $*" >&2
	exit 1
}

usage() {
	echo "usage: $0 [--host NAME]... [--days N] [--plugin PATH] DIR [ROLE=USER[:PASSWORD]]..." >&2
	echo "       roles: ${roles[*]}" >&2
	exit 64
}

hosts=()
days=825
plugin=
while [ "$#" -gt 0 ]; do
	case "$1" in
	--host)
		[ "$#" -ge 2 ] || usage
		hosts+=("$2")
		shift 2
		;;
	--days)
		[ "$#" -ge 2 ] || usage
		[[ "$2" =~ ^[1-9][0-9]{0,4}$ ]] || die "--days: '$2' is not a number of days"
		days=$2
		shift 2
		;;
	--plugin)
		[ "$#" -ge 2 ] || usage
		plugin=$2
		shift 2
		;;
	-h | --help) usage ;;
	--) shift; break ;;
	-*) echo "setup: unknown option '$1'" >&2; usage ;;
	*) break ;;
	esac
done
[ "$#" -ge 1 ] || usage
dir=$1
shift

for tool in openssl mosquitto_passwd; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "$tool not found (docker/deps.sh security installs it)"
done

if [ -z "$plugin" ]; then
	for p in /usr/local/lib/mqlock/mqlock_auth.so \
		"$here/../../build/src/broker/mqlock_auth.so"; do
		if [ -f "$p" ]; then
			plugin=$p
			break
		fi
	done
	[ -n "$plugin" ] ||
		die "mqlock_auth.so not found: build it (cmake --build build) or give --plugin PATH"
fi
[ -f "$plugin" ] || die "--plugin $plugin: no such file"
plugin=$(cd "$(dirname "$plugin")" && pwd)/$(basename "$plugin")

declare -A user=() pass=()
for role in "${roles[@]}"; do
	user[$role]=$role
done
for arg in "$@"; do
	role=${arg%%=*}
	[ "$role" != "$arg" ] || die "'$arg' is not ROLE=USER[:PASSWORD]"
	[ -n "${user[$role]:-}" ] || die "unknown role '$role' (roles: ${roles[*]})"
	value=${arg#*=}
	name=${value%%:*}
	if [ "$name" != "$value" ]; then
		pass[$role]=${value#*:}
		[ -n "${pass[$role]}" ] || die "$role: empty password"
	fi
	# A username becomes an ACL line and a file name: keep it plain.
	[[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] ||
		die "$role: username '$name' must be 1-64 of A-Z a-z 0-9 . _ - (not starting with . _ -)"
	user[$role]=$name
done
declare -A taken=()
for role in "${roles[@]}"; do
	[ -z "${taken[${user[$role]}]:-}" ] ||
		die "username '${user[$role]}' given to two roles"
	taken[${user[$role]}]=1
done

# DIR and the plugin's path go into sed expressions and the broker's
# config file.
for path in "$dir" "$plugin"; do
	case "$path" in
	*'#'* | *'&'* | *'\'* | *' '* | *$'\n'* | *$'\t'*)
		die "'$path' must not contain spaces, tabs, newlines, #, & or \\" ;;
	esac
done

# Refuse to mix with an earlier setup: its CA may already be trusted.
for f in passwd passwd-tls coordinator-id; do
	[ ! -e "$dir/$f" ] || die "$dir/$f exists; remove $dir or choose another directory"
done
mkdir -p "$dir"
chmod 700 "$dir"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir/passwords"
chmod 700 "$dir/passwords"
umask 077

# --- users ---------------------------------------------------------------
# Each listener's password file holds only the roles that use it.
declare -A listener_of=([coordinator]=coordinator [editors]=ws
	[services]=tls [monitors]=tls [admins]=tls)
for l in tls ws coordinator; do
	: >"$dir/passwd-$l"
done
for role in "${roles[@]}"; do
	name=${user[$role]}
	password=${pass[$role]:-$(openssl rand -hex 16)}
	printf '%s\n' "$password" >"$dir/passwords/$name"
	mosquitto_passwd -b "$dir/passwd-${listener_of[$role]}" "$name" "$password"
done

# The coordinator's client id: a secret the plugin reserves for its account.
printf 'mqlockd-%s\n' "$(openssl rand -hex 16)" >"$dir/coordinator-id"

# The shipped ACLs, with each role's "user" line renamed.
acl_sed=()
for role in "${roles[@]}"; do
	acl_sed+=(-e "s/^user $role\$/user ${user[$role]}/")
done
for l in tls ws coordinator; do
	sed "${acl_sed[@]}" "$here/acl-$l" >"$dir/acl-$l"
done

# The shipped broker config, pointing at DIR and the plugin.
sed -e "/^#/!s#$default_dir#$dir#g" \
	-e "s#^plugin /usr/local/lib/mqlock/mqlock_auth.so\$#plugin $plugin#" \
	-e "s/^plugin_opt_coordinator_user coordinator\$/plugin_opt_coordinator_user ${user[coordinator]}/" \
	"$here/mosquitto.conf" >"$dir/mosquitto.conf"

# --- certificates ------------------------------------------------------------
# The CA may sign only these names (nameConstraints), so trusting it
# system-wide vouches for this broker and nothing else.
san="DNS:localhost,IP:127.0.0.1"
permit="permitted;DNS:localhost,permitted;IP:127.0.0.1/255.255.255.255"
for h in "${hosts[@]}"; do
	if [[ "$h" =~ ^[0-9.]+$ ]]; then
		san+=",IP:$h"
		permit+=",permitted;IP:$h/255.255.255.255"
	elif [[ "$h" == *:* ]]; then
		die "--host $h: IPv6 addresses are not supported here"
	elif [[ "$h" =~ ^[A-Za-z0-9.-]+$ ]]; then
		san+=",DNS:$h"
		permit+=",permitted;DNS:$h"
	else
		die "--host '$h' is neither a DNS name nor an IPv4 address"
	fi
done
cn=${hosts[0]:-localhost}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$dir/ca.key" -out "$dir/ca.crt" -days 3650 \
	-subj "/CN=mqlock broker CA $(date -u +%Y-%m-%d)" \
	-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" \
	-addext "nameConstraints=critical,$permit" 2>"$tmp/log" ||
	{ cat "$tmp/log" >&2; die "openssl could not make the CA"; }
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$dir/server.key" -out "$tmp/server.csr" -subj "/CN=$cn" \
	2>"$tmp/log" ||
	{ cat "$tmp/log" >&2; die "openssl could not make the server key"; }
cat >"$tmp/ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$san
EOF
openssl x509 -req -in "$tmp/server.csr" -CA "$dir/ca.crt" \
	-CAkey "$dir/ca.key" -CAcreateserial -CAserial "$tmp/ca.srl" \
	-days "$days" -extfile "$tmp/ext" -out "$dir/server.crt" 2>"$tmp/log" ||
	{ cat "$tmp/log" >&2; die "openssl could not sign the server certificate"; }

chmod 644 "$dir/ca.crt" "$dir/server.crt" "$dir/mosquitto.conf"
chmod 600 "$dir/ca.key" "$dir/passwords"/*
chmod 640 "$dir"/passwd-* "$dir"/acl-* "$dir/server.key"
chmod 600 "$dir/coordinator-id"
if [ "$(id -u)" -eq 0 ] && getent group mosquitto >/dev/null 2>&1; then
	chgrp mosquitto "$dir" "$dir"/passwd-* "$dir"/acl-* "$dir/server.key" \
		"$dir/server.crt" "$dir/ca.crt" "$dir/mosquitto.conf" \
		"$dir/coordinator-id"
	chmod 640 "$dir/coordinator-id"
	chmod 750 "$dir"
fi

cat <<EOF
setup: wrote $dir
  users:        $(for r in "${roles[@]}"; do printf '%s ' "${user[$r]}"; done)
  passwords:    $dir/passwords/<user> (mode 600)
  certificate:  $dir/server.crt for $san, signed by $dir/ca.crt
  plugin:       $plugin
  coordinator's client id: $dir/coordinator-id (a secret, mode 600)

Start the broker (TLS on port 8883, WebSocket on 127.0.0.1:8080, the
coordinator's own TLS listener on 127.0.0.1:8884):
  mosquitto -c $dir/mosquitto.conf
under systemd with the file limit of broker-config/production/mosquitto-limits.conf.

Start the coordinator on the same host, on its own listener, with its
secret client id (read from the file, so it stays off the screen):
  mqlockd --broker ssl://127.0.0.1:8884 --cafile $dir/ca.crt \\
    --username ${user[coordinator]} --password-file $dir/passwords/${user[coordinator]} \\
    --client-id "\$(cat $dir/coordinator-id)" \\
    --db /var/lib/mqlock/mqlock.db

A backend service, through the TLS listener (the mqlock command finds the
CA in the system's store: cp $dir/ca.crt
/usr/local/share/ca-certificates/mqlock-broker.crt && update-ca-certificates):
  mqlock --broker ssl://127.0.0.1:8883 --username ${user[services]} \\
    --password-file $dir/passwords/${user[services]} acquire doc-1 -- true
Editor pages connect as ${user[editors]} through the reverse proxy in front of
ws://127.0.0.1:8080 (that password works on no other listener); monitors as
${user[monitors]} and operators as ${user[admins]}, over TLS.
EOF
