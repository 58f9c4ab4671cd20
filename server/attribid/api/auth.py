"""Who may call what: TLS credentials, bearer tokens, roles and tenants.

A caller sends ``authorization: Bearer TOKEN`` in its call metadata. The token file
(``--auth-tokens FILE``) names every token, one a line, ``TOKEN TENANT ROLE``; ``#`` starts
a comment, blank lines are skipped. The tenant is the caller's campaign namespace; the
role decides the methods it may call (``ROLES``). The file is read at start (a malformed
line stops the server, naming the file and the line), again within a second of any change
to it, and on ``reload_tokens()`` (SIGHUP); a reload that fails keeps the tokens in force.

Without a token file every call is the one tenant ``OPEN_TENANT``, and the server binds
only a loopback address unless told ``--insecure`` (``check_binding``).
"""
from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping, Sequence

import grpc

from attribid.models.campaign.tenants import OPEN_TENANT
from attribid.runtime import logs
from attribid.runtime.settings import Settings

__all__ = ["OPEN_TENANT", "ROLES", "HEALTH", "REFLECTION", "Grant", "AuthRefusal", "StartupError",
           "TokenFileError", "parse_tokens", "TokenTable", "check_binding", "is_loopback",
           "server_credentials", "AuthInterceptor"]

#: the health service: every role may check it (load balancers send an ``ops`` token)
HEALTH = "grpc.health.v1.Health"
#: both reflection services: every role may list and describe the API
REFLECTION = "grpc.reflection"
#: what each role may call, by method name (Attribution) or service (health, reflection);
#: None = everything
ROLES: Mapping[str, frozenset[str] | None] = {
    "bidder": frozenset({"Score", "ScoreStream", "ReportOutcomes", "ReportConversions",
                         HEALTH, REFLECTION}),
    "admin": None,
    "ops": frozenset({HEALTH, REFLECTION}),
}
#: shortest token accepted: a guessable token is no authentication
MIN_TOKEN_CHARS = 16
#: tenant names: they appear in logs, so letters, digits and ``._-`` only
TENANT_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: how often the token file's modification time is looked at, in seconds
WATCH_INTERVAL_S = 1.0
#: at most one log line per refusal kind per this many seconds; the rest are counted
REFUSAL_LOG_INTERVAL_S = 1.0

MISSING = "missing 'authorization' metadata: send 'Bearer TOKEN'"
MALFORMED = "authorization: expected 'Bearer TOKEN'"
INVALID = "invalid token"


class StartupError(ValueError):
    """The settings cannot be served as given; the message names the setting."""


class TokenFileError(StartupError):
    """A token file that cannot be used; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What one token lets its caller do: act as ``tenant`` with the methods of ``role``."""

    tenant: str
    role: str


