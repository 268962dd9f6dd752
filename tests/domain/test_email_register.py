"""One register per language: Spanish emails address the customer as "usted", never "tú"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from domain.notification_templates import TEMPLATES_DIR

SPANISH = sorted((TEMPLATES_DIR / "email").glob("**/es/*"))
# Second-person "tú" forms the templates once used; any of them back means the register slipped.
_TU = re.compile(
    r"\b(tu|tus|te|tú|ti|puedes|pagaste|solicitaste|generaste|ingresa|paga|usa|guarda|genera|conserva|"
    r"restablece|págalo|preséntalo|ignora|comunícate|estás|deberás|respondas)\b",
    re.IGNORECASE,
)


def test_there_are_spanish_templates() -> None:
    assert len(SPANISH) >= 27


@pytest.mark.parametrize("path", SPANISH, ids=lambda p: str(p.relative_to(TEMPLATES_DIR)))
def test_spanish_templates_use_usted(path: Path) -> None:
    text = re.sub(r"{[{%#].*?[}%#]}", " ", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert _TU.findall(text) == []
