"""Fault injection: plans (plan.py) applied by the session (apply.py) and the I/O loop (wire.py).

    from fakepm.faults import parse_fault
    pg.fault(error="40001", query="COMMIT", first=2)          # server level
    pg.on("SELECT 1").reply(..., fault={"close": True, "after_rows": 3})
"""

from .apply import REPLACED, FaultSet, SessionAbort, SessionFaults
from .plan import (ACTIONS, AUTH_FAULTS, MALFORMED, POINTS, Delay, FaultPlan, FaultSpecError, Trigger,
                   parse_fault)

__all__ = [
    "ACTIONS", "AUTH_FAULTS", "MALFORMED", "POINTS", "REPLACED", "Delay", "FaultPlan", "FaultSet",
    "FaultSpecError", "SessionAbort", "SessionFaults", "Trigger", "parse_fault", "parse_faults",
]


def parse_faults(data, where: str = "faults") -> list:
    """A list of plans from one mapping or a list of mappings."""
    items = data if isinstance(data, (list, tuple)) else [data]
    return [parse_fault(d, f"{where}[{i}]" if isinstance(data, (list, tuple)) else where)
            for i, d in enumerate(items)]
