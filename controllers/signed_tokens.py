"""Timed, salted tokens for links sent by email (password reset, email change), with a clock tests can move."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from itsdangerous import TimestampSigner, URLSafeTimedSerializer


class _ClockedSigner(TimestampSigner):
    """A timestamp signer whose clock tests can move."""

    def __init__(self, *args: Any, clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        """Seconds since the epoch, from the injected clock."""
        return int(self._clock())


def serializer(secret_key: str, salt: str, clock: Callable[[], float] | None = None) -> URLSafeTimedSerializer:
    """A URL-safe serializer signing with `secret_key` under `salt` (one salt per kind of link)."""
    return URLSafeTimedSerializer(
        secret_key, salt=salt, signer=_ClockedSigner, signer_kwargs={"clock": clock or time.time}
    )
