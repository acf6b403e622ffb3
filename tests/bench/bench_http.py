#!/usr/bin/env python3
"""`make bench`: the HTTP intake (issue 15): webhook requests per second the
agent acknowledges, each 202 sent only once its alert is spooled and
fsynced, so that the spool's group commit (one fdatasync for every alert
gathered since the last one) sets the pace, not one fsync per request.

One agent, direct mode to a local HTTPS sink (bench_dispatch.Sink), the
spool in $TMPDIR, a plain HTTP and a TLS listener (proto "http"), and a
mapping that decides every request (one JSON object, a distinct Id in each,
so no two are duplicates). Cases, each for --seconds:

  reference  plain keep-alive, bodies no mapping decides: 200 with nothing
             spooled (what the clients and the HTTP layer do without the
             spool: the ceiling of this machine);
  keep-alive plain and TLS, --conns connections (8 and 32) each sending
             requests back to back: requests/s and the latency send -> 202
             (p50, p99);
  new TLS    a new connection (and full handshake) per request, --fresh-conns
             at a time.

The clients are --procs processes (multiprocessing, spawn), each one
selector loop over its share of raw sockets: http.client in threads takes
a whole core for some 6,000-7,000 requests/s (measured on 2 cores), which
is what the agent does here. They share the cores with the agent and the
sink, so each case also prints CPU: the agent's (CPU-seconds per 1,000
requests from /proc/<pid>/stat, and its busiest thread), the clients'
(their busiest process), the sink's (this process), other processes' and
the machine's idle share, and names the bottleneck: a thread or process
near 100 % of a core, else the machine's cores (under 20 % idle), else
none (the requests wait: fsync, round trips; a p50 near 40 ms is flagged as
Nagle against a delayed ACK). With perf (tracepoint syscalls:sys_enter_fdatasync) the agent's
fdatasyncs are counted too: requests per fdatasync is the group commit.

Checks that every request got 202 (200 for the reference) and that the
spool counted one append per 202 (none for the reference). Goals: >= --min-rate requests/s with the
most keep-alive connections (with fewer, the rate is connections / latency,
not what the agent can take), plain and TLS; p99 <= --max-p99-ms in every
keep-alive case. Exit 1 when one is missed or a check fails.
"""
import argparse
import array
import asyncio
import http.client
import json
import multiprocessing
import os
import resource
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "servers"))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
import bench_dispatch  # noqa: E402
import certs  # noqa: E402

KEY = "bench-http-key-0a1b2c3d4e5f6071"
SOURCE = "bench"
USER = "bench.user@example.com"
# A Sentinel-like alert; %s is its Id (unique per request).
BODY = ('{"ProductName": "Bench", "AlertName": "Webhook bench", "Severity": "High", '
        '"Entities": [{"Name": "%s", "Type": "account"}], "Id": "%%s"}' % USER)
UNDECIDED = '{"ProductName": "Other", "AlertName": "not an alert", "Id": "%s"}'
BUSY = 90.0  # % of one core: a thread or process this busy is the bottleneck
MACHINE_IDLE = 20.0  # % of all cores: no more idle than this, the cores are
ARGS = None  # the command line (main)


# ---- the clients (run in their own processes) ----

