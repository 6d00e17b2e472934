"""Unit tests: minting and reading tickets (topics.md, "Tickets")."""

import base64
import json

import jwt
import pytest

from mqlock.tickets import MAX_TICKET_BYTES, load_key, mint_ticket, read_ticket, truncate_utf8

KEY = b"0123456789abcdef0123456789abcdef"


def header(ticket):
    h = ticket.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))


def test_round_trip_claims_and_hs256():
    t = mint_ticket(KEY, sub="42", name="Alice", client="ed-1", ttl=60,
                    locks=["doc-1", "doc-2", "doc-1"], now=1_700_000_000)
    assert header(t)["alg"] == "HS256"
    claims = jwt.decode(t, KEY, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"sub": "42", "name": "Alice", "client": "ed-1",
                      "exp": 1_700_000_060, "locks": ["doc-1", "doc-2"]}


def test_no_locks_claim_means_any():
    t = mint_ticket(KEY, sub="1", client="c")
    assert "locks" not in read_ticket(KEY, t)


def test_empty_locks_list_is_kept():
    t = mint_ticket(KEY, sub="1", client="c", locks=[])
    assert read_ticket(KEY, t)["locks"] == []


def test_expired_ticket_does_not_verify():
    t = mint_ticket(KEY, sub="1", client="c", ttl=1, now=1000)
    with pytest.raises(jwt.ExpiredSignatureError):
        read_ticket(KEY, t)


def test_other_key_does_not_verify():
    t = mint_ticket(KEY, sub="1", client="c")
    with pytest.raises(jwt.InvalidSignatureError):
        read_ticket(b"x" * 32, t)


@pytest.mark.parametrize("kw,msg", [
    (dict(sub=""), "sub"),
    (dict(sub="x" * 129), "sub"),
    (dict(sub=7), "sub"),
    (dict(client="bad/client"), "client id"),
    (dict(client="$c"), "client id"),
    (dict(ttl=0), "ttl"),
    (dict(locks="doc-1"), "list"),
    (dict(locks=["_x"]), "lock id"),
    (dict(locks=["a/b"]), "lock id"),
    (dict(name=5), "name"),
])
def test_bad_claims_are_refused(kw, msg):
    args = dict(sub="1", client="c")
    args.update(kw)
    with pytest.raises(ValueError, match=msg):
        mint_ticket(KEY, **args)


def test_short_key_is_refused():
    with pytest.raises(ValueError, match="32 to 4096 bytes"):
        mint_ticket(b"short", sub="1", client="c")


def test_too_many_locks_is_refused_not_truncated():
    locks = [f"doc-{i:06d}" for i in range(200)]
    with pytest.raises(ValueError, match=str(MAX_TICKET_BYTES)):
        mint_ticket(KEY, sub="1", client="c", locks=locks)


def test_long_names_are_cut_at_a_character_boundary():
    t = mint_ticket(KEY, sub="1", client="c", name="é" * 100)
    name = read_ticket(KEY, t)["name"]
    assert name == "é" * 64 and len(name.encode()) == 128
    assert truncate_utf8("ab\ud800", 10) == "ab?"


def test_load_key_strips_one_newline(tmp_path):
    p = tmp_path / "k"
    p.write_bytes(KEY + b"\n")
    assert load_key(str(p)) == KEY
    p.write_bytes(KEY)
    assert load_key(str(p)) == KEY
    p.write_bytes(KEY + b"\n\n")
    assert load_key(str(p)) == KEY + b"\n"
    p.write_bytes(b"short\n")
    with pytest.raises(ValueError):
        load_key(str(p))
    p.write_bytes(b"k" * 4097)
    with pytest.raises(ValueError):
        load_key(str(p))
    with pytest.raises(OSError):
        load_key(str(tmp_path / "missing"))
