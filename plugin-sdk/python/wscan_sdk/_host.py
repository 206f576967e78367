"""What every host interface of the SDK shares: waiting on a host future,
and addresses as text."""

import asyncio
import ipaddress

from componentize_py_types import Err
from wit_world.imports.types import IpAddress_Ipv4, IpAddress_Ipv6

from .errors import HostError


async def wait(future):
    """The result of a host future, once its pollable is ready; a host
    error is raised as `HostError`."""
    while True:
        result = future.get()
        if result is not None:
            if isinstance(result, Err):
                raise HostError(result.value)
            return result.value
        await asyncio.get_running_loop().wait_for(future.subscribe())


def ip(address):
    """The bindings' address for `address`: text (`"127.0.0.1"`, `"::1"`),
    an `ipaddress` address, or already the bindings' value."""
    if isinstance(address, (IpAddress_Ipv4, IpAddress_Ipv6)):
        return address
    address = ipaddress.ip_address(address)
    if address.version == 4:
        return IpAddress_Ipv4(tuple(address.packed))
    words = address.packed
    return IpAddress_Ipv6(tuple(int.from_bytes(words[i:i + 2], "big") for i in range(0, 16, 2)))


def ip_text(address) -> str:
    """An address of the bindings (or text) as text: `127.0.0.1`, `::1`."""
    if isinstance(address, str):
        return str(ipaddress.ip_address(address))
    if isinstance(address, IpAddress_Ipv4):
        return str(ipaddress.IPv4Address(bytes(address.value)))
    return str(ipaddress.IPv6Address(b"".join(w.to_bytes(2, "big") for w in address.value)))
