"""Integration tests of mqlock.Client against a real mosquitto and mqlockd.

Every wait has a generous deadline and ends as soon as the awaited thing
happens; nothing asserts on speed.
"""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import mqlock
from mqlock import Busy, LockLost, Refused, Timeout, per_process
from mqlock_stack import REPO, Observer, Stack, wait_for


@pytest.fixture(scope="module")
def stack():
    with Stack(grace=1, tickets="optional") as s:
        yield s


@pytest.fixture
def clients(stack):
    made = []

    def make(**kw):
        c = stack.client(**kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def in_thread(fn):
    """Start fn() in a thread; return a dict that gets 'value' or 'error'."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    out["thread"] = t
    return out


def publish(stack, topic, payload, response_topic=None, retain=False):
    """Publish one QoS 1 message with a plain paho client; wait for PUBACK."""
    c = paho.Client(client_id=f"pub-{os.getpid()}-{time.monotonic_ns()}", protocol=paho.MQTTv5)
    c.connect("127.0.0.1", stack.port)
    c.loop_start()
    props = None
    if response_topic:
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = response_topic
    data = payload if isinstance(payload, bytes) else json.dumps(payload)
    info = c.publish(topic, data, qos=1, retain=retain, properties=props)
    info.wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


def test_lock_release_and_hand_over(stack, clients):
    a, b = clients(user="A"), clients(user="B")
    ha = a.lock("doc-h")
    assert ha.held and ha.token > 0
    waiting = in_thread(lambda: b.lock("doc-h", wait=30))
    wait_for(lambda: a.query("doc-h").waiting == 1, 10, "B queued")
    ha.release()
    waiting["thread"].join(30)
    hb = waiting["value"]
    assert hb.held and hb.token > ha.token
    st = a.query("doc-h")
    assert st.owner.client == b.client_id and st.token == hb.token


def test_requests_use_the_bound_topic(stack, clients):
    obs = Observer(stack.port, ["locks/+/request", "locks/+/request/+"])
    try:
        c = clients()
        c.lock("doc-bound").release()
        topic = f"locks/doc-bound/request/{c.client_id}"
        wait_for(lambda: {m["json"]["op"] for m in obs.on(topic)} >= {"acquire", "release"},
                 10, "an acquire and a release on the bound topic")
        seen = obs.on(topic)
        assert all(m["json"]["client"] == c.client_id for m in seen)
        assert not obs.on("locks/doc-bound/request")
    finally:
        obs.close()


def test_try_lock_and_timeout_leave_no_trace(stack, clients):
    a, b = clients(), clients()
    a.lock("doc-t")
    with pytest.raises(Busy) as e:
        b.lock("doc-t", wait=0)
    assert e.value.code == "busy" and e.value.lock == "doc-t"
    with pytest.raises(Timeout):
        b.lock("doc-t", wait=0.5)
    # The timed-out waiter left the queue.
    wait_for(lambda: a.query("doc-t").waiting == 0, 10, "the queue to empty")


def test_context_manager_releases(stack, clients):
    a = clients()
    with a.lock("doc-cm", wait=10) as held:
        assert held.token is not None and held.held
        assert held.confirm()
    assert held.state == "released"
    assert a.query("doc-cm").free


def test_lock_twice_in_one_client_is_refused(stack, clients):
    a = clients()
    with a.lock("doc-twice"):
        with pytest.raises(mqlock.MqlockError) as e:
            a.lock("doc-twice", wait=0)
        assert e.value.code == "in-use"


def test_admin_break_is_lock_lost_on_exit(stack, clients):
    a = clients()
    seen = []
    with pytest.raises(LockLost) as e:
        with a.lock("doc-admin") as held:
            held.on_lost(lambda h, exc: seen.append(exc.code))
            publish(stack, "locks/_admin/command", {"op": "break", "lock": "doc-admin",
                                                     "reason": "maintenance"})
            wait_for(lambda: held.lost, 10, "the revocation")
            with pytest.raises(LockLost):
                held.check()
    assert e.value.code == "admin" and "maintenance" in e.value.message
    assert not e.value.local
    assert seen == ["admin"]


def test_reconnect_keeps_lock_and_token():
    with Stack(grace=5) as st:
        c = st.client()
        try:
            held = c.lock("doc-rc")
            conn = c.conn
            # Cut the TCP connection under paho: it reconnects, the broker
            # publishes the old connection's will, and the client asks again
            # within the grace period.
            c._paho.socket().shutdown(2)
            wait_for(lambda: c.conn > conn and c.connected, 15, "the reconnect")
            state = wait_for(lambda: (lambda s: s if s.owner and s.owner.connected else None)(
                c.query("doc-rc")), 15, "the holder back and connected")
            assert state.owner.client == c.client_id and state.token == held.token
            assert held.held and held.token == state.token
            # Still ours after the grace period is over.
            time.sleep(6)
            assert held.held and c.query("doc-rc").token == held.token
        finally:
            c.close()


HOLDER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import mqlock
c = mqlock.Client(sys.argv[2], keepalive=5)
h = c.lock("doc-kill")
print(h.token, flush=True)
time.sleep(600)
"""


def test_killed_process_loses_lock_after_grace(stack, clients):
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(REPO / "clients" / "python"),
                          stack.url], stdout=subprocess.PIPE, text=True)
    try:
        token = int(p.stdout.readline())
        b = clients()
        waiting = in_thread(lambda: b.lock("doc-kill", wait=60))
        wait_for(lambda: b.query("doc-kill").waiting == 1, 10, "B queued")
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        waiting["thread"].join(60)
        assert "value" in waiting, waiting.get("error")
        assert waiting["value"].token > token
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_new_epoch_re_acquires():
    with Stack(grace=3) as st:
        a, b = st.client(), st.client()
        try:
            ha = a.lock("doc-epoch")
            waiting = in_thread(lambda: b.lock("doc-epoch", wait=60))
            wait_for(lambda: a.query("doc-epoch").waiting == 1, 10, "B queued")
            epoch = a.status["epoch"]
            st.stop_mqlockd(signal.SIGKILL)
            st.start_mqlockd()
            wait_for(lambda: a.status and a.status.get("epoch", 0) > epoch, 15, "the new epoch")
            # After the roll call (grace + keepalive) both are still there.
            time.sleep(3 + 2 + 1)
            s = a.query("doc-epoch")
            assert s.owner.client == a.client_id and s.token == ha.token and ha.held
            assert [q.client for q in s.queue] == [b.client_id]
            ha.release()
            waiting["thread"].join(30)
            assert waiting["value"].held
        finally:
            a.close()
            b.close()


