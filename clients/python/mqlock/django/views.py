"""Views: what a page needs to lock, and the WebSocket gate for nginx.

URLs (include ``mqlock.django.urls`` under a prefix of your choice)::

    path("mqlock/", include("mqlock.django.urls"))

- ``GET mqlock/config?lock=ID[&lock=ID...][&client=CLIENT]``: JSON
  ``{url, clientId, ticket, expires, lock, locks, prefix, user, uid[,
  username, password]}`` for the logged-in user; 403 for a lock the user may not
  edit. With ``client`` (a client id issued to this session before) it
  renews that client's ticket, for pages that reconnect after it expired.
- ``GET mqlock/auth``: 204 for a logged-in user whose request comes from
  this site, 401 otherwise. nginx's ``auth_request`` calls it before it
  passes a WebSocket upgrade on to the broker.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable
from urllib.parse import urlsplit

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import conf
from .tickets import ticket_for, user_id


def websocket_url(request: HttpRequest) -> str:
    """``WEBSOCKET_URL`` made absolute for this request's page."""
    url = conf.get("WEBSOCKET_URL")
    if "://" in url:
        return url
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}{url if url.startswith('/') else '/' + url}"


def page_config(request: HttpRequest, lock_ids: Iterable[str], client_id: Any = None) -> Dict[str, Any]:
    """Everything mqlock.js needs to lock `lock_ids` for ``request.user``:
    ``{url, clientId, ticket, expires, lock, locks, prefix, user, uid}``, plus the
    broker login for pages (``username``, ``password``) when configured.

    Raises PermissionDenied as :func:`~mqlock.django.tickets.ticket_for`.
    """
    t = ticket_for(request, lock_ids, client_id)
    cfg: Dict[str, Any] = {
        "url": websocket_url(request),
        "clientId": t.client_id,
        "ticket": t.ticket,
        "expires": t.expires,
        "lock": t.locks[0] if t.locks else None,
        "locks": t.locks,
        "prefix": conf.get("PREFIX"),
        "user": str(conf.callable_setting("USER_NAME")(request.user)),
        "uid": user_id(request.user),
    }
    username = conf.get("PAGE_USERNAME")
    if username:
        cfg["username"] = username
        cfg["password"] = conf.read_secret(conf.get("PAGE_PASSWORD_FILE"), "PAGE_PASSWORD_FILE")
    return cfg


@never_cache
@require_GET
def config(request: HttpRequest) -> HttpResponse:
    """JSON page configuration (see the module's docstring)."""
    if not request.user.is_authenticated:
        return JsonResponse({"detail": "log in first"}, status=401)
    locks = request.GET.getlist("lock")
    if not locks:
        return JsonResponse({"detail": "name at least one lock"}, status=400)
    try:
        cfg = page_config(request, locks, request.GET.get("client"))
    except PermissionDenied as e:
        return JsonResponse({"detail": str(e) or "forbidden"}, status=403)
    return JsonResponse(cfg)


def same_origin(request: HttpRequest) -> bool:
    """True unless the request names an Origin other than this site.

    Browsers send Origin on every WebSocket handshake; a page of another site
    opening a WebSocket here with our user's cookies is refused.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    want = "https" if request.is_secure() else "http"
    return parts.scheme == want and parts.netloc == request.get_host()


@never_cache
def broker_auth(request: HttpRequest) -> HttpResponse:
    """nginx ``auth_request``: 204 for a logged-in user from this site, 401
    for anyone else. The session is checked like any Django view's, so a
    logged-out, expired or forged session cookie gets 401."""
    if request.user.is_authenticated and request.user.is_active and same_origin(request):
        return HttpResponse(status=204)
    return HttpResponse(status=401)
