#!/usr/bin/env python3
"""What the save check costs: examples/drf/bench.py [--n N] [--warmup W].

Starts a real mosquitto and mqlockd (tickets required) on free loopback
ports, a Django of this example in this process (SQLite in a temporary
directory), takes a document's lock as its user, and measures:

  check             HoldsEditLock's check alone (check_save: one query to
                    the coordinator and the comparison)
  PUT, checked      a full save through DRF: a viewset with HoldsEditLock
                    and the fenced save
  PUT, unchecked    the same save through a viewset with neither

and, inside those PUTs, the time spent in Document.save(): the fenced
UPDATE, and Django's ordinary save.

The two PUTs alternate, so that both see the same machine. Prints p50, p99
and the mean of each, in milliseconds, and what the check adds to a save
(the difference of the p50s, and the median of the round-by-round
differences). MQLOCKD_BIN names the mqlockd (default build/mqlockd).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

here = Path(__file__).resolve().parent
repo = here.parents[1]
sys.path[:0] = [str(here), str(repo / "clients" / "python"), str(repo / "tests" / "python")]

# The database in memory-backed /dev/shm where there is one, so that disk
# flushes (which other work on the machine delays) do not drown the check.
shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
tmp = tempfile.TemporaryDirectory(prefix="mqlock-drf-bench-", dir=shm)
os.environ["DRFDEMO_RUN"] = tmp.name
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "drfdemo.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Permission, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.urls import include, path  # noqa: E402
from rest_framework import routers, viewsets  # noqa: E402
from rest_framework.permissions import IsAuthenticated  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from documents.models import Document  # noqa: E402
from documents.serializers import DocumentSerializer  # noqa: E402
from mqlock.django import conf  # noqa: E402
from mqlock.django.locks import lock_id_for  # noqa: E402
from mqlock.django.fencing import FencedSaveMixin  # noqa: E402
from mqlock.django.permissions import HoldsEditLock, check_save  # noqa: E402
from mqlock_stack import Stack  # noqa: E402


class CheckedViewSet(FencedSaveMixin, viewsets.ModelViewSet):
    """The example's viewset, less its updated_by: the check and the fence
    are the only difference from PlainViewSet."""

    queryset = Document.objects.all()
    serializer_class = DocumentSerializer
    permission_classes = [IsAuthenticated, HoldsEditLock]


class PlainViewSet(viewsets.ModelViewSet):
    """The same resource without the lock: no check, an ordinary save."""

    queryset = Document.objects.all()
    serializer_class = DocumentSerializer
    permission_classes = [IsAuthenticated]


router = routers.SimpleRouter()
router.register("checked", CheckedViewSet, basename="checked")
router.register("plain", PlainViewSet, basename="plain")
urlpatterns = [path("", include(router.urls))]


# Time spent in Document.save() inside each kind of PUT: the fenced UPDATE
# in the checked one, Django's ordinary save in the other.
saves = {"checked": [], "plain": []}
_saving = [None]
_real_save = Document.save


def _timed_save(self, *args, **kwargs):
    t0 = time.perf_counter_ns()
    try:
        return _real_save(self, *args, **kwargs)
    finally:
        if _saving[0] is not None:
            saves[_saving[0]].append(time.perf_counter_ns() - t0)


Document.save = _timed_save


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def row(name, samples):
    ms = [x / 1e6 for x in samples]
    return f"| {name} | {pct(ms, 50):.3f} | {pct(ms, 99):.3f} | {statistics.fmean(ms):.3f} |"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="measured rounds (default 2000)")
    ap.add_argument("--warmup", type=int, default=200, help="rounds not measured (default 200)")
    args = ap.parse_args()

    settings.ROOT_URLCONF = __name__
    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("alice", password="x", first_name="Alice")
    user.user_permissions.add(Permission.objects.get(codename="change_document"))
    doc = Document.objects.create(title="Report", body="")
    lock_id = lock_id_for(doc)

    # --rate: every check is a query, and queries count against the
    # per-client rate (50 a second by default), which this loop exceeds.
    with Stack(grace=1, tickets="required", extra=["--rate", "100000"]) as stack:
        settings.MQLOCK = {"BROKER_URL": stack.url, "TICKET_KEY_FILE": str(stack.key_file)}
        conf.clear()
        holder = stack.client(ticket=stack.ticket_for(str(user.pk), "Alice"))
        held = holder.lock(lock_id)
        token = str(held.token)

        rf = RequestFactory()
        api = APIClient()
        api.force_login(user)
        body = {"title": "Report", "body": "x" * 2000}

        def one_check():
            req = rf.put("/", HTTP_X_MQLOCK_TOKEN=token)
            req.user = user
            t0 = time.perf_counter_ns()
            check_save(req, lock_id)
            return time.perf_counter_ns() - t0

        def one_put(url, headers):
            _saving[0] = "checked" if url == checked_url else "plain"
            t0 = time.perf_counter_ns()
            r = api.put(url, body, format="json", **headers)
            dt = time.perf_counter_ns() - t0
            _saving[0] = None
            if r.status_code != 200:
                raise SystemExit(f"{url}: HTTP {r.status_code} {r.content[:200]!r}")
            return dt

        checked_url, plain_url = f"/checked/{doc.pk}/", f"/plain/{doc.pk}/"
        hdr = {"HTTP_X_MQLOCK_TOKEN": token}
        for _ in range(args.warmup):
            one_check()
            one_put(checked_url, hdr)
            one_put(plain_url, {})
        for v in saves.values():
            v.clear()
        checks = [one_check() for _ in range(args.n)]
        checked, plain = [], []
        for _ in range(args.n):
            checked.append(one_put(checked_url, hdr))
            plain.append(one_put(plain_url, {}))
        holder.close()

    added = pct(checked, 50) / 1e6 - pct(plain, 50) / 1e6
    paired = statistics.median(c - p for c, p in zip(checked, plain)) / 1e6
    where = "/dev/shm" if shm else "disk"
    print(f"{args.n} rounds after {args.warmup} warm-up; SQLite on {where}; ms")
    print()
    print("| what | p50 | p99 | mean |")
    print("|---|---|---|---|")
    print(row("check (HoldsEditLock: query + compare)", checks))
    print(row("PUT through DRF, checked and fenced", checked))
    print(row("PUT through DRF, unchecked", plain))
    print(row("of which the fenced UPDATE (checked PUT)", saves["checked"]))
    print(row("of which Django's save (unchecked PUT)", saves["plain"]))
    print()
    print(f"added by the check and the fence: {added:.3f} ms at p50, "
          f"{paired:.3f} ms median of the paired differences")


if __name__ == "__main__":
    try:
        main()
    finally:
        tmp.cleanup()