def test_activity_keeps_an_idle_lock_and_silence_loses_it():
    with Stack(grace=1, idle_timeout=2, idle_warning=1) as st:
        busy, quiet, waiter, waiter2 = st.client(), st.client(activity=0), st.client(), st.client()
        try:
            hb = busy.lock("doc-busy")
            hq = quiet.lock("doc-quiet")
            # Live waiters, so the idle policy revokes in any mode.
            w1 = in_thread(lambda: waiter.lock("doc-busy", wait=60))
            w2 = in_thread(lambda: waiter2.lock("doc-quiet", wait=60))
            wait_for(lambda: hq.lost, 20, "the silent holder to lose its lock")
            assert hq.lost.code == "idle"
            time.sleep(2)
            assert hb.held and busy.query("doc-busy").token == hb.token
            hb.release()
            w1["thread"].join(30)
            w2["thread"].join(30)
            assert w1["value"].held and w2["value"].held
        finally:
            for c in (busy, quiet, waiter, waiter2):
                c.close()


def test_query_is_exact_right_after_start(stack, clients):
    a = clients(ticket=stack.ticket_for("7", "Alice"))
    w = clients(ticket=stack.ticket_for("8", "Bob"))
    held = a.lock("doc-q")
    waiting = in_thread(lambda: w.lock("doc-q", wait=60))
    wait_for(lambda: a.query("doc-q").waiting == 1, 10, "Bob queued")
    # A backend that just started: its very first call is the query.
    backend = clients()
    st = backend.query("doc-q")
    assert st.owner.client == a.client_id and st.owner.uid == "7" and st.owner.user == "Alice"
    assert st.token == held.token and st.held_by("7", held.token)
    assert [(q.uid, q.user) for q in st.queue] == [("8", "Bob")]
    assert st.now is not None
    assert clients().query("doc-never-used").free
    held.release()
    waiting["thread"].join(30)


def _child_query(url, lock_id, q):
    q.put(per_process_backend(url).get().query(lock_id).token)


_backends = {}


def per_process_backend(url):
    if url not in _backends:
        _backends[url] = per_process(lambda: mqlock.Client(url, client_id_prefix="pp"))
    return _backends[url]


