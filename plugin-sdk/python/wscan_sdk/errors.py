"""Host errors, in the words the Rust SDK uses."""

# `ErrorCode_X` classes of the bindings, by X, and how each reads.
_MESSAGES = {
    "ConnectionRefused": "connection refused",
    "Timeout": "timed out",
    "Unreachable": "unreachable",
    "ConnectionReset": "connection reset",
    "Closed": "connection closed",
    "AccessDenied": "access denied: {}",
    "LimitExceeded": "a per-call limit was reached",
    "InvalidState": "result already taken",
    "InvalidArgument": "invalid argument: {}",
    "NameNotFound": "name not found (NXDOMAIN)",
    "ServerFailure": "server failure (SERVFAIL)",
    "QueryRefused": "query refused (REFUSED)",
    "TlsFailure": "TLS failure: {}",
    "HttpProtocol": "HTTP protocol error: {}",
    "Unsupported": "not supported by this host",
    "Other": "{}",
}


class HostError(Exception):
    """A host operation failed. `code` is the binding's error value;
    `kind` its name (`ConnectionRefused`, `Timeout`...); `str()` reads as
    the Rust SDK's message (`connection refused`)."""

    def __init__(self, code):
        self.code = code
        self.kind = type(code).__name__.removeprefix("ErrorCode_")
        text = _MESSAGES.get(self.kind, repr(code))
        super().__init__(text.format(getattr(code, "value", "")))


class ScanError(Exception):
    """Raise it to end a subject's scan with exactly this message (other
    exceptions are recorded as `TypeName: message`)::

        raise w.ScanError(f"GET {url}: {e}")
    """
