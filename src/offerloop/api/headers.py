"""Security headers on every response: no MIME sniffing, no framing, and a strict Content-Security-Policy
on HTML pages and served files (the hosted quiz, deliverables), which run no script at all."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Pages and files need their inline styles and embedded images, nothing else. A served file is also
# sandboxed: a deliverable opened from a link cannot script, submit forms or navigate its opener.
_PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; "
    "form-action 'self'{extra}; frame-ancestors 'none'; base-uri 'none'"
)
_FILE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; frame-ancestors 'none'; sandbox"
)
# The console runs its own shipped scripts (htmx) and stylesheet, from this server only; forms post back to it.
_CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# The hosted pages (/o/) run their one shipped script and stylesheet; a buy form may be redirected to the
# payment provider's hosted checkout (https), which a browser checks against form-action.
_STOREFRONT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self' https:; frame-ancestors 'none'; base-uri 'none'"
)
# FastAPI's interactive docs load their own scripts: they keep their defaults (frame and sniff rules still apply).
_DOC_PATHS = ("/docs", "/redoc")


class SecurityHeaders:
    """Pure ASGI middleware (cheap on the ingest path: headers only, the body is never touched)."""

    def __init__(self, app: ASGIApp, *, public_url: str = "") -> None:
        self.app = app
        parts = urlsplit(public_url)
        origin = f" {parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
        self.page_csp = _PAGE_CSP.format(extra=origin).encode()
        self.file_csp = _FILE_CSP.encode()
        self.console_csp = _CONSOLE_CSP.encode()
        self.storefront_csp = _STOREFRONT_CSP.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        is_file = path.startswith("/v1/files/")
        is_docs = path.startswith(_DOC_PATHS)
        is_console = path == "/console" or path.startswith("/console/")
        is_storefront = path.startswith("/o/")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                added = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                         (b"referrer-policy", b"no-referrer")]  # fmt: skip
                if (
                    is_file
                ):  # personal, behind an expiring link: no shared cache may outlive it (or an erasure)
                    added += [
                        (b"content-security-policy", self.file_csp),
                        (b"cache-control", b"private, no-store"),
                    ]
                elif is_console and content_type.startswith(b"text/html"):
                    added.append((b"content-security-policy", self.console_csp))
                elif is_storefront and content_type.startswith(b"text/html"):
                    added.append((b"content-security-policy", self.storefront_csp))
                elif content_type.startswith(b"text/html") and not is_docs:
                    added.append((b"content-security-policy", self.page_csp))
                headers += [(n, v) for n, v in added if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_wrapper)
