"""How deeply a raw JSON body nests, measured over its bytes before any parser (or its recursion) sees it."""

from __future__ import annotations

import re

# Strings may hold brackets; drop them (escapes included) before counting. Unterminated strings
# are left for the parser to refuse.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def json_nesting_exceeds(raw: bytes, limit: int) -> bool:
    """True when arrays/objects in `raw` nest deeper than `limit`; a loop over brackets, no recursion."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # not enough brackets to go that deep: the common case costs two counts
    brackets = _STRING.sub(b"", raw).translate(None, delete=_NOT_BRACKET)
    depth = 0
    for byte in brackets:
        if byte in b"[{":  # 91 or 123
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
