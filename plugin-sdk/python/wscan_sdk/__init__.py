"""wscan_sdk: write wscan scan plugins in Python.

A plugin is a class with `describe()` and `async def scan(subject,
options)`; `export(MyPlugin)` turns it into the component's world. The
SDK runs the subjects of a batch concurrently on one event loop over the
host's pollables, and each subject's findings and failure are its own::

    import wscan_sdk as w

    class Banner(w.Plugin):
        def describe(self):
            return w.info("py-banner", "0.1.0", "Reads what services say first",
                          consumes=w.services(), capabilities=[w.Capability.TCP])

        async def scan(self, subject, options):
            service = subject.value
            conn = await w.connect(service.address, service.port)
            line = await conn.read_line(timeout_ms=2000)
            w.report(w.finding("banner", w.Severity.INFO, f"says {line!r}", subject, {"banner": line}))

    WitWorld = w.export(Banner)

The host interfaces beyond TCP are modules: `wscan_sdk.dns`,
`wscan_sdk.tls`, `wscan_sdk.http`; typed arguments are `wscan_sdk.args`.
Build with componentize-py (`-p` this folder and the plugin's) against
wscan's `wit/`: see docs/plugins-python.md.
"""

import asyncio
import contextvars
import json

import wit_world
from componentize_py_types import Err, Ok
from wit_world.imports import log as _log
from wit_world.imports import report as _report
from wit_world.imports import tcp as _tcp
from wit_world.imports.types import (  # noqa: F401 (re-exported)
    AddressSubject,
    ArgInfo,
    Capability,
    Finding,
    IpAddress_Ipv4,
    IpAddress_Ipv6,
    PluginInfo,
    PortRange,
    ScanOptions,
    Service,
    Severity,
    Subject_Address,
    Subject_Host,
    Subject_Service,
    SubjectFilter,
    SubjectKind,
)

from . import args, dns, http, tls  # noqa: F401 (the SDK's modules)
from ._host import ip, ip_text
from ._host import wait as _wait
from .args import Options
from .errors import HostError, ScanError
from .loop import PollLoop

__all__ = [
    "Capability", "Connection", "HostError", "Options", "Plugin", "ScanError", "Severity", "Subject_Address",
    "Subject_Host", "Subject_Service", "address_subject", "addresses", "args", "connect", "dns",
    "emit", "export", "finding", "host_subject", "hosts", "http", "info", "ip", "ip_text", "log",
    "report", "service_subject", "service_url", "services", "speaks_tls", "tls",
]

_task = contextvars.ContextVar("wscan_task")


# ---- Describing a plugin ---------------------------------------------------

def services(ports=(), names=()) -> SubjectFilter:
    """Consume services (on these ports, or with these names, if given)."""
    return SubjectFilter(kinds=[SubjectKind.SERVICE],
                         ports=[PortRange(first=p, last=p) for p in ports],
                         services=list(names))


def addresses() -> SubjectFilter:
    """Consume IP addresses."""
    return SubjectFilter(kinds=[SubjectKind.ADDRESS], ports=[], services=[])


def hosts() -> SubjectFilter:
    """Consume host names."""
    return SubjectFilter(kinds=[SubjectKind.HOST], ports=[], services=[])


def info(name, version, description, consumes, capabilities, args=()) -> PluginInfo:
    """What `describe()` returns. `args` are `wscan_sdk.args` declarations."""
    return PluginInfo(name=name, version=version, description=description,
                      consumes=consumes, capabilities=list(capabilities), args=list(args))


# ---- Subjects --------------------------------------------------------------

def host_subject(name: str):
    """A host-name subject, to `emit`."""
    return Subject_Host(name)


def address_subject(address, host=None):
    """An address subject (text or the bindings' address), to `emit`."""
    return Subject_Address(AddressSubject(address=ip(address), host=host))


def service_subject(address, port: int, host=None, name=None, banner=None, tls=False):
    """A service subject, to `emit`."""
    return Subject_Service(Service(address=ip(address), port=port, host=host, name=name,
                                   banner=banner, tls=tls))


_TLS_NAMES = {"https", "https-alt", "ssl", "imaps", "pop3s", "smtps", "ldaps"}


def speaks_tls(service) -> bool:
    """Whether to talk TLS to a service: known to (`tls`), named so by the
    port plugin (`https`, `ssl`...), or, with no name, on 443 or 8443."""
    if service.tls:
        return True
    if service.name is not None:
        return service.name.lower() in _TLS_NAMES
    return service.port in (443, 8443)


def service_url(service, path="/") -> str:
    """The URL of `path` on a service: `https` when it `speaks_tls`, the
    host name it was reached through (else its address, IPv6 in
    brackets), the port left out when it is the scheme's default."""
    tls_ = speaks_tls(service)
    if service.host is not None:
        host = service.host
    else:
        host = ip_text(service.address)
        if ":" in host:
            host = f"[{host}]"
    port = "" if service.port == (443 if tls_ else 80) else f":{service.port}"
    if not path.startswith("/"):
        path = "/" + path
    return f"{'https' if tls_ else 'http'}://{host}{port}{path}"


# ---- TCP -------------------------------------------------------------------

