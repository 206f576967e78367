"""DNS queries, answered by the host's resolver and its scan-wide cache.

    from wscan_sdk import dns
    records = await dns.lookup("example.com", dns.MX)
    for r in records:
        print(r.name, r.ttl, dns.text(r))

A plugin may query the names the user gave (and the names they alias);
others fail with `HostError` of kind `AccessDenied`. Declare
`Capability.DNS`.
"""

from wit_world.imports import dns as _dns
from wit_world.imports.dns import RecordType, ResourceRecord  # noqa: F401 (re-exported)

from ._host import ip, ip_text, wait
from .errors import HostError

__all__ = ["A", "AAAA", "CAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "RecordType",
           "ResourceRecord", "addresses", "lookup", "reverse", "text", "type_name"]

A, AAAA, CNAME, MX, NS = RecordType.A, RecordType.AAAA, RecordType.CNAME, RecordType.MX, RecordType.NS
TXT, SOA, PTR, SRV, CAA = RecordType.TXT, RecordType.SOA, RecordType.PTR, RecordType.SRV, RecordType.CAA


async def lookup(name: str, kind: RecordType) -> list:
    """The records of `kind` for `name` (`[]` when it exists but has none).
    Errors: `NameNotFound` (NXDOMAIN), `ServerFailure`, `QueryRefused`,
    `Timeout`, `AccessDenied`, `InvalidArgument`."""
    return await wait(_dns.lookup(name, kind))


async def reverse(address) -> list:
    """The PTR records of an in-scope address (text or the bindings')."""
    return await wait(_dns.reverse(ip(address)))


async def addresses(name: str) -> list:
    """The IPv4 and IPv6 addresses of `name`, as text: `[]` when the name
    does not exist (NXDOMAIN) or has none. Other errors are raised."""
    found = []
    for kind in (A, AAAA):
        try:
            found += [ip_text(r.data.value) for r in await lookup(name, kind) if _is_address(r)]
        except HostError as e:
            if e.kind != "NameNotFound":
                raise
    return found


def _is_address(record) -> bool:
    return isinstance(record.data, (_dns.RecordData_A, _dns.RecordData_Aaaa))


def type_name(record) -> str:
    """The record's type as a zone file writes it: `A`, `MX`..."""
    return type(record.data).__name__.removeprefix("RecordData_").upper()


def text(record) -> str:
    """The record's data in zone-file presentation form (`10 mail.example.com.`),
    as the Rust SDK's `to_text` gives it."""
    data = record.data
    value = data.value
    if _is_address(record):
        return ip_text(value)
    if isinstance(data, (_dns.RecordData_Cname, _dns.RecordData_Ns, _dns.RecordData_Ptr)):
        return value
    if isinstance(data, _dns.RecordData_Mx):
        return f"{value.preference} {value.exchange}"
    if isinstance(data, _dns.RecordData_Txt):
        return " ".join('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"' for s in value)
    if isinstance(data, _dns.RecordData_Soa):
        return (f"{value.mname} {value.rname} {value.serial} {value.refresh} {value.retry} "
                f"{value.expire} {value.minimum}")
    if isinstance(data, _dns.RecordData_Srv):
        return f"{value.priority} {value.weight} {value.port} {value.target}"
    if isinstance(data, _dns.RecordData_Caa):
        quoted = value.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{128 if value.critical else 0} {value.tag} "{quoted}"'
    return repr(value)
