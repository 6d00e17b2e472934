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
# acq CLIENT LOCK [MODS]: mods default 2 (current conn, first session).
acq() { op 0; byte $(($1 + 6 * $2)) "${3:-2}"; }
rel() { op 3; byte $(($1 + 6 * $2)) "${3:-2}"; }
act() { op 5; byte $(($1 + 6 * $2)) "${3:-2}"; }
bad() { op 0; byte $(($1 + 6 * $2)) 194 "$3"; } # malformed variant $3
will() { op 6; byte "$1" "${2:-2}"; }
brk() { op 7; byte $(($1 + 5 * $2)); }
tick() { op 8; }
sleep_to() { op 10; byte $(($1 + 1)); } # next deadline + (-1, 0, 1)
resume() { op 11; byte $((($2 / 40) << 1 | $1)); }
batch() { op 12; byte "$1"; }
check() { op 13; }
restart() { op 14; byte $(($1 / 40)); }
pass() { op 15; byte $(($1 / 10)); }
# lseed NAME IDLE WARN GRACE LIMITS: start a seed (header values as bytes).
lseed() {
	name=$1
	out=
	byte "$2" "$3" "$4" "$5"
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
for v in 0 1 2 3 4 5 6 7 8 9; do bad 0 0 "$v"; bad 1 1 "$v"; done
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

echo "make_seeds: $(ls "$codec" | wc -l) codec seeds," \
	"$(ls "$locktab" | wc -l) locktab seeds"
