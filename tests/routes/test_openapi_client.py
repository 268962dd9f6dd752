"""A partner generates a typed client from the OpenAPI document, and it compiles and reads our answers.

datamodel-code-generator turns the document into pydantic models, as a partner's build would; the
generated module is imported and parses real responses of the served API.
"""

from __future__ import annotations

import enum
import importlib.util
import json
import subprocess
import sys
import typing
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ApiClient

GENERATOR = Path(sys.executable).with_name("datamodel-codegen")


def _generate(document: dict[str, object], directory: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec_file = directory / "openapi.json"
    spec_file.write_text(json.dumps(document), encoding="utf-8")
    out = directory / "cuponera_client.py"
    subprocess.run(
        [str(GENERATOR), "--input", str(spec_file), "--input-file-type", "openapi",
         "--output-model-type", "pydantic_v2.BaseModel", "--output", str(out)],
        check=True, capture_output=True, text=True, timeout=120,
    )
    compile(out.read_text(encoding="utf-8"), str(out), "exec")
    spec = importlib.util.spec_from_file_location("cuponera_client", out)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered while the test runs, as an import would, so pydantic resolves the module's forward references.
    monkeypatch.setitem(sys.modules, "cuponera_client", module)
    spec.loader.exec_module(module)
    return module


async def test_a_generated_client_compiles_and_reads_real_answers(
    client: ApiClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = await (await client.get("/openapi.json")).get_json()
    generated = _generate(document, tmp_path, monkeypatch)

    # One problem model, referenced by every error response; statuses arrive as enums.
    assert isinstance(generated.Problem, type)
    invoice_status = typing.get_type_hints(generated.InvoiceOut, vars(generated))["status"]
    assert isinstance(invoice_status, type) and issubclass(invoice_status, enum.Enum)
    assert [member.value for member in invoice_status] == ["issued", "paid", "overdue", "void"]

    # Real answers of the served API parse with the generated models.
    tenant = await client.get("/api/v1/tenant")
    assert generated.TenantOut.model_validate(await tenant.get_json()).currency.value == "COP"
    problem = await client.get("/api/v1/invoices/999999")
    assert problem.status_code == 401
    parsed = generated.Problem.model_validate(await problem.get_json())
    assert (parsed.status, parsed.code) == (401, "not_authenticated")
