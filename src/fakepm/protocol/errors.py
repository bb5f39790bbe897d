"""SQLSTATE codes and PgError, the one error type that becomes an ErrorResponse/NoticeResponse.

The table is PostgreSQL's src/backend/utils/errcodes.txt (15 and 18) plus fakepm's FP000.
Scenario files and the control API check codes with `resolve_sqlstate`: a code in one of
PostgreSQL's classes (the first two characters) must be one of its codes (`4250X` gets "did you
mean 42501"); a code in a class PostgreSQL does not define is taken as an application's own
(PL/pgSQL's `RAISE ... USING ERRCODE = 'U0001'`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SQLSTATES: dict[str, str] = {
    # Class 00/01/02 - success, warning, no data
    "00000": "successful_completion",
    "01000": "warning",
    "0100C": "dynamic_result_sets_returned",
    "01008": "implicit_zero_bit_padding",
    "01003": "null_value_eliminated_in_set_function",
    "01007": "privilege_not_granted",
    "01006": "privilege_not_revoked",
    "01004": "string_data_right_truncation",
    "01P01": "deprecated_feature",
    "02000": "no_data",
    "02001": "no_additional_dynamic_result_sets_returned",
    # Class 03/08/09/0A/0B/0F/0L/0P/0Z
    "03000": "sql_statement_not_yet_complete",
    "08000": "connection_exception",
    "08003": "connection_does_not_exist",
    "08006": "connection_failure",
    "08001": "sqlclient_unable_to_establish_sqlconnection",
    "08004": "sqlserver_rejected_establishment_of_sqlconnection",
    "08007": "transaction_resolution_unknown",
    "08P01": "protocol_violation",
    "09000": "triggered_action_exception",
    "0A000": "feature_not_supported",
    "0B000": "invalid_transaction_initiation",
    "0F000": "locator_exception",
    "0L000": "invalid_grantor",
    "0P000": "invalid_role_specification",
    "0Z000": "diagnostics_exception",
    # Class 20/21/22 - data exceptions
    "20000": "case_not_found",
    "21000": "cardinality_violation",
    "22000": "data_exception",
    "2202E": "array_subscript_error",
    "22021": "character_not_in_repertoire",
    "22008": "datetime_field_overflow",
    "22012": "division_by_zero",
    "22005": "error_in_assignment",
    "2200B": "escape_character_conflict",
    "22022": "indicator_overflow",
    "22015": "interval_field_overflow",
    "2201E": "invalid_argument_for_logarithm",
    "22014": "invalid_argument_for_ntile_function",
    "22016": "invalid_argument_for_nth_value_function",
    "2201F": "invalid_argument_for_power_function",
    "2201G": "invalid_argument_for_width_bucket_function",
    "22018": "invalid_character_value_for_cast",
    "22007": "invalid_datetime_format",
    "22019": "invalid_escape_character",
    "2200D": "invalid_escape_octet",
    "22025": "invalid_escape_sequence",
    "22P06": "nonstandard_use_of_escape_character",
    "22010": "invalid_indicator_parameter_value",
    "22023": "invalid_parameter_value",
    "22013": "invalid_preceding_or_following_size",
    "2201B": "invalid_regular_expression",
    "2201W": "invalid_row_count_in_limit_clause",
    "2201X": "invalid_row_count_in_result_offset_clause",
    "2202H": "invalid_tablesample_argument",
    "2202G": "invalid_tablesample_repeat",
    "22009": "invalid_time_zone_displacement_value",
    "2200C": "invalid_use_of_escape_character",
    "2200G": "most_specific_type_mismatch",
    "22004": "null_value_not_allowed",
    "22002": "null_value_no_indicator_parameter",
    "22003": "numeric_value_out_of_range",
    "2200H": "sequence_generator_limit_exceeded",
    "22026": "string_data_length_mismatch",
    "22001": "string_data_right_truncation",
    "22011": "substring_error",
    "22027": "trim_error",
    "22024": "unterminated_c_string",
    "2200F": "zero_length_character_string",
    "22P01": "floating_point_exception",
    "22P02": "invalid_text_representation",
    "22P03": "invalid_binary_representation",
    "22P04": "bad_copy_file_format",
    "22P05": "untranslatable_character",
    "2200L": "not_an_xml_document",
    "2200M": "invalid_xml_document",
    "2200N": "invalid_xml_content",
    "22030": "duplicate_json_object_key_value",
    "22032": "invalid_json_text",
    # Class 23 - integrity
    "23000": "integrity_constraint_violation",
    "23001": "restrict_violation",
    "23502": "not_null_violation",
    "23503": "foreign_key_violation",
    "23505": "unique_violation",
    "23514": "check_violation",
    "23P01": "exclusion_violation",
    # Class 24/25/26/27/28/2B/2D/2F/34/38/39/3B/3D/3F
    "24000": "invalid_cursor_state",
    "25000": "invalid_transaction_state",
    "25001": "active_sql_transaction",
    "25002": "branch_transaction_already_active",
    "25008": "held_cursor_requires_same_isolation_level",
    "25003": "inappropriate_access_mode_for_branch_transaction",
    "25004": "inappropriate_isolation_level_for_branch_transaction",
    "25005": "no_active_sql_transaction_for_branch_transaction",
    "25006": "read_only_sql_transaction",
    "25007": "schema_and_data_statement_mixing_not_supported",
    "25P01": "no_active_sql_transaction",
    "25P02": "in_failed_sql_transaction",
    "25P03": "idle_in_transaction_session_timeout",
    "26000": "invalid_sql_statement_name",
    "27000": "triggered_data_change_violation",
    "28000": "invalid_authorization_specification",
    "28P01": "invalid_password",
    "2B000": "dependent_privilege_descriptors_still_exist",
    "2BP01": "dependent_objects_still_exist",
    "2D000": "invalid_transaction_termination",
    "2F000": "sql_routine_exception",
    "34000": "invalid_cursor_name",
    "38000": "external_routine_exception",
    "39000": "external_routine_invocation_exception",
    "3B000": "savepoint_exception",
    "3B001": "invalid_savepoint_specification",
    "3D000": "invalid_catalog_name",
    "3F000": "invalid_schema_name",
    # Class 40 - transaction rollback
    "40000": "transaction_rollback",
    "40002": "transaction_integrity_constraint_violation",
    "40001": "serialization_failure",
    "40003": "statement_completion_unknown",
    "40P01": "deadlock_detected",
    # Class 42 - syntax error or access rule violation
    "42000": "syntax_error_or_access_rule_violation",
    "42601": "syntax_error",
    "42501": "insufficient_privilege",
    "42846": "cannot_coerce",
    "42803": "grouping_error",
    "42P20": "windowing_error",
    "42P19": "invalid_recursion",
    "42830": "invalid_foreign_key",
    "42602": "invalid_name",
    "42622": "name_too_long",
    "42939": "reserved_name",
    "42804": "datatype_mismatch",
    "42P18": "indeterminate_datatype",
    "42P21": "collation_mismatch",
    "42P22": "indeterminate_collation",
    "42809": "wrong_object_type",
    "428C9": "generated_always",
    "42703": "undefined_column",
    "42883": "undefined_function",
    "42P01": "undefined_table",
    "42P02": "undefined_parameter",
    "42704": "undefined_object",
    "42701": "duplicate_column",
    "42P03": "duplicate_cursor",
    "42P04": "duplicate_database",
    "42723": "duplicate_function",
    "42P05": "duplicate_prepared_statement",
    "42P06": "duplicate_schema",
    "42P07": "duplicate_table",
    "42712": "duplicate_alias",
    "42710": "duplicate_object",
    "42702": "ambiguous_column",
    "42725": "ambiguous_function",
    "42P08": "ambiguous_parameter",
    "42P09": "ambiguous_alias",
    "42P10": "invalid_column_reference",
    "42611": "invalid_column_definition",
    "42P11": "invalid_cursor_definition",
    "42P12": "invalid_database_definition",
    "42P13": "invalid_function_definition",
    "42P14": "invalid_prepared_statement_definition",
    "42P15": "invalid_schema_definition",
    "42P16": "invalid_table_definition",
    "42P17": "invalid_object_definition",
    # Class 44/53/54/55/57/58/72/F0/HV/P0/XX
    "44000": "with_check_option_violation",
    "53000": "insufficient_resources",
    "53100": "disk_full",
    "53200": "out_of_memory",
    "53300": "too_many_connections",
    "53400": "configuration_limit_exceeded",
    "54000": "program_limit_exceeded",
    "54001": "statement_too_complex",
    "54011": "too_many_columns",
    "54023": "too_many_arguments",
    "55000": "object_not_in_prerequisite_state",
    "55006": "object_in_use",
    "55P02": "cant_change_runtime_param",
    "55P03": "lock_not_available",
    "55P04": "unsafe_new_enum_value_usage",
    "57000": "operator_intervention",
    "57014": "query_canceled",
    "57P01": "admin_shutdown",
    "57P02": "crash_shutdown",
    "57P03": "cannot_connect_now",
    "57P04": "database_dropped",
    "57P05": "idle_session_timeout",
    "58000": "system_error",
    "58030": "io_error",
    "58P01": "undefined_file",
    "58P02": "duplicate_file",
    "72000": "snapshot_too_old",
    "F0000": "config_file_error",
    "F0001": "lock_file_exists",
    "P0000": "plpgsql_error",
    "P0001": "raise_exception",
    "P0002": "no_data_found",
    "P0003": "too_many_rows",
    "P0004": "assert_failure",
    "XX000": "internal_error",
    "XX001": "data_corrupted",
    "XX002": "index_corrupted",
    # fakepm's own class (documented in the README): "FP" = fakepm
    # the rest of PostgreSQL's errcodes.txt (15 and 18): every code PostgreSQL defines is known
    "0F001": "invalid_locator_specification",
    "0LP01": "invalid_grant_operation",
    "0Z002": "stacked_diagnostics_accessed_without_active_handler",
    "10608": "invalid_argument_for_xquery",
    "2200S": "invalid_xml_comment",
    "2200T": "invalid_xml_processing_instruction",
    "22031": "invalid_argument_for_sql_json_datetime_function",
    "22033": "invalid_sql_json_subscript",
    "22034": "more_than_one_sql_json_item",
    "22035": "no_sql_json_item",
    "22036": "non_numeric_sql_json_item",
    "22037": "non_unique_keys_in_a_json_object",
    "22038": "singleton_sql_json_item_required",
    "22039": "sql_json_array_not_found",
    "2203A": "sql_json_member_not_found",
    "2203B": "sql_json_number_not_found",
    "2203C": "sql_json_object_not_found",
    "2203D": "too_many_json_array_elements",
    "2203E": "too_many_json_object_members",
    "2203F": "sql_json_scalar_required",
    "2203G": "sql_json_item_cannot_be_cast_to_target_type",
    "25P04": "transaction_timeout",
    "2F002": "modifying_sql_data_not_permitted",
    "2F003": "prohibited_sql_statement_attempted",
    "2F004": "reading_sql_data_not_permitted",
    "2F005": "function_executed_no_return_statement",
    "38001": "containing_sql_not_permitted",
    "38002": "modifying_sql_data_not_permitted",
    "38003": "prohibited_sql_statement_attempted",
    "38004": "reading_sql_data_not_permitted",
    "39001": "invalid_sqlstate_returned",
    "39004": "null_value_not_allowed",
    "39P01": "trigger_protocol_violated",
    "39P02": "srf_protocol_violated",
    "39P03": "event_trigger_protocol_violated",
    "58P03": "file_name_too_long",
    "HV000": "fdw_error",
    "HV001": "fdw_out_of_memory",
    "HV002": "fdw_dynamic_parameter_value_needed",
    "HV004": "fdw_invalid_data_type",
    "HV005": "fdw_column_name_not_found",
    "HV006": "fdw_invalid_data_type_descriptors",
    "HV007": "fdw_invalid_column_name",
    "HV008": "fdw_invalid_column_number",
    "HV009": "fdw_invalid_use_of_null_pointer",
    "HV00A": "fdw_invalid_string_format",
    "HV00B": "fdw_invalid_handle",
    "HV00C": "fdw_invalid_option_index",
    "HV00D": "fdw_invalid_option_name",
    "HV00J": "fdw_option_name_not_found",
    "HV00K": "fdw_reply_handle",
    "HV00L": "fdw_unable_to_create_execution",
    "HV00M": "fdw_unable_to_create_reply",
    "HV00N": "fdw_unable_to_establish_connection",
    "HV00P": "fdw_no_schemas",
    "HV00Q": "fdw_schema_not_found",
    "HV00R": "fdw_table_not_found",
    "HV010": "fdw_function_sequence_error",
    "HV014": "fdw_too_many_handles",
    "HV021": "fdw_inconsistent_descriptor_information",
    "HV024": "fdw_invalid_attribute_value",
    "HV090": "fdw_invalid_string_length_or_buffer_length",
    "HV091": "fdw_invalid_descriptor_field_identifier",
    "FP000": "fakepm_no_rule_matched",
}

NAMES_TO_CODES: dict[str, str] = {}
for _code, _name in SQLSTATES.items():
    NAMES_TO_CODES.setdefault(_name, _code)

#: SQLSTATE sent when no rule answers a query (documented in the README).
NO_RULE_MATCHED = "FP000"

_SQLSTATE_RE = re.compile(r"^[0-9A-Z]{5}$")

SEVERITIES = ("ERROR", "FATAL", "PANIC", "WARNING", "NOTICE", "DEBUG", "INFO", "LOG")


def is_valid_sqlstate(code: str) -> bool:
    """Any five digits/upper-case letters is a syntactically valid SQLSTATE."""
    return bool(isinstance(code, str) and _SQLSTATE_RE.match(code))


def resolve_sqlstate(code_or_name: str) -> str:
    """Accept '40001' or 'serialization_failure'; raise ValueError naming the problem (with a
    "did you mean" for an unknown code of a known class or an unknown condition name)."""
    import difflib

    if isinstance(code_or_name, str):
        if _SQLSTATE_RE.match(code_or_name):
            if code_or_name in SQLSTATES or code_or_name[:2] not in _CLASSES:
                return code_or_name
            close = difflib.get_close_matches(code_or_name, [c for c in SQLSTATES if c[:2] == code_or_name[:2]]
                                              or list(SQLSTATES), n=1, cutoff=0.5)
            hint = f'; did you mean "{close[0]}" ({SQLSTATES[close[0]]})?' if close else ""
            raise ValueError(f'unknown SQLSTATE "{code_or_name}": class {code_or_name[:2]} is PostgreSQL\'s and has '
                             f"no such code{hint}")
        lowered = code_or_name.strip().lower()
        if lowered in NAMES_TO_CODES:
            return NAMES_TO_CODES[lowered]
        close = difflib.get_close_matches(lowered, list(NAMES_TO_CODES), n=1, cutoff=0.7)
        if close:
            raise ValueError(f'unknown condition name "{code_or_name}"; did you mean "{close[0]}" '
                             f"({NAMES_TO_CODES[close[0]]})?")
    raise ValueError(
        f"{code_or_name!r} is not a SQLSTATE: use 5 characters of digits and upper-case letters "
        f"(e.g. '40001') or a condition name (e.g. 'serialization_failure')"
    )


_CLASSES = frozenset(c[:2] for c in SQLSTATES)


# Field type bytes of ErrorResponse/NoticeResponse, in the order PostgreSQL writes them.
FIELD_CODES = (
    ("severity", b"S"),
    ("severity_nonlocalized", b"V"),
    ("code", b"C"),
    ("message", b"M"),
    ("detail", b"D"),
    ("hint", b"H"),
    ("position", b"P"),
    ("internal_position", b"p"),
    ("internal_query", b"q"),
    ("where", b"W"),
    ("schema_name", b"s"),
    ("table_name", b"t"),
    ("column_name", b"c"),
    ("data_type_name", b"d"),
    ("constraint_name", b"n"),
    ("file", b"F"),
    ("line", b"L"),
    ("routine", b"R"),
)
FIELD_BY_CODE = {code: name for name, code in FIELD_CODES}


@dataclass(eq=True)
class PgError(Exception):
    """An error or notice as PostgreSQL reports it.

    Raise it from a handler to answer with an ErrorResponse; put it in `notices` to send a
    NoticeResponse. `code` accepts a SQLSTATE or a condition name.
    """

    code: str = "XX000"
    message: str = "internal error"
    severity: str = "ERROR"
    detail: str | None = None
    hint: str | None = None
    position: int | None = None
    where: str | None = None
    schema_name: str | None = None
    table_name: str | None = None
    column_name: str | None = None
    data_type_name: str | None = None
    constraint_name: str | None = None
    internal_position: int | None = None
    internal_query: str | None = None
    file: str | None = "fakepm"
    line: str | None = None
    routine: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.code = resolve_sqlstate(self.code)
        sev = str(self.severity).upper()
        if sev not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {', '.join(SEVERITIES)}")
        self.severity = sev
        Exception.__init__(self, f"{self.severity} {self.code}: {self.message}")

    def __str__(self) -> str:
        return f"{self.severity}:  {self.message} (SQLSTATE {self.code})"

    __hash__ = Exception.__hash__

    @property
    def condition_name(self) -> str | None:
        return SQLSTATES.get(self.code)

    @property
    def is_fatal(self) -> bool:
        return self.severity in ("FATAL", "PANIC")

    def fields(self) -> list[tuple[bytes, str]]:
        """(field type byte, value) pairs in wire order, skipping unset fields."""
        out = []
        for name, code in FIELD_CODES:
            if name == "severity_nonlocalized":
                value = self.severity
            else:
                value = getattr(self, name)
            if value is not None:
                out.append((code, str(value)))
        return out

    @classmethod
    def from_fields(cls, fields: dict[bytes, str]) -> "PgError":
        """Rebuild from decoded wire fields (used by tests and the recorder)."""
        kwargs = {}
        for code, value in fields.items():
            name = FIELD_BY_CODE.get(code)
            if name is None or name == "severity_nonlocalized":
                continue
            if name in ("position", "internal_position"):
                value = int(value)
            kwargs[name] = value
        kwargs.setdefault("file", None)
        return cls(**kwargs)


def fatal(code: str, message: str, **kw) -> PgError:
    return PgError(code=code, message=message, severity="FATAL", **kw)


def protocol_violation(message: str) -> PgError:
    return PgError(code="08P01", message=message, severity="FATAL")
