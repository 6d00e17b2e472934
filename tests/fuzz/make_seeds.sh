#!/usr/bin/env bash
# tests/fuzz/make_seeds.sh: write the seed corpora of the fuzz targets,
# tests/fuzz/corpus/codec/ and tests/fuzz/corpus/locktab/.
#
# The seeds are committed; run this again after changing it (or the input
# format of a target) and commit what changed.  Every seed must pass:
#   build/tests/fuzz/fuzz_codec_corpus tests/fuzz/corpus/codec
#   build/tests/fuzz/fuzz_locktab_corpus tests/fuzz/corpus/locktab
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
codec=$here/corpus/codec
locktab=$here/corpus/locktab
mkdir -p "$codec" "$locktab"

# ---- codec: TOPIC NUL PAYLOAD ----

# seed NAME TOPIC PAYLOAD: PAYLOAD is printf-escaped text.
seed() {
	{
		printf '%s' "$2"
		printf '\0'
		printf "$3"
	} >"$codec/$1"
}

S='"session":"0123456789abcdef"'
R=locks/doc-42/request
W=locks/_clients/ed-7f3a/will
A=locks/_admin/command

seed req-acquire $R \
	'{"op":"acquire","client":"ed-7f3a",'"$S"',"user":"Alice","conn":3}'
seed req-acquire-trylock $R \
	'{"op":"acquire","client":"ed-7f3a",'"$S"',"wait":false}'
seed req-release $R '{"op":"release","client":"svc-12",'"$S"'}'
seed req-activity $R '{"client":"ed-7f3a","op":"activity",'"$S"',"x":[1]}'
seed req-conn-max $R \
	'{"op":"acquire","client":"c",'"$S"',"conn":9007199254740991}'
seed req-conn-too-big $R \
	'{"op":"acquire","client":"c",'"$S"',"conn":9007199254740992}'
seed req-conn-forms $R \
	'{"op":"acquire","client":"c",'"$S"',"conn":1.0e2,"user":null}'
seed req-conn-fraction $R '{"op":"acquire","client":"c",'"$S"',"conn":0.5}'
seed req-wait-string $R '{"op":"acquire","client":"c",'"$S"',"wait":"no"}'
seed req-unknown-op $R '{"op":"steal","client":"c",'"$S"'}'
seed req-duplicate-keys $R \
	'{"op":"acquire","client":"a","client":"b/c",'"$S"',"op":"x"}'
seed req-session-short $R '{"op":"acquire","client":"c","session":"short"}'
seed req-session-128 $R "{\"op\":\"acquire\",\"client\":\"c\",\"session\":\"$(printf 'e%.0s' {1..128})\"}"
seed req-session-129 $R "{\"op\":\"acquire\",\"client\":\"c\",\"session\":\"$(printf 'e%.0s' {1..129})\"}"
seed req-user-utf8 $R \
	'{"op":"acquire","client":"ed-\xc3\xa9",'"$S"',"user":"Zo\xc3\xab \xf0\x9f\x94\x92 \\u00e9\\ud83d\\udd12 \\"q\\" \\t"}'
seed req-user-lone-surrogate $R \
	'{"op":"acquire","client":"c",'"$S"',"user":"\\ud800x"}'
seed req-user-129 $R "{\"op\":\"acquire\",\"client\":\"c\",$S,\"user\":\"$(printf '\\xce\\xa9%.0s' {1..64})x\"}"
seed req-nul-escape $R \
	'{"op":"acquire","client":"ed-7f3a","session":"0123456789abcdef\\u0000x"}'
seed req-nul-escape-in-client $R \
	'{"op":"acquire","client":"ed\\u0000/x",'"$S"'}'
seed req-escaped-backslash $R \
	'{"op":"acquire","client":"c",'"$S"',"user":"\\\\u0000"}'
seed req-raw-nul $R '{"op":"acquire","client":"c",\0'"$S"'}'
seed req-bad-utf8-overlong $R \
	'{"op":"acquire","client":"c",'"$S"',"user":"\xc0\xaf"}'
seed req-bad-utf8-surrogate $R \
	'{"op":"acquire","client":"c",'"$S"',"user":"\xed\xa0\x80"}'
seed req-bad-utf8-beyond $R \
	'{"op":"acquire","client":"c",'"$S"',"user":"\xf4\x90\x80\x80"}'
seed req-utf8-max $R \
	'{"op":"acquire","client":"\xf4\x8f\xbf\xbf",'"$S"',"user":"\xef\xbf\xbf"}'
