#!/usr/bin/env python3
"""One run of bench.py's service scenario, inside its network namespace.

    serve_leg.py WSCAN WORK cli|cli-load|alone|load [RATE]

The same scan each time, 127.0.0.0/16 ports 80-82 with the port plugin
(196,608 probes; the testbed holds 100 listeners on port 80), run:

- cli: by `wscan scan`, with --stats;
- cli-load: the same, while wrk asks another `wscan serve` (one that ran
  this scan before, so its pages are as full) for GET records at RATE, as
  in `load`: the machine's cores are as busy as in `load`, and what
  differs is only which process scans;
- alone: by `wscan serve`, started with POST /v1/scans and watched with
  GET /v1/scans/{id} every 50 ms until it ends;
- load: the same, while wrk asks GET /v1/scans/{id}/records?limit=100 at
  RATE requests a second (50 connections, each pausing 50/RATE s between
  its requests, so a request's own latency slows the pace little) from
  the scan's start to its end.

Prints one JSON object: the scan's own time (its statistics' elapsed_s,
from its first unit to its end: process start and plugin loading are
outside it in both cases), its findings, the wscan process's peak RSS,
and for `load` what wrk measured.
"""

import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
import urllib.request

SCAN = ["127.0.0.0/16", "-p", "80-82", "--plugins", "port", "--plugin-arg",
        "port.banner=false"]
BODY = {"targets": ["127.0.0.0/16"], "ports": "80-82", "plugins": ["port"],
        "plugin_args": {"port.banner": "false"}}
CONNECTIONS = 50


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def start_daemon(wscan, work):
    """A `wscan serve` on a store of its own: the process and its URL."""
    db = os.path.join(work, f"serve-{time.time_ns()}.db")
    daemon = subprocess.Popen([wscan, "--db", db, "serve", "--listen", "127.0.0.1:0"],
                              stderr=subprocess.PIPE, text=True)
    for line in daemon.stderr:
        m = re.search(r"serving the API on (http://\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in daemon.stderr], daemon=True).start()
            return daemon, m.group(1)
    sys.exit("wscan serve did not start")


def start_scan(base):
    request = urllib.request.Request(base + "/v1/scans", data=json.dumps(BODY).encode(),
                                     headers={"content-type": "application/json"},
                                     method="POST")
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.load(r)["id"]


def wait_scan(base, scan):
    while True:
        view = get(f"{base}/v1/scans/{scan}")
        if view["status"] != "running":
            return view
        time.sleep(0.05)


def start_load(base, scan, work, rate):
    pace = os.path.join(work, "pace.lua")
    with open(pace, "w") as f:
        f.write(f"function delay() return {CONNECTIONS * 1000 // rate} end\n")
    return subprocess.Popen(["wrk", "-t1", f"-c{CONNECTIONS}", "-d600s", "--latency",
                             "-s", pace, f"{base}/v1/scans/{scan}/records?limit=100"],
                            stdout=subprocess.PIPE, text=True)


def stop_load(load):
    # wrk stops on SIGINT and reports what it did until then.
    load.send_signal(signal.SIGINT)
    return wrk_numbers(load.communicate(timeout=30)[0])


def cli_under_load(wscan, work, rate):
    daemon, base = start_daemon(wscan, work)
    try:
        scan = start_scan(base)
        wait_scan(base, scan)
        load = start_load(base, scan, work, rate)
        result = cli(wscan, work)
        result.update(stop_load(load))
        return result
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)


def cli(wscan, work):
    db = os.path.join(work, f"cli-{time.time_ns()}.db")
    stats = db + ".stats.json"
    p = subprocess.run([wscan, "--db", db, "scan", *SCAN, "-q", "--format", "jsonl",
                        "-o", "/dev/null", "--stats", stats])
    if p.returncode != 0:
        sys.exit(f"wscan scan exited {p.returncode}")
    with open(stats) as f:
        s = json.load(f)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"elapsed_s": s["elapsed_s"], "findings": s["findings"], "rss_mb": rss}


def wrk_numbers(out):
    """Requests/sec, latency percentiles (ms) and errors from wrk's report."""
    def ms(text):
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"requests": total, "rps": rps, "p50_ms": lat.get("50"), "p99_ms": lat.get("99"),
            "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": sock.group(1) if sock else ""}


def serve(wscan, work, rate):
    daemon, base = start_daemon(wscan, work)
    try:
        scan = start_scan(base)
        load = start_load(base, scan, work, rate) if rate else None
        view = wait_scan(base, scan)
        result = {"elapsed_s": view["stats"]["elapsed_s"], "findings": view["findings"]}
        if load:
            result.update(stop_load(load))
        with open(f"/proc/{daemon.pid}/status") as f:
            hwm = re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)
        result["rss_mb"] = int(hwm) / 1024
        return result
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)


def main():
    wscan, work, mode = sys.argv[1:4]
    rate = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    if mode == "cli":
        result = cli(wscan, work)
    elif mode == "cli-load":
        result = cli_under_load(wscan, work, rate)
    else:
        result = serve(wscan, work, rate if mode == "load" else 0)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
