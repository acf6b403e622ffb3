"""SIGTERM: a clean, prompt exit that loses nothing the agent had read."""
import json
import os
import signal
import socket
import subprocess
import threading
import time

from harness import (AGENT, REPORT, WRAPPER, certs, check_sequence, listener, rfc3164, t,
                     tcp_connect, tls_connect, tls_listener, token, wait_until)


def test_sigterm_while_messages_flow(ctx):
    """Two senders keep sending when SIGTERM arrives and never close (they
    do not read, so the half-close goes unnoticed): the stop drains them
    for limits.drain_timeout_s (1 s here), then closes. Every message sent
    at least a settle time before SIGTERM must be in the tap, the tap must
    end with a complete line, and the agent exits 0."""
    agent = ctx.agent([listener("tcp")], limits={"drain_timeout_s": 1})
    tok = token()
    stop = threading.Event()
    sent = {}  # conn -> [(seq, time the send returned)]
    errors = []

    def sender(conn):
        log = sent.setdefault(conn, [])
        try:
            s = tcp_connect(agent.port("tcp"))
            seq = conn * 1000000
            while not stop.is_set():
                batch = b"".join(rfc3164("seq=%d run=%s" % (seq + i, tok)) + b"\n"
                                 for i in range(20))
                s.sendall(batch)
                now = time.monotonic()
                log.extend((seq + i, now) for i in range(20))
                seq += 20
                time.sleep(0.01)  # ~2000 messages/s per sender: well below capacity
        except OSError:
            pass  # the agent went away while we were sending: expected
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=sender, args=(c,), daemon=True) for c in range(2)]
    for th in threads:
        th.start()
    time.sleep(t(1.0))
    cut = time.monotonic()
    settle = t(0.5)
    time.sleep(settle)  # still sending during the settle and the SIGTERM
    t0 = time.monotonic()
    agent.stop(timeout=10)
    took = time.monotonic() - t0
    stop.set()
    for th in threads:
        th.join(5)
    assert not errors, errors
    must = {seq for log in sent.values() for seq, when in log if when <= cut}
    assert len(must) > 500, "too few messages were sent before the cut (%d)" % len(must)
    got = {}
    for m in agent.tap():
        if tok in (m.get("msg") or ""):
            got.setdefault(m.get("source"), []).append(int(m["msg"].split("seq=")[1].split()[0]))
    seen = {s for ss in got.values() for s in ss}
    missing = sorted(must - seen)
    assert not missing, "%d of %d messages sent >=%.1fs before SIGTERM are not in the tap " \
        "(first: %s)" % (len(missing), len(must), settle, missing[:10])
    for src, ss in got.items():
        assert ss == sorted(ss) and len(ss) == len(set(ss)), \
            "tap out of order or duplicated for %s" % src
    assert 0.9 < took < t(5), "the agent took %.1fs to stop (drain_timeout_s 1)" % took


test_sigterm_while_messages_flow.timeout = 40


def test_sigterm_with_open_idle_connections(ctx):
    """Open TCP connections, a half-sent frame and a TLS client stuck before
    its handshake do not delay the exit, and the agent exits 0."""
    agent = ctx.agent([listener("tcp"), tls_listener(certs()), listener("udp")])
    tok = token()
    socks = [tcp_connect(agent.port("tcp")) for _ in range(3)]
    socks[0].sendall(rfc3164("complete " + tok) + b"\n" + b"<13>Nov 23 10:00:00 h app: half")
    socks.append(tcp_connect(agent.port("tls")))
    agent.wait_tap(lambda m: "complete " + tok in (m.get("msg") or ""), 1, 10)
    t0 = time.monotonic()
    agent.stop(timeout=10)
    took = time.monotonic() - t0
    for s in socks:
        s.close()
    assert took < t(3), "the agent took %.1fs to stop with idle connections open" % took