def _request(body):
    return (b"POST /v1/alerts/" + SOURCE.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"X-API-Key: " + KEY.encode() + b"\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class _Conn:
    __slots__ = ("sock", "out", "buf", "sent", "step", "events")

    def __init__(self):
        self.sock = None
        self.out = b""
        self.buf = b""
        self.sent = 0.0
        self.step = None
        self.events = 0


def _response_status(buf):
    """The status of the response buf holds whole, else None (the agent
    always sends Content-Length)."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end == -1:
        return None
    head = buf[:head_end].split(b"\r\n")
    length = 0
    for line in head[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return int(head[0].split(None, 2)[1]) if len(buf) >= head_end + 4 + length else None


def client(job, ready, start, results):
    """A client process (see _client); an error is put on both queues, so
    that the parent does not wait for it."""
    try:
        _client(job, ready, start, results)
    except Exception as e:  # noqa: BLE001 (any failure ends the case)
        msg = "client %s: %s: %s" % (job["tag"], type(e).__name__, e)
        ready.put(msg)
        results.put({"error": msg})


def _client(job, ready, start, results):
    """One client process: job["conns"] connections to job["port"]; keep-alive
    connections are opened (and their TLS handshakes done) before `ready`;
    from start.value (time.monotonic) for job["seconds"], each sends a
    request, waits for the answer and sends the next; with job["fresh"] each
    request has a connection of its own, and its latency counts from
    connect(). Puts {count, status counts, latencies (ms), cpu, done} on
    results."""
    addr = ("127.0.0.1", job["port"])
    ctx = None
    if job["tls"]:
        ctx = ssl.create_default_context(cafile=job["ca"])
    template = BODY if job["decided"] else UNDECIDED
    sel = selectors.DefaultSelector()
    latencies = array.array("d")
    statuses = {}
    seq = [0]
    live = [job["conns"]]
    deadline = 0.0

    def want(c, events):
        if c.events != events:
            sel.modify(c.sock, events, c)
            c.events = events

    def open_fresh(c):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        c.sent = time.perf_counter()
        try:
            s.connect(addr)
        except BlockingIOError:
            pass
        c.sock, c.step, c.events = s, "connect", selectors.EVENT_WRITE
        sel.register(s, c.events, c)

    def begin(c):
        seq[0] += 1
        c.out = _request((template % ("%s-%d" % (job["tag"], seq[0]))).encode())
        c.buf = b""
        if not job["fresh"]:
            c.sent = time.perf_counter()
        c.step = "send"

    def close(c):
        sel.unregister(c.sock)
        c.sock.close()
        c.sock = None

    def advance(c):
        """Runs c's steps until its socket makes it wait (an exception)."""
        while True:
            if c.step == "connect":
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, os.strerror(err))
                if ctx is None:
                    begin(c)
                    continue
                sel.unregister(c.sock)  # wrapping detaches the plain socket
                c.sock = ctx.wrap_socket(c.sock, server_hostname="127.0.0.1",
                                         do_handshake_on_connect=False)
                sel.register(c.sock, c.events, c)
                c.step = "handshake"
            elif c.step == "handshake":
                c.sock.do_handshake()
                begin(c)
            elif c.step == "send":
                c.out = c.out[c.sock.send(c.out):]
                if not c.out:
                    c.step = "recv"
            else:
                data = c.sock.recv(65536)
                if not data:
                    raise ConnectionError("the agent closed the connection")
                c.buf += data
                status = _response_status(c.buf)
                if status is None:
                    continue
                latencies.append((time.perf_counter() - c.sent) * 1000.0)
                statuses[status] = statuses.get(status, 0) + 1
                if job["fresh"] or time.monotonic() >= deadline:
                    close(c)
                if time.monotonic() >= deadline:
                    live[0] -= 1
                    return
                if job["fresh"]:
                    open_fresh(c)
                    return  # connect() in progress: wait until writable
                begin(c)

    conns = [_Conn() for _ in range(job["conns"])]
    if not job["fresh"]:
        for c in conns:
            s = socket.create_connection(addr, timeout=30)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ctx is not None:
                s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
            s.setblocking(False)
            c.sock, c.events = s, selectors.EVENT_READ
            sel.register(s, c.events, c)
    ready.put(os.getpid())
    while start.value == 0.0:
        time.sleep(0.001)
    while time.monotonic() < start.value:
        time.sleep(0.0005)
    deadline = start.value + job["seconds"]
    cpu0 = time.process_time()
    pending = []
    for c in conns:
        if job["fresh"]:
            open_fresh(c)
        else:
            begin(c)
            pending.append(c)
    while True:
        for c in pending:
            try:
                advance(c)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError) as e:
                write = isinstance(e, ssl.SSLWantWriteError) or (
                    isinstance(e, BlockingIOError) and c.step == "send")
                want(c, selectors.EVENT_WRITE if write else selectors.EVENT_READ)
        if live[0] == 0:
            break
        events = sel.select(timeout=10)
        if not events:
            raise TimeoutError("no answer from the agent in 10 s")
        pending = [key.data for key, _ in events]
    results.put({"count": len(latencies), "statuses": statuses,
                 "latencies": latencies.tobytes(), "cpu": time.process_time() - cpu0,
                 "done": time.monotonic()})


