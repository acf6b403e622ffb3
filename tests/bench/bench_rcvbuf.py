#!/usr/bin/env python3
"""`make bench`: what the bounded receive buffer of stream listeners costs
(issue 10). One agent (dry run, the shipped mappings, no tap) with two TCP
listeners, `rcvbuf` 65536 (the default: it bounds what the kernel
acknowledges while the agent is paused) and `rcvbuf` 0 (Linux autotuning);
each round sends the same burst of sample lines (those no shipped mapping
decides on, so that intake is what is measured) to one, then the other, on
one connection each, and times until messages_received has counted them.
Prints msgs/s per listener and the ratio per round (rounds interleaved: the
ratio within a round is what holds under other load), then the median
ratio. No goal."""
import argparse
import glob
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
import bench_dispatch  # noqa: E402

RCVBUFS = (65536, 0)


def burst(shared, n):
    lines = []
    for path in sorted(glob.glob(os.path.join(shared, "samples", "*.log"))):
        with open(path, "rb") as f:
            lines += [l for l in f.read().split(b"\n")
                      if l.strip() and b"notable" not in l and b"EVID" not in l]
    if not lines:
        raise SystemExit("bench: no sample lines under %s/samples" % shared)
    return b"\n".join(lines[i % len(lines)] for i in range(n)) + b"\n"


def received(status_port):
    return bench_dispatch.metrics(status_port)["rtr_agent_messages_received_total"]


def timed(port, status_port, data, n):
    before = received(status_port)
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(data)
    deadline = t0 + 60
    while received(status_port) - before < n:
        if time.monotonic() > deadline:
            raise SystemExit("bench: %d messages not counted within 60 s" % n)
        time.sleep(0.005)
    return n / (time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--count", type=int, default=300000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    data = burst(args.shared, args.count)
    with tempfile.TemporaryDirectory(prefix="rtr-bench-rcvbuf.") as d:
        listen = [{"proto": "tcp", "address": "127.0.0.1:0", "rcvbuf": rcvbuf,
                   "port_file": os.path.join(d, "port-%d" % rcvbuf)} for rcvbuf in RCVBUFS]
        cfg = bench_dispatch.dry_run_config(d, listen)
        path = os.path.join(d, "bench.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        agent = subprocess.Popen([args.agent, "run", "-c", path])
        try:
            ports = [int(bench_dispatch.wait_file(os.path.join(d, "port-%d" % r)))
                     for r in RCVBUFS]
            status_port = int(bench_dispatch.wait_file(os.path.join(d, "status")))
            ratios = []
            for r in range(args.rounds):
                bounded = timed(ports[0], status_port, data, args.count)
                auto = timed(ports[1], status_port, data, args.count)
                ratios.append(bounded / auto)
                print("round %d: rcvbuf 65536 %.0f msgs/s, autotuned %.0f msgs/s, ratio %.2f"
                      % (r, bounded, auto, ratios[-1]), flush=True)
            print("rcvbuf 65536 / autotuned, median over %d rounds: %.2f"
                  % (args.rounds, statistics.median(ratios)))
        finally:
            agent.terminate()
            agent.wait(30)


if __name__ == "__main__":
    main()
