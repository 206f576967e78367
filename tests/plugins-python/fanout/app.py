"""py-fanout: opens 100 connections to each service at once (and reads from
those that connect): the host must see them all in flight together."""

import asyncio

import wscan_sdk as w

CONNECTIONS = 100


class Fanout(w.Plugin):
    def describe(self):
        return w.info("py-fanout", "0.1.0", "Holds 100 connections open at once (Python)",
                      consumes=w.services(), capabilities=[w.Capability.TCP])

    async def scan(self, subject, options):
        service = subject.value

        async def one():
            try:
                conn = await w.connect(service.address, service.port)
                await conn.read(timeout_ms=1000)
                return "answered"
            except w.HostError as e:
                return e.kind

        outcomes = await asyncio.gather(*(one() for _ in range(CONNECTIONS)))
        w.report(w.finding("fanout", w.Severity.INFO,
                           f"{outcomes.count('Timeout')} of {CONNECTIONS} timed out",
                           subject, {"outcomes": outcomes}))


WitWorld = w.export(Fanout)
