"""Who is asking: the identity a request hands to the controllers (no HTTP in it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """Who is asking: a logged-in user (with its role and linked customer) or an anonymous quick-pay visitor."""

    user_id: int | None = None
    role: str | None = None
    customer_id: int | None = None

    @property
    def anonymous(self) -> bool:
        """True for quick-pay without a login."""
        return self.role is None

    @property
    def is_staff(self) -> bool:
        """Operators and admins see every coupon of their tenant."""
        return self.role in {"operator", "admin"}

    @property
    def idempotency_scope(self) -> str:
        """The namespace of this caller's Idempotency-Keys within a tenant."""
        return "anonymous" if self.user_id is None else f"user:{self.user_id}"
