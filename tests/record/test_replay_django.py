"""Django 5 `migrate` recorded through `fakepm record`, then replayed twice without PostgreSQL, each
run on another day's clock (Django's `timezone.now` faked): the INSERTs into django_migrations carry
the run's own timestamp as a literal (psycopg 3 binds client-side), so replay matches them by their
shape (`match: shape`) and reports what differed."""

from __future__ import annotations

import os
import sys

import pytest

pytest.importorskip("django")

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.join(os.path.dirname(HERE), "backend", "django_project")
# manage.py with Django's clock pinned to $FAKE_NOW (set before Django imports the migration recorder,
# whose `applied` default captures timezone.now)
FAKE_CLOCK = """
import datetime, os, sys
import django.utils.timezone as tz
_now = datetime.datetime.fromisoformat(os.environ["FAKE_NOW"])
tz.now = lambda: _now
sys.argv = ["manage.py", *sys.argv[1:]]
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""


def migrate(dsn: str, now: str):
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(FAKEPM_DJANGO_DSN=dsn, DJANGO_SETTINGS_MODULE="shopsite.settings", PYTHONPATH=PROJECT,
               FAKE_NOW=now, TZ="UTC")
    return subprocess.run([sys.executable, "-c", FAKE_CLOCK, "migrate", "--noinput"], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def test_migrate_recorded_then_replayed_on_two_other_days(upstream_pg, tmp_path):
    from fakepm import FakePostgres
    from fakepm.proxy.record import Recording

    upstream_pg.psql("DROP DATABASE IF EXISTS django_rec")
    upstream_pg.psql("CREATE DATABASE django_rec")
    out = tmp_path / "migrate.yaml"
    url = f"postgresql://postgres@{upstream_pg.host}:{upstream_pg.port}/django_rec"
    with Recording(url, out) as rec:
        r = migrate(rec.dsn, "2031-01-05T10:00:00+00:00")
    assert r.returncode == 0, r.stderr
    assert "Applying shop.0001_initial... OK" in r.stdout
    text = out.read_text()
    assert "2031-01-05" in text and "recording:" in text
    for day in ("2031-02-17T23:59:59+00:00", "2032-07-01T04:30:00+00:00"):
        with FakePostgres(scenario=out) as pg:
            again = migrate(pg.dsn, day)
            report = list(pg.backend.engine.report)
        assert again.returncode == 0, again.stderr + "\n".join(report)
        assert again.stdout == r.stdout
        # the timestamps differed: matched by shape, and said so
        assert any("matched by shape" in line and "django_migrations" in line for line in report), report
        assert not [line for line in report if "not in the recording" in line], report
