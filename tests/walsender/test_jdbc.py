"""pgjdbc's replication API (what Debezium's PostgreSQL connector uses) against the fake walsender."""

import os
import shutil
import subprocess


from fakepm import FakePostgres
from fakepm.protocol.replication import format_lsn

from .helpers import stop
from realpg import needs_install

JAR = os.environ.get("FAKEPM_JDBC_JAR", "/usr/share/java/postgresql.jar")
SOURCE = os.path.join(os.path.dirname(__file__), "jdbc", "CdcConsumer.java")

pytestmark = [
    needs_install(shutil.which("javac") is None or shutil.which("java") is None,
                  reason="java/javac are not installed (.ci/run installs default-jdk-headless)"),
    needs_install(not os.path.exists(JAR), reason=f"{JAR} is absent (.ci/run installs libpostgresql-jdbc-java)"),
]


def test_pgjdbc_replication_stream(tmp_path):
    r = subprocess.run(["javac", "-cp", JAR, "-d", str(tmp_path), SOURCE], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with FakePostgres(version="15.4") as pg:
        pg.wal.configure(wal_sender_timeout=10, keepalive_interval=0.5)
        pg.table("public.t_def", {"id": "int4", "a": "text"}, key=["id"])
        url = f"jdbc:postgresql://{pg.host}:{pg.port}/postgres?sslmode=disable"
        proc = subprocess.Popen(["java", "-cp", f"{tmp_path}{os.pathsep}{JAR}", "CdcConsumer", url, "7"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            pg.wal.wait_for_stream(slot="jdbc_slot", timeout=30)
            t1 = pg.wal.insert("public.t_def", {"id": 1, "a": "one"})
            t2 = pg.wal.delete("public.t_def", {"id": 1})
            out, err = proc.communicate(timeout=30)
        finally:
            stop(proc)
        assert proc.returncode == 0, out + err
        lines = out.splitlines()
        assert lines[0] == f"slot jdbc_slot {format_lsn(pg.wal.slots['jdbc_slot'].consistent_point)}"
        ins, dele = t1.changes[0].lsn, t2.changes[0].lsn
        assert lines[1:8] == [f"msg B {format_lsn(ins)}", "msg R 0/0", f"msg I {format_lsn(ins)}",
                              f"msg C {format_lsn(t1.end_lsn)}", f"msg B {format_lsn(dele)}",
                              f"msg D {format_lsn(dele)}", f"msg C {format_lsn(t2.end_lsn)}"]
        assert lines[-1] == "closed"
        # it confirmed everything, then ended the stream with CopyDone (not a dropped connection)
        assert pg.wal.slots["jdbc_slot"].confirmed_flush == t2.end_lsn
        assert any(q.sql.startswith("START_REPLICATION") for q in pg.queries)
        pg.verify()
