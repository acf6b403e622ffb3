#!/usr/bin/env python3
"""`make bench-peers` (issue 11): rtr-agent against rsyslog and syslog-ng,
side by side on this machine, loopback only, bounded to about 10 minutes.

Every contender gets the same corpus (tests/bench/corpus.py: 1M lines of
~410 bytes, 75 % CEF under RFC 5424/3164 envelopes, 20 % LEEF, 5 % noise),
the same sender (blast) and writes one JSON line per message with the parsed
fields: rtr-agent `run --tap` (no mappings: like the peers, it parses and
writes; the mappings' cost is `make bench`'s production path),
rsyslog (imtcp/imudp, mmnormalize with a liblognorm CEF/LEEF rulebase,
omfile) and syslog-ng (network(), csv + kv parsers, file()).

Measured, per contender:
- TCP msgs/s: the whole corpus on one connection, timed until the output
  file has every line; CPU seconds of the contender per million messages
  (utime + stime of all its threads, /proc/PID/stat); peak RSS (VmHWM, one
  process per run). Rounds are interleaved, order rotated, so that a ratio
  within a round holds under the same machine load.
- UDP loss at 100k/s, 200k/s and full blast, 4 MiB receive buffer: datagrams
  sent against lines written, and the kernel's drop counter for the port.
- CEF field fidelity: of the first 2,000 CEF lines, the share whose six named
  header fields and every extension key/value are exactly the generator's
  truth (the CEF version is left out: liblognorm does not report it).

Prints a table per round, then the medians, the ratios of rtr-agent to the
best peer and the issue's targets as PASS/MISS. A missed target does not fail
the command; a contender that breaks (does not start, loses TCP lines) does."""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import corpus  # noqa: E402
from bench_dispatch import cpu_seconds  # noqa: E402

UDP_RATES = (100000, 200000, 0)
UDP_RCVBUF = 4 * 1024 * 1024
FIDELITY_SAMPLE = 2000
EXTERNAL_ID = re.compile(r"externalId=(\d+)")
HEADER6 = corpus.HEADER_KEYS[1:]


class BenchError(Exception):
    pass


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(path, proc, log, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError("exited with %d before listening: %s" % (proc.returncode, tail(log)))
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return int(text)
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.02)
    raise BenchError("did not write %s within %d s: %s" % (path, timeout, tail(log)))


