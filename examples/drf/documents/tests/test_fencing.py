"""FencedModel: the token is stored with the row in one conditional UPDATE."""

from django.db.models.signals import post_save, pre_save
from django.test import TestCase

from documents.models import Document
from mqlock.django.fencing import StaleWrite, fence


class FencingTests(TestCase):
    def setUp(self):
        self.doc = Document.objects.create(title="t", body="v0")

    def fenced(self, token, body):
        d = Document.objects.get(pk=self.doc.pk)
        d.body = body
        d.fenced_save(token)
        return d

    def row(self):
        d = Document.objects.get(pk=self.doc.pk)
        return d.body, d.mqlock_token

    def test_lower_tokens_never_overwrite(self):
        self.fenced(5, "five")
        self.assertEqual(self.row(), ("five", 5))
        self.fenced(5, "five again")
        self.assertEqual(self.row(), ("five again", 5))
        self.fenced(9, "nine")
        with self.assertRaises(StaleWrite):
            self.fenced(5, "stale")
        with self.assertRaises(StaleWrite):
            self.fenced(8, "stale")
        self.assertEqual(self.row(), ("nine", 9))

    def test_save_inside_fence_is_fenced(self):
        d = Document.objects.get(pk=self.doc.pk)
        d.body = "fenced"
        with fence(d, 3):
            d.save()
        self.assertEqual(self.row(), ("fenced", 3))
        d.body = "stale"
        with self.assertRaises(StaleWrite), fence(d, 2):
            d.save()
        self.assertEqual(self.row(), ("fenced", 3))
        # Outside the fence save() is the ordinary one.
        d.body = "plain"
        d.save()
        self.assertEqual(self.row(), ("plain", 3))

    def test_signals_and_auto_now(self):
        seen = []
        pre = lambda sender, instance, update_fields, **kw: seen.append(("pre", update_fields))
        post = lambda sender, instance, created, **kw: seen.append(("post", created))
        pre_save.connect(pre, sender=Document)
        post_save.connect(post, sender=Document)
        try:
            before = Document.objects.get(pk=self.doc.pk).updated_at
            d = self.fenced(1, "x")
            self.assertGreaterEqual(Document.objects.get(pk=self.doc.pk).updated_at, before)
            self.assertEqual(d.mqlock_token, 1)
        finally:
            pre_save.disconnect(pre, sender=Document)
            post_save.disconnect(post, sender=Document)
        self.assertEqual(seen[0][0], "pre")
        self.assertIn("body", seen[0][1])
        self.assertEqual(seen[1], ("post", False))

    def test_update_fields(self):
        d = Document.objects.get(pk=self.doc.pk)
        d.title, d.body = "new title", "new body"
        d.fenced_save(4, update_fields=["title"])
        d = Document.objects.get(pk=self.doc.pk)
        self.assertEqual((d.title, d.body, d.mqlock_token), ("new title", "v0", 4))

    def test_fenced_delete(self):
        self.fenced(7, "seven")
        d = Document.objects.get(pk=self.doc.pk)
        with self.assertRaises(StaleWrite):
            d.fenced_delete(6)
        self.assertTrue(Document.objects.filter(pk=self.doc.pk).exists())
        d.fenced_delete(7)
        self.assertFalse(Document.objects.filter(pk=self.doc.pk).exists())

    def test_unsaved_instance(self):
        with self.assertRaises(ValueError):
            Document(title="new").fenced_save(1)
