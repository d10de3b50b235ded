"""Sizes as Docker's CLI reads them (go-units): ``RAMInBytes`` (binary units: ``-m``,
``--shm-size``, ``tmpfs-size``) and ``FromHumanSize`` (decimal: ``--log-opt max-size``).

Loaded only when such a flag is given: ``create`` without one imports none of it."""

from __future__ import annotations

import re
from typing import Final

# go-units' sizeRegex: digits, fractions (Go then parses the number: "1.2.3" fails there),
# an optional space, a unit, an optional "i" and an optional "b".
_SIZE: Final = re.compile(r"(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?")
_EXPONENT: Final = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
_INT64_MAX: Final = (1 << 63) - 1


def parse_size(text: str, *, binary: bool) -> int:
    """``text`` in bytes, units of 1024 (``binary``) or 1000; a fraction of a byte dropped,
    as Go's ``int64(float64)``. ValueError in go-units' words; a size past int64 (which Go
    would wrap to a negative number) is refused as an invalid size."""
    m = _SIZE.fullmatch(text)
    if m is None:
        raise ValueError(f"invalid size: '{text}'")
    number, unit = m.group(1), (m.group(2) or "").lower()
    if number.count(".") > 1:
        raise ValueError(f'strconv.ParseFloat: parsing "{number}": invalid syntax')
    size = float(number) * (1024 if binary else 1000) ** _EXPONENT.get(unit, 0)
    if size > _INT64_MAX:
        raise ValueError(f"invalid size: '{text}'")
    return int(size)
