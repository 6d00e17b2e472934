"""mqlock for Django and Django REST Framework.

Add ``"mqlock.django"`` to ``INSTALLED_APPS`` and a ``MQLOCK`` dict to the
settings (see :mod:`mqlock.django.conf`). Then:

- :func:`mqlock.django.locks.lock_id_for` names the lock of a model instance;
- :func:`mqlock.django.tickets.ticket_for` mints a page's ticket;
- the ``{% mqlock_config obj as cfg %}`` template tag (or the JSON view
  :func:`mqlock.django.views.config`) hands a page everything mqlock.js
  needs;
- :class:`mqlock.django.permissions.HoldsEditLock` admits a write only from
  the lock's current, verified holder with its current token;
- :class:`mqlock.django.fencing.FencedModel` and
  :class:`mqlock.django.fencing.FencedSaveMixin` store the token with the
  row in one conditional UPDATE;
- :func:`mqlock.django.views.broker_auth` answers nginx's ``auth_request``,
  so that only logged-in users reach the broker's WebSocket listener.

This package speaks MQTT only through :class:`mqlock.Client`, one connection
per process, made on first use (never at import, so Django's autoreloader
and forking servers such as gunicorn never share one).
"""
