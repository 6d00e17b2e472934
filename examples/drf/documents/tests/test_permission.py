"""HoldsEditLock and the fenced save, through the DRF API, against a real
mosquitto and mqlockd: every branch of "Checking a save"."""

import threading
from unittest import mock

from django.db import connection
from django.test import TransactionTestCase
from rest_framework.test import APIClient

from documents.models import Document
from mqlock.django.locks import lock_id_for
from mqlock_stack import wait_for

from .helpers import StackMixin, make_user, token_header

MAX_TOKEN = 2**53 - 1


class PermissionTests(StackMixin, TransactionTestCase):
    def setUp(self):
        super().setUp()
        self.alice = make_user("alice", "Alice")
        self.bob = make_user("bob", "Bob")
        self.doc = Document.objects.create(title="Report", body="v0")
        self.lock_id = lock_id_for(self.doc)
        self.url = f"/api/documents/{self.doc.pk}/"

    def api(self, user):
        c = APIClient()
        c.force_login(user)
        return c

    def put(self, user, token, body, client=None):
        headers = token_header(token) if token is not None else {}
        return (client or self.api(user)).put(
            self.url, {"title": "Report", "body": body}, format="json", **headers)

    def assert_row(self, body, token):
        self.doc.refresh_from_db()
        self.assertEqual((self.doc.body, self.doc.mqlock_token), (body, token))

    def assert_conflict(self, r, code, holder_user):
        self.assertEqual(r.status_code, 409, r.content)
        self.assertEqual(r.json()["code"], code)
        self.assertEqual(r.json()["lock"], self.lock_id)
        holder = r.json()["holder"]
        self.assertEqual(holder and holder["user"], holder_user)

    # --- the branches ----------------------------------------------------------

    def test_holder_with_its_token_saves(self):
        held = self.holder(self.alice).lock(self.lock_id)
        r = self.put(self.alice, held.token, "v1")
        self.assertEqual(r.status_code, 200, r.content)
        self.assertEqual(r.json()["mqlock_token"], held.token)
        self.assertEqual(r.json()["updated_by"], "alice")
        self.assert_row("v1", held.token)
        # Saving again with the same token is fine.
        self.assertEqual(self.put(self.alice, held.token, "v2").status_code, 200)
        self.assert_row("v2", held.token)

    def test_someone_else_with_the_holders_token_is_refused(self):
        held = self.holder(self.alice).lock(self.lock_id)
        r = self.put(self.bob, held.token, "bob's")
        self.assert_conflict(r, "not-holder", "Alice")
        self.assertEqual(r.json()["holder"]["uid"], str(self.alice.pk))
        self.assertIn("Alice is editing", r.json()["detail"])
        self.assert_row("v0", None)

    def test_forged_tokens_are_refused_and_block_nothing(self):
        held = self.holder(self.alice).lock(self.lock_id)
        self.assert_conflict(self.put(self.bob, MAX_TOKEN, "forged"), "not-holder", "Alice")
        self.assert_conflict(self.put(self.alice, MAX_TOKEN, "forged"), "stale-token", "Alice")
        self.assert_conflict(self.put(self.alice, held.token + 1, "forged"), "stale-token", "Alice")
        self.assert_row("v0", None)
        # The forged token was never stored, so the holder's own saves go on.
        self.assertEqual(self.put(self.alice, held.token, "v1").status_code, 200)
        self.assert_row("v1", held.token)

    def test_old_holder_after_hand_over_is_refused(self):
        a, b = self.holder(self.alice), self.holder(self.bob)
        ha = a.lock(self.lock_id)
        self.assertEqual(self.put(self.alice, ha.token, "alice's").status_code, 200)
        waiting = {}
        t = threading.Thread(target=lambda: waiting.update(h=b.lock(self.lock_id, wait=30)))
        t.start()
        wait_for(lambda: a.query(self.lock_id).waiting == 1, 10, "Bob queued")
        ha.release()
        t.join(30)
        hb = waiting["h"]
        self.assertGreater(hb.token, ha.token)
        self.assert_conflict(self.put(self.alice, ha.token, "stale"), "not-holder", "Bob")
        self.assert_row("alice's", ha.token)
        self.assertEqual(self.put(self.bob, hb.token, "bob's").status_code, 200)
        self.assert_row("bob's", hb.token)

    def test_nobody_holds_is_refused(self):
        held = self.holder(self.alice).lock(self.lock_id)
        held.release()
        wait_for(lambda: self.holder(self.bob).query(self.lock_id).free, 10, "the lock free")
        r = self.put(self.alice, held.token, "late")
        self.assert_conflict(r, "free", None)
        self.assertIsNone(r.json()["holder"])
        self.assert_row("v0", None)

    def test_same_user_in_another_tab_is_refused(self):
        tab1, tab2 = self.holder(self.alice), self.holder(self.alice)
        h1 = tab1.lock(self.lock_id)
        h2 = tab2.lock(self.lock_id, takeover=True, wait=10)
        self.assert_conflict(self.put(self.alice, h1.token, "tab 1"), "stale-token", "Alice")
        self.assertEqual(self.put(self.alice, h2.token, "tab 2").status_code, 200)
        self.assert_row("tab 2", h2.token)

    def test_missing_and_malformed_tokens(self):
        self.holder(self.alice).lock(self.lock_id)
        self.assert_conflict(self.put(self.alice, None, "x"), "token-missing", None)
        for bad in ("abc", "-1", "1.0", "9007199254740992", "1" * 17, "0x10", ""):
            r = self.put(self.alice, bad, "x")
            self.assertEqual(r.status_code, 400, bad)
            self.assertEqual(r.json()["code"], "token-malformed")
        self.assert_row("v0", None)

    def test_reads_and_creates_need_no_lock(self):
        c = self.api(self.bob)
        self.assertEqual(c.get(self.url).status_code, 200)
        r = c.post("/api/documents/", {"title": "New", "body": ""}, format="json")
        self.assertEqual(r.status_code, 201, r.content)

    def test_anonymous_writes_are_refused(self):
        held = self.holder(self.alice).lock(self.lock_id)
        r = APIClient().put(self.url, {"title": "x", "body": "x"}, format="json",
                            **token_header(held.token))
        self.assertIn(r.status_code, (401, 403))
        self.assert_row("v0", None)

    def test_delete_only_by_the_holder(self):
        held = self.holder(self.alice).lock(self.lock_id)
        r = self.api(self.bob).delete(self.url, **token_header(held.token))
        self.assert_conflict(r, "not-holder", "Alice")
        self.assertTrue(Document.objects.filter(pk=self.doc.pk).exists())
        r = self.api(self.alice).delete(self.url, **token_header(held.token))
        self.assertEqual(r.status_code, 204)
        self.assertFalse(Document.objects.filter(pk=self.doc.pk).exists())

    def test_two_racing_saves_exactly_one_wins(self):
        """Alice's save passes the check, then stalls before its UPDATE; the
        lock goes to Bob, who saves; Alice's UPDATE then finds Bob's higher
        token on the row and changes nothing."""
        a, b = self.holder(self.alice), self.holder(self.bob)
        ha = a.lock(self.lock_id)
        reached, go = threading.Event(), threading.Event()
        real = Document.fenced_save

        def stalling(doc, token, *args, **kw):
            if token == ha.token:
                reached.set()
                go.wait(30)
            return real(doc, token, *args, **kw)

        results = {}

        def alice_saves():
            try:
                results["alice"] = self.put(self.alice, ha.token, "alice's")
            finally:
                connection.close()

        with mock.patch.object(Document, "fenced_save", stalling):
            t = threading.Thread(target=alice_saves)
            t.start()
            self.assertTrue(reached.wait(30), "Alice's save never passed the check")
            waiting = {}
            tb = threading.Thread(target=lambda: waiting.update(h=b.lock(self.lock_id, wait=30)))
            tb.start()
            wait_for(lambda: a.query(self.lock_id).waiting == 1, 10, "Bob queued")
            ha.release()
            tb.join(30)
            hb = waiting["h"]
            results["bob"] = self.put(self.bob, hb.token, "bob's")
            go.set()
            t.join(30)
        self.assertEqual(results["bob"].status_code, 200, results["bob"].content)
        self.assertEqual(results["alice"].status_code, 409, results["alice"].content)
        self.assertEqual(results["alice"].json()["code"], "stale-write")
        self.assert_row("bob's", hb.token)


class UnavailableTests(StackMixin, TransactionTestCase):
    query_timeout = 1.0

    def test_no_answer_from_the_coordinator_is_503_and_writes_nothing(self):
        alice = make_user("alice", "Alice")
        doc = Document.objects.create(title="Report", body="v0")
        held = self.holder(alice).lock(lock_id_for(doc))
        self.stack.stop_mqlockd()
        c = APIClient()
        c.force_login(alice)
        r = c.put(f"/api/documents/{doc.pk}/", {"title": "Report", "body": "x"}, format="json",
                  **token_header(held.token))
        self.assertEqual(r.status_code, 503, r.content)
        self.assertEqual(r.json()["code"], "unavailable")
        doc.refresh_from_db()
        self.assertEqual(doc.body, "v0")