def test_bad_config_is_refused(ctx):
    """An unknown key and a wrong type: exit nonzero, naming file and key."""
    for name, cfg, key in (
            ("unknown", '{"listen": [{"proto": "tcp", "address": "127.0.0.1:0", "bogus_key": 1}]}',
             "bogus_key"),
            ("wrongtype", '{"listen": [{"proto": "tcp", "address": "127.0.0.1:0"}], '
             '"limits": {"max_connections": "many"}}', "max_connections")):
        path = ctx.path(name + ".json")
        with open(path, "w") as f:
            f.write(cfg)
        p = subprocess.run(WRAPPER + [AGENT, "run", "-c", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=t(10))
        err = p.stderr.decode("utf-8", "replace")
        assert p.returncode != 0, "%s config: exit status 0" % name
        assert os.path.basename(path) in err and key in err, \
            "%s config: the error does not name the file and %s: %r" % (name, key, err[-500:])


def test_sigterm_flags_a_half_received_line(ctx):
    """A line cut by SIGTERM (TCP and TLS) is delivered flagged "frame:
    truncated" and counted, never as a complete message; the complete line
    before it has no error."""
    agent = ctx.agent([listener("tcp"), tls_listener(certs())])
    tok = token()
    conns = [tcp_connect(agent.port("tcp")), tls_connect(agent.port("tls"))]
    for s in conns:
        s.sendall(rfc3164("complete " + tok) + b"\n" + rfc3164("half " + tok))
    agent.wait_tap(lambda m: "complete " + tok in (m.get("msg") or ""), 2, 10)
    agent.stop()
    for s in conns:
        s.close()
    half = agent.with_text("half " + tok)
    assert len(half) == 2, "want the two half lines in the tap, found %s" % half
    for m in half:
        assert m.get("error") == "frame: truncated", "a half line without the flag: %s" % m
    for m in agent.with_text("complete " + tok):
        assert "error" not in m, "a complete line got an error: %s" % m
    assert b" frames_truncated=2 " in agent.stderr_bytes(), "the cut lines were not counted"


def test_sigterm_reads_what_the_kernel_holds(ctx):
    """Lines the kernel had already taken when SIGTERM came (the agent was
    stopped while they were sent, so none had been read) all arrive, on
    several TCP connections and a TLS one."""
    agent = ctx.agent([listener("tcp"), tls_listener(certs())], workers=1)
    tok = token()
    conns = [tcp_connect(agent.port("tcp")) for _ in range(3)]
    conns.append(tls_connect(agent.port("tls")))
    for i, s in enumerate(conns):  # every connection is set up (TLS handshake done)
        s.sendall(rfc3164("ready %d %s" % (i, tok)) + b"\n")
    agent.wait_tap(lambda m: "ready " in (m.get("msg") or "") and tok in m["msg"], len(conns), 10)
    n = 300  # about 20 KB per connection: within the receive window
    os.kill(agent.proc.pid, signal.SIGSTOP)
    try:
        for i, s in enumerate(conns):
            s.sendall(b"".join(rfc3164("seq=%d run=%s" % (i * n + k, tok)) + b"\n"
                               for k in range(n)))
    finally:
        # SIGTERM (sent by stop) is pending when the agent continues.
        threading.Timer(t(0.3), os.kill, (agent.proc.pid, signal.SIGCONT)).start()
    agent.stop()
    for s in conns:
        s.close()
    check_sequence(agent.tap(), tok, len(conns) * n)


def test_sighup_keeps_running(ctx):
    """SIGHUP reloads (here: nothing to reload but the empty mapping set) and
    the agent keeps receiving."""
    agent = ctx.agent([listener("tcp")])
    os.kill(agent.proc.pid, signal.SIGHUP)
    wait_until(lambda: b"SIGHUP: reload complete" in agent.stderr_bytes(), 5,
               "the SIGHUP log line")
    agent.assert_alive()
    tok = token()
    s = tcp_connect(agent.port("tcp"))
    s.sendall(rfc3164("after hup " + tok) + b"\n")
    s.close()
    agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 1, 10)
    agent.stop()


def test_failed_start_after_threads_started(ctx):
    """A start-up that fails after the workers and the tap writer started
    (the status port file cannot be written) stops them in order: exit
    status 1, promptly, with no sanitizer or valgrind report."""
    cfg = {"listen": [{"proto": "tcp", "address": "127.0.0.1:0"},
                      {"proto": "udp", "address": "127.0.0.1:0"}],
           "workers": 2,
           "status": {"address": "127.0.0.1:0", "port_file": "missing-dir/status.port"}}
    path = ctx.path("rtr-agent.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    p = subprocess.run(WRAPPER + [AGENT, "run", "-c", path, "--tap", ctx.path("tap.jsonl")],
                       cwd=ctx.dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=t(10))
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 1, "exit status %d: %s" % (p.returncode, out[-1000:])
    assert "status.port" in out, "the failure does not name the port file: %s" % out[-1000:]
    found = REPORT.search(p.stdout)
    assert not found, "sanitizer/valgrind report: %s" % out[-3000:]


def test_systemd_notify_ready_after_bind_then_stopping(ctx):
    """Under systemd (Type=notify) the agent says READY=1 only once it
    listens, and STOPPING=1 when SIGTERM arrives."""
    # An abstract name: a path under a long TMPDIR would pass sun_path's 108 bytes.
    name = "rtr-notify-" + token()
    path = "@" + name
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind("\0" + name)
    manager.settimeout(t(10))
    try:
        agent = ctx.agent([listener("tcp")], env={"NOTIFY_SOCKET": path})
        assert manager.recv(256) == b"READY=1"
        # Ready means listening: a message sent now arrives.
        tok = token()
        s = tcp_connect(agent.port("tcp"))
        s.sendall(rfc3164("ready " + tok) + b"\n")
        s.close()
        wait_until(lambda: any(tok in (m.get("msg") or "") for m in agent.tap()), 5,
                   "the message sent right after READY=1")
        agent.stop()  # SIGTERM; the datagram waits in our socket
        assert manager.recv(256) == b"STOPPING=1"
    finally:
        manager.close()
