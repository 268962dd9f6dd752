"""The framework's floor for bench/request_path.py: a bare Quart app that answers one constant JSON object."""

from quart import Quart

app = Quart(__name__)


@app.get("/")
async def constant() -> dict[str, str]:
    """The cheapest JSON answer Quart on hypercorn can give."""
    return {"status": "ok"}
