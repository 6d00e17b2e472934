"""Create the example's users and documents (idempotent)."""

from django.contrib.auth.models import Permission, User
from django.core.management.base import BaseCommand

from documents.models import Document

USERS = [("alice", "Alice", "alice-demo"), ("bob", "Bob", "bob-demo"), ("carol", "Carol", "carol-demo")]


class Command(BaseCommand):
    help = "Create the demo users (alice, bob, carol) and two documents, if missing."

    def handle(self, *args, **options):
        change = Permission.objects.get(codename="change_document")
        for username, first, password in USERS:
            user, created = User.objects.get_or_create(username=username, defaults={"first_name": first})
            if created:
                user.set_password(password)
                user.save()
            user.user_permissions.add(change)
        for title in ("Quarterly report", "Meeting notes"):
            Document.objects.get_or_create(title=title, defaults={"body": f"{title}\n\n"})
        self.stdout.write("users: " + ", ".join(f"{u} / {p}" for u, _, p in USERS))
