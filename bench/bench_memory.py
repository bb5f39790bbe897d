"""Memory: peak RSS of the fakepm process (bench/fakeserver.py) idle, with 100 idle connections,
and while streaming one N-row generated result (checked for flatness: 1/10 of N and N rows).

    .venv/bin/python bench/bench_memory.py [--quick]

Peak RSS is the kernel's VmHWM of the server process, reset (/proc/self/clear_refs) before
each phase. The client streams the rows with psycopg 3 `cursor.stream(size=1000)` and
keeps none of them.
"""

from __future__ import annotations

import psycopg

from common import ROWS_SQL, FakeServer, bench_main, table


def stream_peak(n: int) -> tuple[int, int]:
    """(RSS before, peak RSS during) of a server streaming n rows, in KiB."""
    with FakeServer("--rows", str(n)) as fake, psycopg.connect(fake.dsn) as conn:
        conn.execute("SELECT 1")
        before = fake.cmd("reset_peak")["rss_kib"]
        got = sum(1 for _ in conn.cursor().stream(ROWS_SQL.format(n=n), size=1000))
        assert got == n, got
        return before, fake.cmd("rss")["peak_kib"]


def run(quick: bool) -> list[str]:
    n, conns = (20_000, 10) if quick else (1_000_000, 100)
    with FakeServer() as fake:
        idle = fake.cmd("rss")["rss_kib"]
        opened = [psycopg.connect(fake.dsn) for _ in range(conns)]
        try:
            with_conns = fake.cmd("rss")["peak_kib"]
        finally:
            for c in opened:
                c.close()
    small_before, small_peak = stream_peak(n // 10)
    big_before, big_peak = stream_peak(n)
    mib = lambda k: f"{k / 1024:.1f}"  # noqa: E731
    rows = [
        ["fakepm started, no connections", mib(idle), ""],
        [f"{conns} idle connections (psycopg 3)", mib(with_conns), f"{(with_conns - idle) / conns:.0f} KiB per connection"],
        [f"streaming {n // 10:,} rows", mib(small_peak), f"+{mib(small_peak - small_before)} MiB over the RSS before"],
        [f"streaming {n:,} rows", mib(big_peak), f"+{mib(big_peak - big_before)} MiB over the RSS before"],
    ]
    flat = (big_peak - big_before) <= max(2 * (small_peak - small_before), 4096)
    return [
        "## 8. Memory (fakepm process)",
        "",
        *table(["phase", "peak RSS MiB", "note"], rows),
        f"Flat in rows (10x the rows costs ≤ 2x the extra peak, or under 4 MiB): {'yes' if flat else '**no**'}.",
        "",
    ]


if __name__ == "__main__":
    bench_main(run, __doc__)
