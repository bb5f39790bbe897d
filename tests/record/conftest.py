"""A real PostgreSQL (wal_level=logical) with password-protected roles, shared by tests/record."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))

from realpg import real_postgres, skip_unless_postgres  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from record_roles import ROLES  # noqa: E402


@pytest.fixture(scope="session")
def upstream_pg():
    """A real PostgreSQL 127.0.0.1 server for recording/proxy tests (skipped when not installed)."""
    skip_unless_postgres()
    with real_postgres(settings={"wal_level": "logical", "max_wal_senders": "4",
                                 "max_replication_slots": "4"}) as pg:
        hba = os.path.join(pg.datadir, "pg_hba.conf")
        with open(hba) as f:
            old = f.read()
        lines = "".join(f"host all,replication {r} 127.0.0.1/32 {m}\n" for r, (m, _) in ROLES.items())
        with open(hba, "w") as f:  # first match wins: our roles need their passwords
            f.write(lines + old)
        for role, (method, pw) in ROLES.items():
            enc = "md5" if method == "md5" else "scram-sha-256"
            pg.psql(f"SET password_encryption = '{enc}'; CREATE ROLE {role} LOGIN SUPERUSER REPLICATION "
                    f"PASSWORD '{pw}'")
        pg.psql("SELECT pg_reload_conf()")
        yield pg
