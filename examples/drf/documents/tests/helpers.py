"""Shared pieces of the example's tests: users, a stack, lock holders."""

import os

from django.contrib.auth.models import Permission, User
from django.test import override_settings

from mqlock.django import conf
from mqlock_stack import Stack


def make_user(username, first_name="", can_edit=True):
    user = User.objects.create_user(username, password=f"{username}-pw", first_name=first_name)
    if can_edit:
        user.user_permissions.add(Permission.objects.get(codename="change_document"))
    return user


class StackMixin:
    """Starts one mosquitto + mqlockd (tickets required) for the test class
    and points settings.MQLOCK at it."""

    stack_options = {}
    query_timeout = 5.0

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(**{"grace": 1, "tickets": "required", **cls.stack_options})
        cls.stack.__enter__()
        cls._settings = override_settings(MQLOCK={
            "BROKER_URL": cls.stack.url,
            "TICKET_KEY_FILE": str(cls.stack.key_file),
            "QUERY_TIMEOUT": cls.query_timeout,
        })
        cls._settings.enable()
        conf.clear()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls._settings.disable()
        conf.clear()
        cls.stack.__exit__(None, None, None)

    def setUp(self):
        super().setUp()
        self._clients = []

    def tearDown(self):
        for c in self._clients:
            c.close(timeout=2)
        super().tearDown()

    def holder(self, user, **kw):
        """An mqlock client vouched for as `user` (a ticket with uid = pk)."""
        name = user.get_full_name() or user.username
        c = self.stack.client(ticket=self.stack.ticket_for(str(user.pk), name), **kw)
        self._clients.append(c)
        return c

    def dump_logs_on_failure(self):
        return self.stack.logs()


def token_header(token):
    return {"HTTP_X_MQLOCK_TOKEN": str(token)}
