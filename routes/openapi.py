"""OpenAPI tweaks: bodiless 204s and the problem+json media type for error responses."""

from __future__ import annotations

from typing import Any

from quart_schema import OpenAPIProvider
from werkzeug.routing import IntegerConverter

from routes.common import NoContent, PdfFile, Problem, SvgImage


class CuponeraOpenAPIProvider(OpenAPIProvider):
    """Render 204s without content and errors as `application/problem+json`."""

    def build_response_object(self, model: Any, headers_model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Build one response object of an operation."""
        if model is NoContent:
            return {"description": "No content"}, {}
        if model is PdfFile:
            pdf = {"schema": {"type": "string", "format": "binary"}}
            return {"description": "A PDF document", "content": {"application/pdf": pdf}}, {}
        if model is SvgImage:
            svg = {"schema": {"type": "string"}}
            return {"description": "An SVG image", "content": {"image/svg+xml": svg}}, {}
        response, definitions = super().build_response_object(model, headers_model)
        if model is Problem:
            response["content"] = {"application/problem+json": response["content"]["application/json"]}
            response["description"] = "Problem details"
        return response, definitions

    def build_paths(self, rule: Any) -> tuple[dict, dict]:
        """Add the statuses every operation can return: 400/422 on input, 500 always."""
        paths, components = super().build_paths(rule)
        problem_response, problem_components = self.build_response_object(Problem, None)
        for operations in paths.values():
            for operation in operations.values():
                responses = operation["responses"] = dict(operation["responses"])
                if "requestBody" in operation:
                    responses.setdefault(400, problem_response)
                    responses.setdefault(422, problem_response)
                if any(p.get("in") == "query" for p in operation.get("parameters", [])):
                    responses.setdefault(400, problem_response)  # e.g. a tampered list cursor
                    responses.setdefault(422, problem_response)
                responses.setdefault(500, problem_response)
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
