"""Auth routes: login, logout, the current user, CSRF tokens and password change."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, current_app
from quart_auth import AuthUser, login_user, logout_user
from quart_rate_limiter import rate_limit
from quart_schema import validate_request, validate_response

from controllers import auth_controller
from routes.common import db, login_required, no_content, problems, request_tenant, require_principal, services
from routes.fields import Email
from routes.rate_limits import LOGIN_PER_MINUTE, client_ip
from routes.security import csrf_exempt
from routes.tenant_routes import TenantOut, tenant_out
from routes.vocabulary import Role

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")

class LoginIn(BaseModel):
    """Credentials."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "ana@example.com", "password": "una clave bien larga"}]})

    email: Email
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    """A user as the frontend sees it."""

    id: int
    email: str
    role: Role
    full_name: str


class LoginOut(BaseModel):
    """The logged-in user and the CSRF token for unsafe requests."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "user": {"id": 42, "email": "ana@example.com", "role": "customer", "full_name": "Ana María Pérez"},
        "csrf_token": "IjRmNTc2ZDQ0...",
    }]})

    user: UserOut
    csrf_token: str


class MeOut(UserOut):
    """The current user, its role and its tenant."""

    tenant: TenantOut


class CsrfOut(BaseModel):
    """A CSRF token for this session."""

    csrf_token: str


class PasswordChangeIn(BaseModel):
    """The current password and the new one."""

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(max_length=1024)


def user_out(user: object) -> UserOut:
    """Serialise a user."""
    return UserOut.model_validate(user, from_attributes=True)


def _csrf_for(nonce: str) -> str:
    return auth_controller.make_csrf_token(current_app.secret_key, nonce)


@bp.post("/login")
@csrf_exempt
@rate_limit(LOGIN_PER_MINUTE, timedelta(minutes=1), key_function=client_ip)
@validate_request(LoginIn)
@validate_response(LoginOut, 200)
@problems(401, 404, 422, 423, 429)
async def login(data: LoginIn) -> LoginOut:
    """Log in with email and password; sets the session cookie."""
    svc = services()
    user = await auth_controller.authenticate(
        session=db(),
        tenant=await request_tenant(),
        email=data.email,
        password=data.password,
        dummy_hash=svc.dummy_hash,
        policy=svc.lockout_policy,
        ip=await client_ip(),
    )
    auth_id = auth_controller.new_auth_id(user)
    login_user(AuthUser(auth_id))
    parsed = auth_controller.parse_auth_id(auth_id)
    assert parsed is not None
    return LoginOut(user=user_out(user), csrf_token=_csrf_for(parsed.nonce))


@bp.post("/logout")
@login_required
@no_content
@problems(403)
async def logout() -> tuple[str, int]:
    """End the user's sessions on every process (the cookie and its CSRF token stop working)."""
    principal = await require_principal()
    await auth_controller.end_sessions(session=db(), user=principal.user)
    logout_user()
    return "", 204


@bp.get("/me")
@login_required
@validate_response(MeOut, 200)
async def me() -> MeOut:
    """The current user, its role and its tenant."""
    principal = await require_principal()
    return MeOut(**user_out(principal.user).model_dump(), tenant=tenant_out(principal.tenant))


@bp.get("/csrf")
@login_required
@validate_response(CsrfOut, 200)
async def csrf() -> CsrfOut:
    """A fresh CSRF token for this session."""
    principal = await require_principal()
    return CsrfOut(csrf_token=_csrf_for(principal.session_nonce))


@bp.post("/password")
@login_required
@validate_request(PasswordChangeIn)
@no_content
@problems(403, 422)
async def change_password(data: PasswordChangeIn) -> tuple[str, int]:
    """Change the password; every other session of the user ends."""
    principal = await require_principal()
    user = await auth_controller.change_password(
        session=db(),
        user=principal.user,
        current_password=data.current_password,
        new_password=data.new_password,
        rounds=services().settings.BCRYPT_ROUNDS,
    )
    # This session lives on under the new version with the same nonce, so its CSRF token still works.
    login_user(AuthUser(str(auth_controller.AuthId.for_user(user, principal.session_nonce))))
    return "", 204
