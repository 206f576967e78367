"""py-redis-info: sends Redis's `INFO server` and reports what the server
says about itself: a TCP exchange in Python."""

import wscan_sdk as w


class RedisInfo(w.Plugin):
    def describe(self):
        return w.info(
            "py-redis-info", "0.1.0", "Asks a Redis server for INFO server (Python)",
            consumes=w.services(ports=[6379], names=["redis"]),
            capabilities=[w.Capability.TCP],
            args=[w.args.text_list("keys", "the INFO fields to report",
                                   default=["redis_version", "redis_mode", "os"])],
        )

    async def scan(self, subject, options):
        service = subject.value
        conn = await w.connect(service.address, service.port)
        reply = await conn.exchange(b"INFO server\r\n", until=b"\r\n\r\n")
        conn.close()
        fields = dict(line.split(":", 1) for line in reply.decode("utf-8", "replace").splitlines()
                      if ":" in line and not line.startswith("#"))
        wanted = {key: fields[key] for key in options.list("keys") if key in fields}
        if not wanted:
            return  # not Redis, or it said nothing we asked for
        summary = ", ".join(f"{k} {v}" for k, v in wanted.items())
        w.report(w.finding("redis-info", w.Severity.INFO, f"Redis: {summary}", subject, wanted))


WitWorld = w.export(RedisInfo)
