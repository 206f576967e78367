"""HTTP requests, sent by the host's pooled client (reqwest).

    from wscan_sdk import http
    response = await http.get(w.service_url(service, "/"), connect_to=service.address)
    print(response.status, response.header("server"), response.text()[:80])

Redirects are never followed by the host: follow them yourself, so each
hop is checked against the scope. Declare `Capability.HTTP`.
"""

from wit_world.imports import http as _http

from ._host import ip, ip_text, wait

__all__ = ["Response", "get", "send"]


class Response:
    """A response: `status`, `headers` (names lowercase, in order),
    `body` (bytes, capped), `body_truncated`, `remote` (address text,
    port) and `elapsed_ms`."""

    def __init__(self, raw):
        self.raw = raw
        self.status = raw.status
        self.headers = list(raw.headers)
        self.body = bytes(raw.body)
        self.body_truncated = raw.body_truncated
        self.remote = (ip_text(raw.remote[0]), raw.remote[1])
        self.elapsed_ms = raw.elapsed_ms

    def header(self, name: str):
        """The first value of header `name` (any case), or `None`."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def text(self) -> str:
        """The body as text (UTF-8, bad bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<Response {self.status} from {self.remote[0]}:{self.remote[1]}, {len(self.body)} bytes>"


async def send(method: str, url: str, headers=(), body=None, connect_to=None, max_body_bytes=None,
               timeout_ms=None, verify_tls=False) -> Response:
    """Send a request. `connect_to` is where to connect (the URL's host
    still goes in `Host` and SNI); without it the URL's host must be in
    the scope. Errors: `ConnectionRefused`, `Timeout`, `Unreachable`,
    `ConnectionReset`, `TlsFailure`, `HttpProtocol`, `AccessDenied`,
    `InvalidArgument` (a bad method, URL or header)."""
    request = _http.Request(
        method=method,
        url=url,
        headers=list(headers.items() if isinstance(headers, dict) else headers),
        body=None if body is None else bytes(body),
        connect_to=None if connect_to is None else ip(connect_to),
        max_body_bytes=max_body_bytes,
        timeout_ms=timeout_ms,
        verify_tls=verify_tls,
    )
    return Response(await wait(_http.send(request)))


async def get(url: str, **options) -> Response:
    """`send("GET", url, ...)`."""
    return await send("GET", url, **options)
