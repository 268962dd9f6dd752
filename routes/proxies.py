"""Take the client address from X-Forwarded-For / Forwarded, only as configured (TRUSTED_PROXY_*)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from hypercorn.middleware import ProxyFixMiddleware

LEGACY_HEADERS = {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"}
Asgi = Callable[[dict[str, Any], Callable[..., Any], Callable[..., Any]], Any]


def forwarded_address(value: str) -> str | None:
    """The IP address in a forwarded `for` value (`1.2.3.4`, `"[2001:db8::1]:4711"`, `1.2.3.4:80`), or None."""
    value = value.strip().strip('"')
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None  # "unknown", an obfuscated identifier or garbage: not an address we can key limits on


class TrustedProxies:
    """hypercorn's ProxyFixMiddleware, applied only to peers in TRUSTED_PROXIES and only with a real IP.

    ProxyFixMiddleware alone trusts every peer, copies the header value verbatim (quotes and ports
    included), reads X-Forwarded-For even in modern mode, and rewrites a copy of the scope, so
    hypercorn's access log would still show the proxy.
    """

    def __init__(self, app: Asgi, *, hops: int, mode: str, networks: tuple[str, ...] = ()) -> None:
        self.app = app
        self.hops = hops
        self.mode = mode
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def _trusted_peer(self, scope: dict[str, Any]) -> bool:
        if not self.networks:
            return True
        client = scope.get("client")
        try:
            peer = ipaddress.ip_address(client[0]) if client else None
        except ValueError:
            return False
        return peer is not None and any(peer in network for network in self.networks)

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        """Rewrite the client (and scheme/host) from the trusted hop, then call the app."""
        if scope["type"] not in {"http", "websocket"} or not self._trusted_peer(scope):
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")

        async def fixed(new_scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
            client = new_scope.get("client")
            address = forwarded_address(client[0]) if client and client != peer else None
            new_scope["client"] = (address, 0) if address else peer
            scope["client"] = new_scope["client"]  # hypercorn's access log reads the server's own scope
            await self.app(new_scope, receive, send)

        proxied = scope
        if self.mode == "modern":
            # ProxyFixMiddleware falls back to X-Forwarded-* when Forwarded is absent; a proxy that only
            # writes Forwarded passes a client's forged X-Forwarded-For through, so drop those headers.
            headers = [(name, value) for name, value in scope["headers"] if name.lower() not in LEGACY_HEADERS]
            proxied = {**scope, "headers": headers}
        await ProxyFixMiddleware(fixed, mode=self.mode, trusted_hops=self.hops)(proxied, receive, send)  # type: ignore[arg-type]


def install_trusted_proxies(app: Any, *, hops: int, mode: str, networks: tuple[str, ...]) -> None:
    """Wrap the app's ASGI callable when TRUSTED_PROXY_HOPS is above zero; otherwise headers change nothing."""
    if hops > 0:
        app.asgi_app = TrustedProxies(app.asgi_app, hops=hops, mode=mode, networks=networks)
