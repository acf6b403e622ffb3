"""SIGTERM: a clean, prompt exit that loses nothing the agent had read."""
import os
import subprocess
import threading
import time

from harness import (AGENT, WRAPPER, certs, listener, rfc3164, t, tcp_connect, tls_listener,
                     token)


def test_sigterm_while_messages_flow(ctx):
    """Two senders keep sending when SIGTERM arrives. Every message sent at
    least a settle time before SIGTERM must be in the tap, the tap must end
    with a complete line, and the agent exits 0."""
    agent = ctx.agent([listener("tcp")])
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
    assert took < t(5), "the agent took %.1fs to stop" % took


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