def wait_listening(port, proc, log, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError("exited with %d before listening: %s" % (proc.returncode, tail(log)))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise BenchError("not listening on %d within %d s: %s" % (port, timeout, tail(log)))


def tail(path, n=600):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode(errors="replace").strip() or "(no output)"
    except OSError:
        return "(no log)"


def peak_rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def udp_drops(port):
    """The kernel's drop counter summed over every UDP socket bound to port."""
    total = 0
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if int(cols[1].split(":")[1], 16) == port:
                total += int(cols[-1])
    return total


def udp_rcvbuf(port):
    """The receive buffers the kernel gave the sockets on port (ss's skmem rb),
    as bytes: the 4 MiB asked for is doubled, or capped by rmem_max without
    SO_RCVBUFFORCE."""
    out = run_text(["ss", "-uamnH", "sport = :%d" % port])
    return sorted(set(int(b) for b in re.findall(r"skmem:\(r\d+,rb(\d+)", out))) or ["?"]


class LineCounter:
    """Counts the LFs appended to a file since the last call, reading only the
    new bytes."""

    def __init__(self, path):
        self.path, self.offset, self.lines = path, 0, 0

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                while True:
                    chunk = f.read(1 << 22)
                    if not chunk:
                        break
                    self.offset += len(chunk)
                    self.lines += chunk.count(b"\n")
        except FileNotFoundError:
            pass
        return self.lines


class Contender:
    """One process of one contender, in its own directory, writing OUT."""

    name = "?"

    def __init__(self, args, workdir):
        self.args, self.dir = args, workdir
        os.makedirs(workdir)
        self.out = os.path.join(workdir, "out.jsonl")
        self.log = os.path.join(workdir, "stderr.log")
        self.proc = None
        self.tcp_port = self.udp_port = None

    def spawn(self, argv, env=None):
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Agent(Contender):
    name = "rtr-agent --tap"

    def start(self):
        listen = [{"proto": "tcp", "address": "127.0.0.1:0",
                   "port_file": os.path.join(self.dir, "tcp.port")},
                  {"proto": "udp", "address": "127.0.0.1:0", "rcvbuf": UDP_RCVBUF,
                   "port_file": os.path.join(self.dir, "udp.port")}]
        cfg = {"listen": listen,
               "status": {"address": "127.0.0.1:0", "port_file": os.path.join(self.dir, "status")},
               "log_level": "warning"}
        path = os.path.join(self.dir, "agent.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.spawn([self.args.agent, "run", "-c", path, "--tap", self.out])
        self.tcp_port = wait_for(os.path.join(self.dir, "tcp.port"), self.proc, self.log)
        self.udp_port = wait_for(os.path.join(self.dir, "udp.port"), self.proc, self.log)

    @staticmethod
    def cef(obj):
        c = obj.get("cef")
        if not isinstance(c, dict):
            return None
        return {k: c.get(k) for k in HEADER6}, c.get("ext")

    @staticmethod
    def version(args):
        return first_line(run_text([args.agent, "version"]))


class Rsyslog(Contender):
    name = "rsyslog+lognorm"

    def start(self):
        self.udp_port = free_port(socket.SOCK_DGRAM)
        conf = fill(os.path.join(HERE, "peers", "rsyslog.conf"), DIR=self.dir, OUT=self.out,
                    UDP_PORT=self.udp_port,
                    RULEBASE=os.path.join(HERE, "peers", "cef.rulebase"))
        path = os.path.join(self.dir, "rsyslog.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.spawn(["rsyslogd", "-n", "-f", path, "-i", os.path.join(self.dir, "pid")])
        self.tcp_port = wait_for(os.path.join(self.dir, "tcp.port"), self.proc, self.log)
        wait_listening(self.tcp_port, self.proc, self.log)

    @staticmethod
    def cef(obj):
        c = (obj.get("fields") or {}).get("cef")
        if not isinstance(c, dict):
            return None
        names = ("DeviceVendor", "DeviceProduct", "DeviceVersion", "SignatureID", "Name",
                 "Severity")
        return {k: c.get(n) for k, n in zip(HEADER6, names)}, c.get("Extensions")

    @staticmethod
    def version(args):
        lognorm = run_text(["dpkg-query", "-W", "-f", "${Version}", "liblognorm5"])
        first = first_line(run_text(["rsyslogd", "-v"])).replace(" compiled with:", "")
        return "%s, liblognorm %s" % (" ".join(first.split()), lognorm)


def syslog_ng_env(root):
    """The unpacked package finds its own libraries (those the machine lacks) in root."""
    return dict(os.environ, LD_LIBRARY_PATH="%s/usr/lib/x86_64-linux-gnu:%s/usr/lib/syslog-ng"
                % (root, root))


class SyslogNg(Contender):
    name = "syslog-ng"

    def start(self):
        self.tcp_port = free_port(socket.SOCK_STREAM)
        self.udp_port = free_port(socket.SOCK_DGRAM)
        conf = fill(os.path.join(HERE, "peers", "syslog-ng.conf"), OUT=self.out,
                    TCP_PORT=self.tcp_port, UDP_PORT=self.udp_port)
        path = os.path.join(self.dir, "syslog-ng.conf")
        with open(path, "w") as f:
            f.write(conf)
        root = self.args.syslog_ng
        self.spawn([root + "/usr/sbin/syslog-ng", "-F", "-f", path,
                    "--module-path=%s/usr/lib/syslog-ng/3.38" % root,
                    "-R", os.path.join(self.dir, "persist"), "-c", os.path.join(self.dir, "ctl"),
                    "-p", os.path.join(self.dir, "pid")], env=syslog_ng_env(root))
        wait_listening(self.tcp_port, self.proc, self.log)

    @staticmethod
    def cef(obj):
        c = obj.get("_cef")
        if not isinstance(c, dict):
            return None
        return {k: c.get(k) for k in HEADER6}, c.get("ext")

    @staticmethod
    def version(args):
        return first_line(run_text([args.syslog_ng + "/usr/sbin/syslog-ng", "--version"],
                                   env=syslog_ng_env(args.syslog_ng)))


CONTENDERS = (Agent, Rsyslog, SyslogNg)


def fill(template, **values):
    with open(template) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace("@%s@" % k, str(v))
    return text


def run_text(argv, env=None):
    try:
        return subprocess.run(argv, capture_output=True, text=True, env=env,
                              timeout=10).stdout.strip()
    except OSError as e:
        return "(%s)" % e


def first_line(text):
    return (text.splitlines() or ["?"])[0]


def blast(args, *extra):
    try:
        r = subprocess.run([args.blast, *extra], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise BenchError("blast %s took over 300 s" % " ".join(extra))
    if r.returncode != 0:
        raise BenchError("blast %s failed: %s" % (" ".join(extra), r.stderr.strip()))
    return r.stdout.strip()


def wait_lines(counter, want, proc, log, stall_s, quiet_s=0.25):
    """Waits until the output holds want lines, or has not grown for stall_s.
    Returns (lines, when the output last grew). Lines are counted only once
    the file has stopped growing for quiet_s: counting a gigabyte as it is
    written would take CPU from the contender on a two-core machine."""
    size, grew = -1, time.monotonic()
    while True:
        time.sleep(0.005)
        now = time.monotonic()
        try:
            cur = os.stat(counter.path).st_size
        except FileNotFoundError:
            cur = 0
        if cur != size:
            size, grew = cur, now
        elif now - grew >= quiet_s and (counter.poll() >= want or now - grew > stall_s):
            return counter.lines, grew
        if proc.poll() is not None:
            raise BenchError("exited with %d: %s" % (proc.returncode, tail(log)))


def fidelity(cls, path, truth, sample):
    """(share of sampled CEF lines exact, share of their fields exact), in %."""
    want = {i: truth[i] for i in sample}
    exact = fields_ok = fields_all = 0
    seen = set()
    with open(path, "rb") as f:
        for raw in f:
            if len(seen) == len(want):
                break
            m = EXTERNAL_ID.search(raw.decode(errors="replace"))
            if m is None or int(m.group(1)) not in want or int(m.group(1)) in seen:
                continue
            i = int(m.group(1))
            seen.add(i)
            try:
                got = cls.cef(json.loads(raw))
            except ValueError:
                got = None
            header, ext = got if got else ({}, {})
            ext = ext if isinstance(ext, dict) else {}
            t = want[i]
            ok = sum(header.get(k) == t["header"][k] for k in HEADER6)
            ok += sum(ext.get(k) == v for k, v in t["ext"].items())
            total = len(HEADER6) + len(t["ext"])
            fields_ok += ok
            fields_all += total
            exact += ok == total and len(ext) == len(t["ext"])
    fields_all += sum(len(HEADER6) + len(want[i]["ext"]) for i in want if i not in seen)
    return 100.0 * exact / len(want), 100.0 * fields_ok / max(1, fields_all)


def tcp_run(args, cls, workdir, corpus_path, n):
    c = cls(args, workdir)
    try:
        c.start()
        counter = LineCounter(c.out)
        cpu0, t0 = cpu_seconds(c.proc.pid), time.monotonic()
        blast(args, "--tcp", "127.0.0.1:%d" % c.tcp_port, corpus_path)
        got, t1 = wait_lines(counter, n, c.proc, c.log, stall_s=20)
        cpu = cpu_seconds(c.proc.pid) - cpu0
        rss = peak_rss_mb(c.proc.pid)
    finally:
        c.stop()
    if got < n:
        raise BenchError("%s wrote %d of %d lines over TCP" % (cls.name, got, n))
    return {"rate": n / (t1 - t0), "cpu_per_m": cpu * 1e6 / n, "rss": rss, "out": c.out}


def udp_run(args, cls, workdir, corpus_path):
    c = cls(args, workdir)
    losses = {}
    try:
        c.start()
        counter = LineCounter(c.out)
        losses["rcvbuf"] = udp_rcvbuf(c.udp_port)
        for rate in UDP_RATES:
            before, drops0 = counter.poll(), udp_drops(c.udp_port)
            report = blast(args, "--udp", "127.0.0.1:%d" % c.udp_port, "--rate", str(rate),
                           "--count", str(args.udp_count), corpus_path)
            got, _ = wait_lines(counter, before + args.udp_count, c.proc, c.log, stall_s=2)
            sent_rate = float(re.search(r"([0-9.]+) datagrams/s", report).group(1))
            losses[rate] = {"loss": 100.0 * (args.udp_count - (got - before)) / args.udp_count,
                            "kernel_drops": udp_drops(c.udp_port) - drops0,
                            "sent_rate": sent_rate}
        rss = peak_rss_mb(c.proc.pid)
    finally:
        c.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return losses, rss


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    return "%d CPUs, %s, Linux %s, load average before the bench %s" % (os.cpu_count(), model,
                                                       platform.release(), load)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--blast", required=True)
    ap.add_argument("--syslog-ng", required=True, help="where fetch-syslog-ng unpacked it")
    ap.add_argument("--count", type=int, default=1000000)
    ap.add_argument("--udp-count", type=int, default=400000)
    ap.add_argument("--rounds", type=int, default=3)
    # The outputs (about 1 GB per contender and round) on tmpfs: on a disk,
    # its writeback is measured too, and it varies from run to run.
    ap.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                    help="where the corpus and the outputs go (default: /dev/shm)")
    ap.add_argument("--budget-s", type=int, default=540,
                    help="no new round starts past this many seconds")
    args = ap.parse_args()
    args.syslog_ng = os.path.abspath(args.syslog_ng)
    # SIGTERM unwinds like ^C, through the finally that stops the contender.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.monotonic()

    about = ["machine: %s" % machine()]
    about += ["version: %-16s %s" % (cls.name, cls.version(args)) for cls in CONTENDERS]
    print("\n".join(about))
    broken = []
    with tempfile.TemporaryDirectory(prefix="rtr-bench-peers.", dir=args.dir) as tmp:
        lines, truth = corpus.generate(args.count)
        corpus_path = os.path.join(tmp, "corpus.log")
        with open(corpus_path, "wb") as f:
            f.write(b"\n".join(lines) + b"\n")
        print("corpus: %d lines, %.0f bytes average, %d CEF sampled for fidelity"
              % (len(lines), sum(map(len, lines)) / len(lines),
                 min(FIDELITY_SAMPLE, len(truth))), flush=True)
        sample = sorted(truth)[:FIDELITY_SAMPLE]
        del lines

        results = {cls: [] for cls in CONTENDERS}
        fid = {}
        ratios = []
        for r in range(args.rounds):
            if r > 0 and time.monotonic() - started > args.budget_s:
                print("round %d: skipped, past the %d s budget" % (r, args.budget_s))
                break
            order = CONTENDERS[r % len(CONTENDERS):] + CONTENDERS[:r % len(CONTENDERS)]
            print("\nround %d (TCP, one connection, %d lines)" % (r, args.count))
            print("  %-16s %12s %10s %9s" % ("contender", "msgs/s", "CPU-s/1M", "RSS MB"))
            this = {}
            for cls in order:
                if cls in broken:
                    continue
                workdir = os.path.join(tmp, "r%d-%s" % (r, cls.__name__))
                try:
                    res = tcp_run(args, cls, workdir, corpus_path, args.count)
                except BenchError as e:
                    print("  %-16s BROKE: %s" % (cls.name, e))
                    broken.append(cls)
                    shutil.rmtree(workdir, ignore_errors=True)
                    continue
                if cls not in fid:
                    fid[cls] = fidelity(cls, res["out"], truth, sample)
                shutil.rmtree(workdir, ignore_errors=True)
                results[cls].append(res)
                this[cls] = res
                print("  %-16s %12.0f %10.2f %9.1f" % (cls.name, res["rate"], res["cpu_per_m"],
                                                       res["rss"]), flush=True)
            peers = [this[c]["rate"] for c in this if c is not Agent]
            if Agent in this and peers:
                ratios.append(this[Agent]["rate"] / max(peers))
                print("  rtr-agent / best peer: %.2fx" % ratios[-1])

        print("\nUDP, %d datagrams per rate, 4 MiB receive buffer (loss = not written; "
              "kernel = drops counted by the socket)" % args.udp_count)
        udp = {}
        for cls in CONTENDERS:
            if cls in broken:
                continue
            try:
                udp[cls] = udp_run(args, cls, os.path.join(tmp, "udp-%s" % cls.__name__),
                                   corpus_path)
            except BenchError as e:
                print("  %-16s BROKE: %s" % (cls.name, e))
                broken.append(cls)
                continue
            cells = []
            for rate in UDP_RATES:
                u = udp[cls][0][rate]
                cells.append("%s %5.1f %% (kernel %d, sent %.0fk/s)" % (
                    "%dk/s" % (rate // 1000) if rate else "full", u["loss"],
                    u["kernel_drops"], u["sent_rate"] / 1000))
            print("  %-16s %s; socket rb %s" % (cls.name, "; ".join(cells),
                                               "/".join(map(str, udp[cls][0]["rcvbuf"]))),
                  flush=True)

    print()
    print("\n".join(about))
    summary(results, fid, udp, ratios, broken, time.monotonic() - started)
    return 1 if broken else 0


def summary(results, fid, udp, ratios, broken, elapsed):
    def med(cls, key):
        return statistics.median(r[key] for r in results[cls]) if results[cls] else float("nan")

    def peak(cls):
        rss = [r["rss"] for r in results[cls]] + ([udp[cls][1]] if cls in udp else [])
        return max(rss) if rss else float("nan")

    def loss(cls, rate):
        return udp[cls][0][rate]["loss"] if cls in udp else float("nan")

    print("summary (medians over %d round(s), %.0f s in all)" % (
        max(len(v) for v in results.values()), elapsed))
    print("  %-16s %10s %9s %8s %9s %9s %9s %8s %8s" % (
        "contender", "msgs/s", "CPU-s/1M", "RSS MB", "UDP 100k", "UDP 200k", "UDP full",
        "CEF ok", "fields"))
    for cls in CONTENDERS:
        f = fid.get(cls, (float("nan"), float("nan")))
        print("  %-16s %10.0f %9.2f %8.1f %8.1f%% %8.1f%% %8.1f%% %7.1f%% %7.1f%%" % (
            cls.name, med(cls, "rate"), med(cls, "cpu_per_m"), peak(cls),
            loss(cls, 100000), loss(cls, 200000), loss(cls, 0), f[0], f[1]))
    peers = [c for c in CONTENDERS if c is not Agent and results[c]]
    if not results[Agent] or not peers:
        print("no ratios: rtr-agent or every peer broke")
        return
    best = lambda key, pick: pick(med(c, key) for c in peers)  # noqa: E731
    rate_ratio = statistics.median(ratios) if ratios else float("nan")
    print("\nrtr-agent against the best peer:")
    print("  msgs/s        %.2fx (per-round median; medians %.0f vs %.0f)" % (
        rate_ratio, med(Agent, "rate"), best("rate", max)))
    print("  CPU-s per 1M  %.2fx (%.2f vs %.2f)" % (
        med(Agent, "cpu_per_m") / best("cpu_per_m", min), med(Agent, "cpu_per_m"),
        best("cpu_per_m", min)))
    best_rss = min(peak(c) for c in peers)
    print("  peak RSS      %.2fx (%.1f MB vs %.1f MB)" % (peak(Agent) / best_rss, peak(Agent),
                                                         best_rss))
    for rate in UDP_RATES:
        print("  UDP loss %-5s %.1f %% vs %.1f %%" % (
            "%dk" % (rate // 1000) if rate else "full", loss(Agent, rate),
            min(loss(c, rate) for c in peers)))
    best_fid = max(fid.get(c, (0, 0))[0] for c in peers)
    print("  CEF exact     %.1f %% vs %.1f %%" % (fid.get(Agent, (float("nan"),))[0], best_fid))
    print("\ntargets (issue 11):")
    targets = [("--tap msgs/s >= 10x the best peer", rate_ratio >= 10),
               ("CPU-s per 1M <= 3", med(Agent, "cpu_per_m") <= 3),
               ("UDP loss at 200k/s = 0 %", loss(Agent, 200000) == 0),
               ("peak RSS <= 32 MB", peak(Agent) <= 32)]
    for what, ok in targets:
        print("  %-4s %s" % ("PASS" if ok else "MISS", what))
    if broken:
        print("BROKEN: %s" % ", ".join(c.name for c in broken))


if __name__ == "__main__":
    sys.exit(main())
