"""TLS handshakes, run by the host (rustls). A handshake never fails
because of the certificate: what is wrong with it is in `problems`.

    from wscan_sdk import tls
    info = await tls.handshake(service.address, service.port, server_name=service.host)
    leaf = info.chain[0]
    print(info.version, leaf.subject, leaf.not_after, tls.problem_names(info))

Declare `Capability.TLS`.
"""

from wit_world.imports import tls as _tls
from wit_world.imports.tls import CertProblem, Certificate, HandshakeInfo  # noqa: F401 (re-exported)

from ._host import ip, wait

__all__ = ["CertProblem", "Certificate", "HandshakeInfo", "handshake", "problem_names"]

_PROBLEM_NAMES = {
    CertProblem.EXPIRED: "expired",
    CertProblem.NOT_YET_VALID: "not-yet-valid",
    CertProblem.SELF_SIGNED: "self-signed",
    CertProblem.UNKNOWN_ISSUER: "unknown-issuer",
    CertProblem.NAME_MISMATCH: "name-mismatch",
    CertProblem.INVALID: "invalid",
}


async def handshake(address, port: int, server_name=None, alpn=(), timeout_ms=None) -> HandshakeInfo:
    """Handshake with `address`:`port`: SNI and the name checked is
    `server_name` (pass the service's `host`); `alpn` protocols to offer.
    Errors: `ConnectionRefused`, `Timeout`, `Unreachable`,
    `ConnectionReset`, `TlsFailure` (no common version or suite, not TLS),
    `AccessDenied`, `InvalidArgument` (a malformed server name)."""
    options = _tls.HandshakeOptions(server_name=server_name, alpn=list(alpn), timeout_ms=timeout_ms)
    return await wait(_tls.handshake(ip(address), port, options))


def problem_names(info: HandshakeInfo) -> list:
    """The handshake's certificate problems as the findings name them:
    `expired`, `self-signed`..."""
    return [_PROBLEM_NAMES[p] for p in info.problems]
