#!/usr/bin/env python3
"""`make bench`: alerts per second the agent takes from rsyslog and makes
durable, RELP against plain TCP in the same run (issue 10).

For each transport a fresh agent (direct mode to a local HTTPS sink, the
spool in $TMPDIR) and a private rsyslogd (tests/integration/harness.Relay:
imtcp on 127.0.0.1, a disk-assisted action queue) forwarding with omrelp
to a RELP listener, or with omfwd (octet-counted) to a TCP listener. The
test writes --count distinct alerts (CEF, externalId N) into rsyslog at
once, so rsyslog's queue, not the feeder, is the source; the clock stops
when the agent's spool_appends (alerts appended and fsynced) reaches the
count. Over RELP each alert is answered only after that fsync, so rsyslog's
window (omrelp's windowSize, 128) and the spool's group commit set the pace;
over TCP nothing waits for it. Also printed: CPU seconds per million alerts
for the agent and for rsyslogd (utime + stime from /proc over the same
interval). No goal: the figures are for the README's transport table.
Exit 1 when a run fails (rsyslog or the agent missing, the count not
reached in --timeout seconds).
"""
import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
import bench_dispatch  # noqa: E402
import harness  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "servers"))
import certs  # noqa: E402

WARM_UP = 200


def spool_appends(status_port):
    return bench_dispatch.metrics(status_port)["rtr_agent_spool_appends_total"]


def wait_appends(status_port, count, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        got = spool_appends(status_port)
        if got >= count:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise SystemExit("bench: %s: %d of %d alerts spooled after %.0f s"
                             % (what, got, count, timeout))
        time.sleep(0.01)


def feed(port, first, count):
    """Writes alerts first..first+count-1 into rsyslog's imtcp at once."""
    data = "".join(bench_dispatch.LINE % i for i in range(first, first + count)).encode()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(data)


def run(args, proto, action, sink, ca):
    """One transport: returns (alerts/s, agent CPU s per million, rsyslog
    CPU s per million)."""
    ctx = harness.Ctx("bench-" + proto)
    try:
        d = ctx.dir
        with open(os.path.join(d, "api.key"), "w") as f:
            f.write("bench-api-key\n")
        with open(os.path.join(d, "users.csv"), "w") as f:
            f.write("bench.user@example.com,bench.user@mail.example.com\n")
        cfg = {
            "listen": [{"proto": proto, "address": "127.0.0.1:0",
                        "port_file": os.path.join(d, "listen.port")}],
            "status": {"address": "127.0.0.1:0", "port_file": os.path.join(d, "status.port")},
            "mappings": [os.path.join(ROOT, "mappings", "*.json")],
            "identity": {"static": {"file": os.path.join(d, "users.csv")}},
            "dispatch": {"mode": "direct", "url": sink.url + "/v1/events",
                         "api_key_file": os.path.join(d, "api.key"), "ca_file": ca},
            "spool": {"dir": os.path.join(d, "spool")},
            "log_level": "warning",
        }
        path = os.path.join(d, "bench.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        err = open(os.path.join(d, "agent.log"), "wb")
        agent = ctx.spawn([args.agent, "run", "-c", path], stdout=err, stderr=err)
        err.close()
        try:
            port = int(bench_dispatch.wait_file(os.path.join(d, "listen.port")))
            status = int(bench_dispatch.wait_file(os.path.join(d, "status.port")))
        except SystemExit:
            with open(os.path.join(d, "agent.log"), errors="replace") as f:
                raise SystemExit("bench: the agent did not start with a %s listener:\n%s"
                                 % (proto, f.read()[-2000:]))
        relay = harness.start_relay(ctx, port, action=action, window=args.window)
        feed(relay.port, 0, WARM_UP)  # connections, the identity cache
        wait_appends(status, WARM_UP, args.timeout, proto + " warm-up")
        cpu0 = bench_dispatch.cpu_seconds(agent.pid), bench_dispatch.cpu_seconds(relay.proc.pid)
        t0 = time.monotonic()
        feed(relay.port, WARM_UP, args.count)
        t1 = wait_appends(status, WARM_UP + args.count, args.timeout, proto)
        cpu1 = bench_dispatch.cpu_seconds(agent.pid), bench_dispatch.cpu_seconds(relay.proc.pid)
        per_million = [(b - a) * 1e6 / args.count for a, b in zip(cpu0, cpu1)]
        return args.count / (t1 - t0), per_million[0], per_million[1]
    except harness.Skip as e:
        raise SystemExit("bench: %s" % e)
    finally:
        for problem in ctx.close():
            print("bench: %s: %s" % (proto, problem.splitlines()[0]), file=sys.stderr)
        shutil.rmtree(ctx.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", default=os.path.join(ROOT, os.environ.get("BUILD", "build"),
                                                    "rtr-agent"))
    ap.add_argument("--count", type=int, default=50000)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--window", type=int, default=128, help="omrelp's windowSize")
    args = ap.parse_args()
    args.agent = os.path.abspath(args.agent)
    tmp = tempfile.mkdtemp(prefix="rtr-bench-relp.")
    os.environ["RTR_IT_RUNDIR"] = tmp  # harness.Ctx folders go here
    try:
        ca = certs.make_ca(os.path.join(tmp, "certs"))
        cert, key = certs.make_cert(os.path.join(tmp, "certs"), ca, "server")
        sink = bench_dispatch.Sink(cert, key)
        results = {}
        for proto, action, label in (("tcp", "omfwd", "TCP (rsyslog omfwd, octet-counted)"),
                                     ("relp", "omrelp",
                                      "RELP (rsyslog omrelp, window %d)" % args.window)):
            rate, agent_cpu, rsyslog_cpu = run(args, proto, action, sink, ca)
            results[proto] = rate
            print("%s -> agent, spooled and fsynced: %d alerts, %.0f alerts/s; CPU s per "
                  "million alerts: agent %.1f, rsyslogd %.1f"
                  % (label, args.count, rate, agent_cpu, rsyslog_cpu), flush=True)
        print("RELP/TCP rate: %.2f" % (results["relp"] / results["tcp"]))
        sink.loop.call_soon_threadsafe(sink.loop.stop)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
