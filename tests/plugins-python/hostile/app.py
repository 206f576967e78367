"""py-hostile: misbehaves as its `mode` says, so the tests can show a
Python plugin is contained exactly as a Rust one.

- `poison` (on addresses): .13 raises, .14 loops forever, .15 allocates
  without end; every other address reports `ok`.
- `outside` (on services): connects to 127.0.0.2, outside the scope, and
  reports what it got as an `outside` finding.
- `undeclared` (on services): a DNS lookup without the DNS capability,
  reported as an `undeclared` finding.
"""

import wscan_sdk as w


class Hostile(w.Plugin):
    def describe(self):
        return w.info(
            "py-hostile", "0.1.0", "Misbehaves as told (Python)",
            consumes=w.SubjectFilter(kinds=[w.SubjectKind.ADDRESS, w.SubjectKind.SERVICE], ports=[],
                                     services=[]),
            capabilities=[w.Capability.TCP],
            args=[w.args.choice("mode", "how to misbehave", ["poison", "outside", "undeclared"],
                                default="poison")],
        )

    async def scan(self, subject, options):
        mode = options.text("mode")
        if isinstance(subject, w.Subject_Address):
            if mode == "poison":
                self.poison(subject)
            return
        if mode == "outside":
            try:
                await w.connect("127.0.0.2", subject.value.port)
                outcome = "connected"
            except w.HostError as e:
                outcome = str(e)
            w.report(w.finding("outside", w.Severity.INFO, outcome, subject))
        elif mode == "undeclared":
            try:
                await w.dns.lookup("localhost", w.dns.A)
                outcome = "answered"
            except w.HostError as e:
                outcome = str(e)
            w.report(w.finding("undeclared", w.Severity.INFO, outcome, subject))

    def poison(self, subject):
        address = w.ip_text(subject.value.address)
        last = int(address.rsplit(".", 1)[1])
        if last == 13:
            raise ValueError(f"poison: raised on {address}")
        if last == 14:
            while True:  # the deadline must stop this
                pass
        if last == 15:
            hoard = []
            while True:  # the memory limit must stop this
                hoard.append(bytearray(1 << 20))
        w.report(w.finding("ok", w.Severity.INFO, f"{address} ok", subject))


WitWorld = w.export(Hostile)
