"""The OpenAPI document is shaped for client generators: tags, clean unique ids, required headers, one problem response."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from tests.conftest import ApiClient

METHODS = {"get", "post", "put", "patch", "delete"}


async def _document(client: ApiClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return await response.get_json()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items() if method in METHODS]


async def test_operation_ids_are_unique_and_never_stutter(client: ApiClient) -> None:
    operations = _operations(await _document(client))
    ids = [op["operationId"] for _, _, op in operations]
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    assert [i for i in ids if re.match(r"^(get|post|put|patch|delete)_(get|post|put|patch|delete|list|create|update)_", i)] == []
    by_route = {(path, method): op["operationId"] for path, method, op in operations}
    assert by_route[("/api/v1/invoices/{invoice_id}", "get")] == "get_invoice"
    assert by_route[("/api/v1/payments", "post")] == "create_payment"


async def test_every_operation_has_a_resource_tag_listed_once(client: ApiClient) -> None:
    document = await _document(client)
    operations = _operations(document)
    assert all(len(op.get("tags", [])) == 1 for _, _, op in operations)
    tags = {op["tags"][0] for _, _, op in operations}
    assert [t["name"] for t in document["tags"]] == sorted(tags)
    by_route = {(path, method): op["tags"][0] for path, method, op in operations}
    assert by_route[("/api/v1/billing-runs", "post")] == "Billing runs"
    assert by_route[("/api/v1/me/invoices", "get")] == "Invoices"


async def test_idempotency_key_is_a_required_header(client: ApiClient) -> None:
    document = await _document(client)
    parameters = document["paths"]["/api/v1/payments"]["post"]["parameters"]
    header = next(p for p in parameters if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and header["required"] is True


async def test_problems_are_one_shared_response_by_reference(client: ApiClient) -> None:
    document = await _document(client)
    shared = document["components"]["responses"]["Problem"]
    assert shared["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert set(document["components"]["schemas"]["Problem"]["properties"]) >= {"type", "title", "status", "code", "detail"}
    error_responses = [
        response for _, _, op in _operations(document) for status, response in op["responses"].items() if int(status) >= 400
    ]
    assert len(error_responses) > 100
    assert all(response == {"$ref": "#/components/responses/Problem"} for response in error_responses)


def _object_schemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every object schema in the document: components, and inline where a body or answer is top-level."""
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict):
            yield node
        for value in node.values():
            yield from _object_schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _object_schemas(value)


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    """The schema titled `name`."""
    found = [schema for schema in _object_schemas(document) if schema.get("title") == name]
    assert found, name
    return found[0]


async def test_closed_vocabularies_are_enums_taken_from_the_tables(client: ApiClient) -> None:
    document = await _document(client)
    assert _schema(document, "InvoiceOut")["properties"]["status"]["enum"] == ["issued", "paid", "overdue", "void"]
    assert _schema(document, "ContractOut")["properties"]["stratum"]["enum"] == [
        "1", "2", "3", "4", "5", "6", "commercial", "industrial", "official"
    ]
    assert _schema(document, "PaymentOut")["properties"]["currency"]["enum"] == ["CLP", "COP", "BRL", "USD"]
    assert _schema(document, "UserOut")["properties"]["role"]["enum"] == ["customer", "operator", "admin"]
    # No status, kind, channel, role, service, stratum, locale or currency is left a free string.
    closed = {"status", "kind", "channel", "role", "service", "stratum", "locale", "currency", "outcome"}
    free = {
        f"{schema.get('title')}.{field}"
        for schema in _object_schemas(document)
        for field, prop in schema["properties"].items()
        if field in closed and isinstance(prop, dict) and prop.get("type") == "string" and "enum" not in prop
    }
    # Left open on purpose: a run item's outcome, a channel name the outbox may grow, webhook statuses
    # the gateway owns, the health answer, and a tariff's currency (checked against the tenant's).
    assert free == {
        "BillingRunItemOut.outcome", "OutboxMessageOut.channel", "WebhookIn.status", "WebhookOut.status",
        "HealthOut.status", "TariffIn.currency", "TariffOut.currency",
    }


async def test_main_flows_carry_examples_that_their_own_schemas_accept(client: ApiClient) -> None:
    from routes.auth_routes import LoginIn, LoginOut
    from routes.common import Problem
    from routes.coupon_routes import CouponIn, CouponOut
    from routes.lookup_routes import PublicLookupOut
    from routes.payment_routes import PaymentIn, PaymentOut

    document = await _document(client)
    for model in (LoginIn, LoginOut, CouponIn, CouponOut, PaymentIn, PaymentOut, PublicLookupOut, Problem):
        examples = _schema(document, model.__name__)["examples"]
        assert examples, model.__name__
        for example in examples:
            model.model_validate(example)  # raises when an example drifts from the schema
    assert [e for e in _schema(document, "CouponIn")["examples"]] == [
        {"invoice_ids": [1201, 1187]}, {"contract_number": "100234"}
    ]
