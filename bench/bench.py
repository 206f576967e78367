#!/usr/bin/env python3
"""wscan benchmarks, side by side with peers, in private network namespaces.

Every scenario runs inside a network namespace created here (only `lo`), with
listeners started here, so no packet leaves this machine or reaches anything
the benchmark did not start. Each command runs --runs times; BENCHMARKS.md
gets the median, min-max, peak RSS and the ratio to wscan.
"""

import argparse
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WSCAN = ROOT / "target" / "release" / "wscan"
NS = f"wscan-bench-{os.getpid()}"

LISTENER = """
import socket, sys, time
socks = []
for p in {ports!r}:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('127.0.0.1', p)); s.listen(4096); socks.append(s)
print('ready', flush=True)
time.sleep(3600)
"""


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


class Namespace:
    def __init__(self, ports):
        self.ports = ports

    def __enter__(self):
        sh("ip", "netns", "add", NS)
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
        self.listeners = subprocess.Popen(
            ["ip", "netns", "exec", NS, sys.executable, "-c", LISTENER.format(ports=self.ports)],
            stdout=subprocess.PIPE, text=True)
        assert self.listeners.stdout.readline().strip() == "ready"
        return self

    def __exit__(self, *exc):
        self.listeners.kill()
        self.listeners.wait()
        subprocess.run(["ip", "netns", "del", NS])


def timed(cmd):
    """Run cmd in the namespace; return (seconds, peak RSS in MB, stdout)."""
    full = ["ip", "netns", "exec", NS, "/usr/bin/time", "-f", "@@%e %M"] + cmd
    p = subprocess.run(full, capture_output=True, text=True)
    if p.returncode not in (0, 3):
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    m = re.search(r"@@([\d.]+) (\d+)", p.stderr)
    return float(m.group(1)), int(m.group(2)) / 1024, p.stdout


def count_open(tool, out):
    if tool == "wscan":
        return sum(1 for line in out.splitlines() if '"open-port"' in line)
    return len(re.findall(r"^\d+/tcp\s+open", out, re.M))


def scenario_all_ports(runs):
    open_ports = [22, 8080, 40000]
    cmds = {
        "wscan": [str(WSCAN), "scan", "127.0.0.1", "-p", "all", "--plugins", "port",
                  "--format", "jsonl", "-q", "--plugin-arg", "port.banner=false"],
        "nmap -sT -T5": ["nmap", "-sT", "-p-", "-T5", "-n", "-Pn", "127.0.0.1"],
        "nmap -sT": ["nmap", "-sT", "-p-", "-n", "-Pn", "127.0.0.1"],
    }
    results = {}
    with Namespace(open_ports):
        for i in range(runs):
            # Interleave the tools so drift in the machine's load hits all alike.
            for name, cmd in cmds.items():
                secs, rss, out = timed(cmd)
                found = count_open(name.split()[0], out)
                if found != len(open_ports):
                    raise RuntimeError(f"{name} found {found} open ports, expected {len(open_ports)}")
                results.setdefault(name, []).append((secs, rss))
                print(f"  all-ports run {i + 1}/{runs}: {name}: {secs:.2f}s {rss:.0f} MB", flush=True)
    return {
        "title": "One address, all 65,535 ports, 3 open (connect scan)",
        "cmds": cmds,
        "results": results,
    }


def row(name, samples, base):
    secs = [s for s, _ in samples]
    rss = max(r for _, r in samples)
    med = statistics.median(secs)
    ratio = med / base if base else float("nan")
    return f"| {name} | {med:.2f} s | {min(secs):.2f}-{max(secs):.2f} s | {rss:.0f} MB | {ratio:.2f}x |"


def machine():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    nmap = subprocess.run(["nmap", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Linux {platform.release()}; {nmap}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root (it creates network namespaces)")
    scenarios = [scenario_all_ports(args.runs)]

    out = ["# Benchmarks", "",
           "Written by `bench/run` (do not edit by hand). Every scenario runs in a private",
           "network namespace with listeners the benchmark starts; tools run interleaved,",
           f"{args.runs} runs each. Time is wall clock; RSS is the peak over the runs",
           "(`/usr/bin/time -f %M`); ratio is the median over wscan's median (above 1: slower",
           "than wscan).", "",
           f"Machine: {machine()}.", "",
           f"Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", ""]
    for sc in scenarios:
        base = statistics.median(s for s, _ in sc["results"]["wscan"])
        out += [f"## {sc['title']}", "",
                "| tool | median | min-max | peak RSS | ratio |", "|---|---|---|---|---|"]
        out += [row(name, samples, base) for name, samples in sc["results"].items()]
        out += ["", "Commands:", ""]
        out += [f"- {name}: `{' '.join(cmd).replace(str(ROOT) + '/', '')}`" for name, cmd in sc["cmds"].items()]
        out += [""]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
