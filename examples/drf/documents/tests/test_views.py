"""The page's configuration, tickets, the WebSocket gate and lock ids."""

import json
import re
import uuid

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory, TestCase, override_settings

from documents.models import Document
from mqlock.django import conf
from mqlock.django.locks import can_lock, lock_id_for, parse_lock_id
from mqlock.django.tickets import ticket_for
from mqlock.tickets import read_ticket
from mqlock_stack import Stack

from .helpers import make_user

KEY = Stack.KEY


class ConfigTests(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        import tempfile

        cls.tmp = tempfile.TemporaryDirectory()
        cls.key_file = f"{cls.tmp.name}/ticket.key"
        with open(cls.key_file, "wb") as f:
            f.write(KEY + b"\n")
        cls._settings = override_settings(MQLOCK={"TICKET_KEY_FILE": cls.key_file,
                                                  "TICKET_TTL": 120})
        cls._settings.enable()
        conf.clear()

    @classmethod
    def tearDownClass(cls):
        cls._settings.disable()
        conf.clear()
        cls.tmp.cleanup()
        super().tearDownClass()

    def setUp(self):
        self.alice = make_user("alice", "Alice")
        self.mallory = make_user("mallory", "Mallory", can_edit=False)
        self.doc = Document.objects.create(title="Report")

    def page_config(self, response):
        m = re.search(r'<script id="mqlock-config" type="application/json">(.*?)</script>',
                      response.content.decode())
        self.assertIsNotNone(m, "no mqlock-config on the page")
        return json.loads(m.group(1))

    def test_edit_page_hands_over_url_client_ticket_and_lock(self):
        self.client.force_login(self.alice)
        r = self.client.get(f"/documents/{self.doc.pk}/")
        self.assertEqual(r.status_code, 200)
        cfg = self.page_config(r)
        self.assertEqual(cfg["url"], "ws://testserver/mqtt")
        self.assertEqual(cfg["lock"], lock_id_for(self.doc))
        self.assertTrue(cfg["clientId"].startswith("ed-"))
        self.assertEqual(cfg["uid"], str(self.alice.pk))
        claims = read_ticket(KEY, cfg["ticket"])
        self.assertEqual(claims["sub"], str(self.alice.pk))
        self.assertEqual(claims["name"], "Alice")
        self.assertEqual(claims["client"], cfg["clientId"])
        self.assertEqual(claims["locks"], [lock_id_for(self.doc)])
        self.assertEqual(claims["exp"], cfg["expires"])
        # Every page load gets its own client id.
        self.assertNotEqual(self.page_config(self.client.get(f"/documents/{self.doc.pk}/"))
                            ["clientId"], cfg["clientId"])

    def test_no_ticket_for_a_user_who_may_not_edit(self):
        self.client.force_login(self.mallory)
        self.assertEqual(self.client.get(f"/documents/{self.doc.pk}/").status_code, 403)
        r = self.client.get("/mqlock/config", {"lock": lock_id_for(self.doc)})
        self.assertEqual(r.status_code, 403)

    def test_config_view(self):
        lock = lock_id_for(self.doc)
        self.assertEqual(self.client.get("/mqlock/config", {"lock": lock}).status_code, 401)
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/mqlock/config").status_code, 400)
        self.assertEqual(self.client.get("/mqlock/config", {"lock": "a/b"}).status_code, 403)
        self.assertEqual(self.client.get("/mqlock/config", {"lock": "auth.user.1"}).status_code,
                         403)
        cfg = self.client.get("/mqlock/config", {"lock": lock}).json()
        # Renewal for the same client id, issued to this session.
        again = self.client.get("/mqlock/config", {"lock": lock, "client": cfg["clientId"]}).json()
        self.assertEqual(again["clientId"], cfg["clientId"])
        self.assertEqual(read_ticket(KEY, again["ticket"])["client"], cfg["clientId"])
        # Never for a client id this session was not given.
        r = self.client.get("/mqlock/config", {"lock": lock, "client": "ed-victim"})
        self.assertEqual(r.status_code, 403)
        other = self.client_class()
        other.force_login(self.alice)  # the same user, another session
        r = other.get("/mqlock/config", {"lock": lock, "client": cfg["clientId"]})
        self.assertEqual(r.status_code, 403)

    def test_ticket_for_checks_every_lock(self):
        rf = RequestFactory().get("/")
        rf.user = self.alice
        t = ticket_for(rf, [lock_id_for(self.doc), lock_id_for(self.doc)])
        self.assertEqual(t.locks, [lock_id_for(self.doc)])
        with self.assertRaises(PermissionDenied):
            ticket_for(rf, [lock_id_for(self.doc), lock_id_for(User, 1)])
        rf.user = self.mallory
        with self.assertRaises(PermissionDenied):
            ticket_for(rf, [lock_id_for(self.doc)])

    def test_page_broker_login_is_passed_when_configured(self):
        pw = f"{self.tmp.name}/editors"
        with open(pw, "w") as f:
            f.write("s3cret\n")
        with override_settings(MQLOCK={"TICKET_KEY_FILE": self.key_file, "PAGE_USERNAME": "editors",
                                       "PAGE_PASSWORD_FILE": pw,
                                       "WEBSOCKET_URL": "wss://locks.example.org/mqtt"}):
            self.client.force_login(self.alice)
            cfg = self.client.get("/mqlock/config", {"lock": lock_id_for(self.doc)}).json()
        self.assertEqual((cfg["username"], cfg["password"]), ("editors", "s3cret"))
        self.assertEqual(cfg["url"], "wss://locks.example.org/mqtt")


class BrokerAuthTests(TestCase):
    def test_only_logged_in_users_from_this_site(self):
        alice = make_user("alice")
        self.assertEqual(self.client.get("/mqlock/auth").status_code, 401)
        self.client.force_login(alice)
        self.assertEqual(self.client.get("/mqlock/auth").status_code, 204)
        self.assertEqual(self.client.get("/mqlock/auth", HTTP_ORIGIN="http://testserver")
                         .status_code, 204)
        for origin in ("http://evil.example", "https://testserver", "null", "http://testserver:81"):
            self.assertEqual(self.client.get("/mqlock/auth", HTTP_ORIGIN=origin).status_code, 401,
                             origin)
        self.client.logout()
        self.assertEqual(self.client.get("/mqlock/auth").status_code, 401)

    def test_forged_session_cookie(self):
        self.client.cookies["sessionid"] = "forged0123456789abcdefghijklmnop"
        self.assertEqual(self.client.get("/mqlock/auth").status_code, 401)

    def test_inactive_user(self):
        bob = make_user("bob")
        self.client.force_login(bob)
        bob.is_active = False
        bob.save()
        self.assertEqual(self.client.get("/mqlock/auth").status_code, 401)


class LockIdTests(TestCase):
    def test_format_and_round_trip(self):
        doc = Document.objects.create(title="x")
        self.assertEqual(lock_id_for(doc), f"documents.document.{doc.pk}")
        self.assertEqual(lock_id_for(Document, 7), "documents.document.7")
        self.assertEqual(parse_lock_id("documents.document.7"), (Document, "7"))
        self.assertIsNone(parse_lock_id("nope.model.1"))
        self.assertIsNone(parse_lock_id("documents.document"))

    def test_awkward_keys_stay_valid_and_distinct(self):
        keys = ["a/b", "a+b", "a#b", "50%", "a.b", "x\x00y", "ä", str(uuid.UUID(int=1))]
        ids = [lock_id_for(Document, k) for k in keys]
        self.assertEqual(len(set(ids)), len(keys))
        for k, i in zip(keys, ids):
            self.assertEqual(parse_lock_id(i), (Document, k))
        self.assertEqual(ids[-1], "documents.document.00000000-0000-0000-0000-000000000001")

    def test_unsaved_and_too_long(self):
        with self.assertRaises(ValueError):
            lock_id_for(Document(title="unsaved"))
        with self.assertRaises(ValueError):
            lock_id_for(Document, "x" * 200)

    def test_can_lock(self):
        alice, mallory = make_user("alice"), make_user("mallory", can_edit=False)
        self.assertTrue(can_lock(alice, "documents.document.1"))
        self.assertFalse(can_lock(mallory, "documents.document.1"))
        self.assertFalse(can_lock(alice, "doc-1"))


class LazyConnectionTests(TestCase):
    def test_nothing_connects_before_the_first_check(self):
        """Django's autoreloader runs the project in a parent process that
        never serves a request: loading the app, its URLs and a page must
        not open a broker connection."""
        from django.urls import resolve

        from mqlock.django import backend

        backend.reset()
        resolve("/api/documents/1/")
        alice = make_user("alice")
        self.client.force_login(alice)
        self.client.get("/")
        self.assertIsNone(backend._client._obj)
