"""py-banner: a first wscan plugin in Python (synchronous: waits on each pollable)."""
import json
import wit_world
from componentize_py_types import Ok, Err
from wit_world.imports import types, tcp, report
from wit_world.imports.types import (
    PluginInfo, SubjectFilter, SubjectKind, Capability, Finding, Severity, Subject_Service,
)


# The host's error codes in the words the Rust SDK uses (ErrorCode::message).
MESSAGES = {
    "ConnectionRefused": "connection refused", "Timeout": "timed out",
    "Unreachable": "unreachable", "ConnectionReset": "connection reset",
    "Closed": "connection closed", "AccessDenied": "access denied: {}",
    "LimitExceeded": "a per-call limit was reached", "InvalidState": "result already taken",
    "InvalidArgument": "invalid argument: {}", "NameNotFound": "name not found (NXDOMAIN)",
    "ServerFailure": "server failure (SERVFAIL)", "QueryRefused": "query refused (REFUSED)",
    "TlsFailure": "TLS failure: {}", "HttpProtocol": "HTTP protocol error: {}",
    "Unsupported": "not supported by this host", "Other": "{}",
}


def message(code) -> str:
    """A host error code, readable: `connection refused`."""
    text = MESSAGES.get(type(code).__name__.removeprefix("ErrorCode_"), repr(code))
    return text.format(getattr(code, "value", ""))


def wait(future):
    """Block on the future's pollable, then take its result."""
    while True:
        result = future.get()
        if result is not None:
            return result
        future.subscribe().block()


class WitWorld(wit_world.WitWorld):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="py-banner", version="0.1.0",
            description="Reads what each service says first (Python)",
            consumes=SubjectFilter(kinds=[SubjectKind.SERVICE], ports=[], services=[]),
            capabilities=[Capability.TCP], args=[])

    def scan(self, tasks, options) -> None:
        for task in tasks:
            subject = task.subject()
            outcome = Ok(None)
            if isinstance(subject, Subject_Service):
                service = subject.value
                result = wait(tcp.connect(service.address, service.port, None))
                if isinstance(result, Err):
                    outcome = Err(f"connect: {message(result.value)}")
                else:
                    conn = result.value
                    got = wait(conn.read(1024, 2000))
                    if isinstance(got, Ok) and got.value:
                        banner = got.value.decode("utf-8", "replace").strip()
                        task.emit_finding(Finding(
                            kind="banner", severity=Severity.INFO,
                            title=f"port {service.port} says {banner!r}",
                            subject=subject, data=json.dumps({"banner": banner})))
            report.Task.finish(task, outcome)
