"""py-kit: the Python SDK's DNS, TLS and typed arguments in one plugin.
A host name gets its records looked up (concurrently); a service gets a
TLS handshake and its certificate's expiry judged."""

import asyncio
import time

import wscan_sdk as w
from wscan_sdk import dns, tls


class Kit(w.Plugin):
    def describe(self):
        return w.info(
            "py-kit", "0.1.0", "DNS records of names, certificates of services (Python)",
            consumes=w.SubjectFilter(kinds=[w.SubjectKind.HOST, w.SubjectKind.SERVICE], ports=[],
                                     services=[]),
            capabilities=[w.Capability.DNS, w.Capability.TLS],
            args=[
                w.args.choice_list("types", "record types to look up", ["A", "AAAA", "MX", "TXT"],
                                   default="A,AAAA,MX,TXT"),
                w.args.integer("warn-days", "warn this many days before a certificate expires", 1, 365,
                               default=30),
                w.args.duration("wait", "how long a handshake may take", 100, 60_000, default="5s"),
                w.args.boolean("strict", "report an untrusted certificate as high", default=False),
            ],
        )

    async def scan(self, subject, options):
        if isinstance(subject, w.Subject_Host):
            await self.records(subject, options)
        else:
            await self.certificate(subject, options)

    async def records(self, subject, options):
        name = subject.value
        kinds = options.list("types")
        answers = await asyncio.gather(*(dns.lookup(name, getattr(dns, k)) for k in kinds),
                                       return_exceptions=True)
        data = {}
        for kind, answer in zip(kinds, answers):
            data[kind] = str(answer) if isinstance(answer, w.HostError) else [dns.text(r) for r in answer]
        # A name outside the scope is refused, in the SDK's words.
        try:
            await dns.lookup("example.com", dns.A)
            data["outside"] = "answered"
        except w.HostError as e:
            data["outside"] = f"{e.kind}: {e}"
        # No clock to wait on: asyncio's timers say so plainly.
        try:
            await asyncio.sleep(0.01)
            data["sleep"] = "slept"
        except NotImplementedError as e:
            data["sleep"] = str(e)
        w.report(w.finding("py-records", w.Severity.INFO, f"{name}: {len(kinds)} types", subject, data))

    async def certificate(self, subject, options):
        service = subject.value
        try:
            info = await tls.handshake(service.address, service.port, server_name=service.host,
                                       timeout_ms=options.duration_ms("wait"))
        except w.HostError as e:
            if e.kind == "TlsFailure":
                return  # not TLS
            raise
        leaf = info.chain[0]
        days = (leaf.not_after - int(time.time())) // 86400
        problems = tls.problem_names(info)
        if "expired" in problems:
            severity = w.Severity.HIGH
        elif problems and options.boolean("strict"):
            severity = w.Severity.HIGH
        elif days < options.integer("warn-days"):
            severity = w.Severity.MEDIUM
        else:
            severity = w.Severity.INFO
        w.report(w.finding("py-certificate", severity, f"{leaf.subject}: {days} days left", subject, {
            "version": info.version,
            "subject": leaf.subject,
            "sans": leaf.sans,
            "days_left": days,
            "problems": problems,
            "sha256": leaf.sha256,
        }))


WitWorld = w.export(Kit)
