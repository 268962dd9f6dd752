"""Who is asking: the identity a request hands to the controllers (no HTTP in it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """Who is asking: a logged-in user (with its role and linked customer) or an anonymous quick-pay visitor."""

    user_id: int | None = None
    role: str | None = None
    customer_id: int | None = None
    # Anonymous payers share no identity: their keys are namespaced by what they pay (the coupon reference).
    anonymous_namespace: str = ""

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
        if self.user_id is not None:
            return f"user:{self.user_id}"
        # The scope column holds 40 characters: "anon:" plus a reference of at most 30.
        return f"anon:{self.anonymous_namespace}" if self.anonymous_namespace else "anonymous"
