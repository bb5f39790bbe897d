"""Settings of the test project: one PostgreSQL database, named by $FAKEPM_DJANGO_DSN (a libpq URI)."""
import os
from urllib.parse import unquote, urlsplit

_url = urlsplit(os.environ["FAKEPM_DJANGO_DSN"])

SECRET_KEY = "fakepm-test-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "shop",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(_url.path.lstrip("/")) or "postgres",
        "USER": unquote(_url.username or "postgres"),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname,
        "PORT": str(_url.port or 5432),
        # FAKEPM_DJANGO_SERVER_SIDE_BINDING=1: psycopg 3 sends parameters apart (extended protocol)
        "OPTIONS": {"connect_timeout": 10,
                    "server_side_binding": os.environ.get("FAKEPM_DJANGO_SERVER_SIDE_BINDING") == "1"},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
