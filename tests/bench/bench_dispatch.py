#!/usr/bin/env python3
"""`make bench`: the response path's speed, end to end, on loopback.

1. Latency from the last byte of a syslog message (sent over TCP) to the
   SafeTitan request arriving at a local HTTPS stand-in, on an identity-cache
   hit (the user was resolved once before): p50 and p99 over --latency-count
   alerts sent one at a time. Goal: p99 under 5 ms.
2. Sustained dispatch: --sustained-count alerts sent as fast as TCP takes
   them; the rate is alerts delivered per second from the first byte sent to
   the last request received. Goal: at least 2,000 alerts/s, with the spool
   fsyncing (its folder is on $TMPDIR's file system).

Every alert is distinct (its CEF externalId), so none is a duplicate. The
receiver is a minimal asyncio HTTPS sink (keep-alive, answers 200, records
each request's arrival time), not the test stand-in: python3's threaded
server saturates one core near 1,800 requests/s and would measure itself.
Its cost is still in the figures, which therefore understate the agent.
Exit 1 when a goal is missed.
"""
import asyncio
import ssl
import threading
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "servers"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import certs  # noqa: E402
import harness  # noqa: E402

LINE = ("<134>1 2026-10-02T09:12:44.120Z bench-host splunkd - - - CEF:0|Splunk|Enterprise "
        "Security|7.3|notable|USB Rule|7|suser=bench.user@example.com cs1Label=search_name "
        "cs1=USB Rule externalId=%d\n")


class Sink:
    """HTTPS sink on 127.0.0.1: reads HTTP/1.1 requests (Content-Length
    bodies), answers 200 and records when each arrived."""

    def __init__(self, cert, key):
        self.times = []
        self.cond = threading.Condition()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def serve():
            self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=ctx)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()

        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(serve(), self.loop)
        ready.wait(10)
        self.url = "https://127.0.0.1:%d" % self.port

    async def handle(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                now = time.time()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                with self.cond:
                    self.times.append(now)
                    self.record(body, now)
                    self.cond.notify_all()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            writer.close()

    def record(self, body, now):
        """What a subclass keeps of each request besides its time (under
        self.cond)."""

    def wait(self, count, timeout):
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.times) >= count, timeout):
                raise SystemExit("bench: %d of %d requests arrived" % (len(self.times), count))
            return self.times[count - 1]


def wait_file(path, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return text
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise SystemExit("bench: the agent did not write %s" % path)


def cpu_seconds(pid):
    """utime + stime of a process so far (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dry_run_config(d, listen):
    """An agent config for the intake benchmarks: listen, the status
    endpoint (port in d/status), the shipped mappings, dry-run decisions
    resolved in the example directory."""
    return {"listen": listen,
            "status": {"address": "127.0.0.1:0", "port_file": os.path.join(d, "status")},
            "mappings": [os.path.join(ROOT, "mappings", "*.json")],
            "identity": {"static": {"file": os.path.join(ROOT, "systemd", "users.example.csv")}},
            "dispatch": {"mode": "dry-run"}, "log_level": "warning"}


def metrics(status_port):
    """The agent's /metrics as {name: value} (harness.parse_metrics)."""
    conn = http.client.HTTPConnection("127.0.0.1", status_port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode()
    finally:
        conn.close()
    return harness.parse_metrics(body)


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100.0))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", default=os.path.join(ROOT, os.environ.get("BUILD", "build"),
                                                    "rtr-agent"))
    ap.add_argument("--latency-count", type=int, default=1000)
    ap.add_argument("--sustained-count", type=int, default=20000)
    ap.add_argument("--max-p99-ms", type=float, default=5.0)
    ap.add_argument("--min-rate", type=float, default=2000.0)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="rtr-bench-dispatch.")
    ca = certs.make_ca(os.path.join(tmp, "certs"))
    cert, key = certs.make_cert(os.path.join(tmp, "certs"), ca, "server")
    st = Sink(cert, key)
    with open(os.path.join(tmp, "api.key"), "w") as f:
        f.write("bench-api-key\n")
    with open(os.path.join(tmp, "users.csv"), "w") as f:
        f.write("bench.user@example.com,bench.user@mail.example.com\n")
    cfg = {
        "listen": [{"proto": "tcp", "address": "127.0.0.1:0",
                    "port_file": os.path.join(tmp, "tcp.port")}],
        "mappings": [os.path.join(ROOT, "mappings", "*.json")],
        "identity": {"static": {"file": os.path.join(tmp, "users.csv")}},
        "dispatch": {"mode": "direct", "url": st.url + "/v1/events",
                     "api_key_file": os.path.join(tmp, "api.key"), "ca_file": ca},
        "spool": {"dir": os.path.join(tmp, "spool")},
        "log_level": "warning",
    }
    path = os.path.join(tmp, "bench.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    agent = subprocess.Popen([args.agent, "run", "-c", path])
    failed = False
    try:
        port = int(wait_file(os.path.join(tmp, "tcp.port")))
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        seq = 0

        # Warm up: the TLS connection, the identity cache.
        for _ in range(20):
            sock.sendall((LINE % seq).encode())
            seq += 1
        st.wait(seq, timeout=30)

        latencies = []
        for _ in range(args.latency_count):
            sock.sendall((LINE % seq).encode())
            sent = time.time()
            seq += 1
            latencies.append((st.wait(seq, timeout=30) - sent) * 1000.0)
        latencies.sort()
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        ok = p99 < args.max_p99_ms
        failed |= not ok
        print("dispatch latency, syslog last byte -> SafeTitan request (cache hit, %d alerts): "
              "p50 %.2f ms, p99 %.2f ms, max %.2f ms (goal p99 < %.1f ms: %s)"
              % (len(latencies), p50, p99, latencies[-1], args.max_p99_ms,
                 "ok" if ok else "MISSED"))

        base = seq
        payload = "".join(LINE % (base + i) for i in range(args.sustained_count)).encode()
        start = time.time()
        sock.sendall(payload)
        seq += args.sustained_count
        elapsed = st.wait(seq, timeout=120) - start
        rate = args.sustained_count / elapsed
        ok = rate >= args.min_rate
        failed |= not ok
        print("sustained dispatch, fsync on: %d alerts in %.2f s = %.0f alerts/s "
              "(goal >= %.0f/s: %s)" % (args.sustained_count, elapsed, rate, args.min_rate,
                                        "ok" if ok else "MISSED"))
        sock.close()
    finally:
        agent.terminate()
        agent.wait(timeout=60)
        st.loop.call_soon_threadsafe(st.loop.stop)
        subprocess.run(["rm", "-rf", tmp])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
