"""py-banner: reads what each service says first, in Python, on wscan_sdk."""

import wscan_sdk as w


class Banner(w.Plugin):
    def describe(self):
        return w.info("py-banner", "0.1.0", "Reads what each service says first (Python)",
                      consumes=w.services(), capabilities=[w.Capability.TCP])

    async def scan(self, subject, options):
        service = subject.value
        conn = await w.connect(service.address, service.port)
        try:
            line = await conn.read_line(timeout_ms=2000)
        except w.HostError as e:
            if e.kind == "Timeout":  # a service that waits for the client
                return
            raise
        if line:
            w.report(w.finding("banner", w.Severity.INFO, f"port {service.port} says {line!r}",
                               subject, {"banner": line}))


WitWorld = w.export(Banner)
