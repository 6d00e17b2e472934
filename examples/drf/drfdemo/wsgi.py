"""WSGI entry point (gunicorn drfdemo.wsgi)."""
import os
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[3] / "clients" / "python"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "drfdemo.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