class AuthRefusal(Exception):
    """A call refused before it is read: UNAUTHENTICATED or PERMISSION_DENIED."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _digest(token: str) -> bytes:
    # Tokens are looked up by their hash: how long a lookup takes says nothing of the tokens.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def parse_tokens(text: str, source: str) -> dict[bytes, Grant]:
    """The token table in ``text`` (``source`` names it in errors), keyed by token hash.

    >>> table = parse_tokens("# bidders\\nbidder-token-0123456 shop-a bidder\\n", "tokens")
    >>> list(table.values())
    [Grant(tenant='shop-a', role='bidder')]
    >>> parse_tokens("short shop-a bidder", "tokens")
    Traceback (most recent call last):
    attribid.api.auth.TokenFileError: tokens:1: token: at least 16 characters
    """
    table: dict[bytes, Grant] = {}
    lines: dict[bytes, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) > 3 and fields[3].startswith("#"):
            fields = fields[:3]
        where = f"{source}:{number}"
        if len(fields) != 3:
            raise TokenFileError(f"{where}: expected TOKEN TENANT ROLE, got {len(fields)} "
                                 f"field{'s' if len(fields) != 1 else ''}")
        token, tenant, role = fields
        # Messages never quote a token: they end up in logs.
        if len(token) < MIN_TOKEN_CHARS:
            raise TokenFileError(f"{where}: token: at least {MIN_TOKEN_CHARS} characters")
        if not TENANT_NAME.fullmatch(tenant):
            raise TokenFileError(f"{where}: tenant: 1 to 64 of letters, digits, '.', '_', '-'")
        if role not in ROLES:
            raise TokenFileError(f"{where}: role: one of {', '.join(sorted(ROLES))}, "
                                 f"got {role[:32]!r}")
        digest = _digest(token)
        if digest in table:
            raise TokenFileError(f"{where}: token: the same token is on line {lines[digest]}")
        table[digest] = Grant(tenant, role)
        lines[digest] = number
    if not table:
        raise TokenFileError(f"{source}: names no token")
    return table


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class TokenTable:
    """The tokens of one file, checked per call and re-read when the file changes.

    ``check`` is the per-call path (one hash, one dict lookup); ``watch`` looks at the
    file's modification time once a second and re-reads it off the event loop.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._log = logs.get()
        self._stamp = _file_stamp(self.path)
        self._table = self._read()
        self._logged: dict[grpc.StatusCode, float] = {}
        self._suppressed: dict[grpc.StatusCode, int] = {}

    def _read(self) -> dict[bytes, Grant]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenFileError(f"auth_tokens: cannot read {self.path}: "
                                 f"{getattr(exc, 'strerror', None) or exc}") from None
        return parse_tokens(text, str(self.path))

    @property
    def tenants(self) -> tuple[str, ...]:
        """Every tenant the file names, in the order of first mention."""
        return tuple(dict.fromkeys(g.tenant for g in self._table.values()))

    def check(self, metadata: Sequence[tuple[str, Any]] | None, method: str) -> Grant:
        """The caller's grant for ``method``, or AuthRefusal (never saying whose a token is)."""
        header = None
        for key, value in metadata or ():
            if key == "authorization":
                header = value
                break
        if header is None:
            raise AuthRefusal(grpc.StatusCode.UNAUTHENTICATED, MISSING)
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthRefusal(grpc.StatusCode.UNAUTHENTICATED, MALFORMED)
        grant = self._table.get(_digest(token))
        if grant is None:
            raise AuthRefusal(grpc.StatusCode.UNAUTHENTICATED, INVALID)
        allowed = ROLES[grant.role]
        if allowed is not None and method not in allowed:
            raise AuthRefusal(grpc.StatusCode.PERMISSION_DENIED,
                              f"role {grant.role!r} may not call {method}")
        return grant

    def reload_tokens(self) -> bool:
        """Read the file again now; False (logged, old tokens kept) when it cannot be used."""
        return self._install(*self._load())

    async def reread(self) -> bool:
        """``reload_tokens`` with the file read in a worker thread, off the event loop."""
        loaded = await asyncio.get_running_loop().run_in_executor(None, self._load)
        return self._install(*loaded)

    def _load(self) -> tuple[tuple[int, int, int] | None, dict[bytes, Grant] | TokenFileError]:
        stamp = _file_stamp(self.path)
        try:
            return stamp, self._read()
        except TokenFileError as exc:
            return stamp, exc

    def _install(self, stamp: tuple[int, int, int] | None,
                 table: dict[bytes, Grant] | TokenFileError) -> bool:
        self._stamp = stamp  # a file that stays broken is reported once, not once a second
        if isinstance(table, TokenFileError):
            self._log.error("tokens not reloaded", extra={"detail": str(table),
                                                          "tokens": len(self._table)})
            return False
        self._table = table
        self._log.info("tokens reloaded", extra={"path": str(self.path), "tokens": len(table),
                                                 "tenants": len(self.tenants)})
        return True

    def changed(self) -> bool:
        """Whether the file's modification time, size or inode differ from the last read."""
        return _file_stamp(self.path) != self._stamp

    async def watch(self, interval: float = WATCH_INTERVAL_S) -> None:
        """Re-read the file whenever it changes; runs until cancelled."""
        while True:
            await asyncio.sleep(interval)
            if self.changed():
                await self.reread()

    def log_refusal(self, method: str, refusal: AuthRefusal, peer: str) -> None:
        """Log a refusal, at most one line per kind a second, saying how many went unlogged."""
        now = time.monotonic()
        code = refusal.code
        if now - self._logged.get(code, -REFUSAL_LOG_INTERVAL_S) < REFUSAL_LOG_INTERVAL_S:
            self._suppressed[code] = self._suppressed.get(code, 0) + 1
            return
        self._logged[code] = now
        self._log.warning("refused", extra={"method": method, "code": code.name,
                                            "detail": refusal.message, "peer": peer[:100],
                                            "unlogged_before": self._suppressed.pop(code, 0)})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address's host part) is only reachable from this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost")
    (True, True, True)
    >>> is_loopback("0.0.0.0"), is_loopback("10.1.2.3"), is_loopback("example.com")
    (False, False, False)
    """
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # any other name may resolve to anything
        return False


def check_binding(settings: Settings) -> None:
    """StartupError (naming the setting) when ``settings`` would expose the API unprotected.

    Loopback: anything goes (tokens over plaintext included). Any other address needs TLS
    and tokens, unless ``insecure``.
    """
    s = settings
    if bool(s.tls_cert) != bool(s.tls_key):
        missing = "tls_key" if s.tls_cert else "tls_cert"
        raise StartupError(f"{missing}: TLS needs both tls_cert and tls_key")
    if s.tls_client_ca and not s.tls_cert:
        raise StartupError("tls_client_ca: mutual TLS needs tls_cert and tls_key as well")
    if is_loopback(s.host) or s.insecure:
        return
    lacking = [what for what, given in (("TLS (--tls-cert, --tls-key)", s.tls_cert),
                                        ("tokens (--auth-tokens)", s.auth_tokens)) if not given]
    if lacking:
        raise StartupError(f"address: {s.address} is not a loopback address: serving it needs "
                           f"{' and '.join(lacking)}, or --insecure to serve it without")


def _read_pem(path: str, setting: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise StartupError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise StartupError(f"{setting}: {path} is not a PEM file")
    return data


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS (mutual TLS with ``tls_client_ca``) credentials from the settings; None = plaintext."""
    if not settings.tls_cert:
        return None
    cert = _read_pem(settings.tls_cert, "tls_cert")
    key = _read_pem(settings.tls_key, "tls_key")
    client_ca = _read_pem(settings.tls_client_ca, "tls_client_ca") if settings.tls_client_ca else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)


