"""py-http-title: a GET of each web service and its page's title, in
Python: the same services, URL and title as the built-in http plugin."""

import html
import re

import wscan_sdk as w
from wscan_sdk import http

# The built-in http plugin's ports and service names.
HTTP_PORTS = [80, 81, 443, 591, 3000, 5000, 8000, 8008, 8080, 8081, 8088, 8443, 8888, 9000, 9090, 9443]
HTTP_SERVICES = ["http", "https", "http-alt", "http-proxy", "https-alt"]

TITLE = re.compile(r"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


def title(body: str):
    """The first `<title>`'s text, whitespace collapsed, entities decoded;
    `None` when there is none or it is empty."""
    found = TITLE.search(body)
    if found is None:
        return None
    text = html.unescape(" ".join(found.group(1).split()))
    return text or None


class HttpTitle(w.Plugin):
    def describe(self):
        return w.info(
            "py-http-title", "0.1.0", "GET of each web service: status, title, server (Python)",
            consumes=w.services(HTTP_PORTS, HTTP_SERVICES),
            capabilities=[w.Capability.HTTP],
            args=[
                w.args.text("path", "the path to request", default="/"),
                w.args.integer("body-bytes", "bytes of each body to read (for the title)", 1, 1 << 20,
                               default=65536),
            ],
        )

    async def scan(self, subject, options):
        service = subject.value
        url = w.service_url(service, options.text("path"))
        try:
            response = await http.get(url, connect_to=service.address,
                                      max_body_bytes=options.integer("body-bytes"))
        except w.HostError as e:
            # The subject's error record: "GET http://...: connection refused".
            raise w.ScanError(f"GET {url}: {e}") from None
        page_title = title(response.text())
        headline = f"{response.status} {url}" + (f" [{page_title}]" if page_title else "")
        w.report(w.finding("http-title", w.Severity.INFO, headline, subject, {
            "url": url,
            "status": response.status,
            "title": page_title,
            "server": response.header("server"),
            "content_type": response.header("content-type"),
        }))


WitWorld = w.export(HttpTitle)
