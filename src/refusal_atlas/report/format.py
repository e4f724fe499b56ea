"""Number formatting shared by the report's sections, findings and both renderers.

Every formatter takes whatever an artifact held (a number, a numeric string, None, NaN)
and returns "–" where there is no finite number, so a half-written artifact still renders.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["alpha_key", "fmt", "num", "pct", "secs"]


def num(x: Any) -> float | None:
    """``x`` as a finite float, or None (missing, not a number, NaN or infinite)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fmt(x: Any, digits: int = 2) -> str:
    """``x`` with ``digits`` decimals, "–" when it is not a finite number."""
    v = num(x)
    return "–" if v is None else f"{v:.{digits}f}"


def pct(x: Any) -> str:
    """A share as a whole percentage ("42%"), "–" when it is not a finite number."""
    v = num(x)
    return "–" if v is None else f"{100 * v:.0f}%"


def alpha_key(a: Any) -> str:
    """The key a steering alpha has in the report's tables: "2" for 2.0, "0.5" for 0.5."""
    v = num(a)
    if v is None:
        return str(a)
    return str(int(v)) if v.is_integer() else repr(v)


def secs(x: Any) -> str:
    """A duration in seconds, minutes or hours, whichever reads best."""
    v = num(x)
    if v is None:
        return "–"
    if v < 120:
        return f"{v:.1f} s"
    if v < 7200:
        return f"{v / 60:.1f} min"
    return f"{v / 3600:.2f} h"
