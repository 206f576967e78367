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

Build with componentize-py (`-p` this folder and the plugin's) against
wscan's `wit/`: see docs/plugins-python.md.
"""

import asyncio
import contextvars
import ipaddress
import json

import wit_world
from componentize_py_types import Err, Ok
from wit_world.imports import log as _log
from wit_world.imports import report as _report
from wit_world.imports import tcp as _tcp
from wit_world.imports.types import (  # noqa: F401 (re-exported)
    ArgInfo,
    Capability,
    Finding,
    IpAddress_Ipv4,
    IpAddress_Ipv6,
    PluginInfo,
    PortRange,
    ScanOptions,
    Severity,
    Subject_Address,
    Subject_Host,
    Subject_Service,
    SubjectFilter,
    SubjectKind,
)

from .errors import HostError
from .loop import PollLoop

__all__ = [
    "Capability", "Connection", "HostError", "Plugin", "Severity", "Subject_Address",
    "Subject_Host", "Subject_Service", "connect", "export", "finding", "info", "ip",
    "ip_text", "log", "report", "services", "addresses", "hosts",
]

_task = contextvars.ContextVar("wscan_task")


# ---- Addresses -------------------------------------------------------------

def ip(text: str):
    """The binding's address for `text` (`"127.0.0.1"`, `"::1"`)."""
    address = ipaddress.ip_address(text)
    if address.version == 4:
        return IpAddress_Ipv4(tuple(address.packed))
    words = address.packed
    return IpAddress_Ipv6(tuple(int.from_bytes(words[i:i + 2], "big") for i in range(0, 16, 2)))


def ip_text(address) -> str:
    """An address of the bindings as text."""
    if isinstance(address, IpAddress_Ipv4):
        return str(ipaddress.IPv4Address(bytes(address.value)))
    return str(ipaddress.IPv6Address(b"".join(w.to_bytes(2, "big") for w in address.value)))


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
    """What `describe()` returns."""
    return PluginInfo(name=name, version=version, description=description,
                      consumes=consumes, capabilities=list(capabilities), args=list(args))


# ---- Host operations -------------------------------------------------------

async def _wait(future):
    """The result of a host future, once its pollable is ready."""
    while True:
        result = future.get()
        if result is not None:
            if isinstance(result, Err):
                raise HostError(result.value)
            return result.value
        await asyncio.get_running_loop().wait_for(future.subscribe())


class Connection:
    """A TCP connection the host holds."""

    def __init__(self, inner):
        self._inner = inner
        self._unread = b""

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
        self._inner.close()


async def connect(address, port: int, timeout_ms=None) -> Connection:
    """Connect to `address` (the bindings' address, or text) and `port`."""
    if isinstance(address, str):
        address = ip(address)
    return Connection(await _wait(_tcp.connect(address, port, timeout_ms)))


# ---- Reporting -------------------------------------------------------------

def finding(kind: str, severity: Severity, title: str, subject, data=None) -> Finding:
    """A finding about `subject`; `data` is a dict (JSON object)."""
    return Finding(kind=kind, severity=severity, title=title, subject=subject,
                   data=json.dumps(data or {}))


def report(found: Finding) -> None:
    """Report a finding of the subject being scanned."""
    try:
        _task.get().emit_finding(found)
    except Err as e:
        raise HostError(e.value) from None


def log(message: str, level=_log.Level.INFO) -> None:
    """A line in the host's log, under this plugin's name."""
    _log.log(level, message)


# ---- The plugin ------------------------------------------------------------

class Plugin:
    """Subclass it: `describe()` and `async def scan(subject, options)`."""

    def describe(self) -> PluginInfo:
        raise NotImplementedError

    async def scan(self, subject, options: ScanOptions) -> None:
        raise NotImplementedError


def export(plugin_class):
    """The `WitWorld` class componentize-py exports, running `plugin_class`."""
    plugin = plugin_class()

    async def one(task, options):
        _task.set(task)
        try:
            await plugin.scan(task.subject(), options)
            outcome = Ok(None)
        except HostError as e:
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
            # Each subject in its own asyncio task (and context): they run
            # concurrently, and each reports to its own task.
            loop.run_until_complete(asyncio.gather(*(loop.create_task(one(t, options)) for t in tasks)))

    return WitWorld
