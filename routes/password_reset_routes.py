"""Password reset routes: request a reset email (always 202), then confirm with the emailed token."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_rate_limiter import rate_limit
from quart_schema import validate_request, validate_response

from controllers import password_reset_controller
from routes.common import db, no_content, problems, request_tenant, services
from routes.fields import Email
from routes.rate_limits import client_ip
from routes.security import csrf_exempt

bp = Blueprint("password_reset", __name__, url_prefix="/api/v1/auth/password-reset")

# Each request may send an email: slow down anyone using it to spam an inbox or probe timing.
PASSWORD_RESET_PER_MINUTE = 10
REQUESTED_DETAIL = "If the address belongs to an account, we sent it a link to reset the password."


class PasswordResetIn(BaseModel):
    """The login email to send a reset link to."""

    email: Email


class PasswordResetRequestedOut(BaseModel):
    """The same answer whether or not the address has an account."""

    detail: str


class PasswordResetConfirmIn(BaseModel):
    """The emailed token and the new password."""

    token: str = Field(min_length=1, max_length=1000)
    new_password: str = Field(max_length=1024)


@bp.post("")
@csrf_exempt
@rate_limit(PASSWORD_RESET_PER_MINUTE, timedelta(minutes=1), key_function=client_ip)
@validate_request(PasswordResetIn)
@validate_response(PasswordResetRequestedOut, 202)
@problems(404, 429)
async def request_password_reset(data: PasswordResetIn) -> tuple[PasswordResetRequestedOut, int]:
    """Email a password reset link; always 202, whether or not the address has an account."""
    settings = services().settings
    await password_reset_controller.request_reset(
        session=db(),
        tenant=await request_tenant(),
        email=data.email,
        secret_key=settings.SECRET_KEY,
        public_base_url=settings.PUBLIC_BASE_URL,
    )
    return PasswordResetRequestedOut(detail=REQUESTED_DETAIL), 202


@bp.post("/confirm")
@csrf_exempt
@validate_request(PasswordResetConfirmIn)
@no_content
@problems(422)
async def confirm_password_reset(data: PasswordResetConfirmIn) -> tuple[str, int]:
    """Set a new password with the emailed token; every session of the user ends."""
    settings = services().settings
    await password_reset_controller.confirm_reset(
        session=db(),
        token=data.token,
        new_password=data.new_password,
        secret_key=settings.SECRET_KEY,
        rounds=settings.BCRYPT_ROUNDS,
    )
    return "", 204
