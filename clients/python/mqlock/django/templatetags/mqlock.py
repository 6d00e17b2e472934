"""Template tags: ``{% load mqlock %}``.

``{% mqlock_config document as cfg %}`` puts the page configuration of
:func:`mqlock.django.views.page_config` for `document`'s lock (or for a
lock id string) into ``cfg``; hand it to the page's script with Django's
``json_script`` filter::

    {% mqlock_config document as cfg %}
    {{ cfg|json_script:"mqlock-config" }}

Needs ``request`` in the template context
(``django.template.context_processors.request``). Raises PermissionDenied
(403) if the user may not edit the object.
"""

from typing import Any, Dict

from django import template
from django.core.exceptions import ImproperlyConfigured

from ..locks import lock_id_for
from ..views import page_config

register = template.Library()


@register.simple_tag(takes_context=True)
def mqlock_config(context: Any, obj: Any) -> Dict[str, Any]:
    request = context.get("request")
    if request is None:
        raise ImproperlyConfigured(
            "mqlock_config needs the request in the template context "
            "(add django.template.context_processors.request)")
    lock_id = obj if isinstance(obj, str) else lock_id_for(obj)
    return page_config(request, [lock_id])