seed req-bom $R '\xef\xbb\xbf{"op":"release","client":"c",'"$S"'}'
seed req-not-object $R '[{"op":"acquire"}]'
seed req-trailing $R '{"op":"release","client":"c",'"$S"'} {}'
seed req-whitespace $R ' \t\r\n{"op":"release","client":"c",'"$S"'}\n\n'
seed req-client-invalid $R '{"op":"acquire","client":"a/b",'"$S"'}'
seed req-client-wildcard $R '{"op":"acquire","client":"a+#",'"$S"'}'
seed req-client-control $R '{"op":"acquire","client":"a\\u0007",'"$S"'}'
seed req-deep-nesting $R "{\"client\":\"ed-7f3a\",\"x\":$(printf '[%.0s' {1..1100})$(printf ']%.0s' {1..1100})}"
seed req-deep-objects $R "{\"client\":\"ed-7f3a\",\"x\":$(printf '{\"a\":%.0s' {1..600})1$(printf '}%.0s' {1..600})}"
seed req-oversize $R "{\"op\":\"acquire\",\"client\":\"big\",$S,\"pad\":\"$(printf 'p%.0s' {1..4100})\"}"
seed will $W '{"session":"0123456789abcdef","conn":7}'
seed will-no-conn $W '{"session":"0123456789abcdef"}'
seed will-bad-conn $W '{"session":"0123456789abcdef","conn":-1}'
seed will-client-underscore locks/_clients/_svc/will \
	'{"session":"0123456789abcdef"}'
seed will-client-dollar 'locks/_clients/$x/will' \
	'{"session":"0123456789abcdef"}'
seed break $A '{"op":"break","lock":"doc-42","reason":"stuck since Friday"}'
seed break-no-reason $A '{"op":"break","lock":"doc-\xc3\xbc"}'
seed break-reason-257 $A "{\"op\":\"break\",\"lock\":\"d\",\"reason\":\"$(printf 'r%.0s' {1..257})\"}"
seed break-lock-reserved $A '{"op":"break","lock":"_clients"}'
seed break-lock-number $A '{"op":"break","lock":42}'
seed topic-lock-128 "locks/$(printf 'l%.0s' {1..128})/request" '{}'
seed topic-lock-129 "locks/$(printf 'l%.0s' {1..129})/request" '{}'
seed topic-lock-dollar 'locks/$SYS/request' '{}'
seed topic-lock-empty 'locks//request' '{}'
seed topic-deep 'locks/a/b/c/d/request' '{}'
seed topic-prefix-only 'locks' '{}'
seed topic-other 'locks/doc-42/owner' '{}'
seed topic-bad-utf8 $'locks/\xe2\x82/request' '{}'
seed topic-prefixed 'site/locks/_clients/ed/will' '{"session":"0123456789abcdef"}'
# Without a NUL: the whole input is both topic and payload.
printf '{"op":"break","lock":"doc-42"}' >"$codec/no-nul-break"

# ---- locktab: see the header comment of fuzz_locktab.c ----

out=
byte() {
	local b
	for b in "$@"; do
		out+=$(printf '\\x%02x' "$b")
	done
}
# The clock advances by dts[DT] before each op (fuzz_locktab.c).
DT=0
op() { byte $(((DT << 4) | $1)); }
# req OP CLIENT LOCK [MODS] [V]: mods default 2 (current conn, first
# session); V = uid (0 none, 1 the client's own, 2 another user's) + 3 *
# kind (0 plain, 1 takeover, 2 query).
req() { op "$1"; byte $(($2 + 6 * $3 + 30 * ${5:-0})) "${4:-2}"; }
acq() { req 0 "$1" "$2" "${3:-2}" "${4:-0}"; }
rel() { req 3 "$1" "$2" "${3:-2}" "${4:-0}"; }
act() { req 5 "$1" "$2" "${3:-2}" "${4:-0}"; }
vacq() { acq "$1" "$2" "${3:-2}" 1; }     # verified as its own user
facq() { acq "$1" "$2" "${3:-2}" 2; }     # verified as the other user
tko() { acq "$1" "$2" "${3:-2}" "${4:-4}"; } # takeover, own user
qry() { req 5 "$1" "$2" "${3:-3}" 6; }    # query; mods 3: a session
bad() { op 0; byte $(($1 + 6 * $2)) 194 "$3"; } # malformed variant $3
badq() { op 0; byte $(($1 + 6 * $2 + 180)) 194 "$3"; }
will() { op 6; byte "$1" "${2:-2}"; }
brk() { op 7; byte $(($1 + 5 * $2)); }
purge() { op 7; byte $(($1 + 5 * $2 + 15)); }
tick() { op 8; }
sleep_to() { op 10; byte $(($1 + 1)); } # next deadline + (-1, 0, 1)
resume() { op 11; byte $((($2 / 40) << 1 | $1)); }
batch() { op 12; byte "$1"; }
check() { op 13; }
restart() { op 14; byte $(($1 / 40)); }
pass() { op 15; byte $(($1 / 10)); }
# lseed NAME IDLE WARN GRACE LIMITS [POLICY]: start a seed (header values
# as bytes).  POLICY: bit 0 contended, POLICY / 2 clients per user (0:
# none); default 0 (always, no cap).
lseed() {
	name=$1
	out=
	byte "$2" "$3" "$4" "$5" "${6:-0}"
	DT=0
}
lend() { printf "$out" >"$locktab/$name"; }