class Connection:
    """A TCP connection the host holds."""

    def __init__(self, inner):
        self._inner = inner
        self._unread = b""

    def peer(self):
        """The peer's address (text) and port."""
        address, port = self._inner.peer()
        return ip_text(address), port

    async def read(self, max_bytes=65536, timeout_ms=None) -> bytes:
        """Up to `max_bytes` as soon as any arrive; `b""` when the peer closed."""
        if self._unread:
            data, self._unread = self._unread[:max_bytes], self._unread[max_bytes:]
            return data
        return await _wait(self._inner.read(max_bytes, timeout_ms))

    async def read_until(self, delimiter: bytes, max_bytes=65536, timeout_ms=None) -> bytes:
        """Everything up to and including `delimiter` (or what came before
        the peer closed, or the first `max_bytes`)."""
        buffer = self._unread
        self._unread = b""
        while True:
            end = buffer.find(delimiter)
            if end >= 0:
                end += len(delimiter)
                self._unread = buffer[end:]
                return buffer[:end]
            if len(buffer) >= max_bytes:
                self._unread = buffer[max_bytes:]
                return buffer[:max_bytes]
            try:
                chunk = await _wait(self._inner.read(min(max_bytes - len(buffer), 1 << 20), timeout_ms))
            except HostError:
                self._unread = buffer
                raise
            if not chunk:
                return buffer
            buffer += chunk

    async def read_line(self, max_bytes=4096, timeout_ms=None) -> str:
        """One line, as text, without its line ending."""
        line = await self.read_until(b"\n", max_bytes, timeout_ms)
        return line.decode("utf-8", "replace").rstrip("\r\n")

    async def write(self, data: bytes, timeout_ms=None) -> int:
        """Send all of `data`."""
        return await _wait(self._inner.write(data, timeout_ms))

    async def exchange(self, request: bytes, until: bytes, max_bytes=65536, timeout_ms=None) -> bytes:
        """Send `request`, then read the reply up to and including `until`."""
        await self.write(request, timeout_ms)
        return await self.read_until(until, max_bytes, timeout_ms)

    def close(self) -> None:
        """Close now; reads and writes still pending fail with `Closed`."""
        self._inner.close()


async def connect(address, port: int, timeout_ms=None) -> Connection:
    """Connect to `address` (the bindings' address, or text) and `port`.
    Errors: `ConnectionRefused`, `Timeout`, `Unreachable`, `AccessDenied`
    (out of scope, or no `Capability.TCP`), `LimitExceeded`."""
    return Connection(await _wait(_tcp.connect(ip(address), port, timeout_ms)))


# ---- Reporting -------------------------------------------------------------

def finding(kind: str, severity: Severity, title: str, subject, data=None) -> Finding:
    """A finding about `subject`; `data` is a dict (JSON object)."""
    return Finding(kind=kind, severity=severity, title=title, subject=subject,
                   data=json.dumps(data or {}))


def report(found: Finding) -> None:
    """Report a finding of the subject being scanned. Errors:
    `LimitExceeded` past the per-subject cap, `InvalidArgument`."""
    try:
        _task.get().emit_finding(found)
    except Err as e:
        raise HostError(e.value) from None


def emit(subject) -> None:
    """Hand a newly found subject to the pipeline (deduplicated, checked
    against scope, scanned by every plugin whose filter matches)."""
    try:
        _task.get().emit_subject(subject)
    except Err as e:
        raise HostError(e.value) from None


def log(message: str, level=_log.Level.INFO) -> None:
    """A line in the host's log (`-v`), under this plugin's name."""
    _log.log(level, message)


# ---- The plugin ------------------------------------------------------------

class Plugin:
    """Subclass it: `describe()` and `async def scan(subject, options)`.

    `subject` is the bindings' subject: `subject.value` is the host name
    (`Subject_Host`), the `AddressSubject` or the `Service`. `options` is
    an `Options`. Return normally when the subject was scanned; raise
    when its scan failed as a whole: the subject's error record carries
    the message (a `HostError`'s or `ScanError`'s as is, any other
    exception as `TypeName: message`), and what was reported before
    stays.
    """

    def describe(self) -> PluginInfo:
        raise NotImplementedError

    async def scan(self, subject, options: Options) -> None:
        raise NotImplementedError


def export(plugin_class):
    """The `WitWorld` class componentize-py exports, running `plugin_class`."""
    plugin = plugin_class()

    async def one(task, options):
        _task.set(task)
        try:
            await plugin.scan(task.subject(), options)
            outcome = Ok(None)
        except (HostError, ScanError) as e:
            outcome = Err(str(e))
        except Exception as e:  # the subject's failure, not the batch's
            outcome = Err(f"{type(e).__name__}: {e}")
        _report.Task.finish(task, outcome)

    class WitWorld(wit_world.WitWorld):
        def describe(self) -> PluginInfo:
            return plugin.describe()

        def scan(self, tasks, options) -> None:
            loop = PollLoop()
            asyncio.set_event_loop(loop)
            wrapped = Options(options)
            # Each subject in its own asyncio task (and context): they run
            # concurrently, and each reports to its own task.
            loop.run_until_complete(asyncio.gather(*(loop.create_task(one(t, wrapped)) for t in tasks)))

    return WitWorld
