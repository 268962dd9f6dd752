"""User administration routes (admin): list, create and change logins of the admin's tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from controllers import user_controller
from models.user_model import User
from routes.common import ListQuery, PatchModel, db, problems, require_principal, role_required, services
from routes.fields import Email, Id
from routes.vocabulary import Locale, Role

bp = Blueprint("users", __name__, url_prefix="/api/v1/users")

StaffRole = Literal["operator", "admin"]
FullName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class UserOut(BaseModel):
    """A login: `disabled` users cannot log in and have no sessions."""

    id: int
    email: str
    role: Role
    full_name: str
    disabled: bool
    locale: Locale
    customer_id: int | None
    created_at: datetime


class UserList(BaseModel):
    """A page of users in id order."""

    items: list[UserOut]
    next_cursor: str | None


class UserQuery(ListQuery):
    """Filters: role, disabled or not, exact email."""

    role: Role | None = None
    disabled: bool | None = None
    email: Email | None = None


class UserIn(BaseModel):
    """A new login; a customer login names its customer record (`customer_id`), staff logins do not."""

    email: Email
    password: str = Field(min_length=1, max_length=200)
    role: Role
    full_name: FullName
    locale: Locale | None = None
    customer_id: Id | None = None


class UserPatch(PatchModel):
    """Change role (between staff roles), full name, or disabled (which ends the user's sessions)."""

    role: StaffRole | None = None
    full_name: FullName | None = None
    disabled: bool | None = None


def user_out(user: User) -> UserOut:
    """The API shape of a user (never its password hash or lockout counters)."""
    return UserOut(
        id=user.id,
        email=user.email,
        role=user.role,
        full_name=user.full_name,
        disabled=user.status == "disabled",
        locale=user.locale,
        customer_id=user.customer_id,
        created_at=user.created_at,
    )


@bp.get("")
@role_required("admin")
@validate_querystring(UserQuery)
@validate_response(UserList, 200)
@problems(400, 422)
async def list_users(query_args: UserQuery) -> UserList:
    """The tenant's users (admin), in id order."""
    status = None if query_args.disabled is None else ("disabled" if query_args.disabled else "active")
    page = await user_controller.list_users(
        session=db(),
        tenant=(await require_principal()).tenant,
        role=query_args.role,
        status=status,
        email=query_args.email,
        limit=query_args.limit,
        cursor=query_args.cursor,
    )
    return UserList(items=[user_out(u) for u in page.items], next_cursor=page.next_cursor)


@bp.post("")
@role_required("admin")
@validate_request(UserIn)
@validate_response(UserOut, 201)
@problems(409, 422)
async def create_user(data: UserIn) -> tuple[UserOut, int]:
    """Create a login (admin); 409 `email_taken`, or `already_registered` for a customer that has one."""
    user = await user_controller.create_user(
        session=db(),
        tenant=(await require_principal()).tenant,
        rounds=services().settings.BCRYPT_ROUNDS,
        **data.model_dump(),
    )
    return user_out(user), 201


@bp.get("/<int:user_id>")
@role_required("admin")
@validate_response(UserOut, 200)
@problems(404)
async def get_user(user_id: int) -> UserOut:
    """One user of the tenant (admin)."""
    return user_out(await user_controller.get_user(session=db(), tenant=(await require_principal()).tenant, user_id=user_id))


@bp.patch("/<int:user_id>")
@role_required("admin")
@validate_request(UserPatch)
@validate_response(UserOut, 200)
@problems(404, 409, 422)
async def update_user(user_id: int, data: UserPatch) -> UserOut:
    """Change a user (admin); disabling ends its sessions at once; 409 `last_admin` for the last active admin."""
    user = await user_controller.update_user(
        session=db(), tenant=(await require_principal()).tenant, user_id=user_id, changes=data.changes()
    )
    return user_out(user)
