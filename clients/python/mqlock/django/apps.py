"""Django app configuration of mqlock.django (label ``mqlock``)."""

from django.apps import AppConfig


class MqlockConfig(AppConfig):
    name = "mqlock.django"
    label = "mqlock"
    verbose_name = "mqlock"

    def ready(self) -> None:
        # Settings are read when first needed; a test that overrides
        # MQLOCK gets a fresh configuration and connection.
        from django.core.signals import setting_changed

        from . import conf

        setting_changed.connect(conf._on_setting_changed, dispatch_uid="mqlock-settings")