# idle 450 ms, warning 100 ms, grace 300 ms; limits byte 2: 3 waiters,
# 1 lock per client; 5: 3 waiters, 2 locks; 0: 1 waiter, 1 lock.
lseed grant-queue-handover 20 5 30 5
acq 0 0; acq 1 0; acq 2 0; acq 3 0; acq 1 0
DT=7; rel 0 0; rel 3 0; rel 1 0; act 2 0; rel 2 0; check
lend

lseed busy-and-limits 20 5 30 0
acq 0 0; acq 1 0; acq 2 0; acq 1 1; acq 3 0 34; acq 0 0 34; acq 1 0
rel 1 0; acq 2 0; rel 2 0
lend

lseed session-binding 20 5 30 5
acq 0 0; acq 0 1 3; rel 0 0 3; rel 0 0; acq 0 1 3; act 0 1 3; rel 0 1 3
lend

lseed users-and-long-ids 20 5 30 5
acq 5 4 10; acq 4 4 18; acq 3 3 26; acq 5 3 2; brk 4 2; rel 4 4
lend

lseed will-grace-expiry 20 5 30 2
acq 0 0; acq 1 0; acq 2 1; acq 0 1; will 0; sleep_to -1; sleep_to 0
acq 3 0; sleep_to 1
lend

lseed will-and-return 20 5 30 5
acq 0 0; acq 1 0; acq 0 1; will 0; DT=9; acq 1 1; rel 1 0; acq 0 0; DT=0
will 1; will 1; sleep_to 0
lend

lseed stale-will 20 5 30 5
acq 0 0 6; will 0 4; acq 1 0; will 0 0; will 0 3; will 0 2; sleep_to 0
lend

lseed idle-warning-revoke 20 5 30 5
acq 0 0; acq 1 0; sleep_to 0; DT=9; act 0 0; sleep_to 0; sleep_to -1
sleep_to 0; acq 1 0; sleep_to 0; sleep_to 0
lend

lseed warn-at-grant 2 255 0 5
acq 0 0; acq 1 0; tick; sleep_to 0; sleep_to 0; tick
lend

lseed admin-break 20 5 30 5
acq 0 0; acq 1 0; acq 2 0; brk 0 1; brk 1 0; will 2; brk 0 2; brk 0 0
sleep_to 0
lend

lseed rollcall 20 5 30 5
acq 0 0; acq 1 0; acq 2 1; acq 3 2; DT=9; resume 1 600; act 1 0
acq 0 0; sleep_to -1; sleep_to 0; acq 3 2; check
lend

lseed rollcall-grant-skips 20 5 30 5
acq 0 0; acq 1 0; acq 2 0; resume 1 800; acq 2 0; rel 0 0; acq 1 0
rel 2 0
lend

lseed resume-after-outage 20 5 30 5
acq 0 0; acq 1 0; acq 2 1; will 2; DT=15; tick; resume 0 0; sleep_to 0
sleep_to 0; resume 1 0; sleep_to 0
lend

lseed restart 20 5 30 5
acq 0 0; acq 1 0; acq 2 1; will 2; acq 3 2; restart 400; act 0 0
acq 1 0; acq 3 2; sleep_to 0; restart 0; sleep_to 0
lend

lseed batch 20 5 30 5
batch 7; acq 0 0; acq 1 0; rel 0 0; rel 1 0; acq 2 0; will 2; acq 2 1
acq 3 0; check
lend

lseed malformed 20 5 30 5
acq 0 0
for v in 0 1 2 3 4 5 6 7 8 9 10; do bad 0 0 "$v"; bad 1 1 "$v"; done
lend

# 77: 3 waiters, 2 locks per client, caps of 4 clients and 3 locks.
lseed caps 20 5 30 77
acq 0 0; acq 1 1; acq 2 2; acq 3 0; acq 4 3; acq 0 3; rel 1 1; acq 0 3
batch 3; rel 2 2; acq 5 4; acq 4 2; check
lend

