#!/usr/bin/env python3
"""`make bench`: the production path (issue 11): the daemon with the shipped
mappings loaded, dry-run decisions, no per-message output, fed over TCP by
blast on this machine (the sender shares the cores). Two mixes of the
bench-peers corpus (tests/bench/corpus.py: 410-byte lines, 75 % CEF, 20 %
LEEF, 5 % noise):

  raw     a raw stream: the lines no shipped mapping decides on, plus 1 %
          that do (alerts are rare in a DTEX or firewall stream);
  alerts  the corpus as generated, where about 40 % of the lines are alerts
          (every one resolved, deduplicated and audited in dry-run).

Each round runs every case once (interleaved: the ratios within a round hold
under other load): raw over 1 and 2 connections (2 connections are read by
2 workers: throughput bound by the cores, not by one worker), alerts over 1.
Prints msgs/s, the agent's CPU-seconds per million messages (stable under
load) and the sender's, the median per case, and whether raw over one
connection meets the goals: >= --min-rate msgs/s and <= --max-cpu CPU-s per
million. Exit status 1 when it misses them."""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
import bench_dispatch  # noqa: E402
import corpus  # noqa: E402

POOL = 100000          # distinct lines; blast repeats them to --count
ALERTS_IN_RAW = 0.01   # the share of deciding lines in the raw mix


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def deciding_lines(agent, config, path):
    """The 1-based line numbers of path that some shipped mapping decides on,
    from `replay --dry-run` (the mappings' own verdict, not a guess)."""
    out = subprocess.run([agent, "replay", "-c", config, "--dry-run", path],
                         capture_output=True, check=True).stdout
    return {json.loads(line)["input_line"] for line in out.splitlines() if line.strip()}


def write_mixes(agent, config, d):
    lines, _ = corpus.generate(POOL)
    alerts = os.path.join(d, "alerts.log")
    with open(alerts, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    deciding = deciding_lines(agent, config, alerts)
    keep_every = int(1 / ALERTS_IN_RAW)
    raw, n_alerts = [], 0
    for i, line in enumerate(lines, 1):
        if i not in deciding:
            raw.append(line)
        elif n_alerts * keep_every <= len(raw):
            raw.append(line)
            n_alerts += 1
    path = os.path.join(d, "raw.log")
    with open(path, "wb") as f:
        f.write(b"\n".join(raw) + b"\n")
    print("corpus: %d lines, %d (%.0f %%) decided on by the shipped mappings; raw mix: %d "
          "lines, %d of them alerts" % (len(lines), len(deciding), 100.0 * len(deciding) /
                                        len(lines), len(raw), n_alerts), flush=True)
    return {"raw": path, "alerts": alerts}


def run_case(args, agent, port, status_port, path, conns):
    """Sends --count lines of path over conns connections; returns (msgs/s,
    agent CPU-s per million, sender CPU-s per million)."""
    before = bench_dispatch.metrics(status_port)["rtr_agent_messages_received_total"]
    cpu0, sender0 = bench_dispatch.cpu_seconds(agent.pid), children_cpu()
    t0 = time.monotonic()
    blast = subprocess.Popen([args.blast, "--tcp", "127.0.0.1:%d" % port, "--connections",
                              str(conns), "--count", str(args.count), path],
                             stdout=subprocess.DEVNULL)
    deadline = t0 + 120
    received = "rtr_agent_messages_received_total"
    while bench_dispatch.metrics(status_port)[received] - before < args.count:
        if time.monotonic() > deadline:
            blast.kill()
            raise SystemExit("bench: %d messages not counted within 120 s" % args.count)
        time.sleep(0.01)
    took = time.monotonic() - t0
    if blast.wait(30) != 0:
        raise SystemExit("bench: blast failed")
    per_million = 1e6 / args.count
    return (args.count / took, (bench_dispatch.cpu_seconds(agent.pid) - cpu0) * per_million,
            (children_cpu() - sender0) * per_million)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--blast", required=True)
    ap.add_argument("--count", type=int, default=2000000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-rate", type=float, default=1000000)
    ap.add_argument("--max-cpu", type=float, default=1.5)
    args = ap.parse_args()
    cases = [("raw", 1), ("raw", 2), ("alerts", 1)]
    with tempfile.TemporaryDirectory(prefix="rtr-bench-intake.") as d:
        cfg = bench_dispatch.dry_run_config(d, [{"proto": "tcp", "address": "127.0.0.1:0",
                                                  "port_file": os.path.join(d, "port")}])
        config = os.path.join(d, "bench.json")
        with open(config, "w") as f:
            json.dump(cfg, f)
        mixes = write_mixes(args.agent, config, d)
        agent = subprocess.Popen([args.agent, "run", "-c", config])
        try:
            port = int(bench_dispatch.wait_file(os.path.join(d, "port")))
            status_port = int(bench_dispatch.wait_file(os.path.join(d, "status")))
            results = {c: [] for c in cases}
            for r in range(args.rounds):
                row = []
                for mix, conns in cases:
                    rate, cpu, sender = run_case(args, agent, port, status_port, mixes[mix], conns)
                    results[(mix, conns)].append((rate, cpu, sender))
                    row.append("%s x%d %.0f msgs/s %.2f CPU-s/M (sender %.2f)"
                               % (mix, conns, rate, cpu, sender))
                print("round %d: %s" % (r, "; ".join(row)), flush=True)
        finally:
            agent.terminate()
            agent.wait(30)
    print("median over %d rounds of %d messages:" % (args.rounds, args.count))
    for (mix, conns), runs in results.items():
        print("  %-6s %d connection%s  %9.0f msgs/s  %5.2f CPU-s per million  (sender %.2f)"
              % (mix, conns, "" if conns == 1 else "s", statistics.median(r[0] for r in runs),
                 statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs)))
    raw = results[("raw", 1)]
    rate, cpu = statistics.median(r[0] for r in raw), statistics.median(r[1] for r in raw)
    ok = rate >= args.min_rate and cpu <= args.max_cpu
    print("production path, raw stream, one connection: %.0f msgs/s (goal >= %.0f), %.2f CPU-s "
          "per million (goal <= %.2f): %s" % (rate, args.min_rate, cpu, args.max_cpu,
                                              "ok" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
