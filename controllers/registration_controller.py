"""Customer self-registration: prove you hold a contract, get a customer login linked to your record."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.account_common import validated_national_id
from controllers.auth_controller import check_password_policy, hash_password, normalize_email
from controllers.contract_controller import normalize_contract_number
from controllers.errors import Conflict, DomainValidationError
from models.account_model import Contract, Customer
from models.tenant_model import Tenant
from models.user_model import User


def _mismatch() -> DomainValidationError:
    # One answer for every reason, so the endpoint cannot be used to learn which IDs or contracts exist.
    return DomainValidationError(
        "We could not match the national ID and contract number to an account. Check them, or contact us.",
        code="registration_mismatch",
    )


def _already_registered() -> Conflict:
    return Conflict("This account or email is already registered; log in instead.", code="already_registered")


async def register_customer(
    *,
    session: AsyncSession,
    tenant: Tenant,
    email: str,
    password: str,
    full_name: str,
    national_id_type: str,
    national_id: str,
    contract_number: str,
    rounds: int = 12,
) -> User:
    """Create a customer login when the national ID and a contract number of that customer match.

    The password is hashed before anything is looked up, so a match and a mismatch take as long.
    The user is not logged in: the client logs in next with the same credentials.
    """
    check_password_policy(password)
    password_hash = await hash_password(password, rounds=rounds)
    national = validated_national_id(national_id_type, national_id)
    customer = await session.scalar(
        select(Customer)
        .join(Contract, Contract.customer_id == Customer.id)
        .where(
            Customer.tenant_id == tenant.id,
            Customer.national_id_type == national.type,
            Customer.national_id == national.number,
            Customer.status == "active",
            Contract.tenant_id == tenant.id,
            Contract.contract_number == normalize_contract_number(contract_number),
        )
        .limit(1)
    )
    if customer is None:
        raise _mismatch()
    email = normalize_email(email)
    # Checked only after the proof matched, so nobody learns which emails have logins by probing.
    taken = await session.scalar(
        select(User.id)
        .where(User.tenant_id == tenant.id, (User.email == email) | (User.customer_id == customer.id))
        .limit(1)
    )
    if taken is not None:
        raise _already_registered()
    user = User(
        tenant_id=tenant.id,
        email=email,
        password_hash=password_hash,
        role="customer",
        status="active",
        full_name=full_name,
        locale=customer.locale,
        customer_id=customer.id,
        failed_login_count=0,
        session_version=1,
    )
    session.add(user)
    try:
        await session.commit()
    except IntegrityError as exc:  # the same email registered concurrently
        await session.rollback()
        raise _already_registered() from exc
    return user
