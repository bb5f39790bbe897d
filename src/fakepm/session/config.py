"""Server configuration shared by every session: identity, ParameterStatus values, users, limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..protocol.auth import UserAuth

DEFAULT_VERSION = "17.4"

# The ParameterStatus values PostgreSQL reports after authentication (GUC_REPORT settings), with
# their defaults, in PostgreSQL 15's order (it walks its settings sorted by name; captured from
# 15.18 and captures/psycopg3_connect_scram.txt). server_version/session_authorization/is_superuser
# are filled per server and per user. Which ones a server reports, and in which order, depends on
# its version: see `reported_names`.
REPORTED_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("DateStyle", "ISO, MDY"),
    ("default_transaction_read_only", "off"),
    ("in_hot_standby", "off"),
    ("integer_datetimes", "on"),
    ("IntervalStyle", "postgres"),
    ("is_superuser", "on"),
    ("server_encoding", "UTF8"),
    ("server_version", DEFAULT_VERSION),
    ("session_authorization", ""),
    ("standard_conforming_strings", "on"),
    ("TimeZone", "UTC"),
    ("scram_iterations", "4096"),  # reported by 16+
    ("search_path", '"$user", public'),  # reported by 18+
)
REPORTED_NAMES = {name.lower(): name for name, _ in REPORTED_DEFAULTS}

# PostgreSQL 16 moved its settings into a hash table and reports them in its iteration order.
# This is PostgreSQL 18.6's order (captured); 16 and 17 hash the same names with the same function
# into a table of the same size (512 buckets for their ~360-400 settings), so they report in the
# same order without search_path (derived from the sources, guc.c BeginReportingGUCOptions and
# guc_tables.c GUC_REPORT flags: scram_iterations is reported since 16, search_path since 18).
_REPORTED_ORDER_16 = (
    "in_hot_standby", "integer_datetimes", "TimeZone", "IntervalStyle", "search_path", "is_superuser",
    "application_name", "default_transaction_read_only", "scram_iterations", "DateStyle",
    "standard_conforming_strings", "session_authorization", "client_encoding", "server_version",
    "server_encoding",
)


def reported_names(major: int) -> tuple[str, ...]:
    """The settings a PostgreSQL of this major version reports in ParameterStatus, in its order.

    <= 13: 11 (in_hot_standby and default_transaction_read_only are reported since 14);
    14, 15: 13 in name order; 16, 17: 14 (+ scram_iterations) in hash order; 18+: 15 (+ search_path).
    """
    if major >= 16:
        return tuple(n for n in _REPORTED_ORDER_16 if major >= 18 or n != "search_path")
    names = tuple(n for n, _ in REPORTED_DEFAULTS if n not in ("scram_iterations", "search_path"))
    if major <= 13:
        names = tuple(n for n in names if n not in ("in_hot_standby", "default_transaction_read_only"))
    return names


# Settings SHOW knows besides the reported ones (lower-case name -> (canonical name, default)).
OTHER_SETTINGS: dict[str, tuple[str, str]] = {
    n.lower(): (n, v)
    for n, v in (
        ("transaction_isolation", "read committed"),
        ("default_transaction_isolation", "read committed"),
        ("transaction_read_only", "off"),
        ("transaction_deferrable", "off"),
        ("search_path", '"$user", public'),
        ("extra_float_digits", "1"),
        ("statement_timeout", "0"),
        ("lock_timeout", "0"),
        ("idle_in_transaction_session_timeout", "0"),
        ("max_connections", "100"),
        ("max_identifier_length", "63"),
        ("block_size", "8192"),
        ("data_directory_mode", "0700"),
        ("wal_segment_size", "16MB"),
        ("wal_level", "logical"),
        ("wal_sender_timeout", "1min"),
        ("max_wal_senders", "10"),
        ("max_replication_slots", "10"),
        ("lc_messages", "C.UTF-8"),
        ("lc_ctype", "C.UTF-8"),
        ("lc_collate", "C.UTF-8"),
        ("lc_monetary", "C.UTF-8"),
        ("lc_numeric", "C.UTF-8"),
        ("lc_time", "C.UTF-8"),
        ("bytea_output", "hex"),
        ("jit", "off"),
        ("work_mem", "4MB"),
        ("maintenance_work_mem", "64MB"),
        ("shared_buffers", "128MB"),
        ("client_min_messages", "notice"),
        ("synchronous_commit", "on"),
        ("timezone_abbreviations", "Default"),
        ("row_security", "on"),
        ("port", "5432"),
        ("listen_addresses", "localhost"),
        ("ssl", "off"),
        ("password_encryption", "scram-sha-256"),
        ("max_prepared_transactions", "0"),
        ("track_commit_timestamp", "off"),
        ("hot_standby_feedback", "off"),
        ("default_text_search_config", "pg_catalog.english"),
        ("xmlbinary", "base64"),
        ("xmloption", "content"),
        ("array_nulls", "on"),
        ("backslash_quote", "safe_encoding"),
        ("escape_string_warning", "on"),
        ("lo_compat_privileges", "off"),
        ("quote_all_identifiers", "off"),
        ("server_version_num", ""),  # derived
    )
}


def version_num(version: str) -> str:
    """'17.4' -> '170004'; '9.6.24' -> '90624'; '16.4-fake' -> '160004'."""
    import re

    m = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", version)
    if not m:
        return "0"
    major = int(m.group(1))
    minor = int(m.group(2) or 0)
    if major >= 10:
        return str(major * 10000 + minor)
    return str(major * 10000 + minor * 100 + int(m.group(3) or 0))


@dataclass
class ServerConfig:
    version: str = DEFAULT_VERSION
    database: str | None = None  # None: accept any database name
    parameters: dict = field(default_factory=dict)  # extra/overridden ParameterStatus values
    users: dict | None = None  # name -> UserAuth; None = everybody, trust
    default_auth: UserAuth | None = None  # for users not listed when `users` is None
    tls: bool = False
    require_tls: bool = False
    max_message_size: int = 64 << 20  # protocol/framing.py DEFAULT_MAX_MESSAGE (PostgreSQL's ceiling: 1 GiB)
    max_connections: int = 1000
    journal_limit: int = 100_000
    copy_keep_bytes: int = 8 << 20  # COPY data whose rows a COPY's record keeps (session/copy.py)
    authentication_timeout: float = 60.0  # seconds to finish startup + authentication, as PostgreSQL's default
    platform: str = "x86_64-pc-linux-gnu, compiled by gcc (Debian 12.2.0-14) 12.2.0, 64-bit"

    @property
    def major(self) -> int:
        return int(version_num(self.version)) // 10000

    def version_string(self) -> str:
        """What `SELECT version()` says (SQLAlchemy parses `PostgreSQL N.N`)."""
        return f"PostgreSQL {self.version} on {self.platform}"

    def reported_parameters(self, user: str, startup: dict) -> list[tuple[str, str]]:
        """ParameterStatus (name, value) pairs after authentication, as the announced version sends them.

        `parameters` naming a setting this version does not report add it at the end."""
        values = {n: v for n, v in REPORTED_DEFAULTS if n in reported_names(self.major)}
        values = {n: values[n] for n in reported_names(self.major)}
        values["server_version"] = self.version
        values["session_authorization"] = user
        for k, v in self.parameters.items():
            canonical = REPORTED_NAMES.get(k.lower(), k)
            values[canonical] = str(v)
        # a client may choose some reported values in its startup packet (application_name, ...)
        for k, v in startup.items():
            canonical = REPORTED_NAMES.get(k.lower())
            if canonical in ("application_name", "DateStyle", "IntervalStyle", "TimeZone", "search_path") \
                    and canonical in values:
                values[canonical] = _startup_value(canonical, v)
        return list(values.items())


def _startup_value(name: str, value: str) -> str:
    # asyncpg sends client_encoding="'utf-8'" including the quotes; be as lenient as PostgreSQL
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        value = value[1:-1]
    if name == "DateStyle" and value.upper().startswith("ISO") and "," not in value:
        return "ISO, MDY"
    return value
