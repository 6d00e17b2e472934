"""URLs of mqlock.django: ``path("mqlock/", include("mqlock.django.urls"))``."""

from django.urls import path

from . import views

app_name = "mqlock"

urlpatterns = [
    path("config", views.config, name="config"),
    path("auth", views.broker_auth, name="auth"),
]