def test_forked_workers_get_their_own_connection(stack, clients):
    a = clients()
    held = a.lock("doc-fork")
    backend = per_process_backend(stack.url)
    parent = backend.get()
    assert parent.query("doc-fork").token == held.token
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_child_query, args=(stack.url, "doc-fork", q)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert [q.get(timeout=5), q.get(timeout=5)] == [held.token, held.token]
    # The parent's connection was not disturbed by its children.
    assert parent.connected and parent.query("doc-fork").token == held.token


def test_ticket_refusals_carry_codes():
    with Stack(grace=1, tickets="required") as st:
        made = []

        def client(**kw):
            made.append(st.client(**kw))
            return made[-1]

        def refusal(**kw):
            with pytest.raises(Refused) as e:
                client(**kw).lock("doc-1", wait=0)
            return e.value.code

        try:
            assert refusal() == "ticket-required"
            assert refusal(ticket=st.ticket_for("7", locks=["doc-2"])) == "ticket-lock"
            assert refusal(ticket=lambda cid: mqlock.mint_ticket(
                st.KEY, sub="7", client=cid, ttl=1, now=time.time() - 60)) == "ticket-expired"
            assert refusal(ticket=lambda cid: mqlock.mint_ticket(
                st.KEY, sub="7", client="someone-else")) == "ticket-mismatch"
            assert refusal(ticket=lambda cid: mqlock.mint_ticket(
                b"w" * 32, sub="7", client=cid)) == "ticket-invalid"
            # With a good one it works.
            assert client(ticket=st.ticket_for("7", locks=["doc-1"])).lock("doc-1", wait=0).held
        finally:
            for c in made:
                c.close(timeout=1)


def test_same_user_takes_over_at_once(stack, clients):
    tab1 = clients(ticket=stack.ticket_for("42", "Dana"))
    tab2 = clients(ticket=stack.ticket_for("42", "Dana"))
    other = clients(ticket=stack.ticket_for("43", "Eve"))
    h1 = tab1.lock("doc-tk")
    h2 = tab2.lock("doc-tk", takeover=True, wait=10)
    assert h2.held and h2.token > h1.token
    wait_for(lambda: h1.lost, 10, "the first tab's revocation")
    assert h1.lost.code == "takeover"
    # Another user's takeover is a plain acquire: it waits.
    with pytest.raises(Busy):
        other.lock("doc-tk", takeover=True, wait=0)


def test_retained_events_are_ignored(stack, clients):
    holder = clients()
    holder.lock("doc-ret")
    cid = mqlock.new_client_id("victim")
    # A retained fake grant waiting on the victim's events topic.
    publish(stack, f"locks/_clients/{cid}/events",
            {"event": "granted", "lock": "doc-ret", "token": 999999, "idle_deadline": 1},
            retain=True)
    victim = clients(client_id=cid)
    waiting = in_thread(lambda: victim.lock("doc-ret", wait=30))
    wait_for(lambda: holder.query("doc-ret").waiting == 1, 10, "the victim queued")
    assert "value" not in waiting
    publish(stack, f"locks/_clients/{cid}/events", b"", retain=True)  # clean up


def test_dropped_waiter_is_told(stack, clients):
    holder, waiter = clients(), clients()
    holder.lock("doc-purge")
    waiting = in_thread(lambda: waiter.lock("doc-purge", wait=30))
    wait_for(lambda: holder.query("doc-purge").waiting == 1, 10, "the waiter queued")
    publish(stack, "locks/_admin/command", {"op": "purge", "lock": "doc-purge"})
    waiting["thread"].join(30)
    assert isinstance(waiting.get("error"), LockLost) and waiting["error"].code == "dropped"


def test_broker_gone_longer_than_grace_fences():
    with Stack(grace=1) as st:
        c = st.client()
        try:
            held = c.lock("doc-off")
            st._stop(st.broker, signal.SIGKILL)
            wait_for(lambda: held.lost, 15, "the local fence")
            assert held.lost.code == "offline-expired" and held.lost.local
        finally:
            c.close(timeout=1)


def test_queries_count_against_the_rate_limit():
    # --rate 2: two requests a second, bursts of 20. A backend's queries are
    # requests of its client id like any other.
    with Stack(grace=1, extra=["--rate", "2"]) as st:
        c = st.client()
        try:
            answered = 0
            with pytest.raises(Refused) as e:
                for _ in range(60):
                    c.query("doc-rate")
                    answered += 1
            assert e.value.code == "limit"
            assert 15 <= answered <= 30
        finally:
            c.close()