lseed tick-batch-1 20 5 30 8
acq 0 0; acq 1 1; acq 2 2; acq 3 3; acq 4 4; DT=13; tick; tick; tick
sleep_to 0; pass 2000
lend

# Idle policy contended (POLICY 1): nobody waits, the timer sleeps past the
# deadline; a waiter brings the warning at once and the revocation one
# warning period later.
lseed contended-sleeping-timer 20 5 30 5 1
acq 0 0; sleep_to 0; pass 2000; acq 1 0; tick; sleep_to -1; sleep_to 0
acq 2 0; sleep_to 0; act 1 0; sleep_to 0; sleep_to 0
lend

# The same program under always: revoked with nobody waiting.
lseed always-nobody-waits 20 5 30 5
acq 0 0; sleep_to 0; pass 2000; acq 1 0; tick; sleep_to -1; sleep_to 0
acq 2 0; sleep_to 0; act 1 0; sleep_to 0; sleep_to 0
lend

# Warned, the waiter leaves: the holder keeps the lock past the deadline and
# is warned afresh when someone comes again.
lseed contended-waiters-leave 20 5 30 5 1
acq 0 0; acq 1 0; sleep_to 0; rel 1 0; sleep_to 0; pass 500; acq 2 0
tick; sleep_to -1; sleep_to 0
lend

# Only live waiters count: a disconnected or silent one does not, and its
# return wakes the timer; the warning period may outlast the idle timeout.
lseed contended-gone-waiter 20 5 30 5 1
acq 0 0; acq 1 0; will 1; sleep_to 0; DT=10; acq 1 0 6; DT=0; tick
acq 2 1; resume 1 200; acq 3 1; sleep_to 0; sleep_to 0; acq 3 1
sleep_to 0; sleep_to 0; sleep_to 0
lend

lseed contended-warn-at-grant 2 255 0 5 1
acq 0 0; tick; acq 1 0; tick; sleep_to 0; rel 1 0; sleep_to 0; tick
lend

# Verified users (POLICY 4: a cap of 2 clients per user): uids in views,
# another user's ticket for a bound client, the cap, a bound client's first
# verified acquire, and uids kept across a restart.
lseed verified-users 20 5 30 5 4
vacq 0 0; vacq 1 1; vacq 4 2; facq 0 1; acq 0 1; vacq 2 0; facq 5 0
acq 3 3; vacq 3 4; rel 1 1; vacq 4 2; rel 3 3; acq 1 3; facq 1 3; check
restart 400; vacq 0 0; vacq 2 0; facq 2 1; vacq 4 2; rel 0 0; rel 0 1
sleep_to 0
lend

# Takeover by the same user's other tab: from the queue, from outside it
# (even as a try-lock), not by another user, an unverified request or the
# holder itself.
lseed takeover 20 5 30 5
vacq 0 0; vacq 1 0; vacq 2 0; vacq 4 1; tko 1 0; tko 2 0; tko 4 0 34
acq 0 0 2 3; tko 4 0; acq 3 0 2 4; will 4; tko 0 0; tko 1 0; rel 0 0
check; sleep_to 0
lend

# Queries: of free and held locks, from unknown, gone and silent clients,
# with no session, another one or a short one; they change nothing.
lseed query 20 5 30 5
qry 0 0 0; acq 0 0; qry 1 0; qry 0 0 0; acq 1 0; will 0; qry 0 0 6
badq 2 0 0; badq 2 0 1; badq 2 0 8; badq 2 0 10; resume 1 400; qry 1 0
sleep_to 0; qry 1 0; check
lend

# Purges: waiters leave (dropped, admin), the holder keeps the lock; a free
# lock whose waiters are gone is emptied; an unknown lock purges nothing.
lseed purge 20 5 30 5
acq 0 0; acq 1 0; acq 2 0; purge 0 1; acq 1 0; acq 2 1; acq 3 1; will 3
rel 2 1; purge 1 2; purge 4 0; rel 0 0; sleep_to 0
lend

# Waiters removed when their grace or roll call ends hear dropped.
lseed dropped-at-deadlines 20 5 30 5
acq 0 0; acq 1 0; acq 2 0; acq 3 1; acq 4 1; will 1; sleep_to 0
resume 1 200; act 0 0; act 3 1; sleep_to 0; sleep_to 0
lend

echo "make_seeds: $(ls "$codec" | wc -l) codec seeds," \
	"$(ls "$locktab" | wc -l) locktab seeds"
