"""``manage.py mqlock_status [--wait S] [LOCK...]``: check the settings.

Connects with settings.MQLOCK as the backend does, prints the coordinator's
status and, for each LOCK, who holds it (the ``query`` the save check uses).
Exits 1 if the broker or the coordinator cannot be reached within --wait.
"""

import json

from django.core.management.base import BaseCommand, CommandError

import mqlock

from ... import backend


class Command(BaseCommand):
    help = "Show the mqlock coordinator's status (and locks) as this Django project sees it."

    def add_arguments(self, parser):
        parser.add_argument("locks", nargs="*", metavar="LOCK", help="lock ids to query")
        parser.add_argument("--wait", type=float, default=5.0,
                            help="seconds to wait for the coordinator (default 5)")

    def handle(self, *args, **options):
        try:
            status = backend.client().wait_online(options["wait"])
            self.stdout.write(f"coordinator: {json.dumps(status, sort_keys=True)}")
            for lock_id in options["locks"]:
                st = backend.lock_state(lock_id)
                self.stdout.write(f"{lock_id}: {json.dumps(st.to_json(), sort_keys=True)}")
        except (mqlock.MqlockError, ValueError) as e:
            raise CommandError(str(e)) from None
        finally:
            backend.reset()