# ---- the agent and what it costs ----

def thread_cpu(pid):
    """{tid: CPU seconds} of every thread of pid (/proc/<tid>/stat would
    give the whole process's)."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        out[tid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def machine_cpu():
    """(busy, all) CPU seconds of the whole machine so far, from /proc/stat:
    what other processes take counts too (the cores are shared)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    tck = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tck, sum(fields) / tck


def own_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class FsyncCounter:
    """perf stat on the agent's fdatasync and fsync tracepoints for one
    case; unavailable (None) without perf or the permission."""

    def __init__(self, pid, enabled):
        self.proc = None
        if not enabled or shutil.which("perf") is None:
            return
        self.proc = subprocess.Popen(
            ["perf", "stat", "-x", ",", "-e",
             "syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync", "-p", str(pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def stop(self):
        """-> the fsyncs counted, or None."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            return None
        total, seen = 0, 0
        for line in err.splitlines():
            fields = line.split(",")
            if len(fields) > 2 and fields[2].startswith("syscalls:sys_enter_f"):
                if not fields[0].isdigit():
                    return None  # <not supported> or <not counted>
                total += int(fields[0])
                seen += 1
        return total if seen == 2 else None


def start_agent(tmp, sink, ca, cert, key):
    """-> (agent process, plain port, TLS port, status port)."""
    d = os.path.join(tmp, "agent")
    os.makedirs(d)
    key_file = os.path.join(d, "http.key")
    with open(key_file, "w") as f:
        f.write(KEY)
    os.chmod(key_file, 0o600)
    with open(os.path.join(d, "api.key"), "w") as f:
        f.write("bench-api-key\n")
    with open(os.path.join(d, "users.csv"), "w") as f:
        f.write("%s,bench.user@mail.example.com\n" % USER)
    with open(os.path.join(d, "webhook.json"), "w") as f:
        json.dump({"mappings": [{
            "name": "webhook-bench",
            "when": [{"field": "http.source", "equals": SOURCE},
                     {"field": "json.ProductName", "equals": "Bench"}],
            "rule": [{"field": "json.AlertName"}],
            "user": [{"field": "json.Entities.0.Name"}]}]}, f)
    listener = {"proto": "http", "address": "127.0.0.1:0", "api_key_file": key_file}
    cfg = {
        "listen": [dict(listener, port_file=os.path.join(d, "http.port")),
                   dict(listener, port_file=os.path.join(d, "https.port"), tls=True, cert=cert,
                        key=key)],
        "status": {"address": "127.0.0.1:0", "port_file": os.path.join(d, "status.port")},
        "mappings": [os.path.join(d, "webhook.json")],
        "identity": {"static": {"file": os.path.join(d, "users.csv")}},
        "dispatch": {"mode": "direct", "url": sink.url + "/v1/events",
                     "api_key_file": os.path.join(d, "api.key"), "ca_file": ca},
        "spool": {"dir": os.path.join(d, "spool")},
        "log_level": "warning",
    }
    path = os.path.join(d, "bench.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(d, "agent.log"), "wb")
    agent = subprocess.Popen([ARGS.agent, "run", "-c", path], stdout=log, stderr=log)
    log.close()
    try:
        ports = [int(bench_dispatch.wait_file(os.path.join(d, name)))
                 for name in ("http.port", "https.port", "status.port")]
    except SystemExit:
        agent.kill()
        agent.wait()
        raise SystemExit("bench: the agent did not start:\n" + agent_log(tmp))
    return (agent,) + tuple(ports)


def agent_log(tmp):
    with open(os.path.join(tmp, "agent", "agent.log"), errors="replace") as f:
        return f.read()[-2000:]


def fsync_latency_ms(d, n=200):
    """Median fdatasync of a 300-byte append in d: what one fsync per
    request would cost."""
    fd, path = tempfile.mkstemp(dir=d)
    times = []
    try:
        for _ in range(n):
            os.write(fd, b"x" * 300)
            t = time.perf_counter()
            os.fdatasync(fd)
            times.append((time.perf_counter() - t) * 1000.0)
    finally:
        os.close(fd)
        os.unlink(path)
    times.sort()
    return times[n // 2]


def stop_sink(sink):
    """Stops the sink's loop once its handlers saw the agent's connections
    close (stopped with them pending, each prints "Task was destroyed")."""
    async def drain():
        others = asyncio.all_tasks() - {asyncio.current_task()}
        if others:
            await asyncio.wait(others, timeout=5)
    try:
        asyncio.run_coroutine_threadsafe(drain(), sink.loop).result(10)
    finally:
        sink.loop.call_soon_threadsafe(sink.loop.stop)


# ---- the cases ----

def run_case(env, name, port, tls, conns, fresh=False, decided=True, seconds=None):
    """One case: -> dict of its figures (see report())."""
    seconds = seconds or ARGS.seconds
    mp = multiprocessing.get_context("spawn")
    ready, results = mp.Queue(), mp.Queue()
    start = mp.Value("d", 0.0, lock=False)
    n_procs = max(1, min(ARGS.procs, conns))
    procs = []
    for i in range(n_procs):
        job = {"port": port, "tls": tls, "ca": env["ca"], "fresh": fresh, "decided": decided,
               "seconds": seconds, "tag": "%s-%d-%d" % (name, conns, i),
               "conns": conns // n_procs + (1 if i < conns % n_procs else 0)}
        p = mp.Process(target=client, args=(job, ready, start, results), daemon=True)
        p.start()
        procs.append(p)
    try:
        for _ in procs:
            got = ready.get(timeout=60)
            if isinstance(got, str):
                raise SystemExit("bench: " + got)
        agent = env["agent"].pid
        appends0 = spool_appends(env)
        fsyncs = FsyncCounter(agent, ARGS.perf)
        time.sleep(0.3 if fsyncs.proc is not None else 0.05)  # perf attaches
        cpu0, threads0, own0 = bench_dispatch.cpu_seconds(agent), thread_cpu(agent), own_cpu()
        machine0 = machine_cpu()
        w0 = time.monotonic()
        start.value = w0 + 0.02
        outs = [results.get(timeout=seconds + 60) for _ in procs]
        for o in outs:
            if "error" in o:
                raise SystemExit("bench: %s: %s" % (name, o["error"]))
        w1 = time.monotonic()
        cpu1, threads1, own1 = bench_dispatch.cpu_seconds(agent), thread_cpu(agent), own_cpu()
        machine1 = machine_cpu()
        n_fsync = fsyncs.stop()
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    count = sum(o["count"] for o in outs)
    if count == 0:
        raise SystemExit("bench: %s: no request answered in %.0f s" % (name, seconds))
    statuses = {}
    for o in outs:
        for code, n in o["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    latencies = array.array("d")
    for o in outs:
        latencies.frombytes(o["latencies"])
    latencies = sorted(latencies)
    elapsed = max(o["done"] for o in outs) - start.value
    wall = w1 - w0
    busiest = max((threads1[t] - threads0.get(t, 0.0) for t in threads1), default=0.0)
    want = 202 if decided else 200
    appends = wait_appends(env, appends0, statuses.get(202, 0))
    return {
        "name": name, "conns": conns, "procs": n_procs, "count": count,
        "rate": count / elapsed,
        "p50": bench_dispatch.percentile(latencies, 50),
        "p99": bench_dispatch.percentile(latencies, 99), "max": latencies[-1],
        "agent_per_1000": (cpu1 - cpu0) * 1000.0 / count,
        "agent_pct": 100.0 * (cpu1 - cpu0) / wall, "thread_pct": 100.0 * busiest / wall,
        "client_pct": 100.0 * max(o["cpu"] for o in outs) / elapsed,
        "clients_pct": 100.0 * sum(o["cpu"] for o in outs) / elapsed,
        "sink_pct": 100.0 * (own1 - own0) / wall,
        "machine_pct": 100.0 * (machine1[0] - machine0[0]) / wall,
        "idle_pct": max(0.0, 100.0 * (1.0 - (machine1[0] - machine0[0])
                                      / (machine1[1] - machine0[1]))),
        "fsyncs": n_fsync, "appends": appends, "statuses": statuses, "want": want,
    }


def spool_appends(env):
    return bench_dispatch.metrics(env["status"])["rtr_agent_spool_appends_total"]


def wait_appends(env, before, expected):
    """The spool's appends since `before`, once they reach expected (each
    202 was sent after its append: the counter may lag a little)."""
    deadline = time.monotonic() + 5
    while True:
        got = spool_appends(env) - before
        if got >= expected or time.monotonic() > deadline:
            return int(got)
        time.sleep(0.02)


def others_pct(r):
    """CPU of processes outside this benchmark (% of one core)."""
    return max(0.0, r["machine_pct"] - r["agent_pct"] - r["clients_pct"] - r["sink_pct"])


def bottleneck(r):
    """What held the case back, in words (the first that applies)."""
    if r["thread_pct"] >= BUSY:
        return "the agent (a thread at %.0f %%)" % r["thread_pct"]
    if r["client_pct"] >= BUSY:
        return "the client (a process at %.0f %%)" % r["client_pct"]
    if 40.0 <= r["p50"] <= 48.0:
        # Linux delays an ACK 40 ms: a reply in two writes under Nagle
        # waits that long for the client's ACK of the first.
        return "none: the requests wait ~40 ms (Nagle against a delayed ACK?)"
    if r["idle_pct"] <= MACHINE_IDLE:
        return "the machine's cores (%.0f %% idle; other processes %.0f %%)" % (
            r["idle_pct"], others_pct(r))
    return "none saturated (the requests wait: fsync, round trips)"


def report(r, rate_goal=False, p99_goal=False):
    """Prints r; -> the problems (missed goals, failed checks)."""
    problems = []
    if set(r["statuses"]) != {r["want"]}:
        problems.append("%s: answers %s, expected only %d"
                        % (r["name"], sorted(r["statuses"].items()), r["want"]))
    if r["appends"] != r["statuses"].get(202, 0):
        problems.append("%s: the spool counted %d appends for %d answers 202"
                        % (r["name"], r["appends"], r["statuses"].get(202, 0)))
    verdicts = []
    if rate_goal:
        ok = r["rate"] >= ARGS.min_rate
        verdicts.append(">= %.0f/s: %s" % (ARGS.min_rate, "ok" if ok else "MISSED"))
        if not ok:
            problems.append("%s, %d conns: %.0f requests/s, goal %.0f"
                            % (r["name"], r["conns"], r["rate"], ARGS.min_rate))
    if p99_goal:
        ok = r["p99"] <= ARGS.max_p99_ms
        verdicts.append("p99 <= %.0f ms: %s" % (ARGS.max_p99_ms, "ok" if ok else "MISSED"))
        if not ok:
            problems.append("%s, %d conns: p99 %.1f ms, goal %.0f"
                            % (r["name"], r["conns"], r["p99"], ARGS.max_p99_ms))
    verdict = " (goal %s)" % ", ".join(verdicts) if verdicts else ""
    fsyncs = "n/a"
    if r["fsyncs"]:
        fsyncs = "%d (%.1f requests each)" % (r["fsyncs"], r["count"] / r["fsyncs"])
    elif r["fsyncs"] == 0:
        fsyncs = "0"
    print("%-44s %7.0f req/s, send -> %d p50 %.2f ms, p99 %.2f ms, max %.1f ms%s"
          % ("%s, %d conns (%d procs):" % (r["name"], r["conns"], r["procs"]), r["rate"],
             r["want"], r["p50"], r["p99"], r["max"], verdict))
    print("    %d requests, fdatasyncs %s; agent %.3f CPU-s per 1,000 requests; CPU (%% of a "
          "core): agent %.0f (busiest thread %.0f), clients %.0f (busiest %.0f), sink %.0f, "
          "others %.0f, machine idle %.0f %%; bottleneck: %s"
          % (r["count"], fsyncs, r["agent_per_1000"], r["agent_pct"], r["thread_pct"],
             r["clients_pct"], r["client_pct"], r["sink_pct"], others_pct(r), r["idle_pct"],
             bottleneck(r)), flush=True)
    return problems


def check_answer(port):
    """One request by http.client: a 202 naming the bench mapping (the
    selector clients only read the status)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/alerts/" + SOURCE, body=BODY % "check",
                     headers={"X-API-Key": KEY, "Content-Type": "application/json"})
        r = conn.getresponse()
        body = r.read().decode()
    finally:
        conn.close()
    got = json.loads(body).get("decisions") if r.status == 202 else None
    if not got or [d["mapping"] for d in got] != ["webhook-bench"]:
        raise SystemExit("bench: the check request got %d %s" % (r.status, body))


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", default=os.path.join(ROOT, os.environ.get("BUILD", "build"),
                                                    "rtr-agent"))
    ap.add_argument("--seconds", type=float, default=3.0, help="per case")
    ap.add_argument("--conns", default="8,32", help="keep-alive connections, per case")
    ap.add_argument("--fresh-conns", type=int, default=8,
                    help="requests in flight, each on a new TLS connection")
    ap.add_argument("--procs", type=int, default=len(os.sched_getaffinity(0)),
                    help="client processes (default: the cores)")
    ap.add_argument("--min-rate", type=float, default=2000.0)
    ap.add_argument("--max-p99-ms", type=float, default=50.0)
    ap.add_argument("--no-perf", dest="perf", action="store_false",
                    help="do not count fdatasyncs with perf")
    ARGS = ap.parse_args()
    ARGS.agent = os.path.abspath(ARGS.agent)
    conns = [int(c) for c in ARGS.conns.split(",")]

    tmp = tempfile.mkdtemp(prefix="rtr-bench-http.")
    agent = sink = None
    problems = []
    try:
        ca = certs.make_ca(os.path.join(tmp, "certs"))
        cert, key = certs.make_cert(os.path.join(tmp, "certs"), ca, "server")
        sink = bench_dispatch.Sink(cert, key)
        agent, plain, tls, status = start_agent(tmp, sink, ca, cert, key)
        env = {"agent": agent, "status": status, "ca": ca}
        fsync_ms = fsync_latency_ms(tmp)
        print("fdatasync in $TMPDIR (%s): p50 %.3f ms: one per request would cap the agent "
              "near %.0f requests/s" % (tmp, fsync_ms, 1000.0 / fsync_ms), flush=True)
        check_answer(plain)
        # Warm-up: the sink's connection, the identity cache, the spool's
        # first segment.
        run_case(env, "warm-up", plain, False, conns[0], seconds=1)
        problems += report(run_case(env, "reference: plain, undecided", plain, False,
                                    max(conns), decided=False))
        for name, port, is_tls in (("plain keep-alive", plain, False),
                                   ("TLS keep-alive", tls, True)):
            for n in conns:
                problems += report(run_case(env, name, port, is_tls, n),
                                   rate_goal=n == max(conns), p99_goal=True)
        problems += report(run_case(env, "TLS, new connection per request", tls, True,
                                    ARGS.fresh_conns, fresh=True))
        if agent.poll() is not None:
            problems.append("the agent exited (%d):\n%s" % (agent.returncode, agent_log(tmp)))
    finally:
        if agent is not None and agent.poll() is None:
            agent.terminate()
            agent.wait(timeout=60)
        if sink is not None:
            stop_sink(sink)
        shutil.rmtree(tmp, ignore_errors=True)
    for p in problems:
        print("bench: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
