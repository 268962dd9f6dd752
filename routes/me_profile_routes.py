"""A customer's own profile: read it, change contact data, language and paper invoices, confirm a new email."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, request
from quart_rate_limiter import rate_limit
from quart_schema import validate_request, validate_response

from controllers import profile_controller
from controllers.profile_controller import Profile
from routes.common import PatchModel, customer_required, db, no_content, problems, require_principal, services
from routes.fields import Address, Email, Phone
from routes.rate_limits import client_ip
from routes.security import csrf_exempt
from routes.vocabulary import Locale, NationalIdType

bp = Blueprint("me_profile", __name__, url_prefix="/api/v1/me")


class ProfileOut(BaseModel):
    """The customer's own data. `pending_email` is the new address awaiting its confirmation link (null otherwise)."""

    email: str
    pending_email: str | None
    name: str
    national_id_type: NationalIdType
    national_id: str
    phone: str | None
    billing_address: str
    locale: Locale
    paperless: bool


class ProfilePatch(PatchModel):
    """What a customer may change; absent fields stay. `phone` may be null. Name and ID are the utility's to change."""

    model_config = ConfigDict(extra="forbid")
    nullable_fields = frozenset({"phone"})

    email: Email | None = Field(None, description="Takes effect when the link mailed to the new address is opened.")
    phone: Phone | None = None
    billing_address: Address | None = None
    locale: Locale | None = None
    paperless: bool | None = Field(None, description="Invoices by email only, no paper copy.")


class EmailConfirmationIn(BaseModel):
    """The token from the confirmation link."""

    token: str = Field(min_length=1, max_length=2000)


# Each email change mails a stranger's address: a few an hour per client is plenty for a real customer.
EMAIL_CHANGES_PER_HOUR = 5


async def _not_changing_email() -> bool:
    """Skip the limit for edits that send no email (phone, address, language, paper)."""
    body = await request.get_json(silent=True)
    return not (isinstance(body, dict) and body.get("email"))


def profile_out(profile: Profile) -> ProfileOut:
    """Serialise a profile."""
    return ProfileOut.model_validate(profile, from_attributes=True)


@bp.get("")
@customer_required
@validate_response(ProfileOut, 200)
@problems(401, 403)
async def get_my_profile() -> ProfileOut:
    """The logged-in customer's own profile."""
    principal = await require_principal()
    return profile_out(
        await profile_controller.get_profile(session=db(), tenant_id=principal.tenant.id, user_id=principal.user.id)
    )


@bp.patch("")
@rate_limit(EMAIL_CHANGES_PER_HOUR, timedelta(hours=1), key_function=client_ip, skip_function=_not_changing_email)
@customer_required
@validate_request(ProfilePatch)
@validate_response(ProfileOut, 200)
@problems(401, 403, 409, 422)
async def update_my_profile(data: ProfilePatch) -> ProfileOut:
    """Change phone, billing address, language or paper invoices; a new email gets a confirmation link (409 `email_taken`)."""
    principal = await require_principal()
    settings = services().settings
    profile = await profile_controller.update_profile(
        session=db(), tenant=principal.tenant, user_id=principal.user.id, changes=data.changes(),
        secret_key=settings.SECRET_KEY, public_base_url=settings.PUBLIC_BASE_URL,
    )
    return profile_out(profile)


@bp.post("/email-confirmation")
@csrf_exempt
@validate_request(EmailConfirmationIn)
@no_content
@problems(409, 422)
async def confirm_my_email(data: EmailConfirmationIn) -> tuple[str, int]:
    """Make the new address the login and contact email, from the emailed token (works once; no session needed)."""
    await profile_controller.confirm_email_change(session=db(), token=data.token, secret_key=services().settings.SECRET_KEY)
    return "", 204
