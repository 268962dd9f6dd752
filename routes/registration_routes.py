"""Customer self-registration: a public route that links a new login to an existing customer record."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_rate_limiter import rate_limit
from quart_schema import validate_request, validate_response

from controllers import registration_controller
from routes.auth_routes import UserOut, user_out
from routes.common import db, problems, request_tenant, services
from routes.fields import ContractNumberText, Email, Name, NationalIdText
from routes.rate_limits import LOGIN_PER_MINUTE, client_ip
from routes.security import csrf_exempt
from routes.vocabulary import NationalIdType

bp = Blueprint("registration", __name__, url_prefix="/api/v1/auth")


class RegisterIn(BaseModel):
    """Who you are, and a contract number you hold as proof."""

    email: Email
    password: str = Field(max_length=1024)
    full_name: Name
    national_id_type: NationalIdType
    national_id: NationalIdText
    contract_number: ContractNumberText


@bp.post("/register")
@csrf_exempt
@rate_limit(LOGIN_PER_MINUTE, timedelta(minutes=1), key_function=client_ip)
@validate_request(RegisterIn)
@validate_response(UserOut, 201)
@problems(404, 409, 422, 429)
async def register(data: RegisterIn) -> tuple[UserOut, int]:
    """Register as a customer with your national ID and a contract number; then log in."""
    user = await registration_controller.register_customer(
        session=db(), tenant=await request_tenant(), rounds=services().settings.BCRYPT_ROUNDS, **data.model_dump()
    )
    return user_out(user), 201
