"""Settings of the example: Documents edited under mqlock.

Everything the example generates lives in its run directory
($DRFDEMO_RUN, default examples/drf/run): the SQLite database, the Django
secret key, the ticket key shared with mqlockd, the broker's passwords
(broker/, made by broker-config/production/setup.sh) and the collected
static files. examples/drf/run.sh creates it.
"""

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("DRFDEMO_RUN") or BASE_DIR / "run").resolve()
BROKER_DIR = RUN_DIR / "broker"
BROKER_PORT = int(os.environ.get("DRFDEMO_BROKER_PORT", "8885"))


def _secret() -> str:
    try:
        return (RUN_DIR / "secret.key").read_text().strip()
    except OSError:
        # Without run.sh (tests, a first `manage.py help`): valid for this
        # process only.
        return secrets.token_urlsafe(50)


SECRET_KEY = _secret()
DEBUG = os.environ.get("DRFDEMO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "mqlock.django",
    "documents",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "drfdemo.urls"
WSGI_APPLICATION = "drfdemo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": RUN_DIR / "db.sqlite3",
        # A file, not memory, for the tests too: their racing saves run in
        # threads with connections of their own.
        "TEST": {"NAME": str(RUN_DIR / "test-db.sqlite3")},
        "OPTIONS": {"timeout": 20},
    }
}

AUTH_PASSWORD_VALIDATORS = []
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "/static/"
STATIC_ROOT = RUN_DIR / "static"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
    ],
}

# mqlock: see clients/python/mqlock/django/conf.py for every key.
MQLOCK = {
    "BROKER_URL": f"mqtts://127.0.0.1:{BROKER_PORT}",
    "WEBSOCKET_URL": "/mqtt",
    "TICKET_KEY_FILE": str(RUN_DIR / "ticket.key"),
    "TICKET_TTL": 300,
    "QUERY_TIMEOUT": 2.0,
}
if (BROKER_DIR / "passwords").is_dir():
    # The production broker profile: the backend logs in as "services" over
    # TLS, pages as "editors" on the WebSocket listener (which nginx opens to
    # logged-in users only).
    MQLOCK.update({
        "BROKER_CAFILE": str(BROKER_DIR / "ca.crt"),
        "BROKER_USERNAME": "services",
        "BROKER_PASSWORD_FILE": str(BROKER_DIR / "passwords" / "services"),
        "PAGE_USERNAME": "editors",
        "PAGE_PASSWORD_FILE": str(BROKER_DIR / "passwords" / "editors"),
    })

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"mqlock": {"handlers": ["console"], "level": "INFO"}},
}
