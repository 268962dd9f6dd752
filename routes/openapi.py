"""OpenAPI tweaks, all central: bodiless 204s, one shared problem+json response, tags, clean operation ids, required headers."""

from __future__ import annotations

from typing import Any

from quart_schema import OpenAPIProvider, snake_to_kebab
from quart_schema.conversion import model_schema
from quart_schema.openapi import QUART_SCHEMA_OPERATION_ID_ATTRIBUTE
from werkzeug.routing import IntegerConverter

from routes.common import CsvFile, NoContent, PdfFile, Problem, SvgImage

# A function name that already starts with a verb needs no HTTP method in front (`get_invoice`, not `get_get_invoice`).
_VERBS = {"get", "list", "create", "update", "delete", "search", "change", "mark", "record", "file", "retry", "reverse"}
PROBLEM_REF = {"$ref": "#/components/responses/Problem"}
# A route that reads its body itself (a bank's file) documents it with `raw_body(...)`.
RAW_BODY_ATTRIBUTE = "_cuponera_raw_body"
# Tag names for blueprints whose name is not the resource's plural already.
_TAG_NAMES = {"me_accounts": "Me", "password_reset": "Auth", "registration": "Auth", "lookup": "Invoices"}


def tag_for(blueprint: str) -> str:
    """The tag of a blueprint's operations: its resource, as a title (`billing_runs` -> `Billing runs`)."""
    return _TAG_NAMES.get(blueprint, blueprint.replace("_", " ").capitalize())


class CuponeraOpenAPIProvider(OpenAPIProvider):
    """Render 204s without content and errors as one shared `application/problem+json` response."""

    def schema(self) -> dict[str, Any]:
        """The document, with the shared problem response and the tag list added once."""
        document = super().schema()
        response, definitions = super().build_response_object(Problem, None)
        media = response["content"].pop("application/json")
        document["components"]["schemas"].update(definitions)
        document["components"]["schemas"]["Problem"] = media["schema"]
        document["components"].setdefault("responses", {})["Problem"] = {
            "description": "Problem details (RFC 9457) with a stable `code`",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        tags = sorted({t for path in document["paths"].values() for op in path.values() for t in op.get("tags", [])})
        document["tags"] = [{"name": tag} for tag in tags]
        return document

    def build_request_body(self, model: Any, source: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The request body of an operation; a CSV upload as raw `text/csv` or a multipart `file` part."""
        if model is CsvFile:
            multipart = {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}, "required": ["file"]}
            content = {"text/csv": {"schema": {"type": "string"}}, "multipart/form-data": {"schema": multipart}}
            return {"content": content, "required": True, "description": CsvFile.__doc__}, {}
        return super().build_request_body(model, source)

    def build_response_object(self, model: Any, headers_model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Build one response object of an operation."""
        if model is NoContent:
            return {"description": "No content"}, {}
        if model is PdfFile:
            pdf = {"schema": {"type": "string", "format": "binary"}}
            return {"description": "A PDF document", "content": {"application/pdf": pdf}}, {}
        if model is Problem and headers_model is None:
            return dict(PROBLEM_REF), {}
        if model is SvgImage:
            svg = {"schema": {"type": "string"}}
            return {"description": "An SVG image", "content": {"image/svg+xml": svg}}, {}
        response, definitions = super().build_response_object(model, headers_model)
        if model is Problem:
            response["content"] = {"application/problem+json": response["content"]["application/json"]}
            response["description"] = "Problem details"
        return response, definitions

    def build_headers_parameters(self, model: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Header parameters, with the model's required ones (`Idempotency-Key`) marked required."""
        parameters, definitions = super().build_headers_parameters(model)
        schema = model_schema(model, preference=self._app.config["QUART_SCHEMA_CONVERSION_PREFERENCE"])
        required = {snake_to_kebab(name) for name in schema.get("required", [])}
        for parameter in parameters:
            if parameter["name"] in required:
                parameter["required"] = True
        return parameters, definitions

    def operation_id(self, method: str, path: str, func: Any) -> str | None:
        """The handler's name, with the HTTP method in front only when the name has no verb of its own."""
        name = getattr(func, QUART_SCHEMA_OPERATION_ID_ATTRIBUTE, func.__name__)
        return name if name.split("_", 1)[0] in _VERBS else f"{method.lower()}_{name}"

    def build_paths(self, rule: Any) -> tuple[dict, dict]:
        """Add the statuses every operation can return: 400/422 on input, 500 and 503 (`database_busy`) always."""
        paths, components = super().build_paths(rule)
        problem_response, problem_components = self.build_response_object(Problem, None)
        blueprint = rule.endpoint.rsplit(".", 1)[0] if "." in rule.endpoint else None
        raw_body = getattr(self._app.view_functions.get(rule.endpoint), RAW_BODY_ATTRIBUTE, None)
        for operations in paths.values():
            for operation in operations.values():
                if raw_body is not None:
                    operation["requestBody"] = raw_body
                if blueprint and "tags" not in operation:
                    operation["tags"] = [tag_for(blueprint)]
                responses = operation["responses"] = dict(operation["responses"])
                if "requestBody" in operation:
                    responses.setdefault(400, problem_response)
                    responses.setdefault(422, problem_response)
                if any(p.get("in") == "query" for p in operation.get("parameters", [])):
                    responses.setdefault(400, problem_response)  # e.g. a tampered list cursor
                    responses.setdefault(422, problem_response)
                responses.setdefault(500, problem_response)
                responses.setdefault(503, problem_response)
        components.update(problem_components)
        return paths, components

    def build_path_parameter(self, name: str, converter: Any) -> dict[str, Any]:
        """Integer ids carry their bounds, so clients and fuzzers know the valid range."""
        parameter = super().build_path_parameter(name, converter)
        if isinstance(converter, IdConverter):
            parameter["schema"].update(minimum=IdConverter.MIN, maximum=IdConverter.MAX)
        return parameter


class IdConverter(IntegerConverter):
    """`<int:...>` path parts that never overflow a database INTEGER id column.

    A number beyond the range no row can have becomes 0, which no row has either, so the
    controller answers its usual 404. (Rejecting it in the converter instead makes werkzeug
    answer 405 for non-GET methods.)
    """

    MIN = 0
    MAX = 2**31 - 1

    def to_python(self, value: str) -> int:
        """Parse the id, mapping out-of-range values to 0."""
        number = int(value)
        return number if number <= self.MAX else 0
