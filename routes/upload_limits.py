"""Request bodies allowed above the app's MAX_CONTENT_LENGTH, by method and path: file uploads only."""

from __future__ import annotations

# A reading route's CSV runs about 50 bytes a row: 32 MiB holds some 600 000 rows.
READING_FILE_BYTES = 32 * 1024 * 1024
LARGE_BODIES = {("POST", "/api/v1/reading-files"): READING_FILE_BYTES}


def body_limit(method: str, path: str, default: int | None) -> int | None:
    """The most bytes a request's body may have: the upload's own limit, else `default`."""
    return LARGE_BODIES.get((method.upper(), path.rstrip("/") or "/"), default)