def _service_of(method_path: str) -> str:
    """``/grpc.health.v1.Health/Check`` -> the name ``ROLES`` uses for it."""
    service = method_path.lstrip("/").split("/", 1)[0]
    return REFLECTION if service.startswith(REFLECTION + ".") else service


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Token checks for the services attribid does not implement itself: health, reflection.

    The Attribution methods check their caller themselves (the servicer needs the tenant).
    """

    def __init__(self, tokens: TokenTable,
                 record: Callable[[str, grpc.StatusCode], None] | None = None) -> None:
        self.tokens = tokens
        self._record = record

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
            details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        service = _service_of(details.method)
        if service not in (HEALTH, REFLECTION):
            return await continuation(details)
        handler = await continuation(details)
        if handler is None:
            return handler
        try:
            self.tokens.check(details.invocation_metadata, service)
        except AuthRefusal as refusal:
            if self._record is not None:
                self._record(details.method, refusal.code)
            return _refusing(handler, refusal, self.tokens, details.method)
        return handler


def _refusing(handler: grpc.RpcMethodHandler, refusal: AuthRefusal, tokens: TokenTable,
              method: str) -> grpc.RpcMethodHandler:
    """A handler of the same kind as ``handler`` that only refuses."""

    async def refuse(_request: Any, context: grpc.aio.ServicerContext) -> None:
        tokens.log_refusal(method, refusal, context.peer() or "")
        await context.abort(refusal.code, refusal.message)

    kinds = {(False, False): grpc.unary_unary_rpc_method_handler,
             (False, True): grpc.unary_stream_rpc_method_handler,
             (True, False): grpc.stream_unary_rpc_method_handler,
             (True, True): grpc.stream_stream_rpc_method_handler}
    make = kinds[(bool(handler.request_streaming), bool(handler.response_streaming))]
    return make(refuse, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
