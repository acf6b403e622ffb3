"""Per-listener source allowlists (CIDR, IPv4 and IPv6)."""
import time

from harness import (Skip, have_ipv6_loopback, listener, rfc3164, tcp_connect, token, udp_send,
                     wait_closed)


def _barrier(agent, port, host="127.0.0.1"):
    """Sends a marker through an allowed TCP listener and waits for it, so
    anything a refused sender could have caused has had time to show."""
    tok = token()
    s = tcp_connect(port, host)
    s.sendall(rfc3164("barrier " + tok) + b"\n")
    s.close()
    agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 1, 10, what="the barrier message")
    time.sleep(0.2)
    agent.tap()


def _refused_tcp(agent, port, host="127.0.0.1"):
    """Connects and sends; the agent must close without taking the data."""
    tok = token()
    s = tcp_connect(port, host)
    try:
        s.sendall(b"".join(rfc3164("refused %d %s" % (i, tok)) + b"\n" for i in range(5)))
    except (BrokenPipeError, ConnectionResetError):
        pass  # already closed: fine
    closed, got = wait_closed(s, 5)
    s.close()
    assert closed, "a connection from %s outside the allowlist was kept open" % host
    assert not got, "the agent sent %r to a refused client" % got[:100]
    return tok


def test_allowlist_refuses_tcp(ctx):
    agent = ctx.agent([listener("tcp", allow=["10.0.0.0/8"]), listener("tcp")])
    tok = _refused_tcp(agent, agent.port("tcp", 0))
    agent.wait_metric('connections_refused_total{reason="allowlist"}', 1, 5)
    _barrier(agent, agent.port("tcp", 1))
    leaked = agent.with_text(tok)
    assert not leaked, "data from a refused connection reached the tap: %s" % leaked[0]
    assert agent.metric('udp_datagrams_refused_total{reason="allowlist"}') == 0
    agent.stop()
    # the log names the listener by the address it is bound to, not "...:0"
    want = "listen 127.0.0.1:%d: refused 127.0.0.1:" % agent.port("tcp", 0)
    err = agent.stderr_bytes().decode("utf-8", "replace")
    assert want in err, "no %r in the log: %s" % (want, err[-600:])


def test_allowlist_accepts_listed_source(ctx):
    agent = ctx.agent([listener("tcp", allow=["127.0.0.0/8", "::1/128"]),
                       listener("udp", allow=["10.0.0.0/8", "127.0.0.1/32"])])
    tok = token()
    s = tcp_connect(agent.port("tcp"))
    s.sendall(b"".join(rfc3164("tcp %d %s" % (i, tok)) + b"\n" for i in range(5)))
    s.close()
    udp_send(agent.port("udp"), [rfc3164("udp %d %s" % (i, tok)) for i in range(5)])
    agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 10, 10)
    assert agent.metric('connections_refused_total{reason="allowlist"}') == 0
    assert agent.metric('udp_datagrams_refused_total{reason="allowlist"}') == 0
    agent.stop()


def test_allowlist_refuses_udp(ctx):
    agent = ctx.agent([listener("udp", allow=["10.0.0.0/8", "::1/128"]), listener("tcp")])
    tok = token()
    udp_send(agent.port("udp"), [rfc3164("udp refused %d %s" % (i, tok)) for i in range(5)])
    agent.wait_metric('udp_datagrams_refused_total{reason="allowlist"}', 5, 5)
    _barrier(agent, agent.port("tcp"))
    leaked = agent.with_text(tok)
    assert not leaked, "a datagram from a refused source reached the tap: %s" % leaked[0]
    assert agent.metric('connections_refused_total{reason="allowlist"}') == 0, \
        "datagrams counted as refused connections"
    agent.stop()


def test_allowlist_ipv6(ctx):
    if not have_ipv6_loopback():
        raise Skip("this machine cannot bind ::1")
    agent = ctx.agent([listener("tcp", address="[::1]:0", allow=["::1/128"]),
                       listener("tcp", address="[::1]:0", allow=["127.0.0.0/8", "fe80::/10"]),
                       listener("udp", address="[::1]:0", allow=["::1"])])
    tok = token()
    s = tcp_connect(agent.port("tcp", 0), "::1")
    s.sendall(rfc3164("v6 ok " + tok) + b"\n")
    s.close()
    udp_send(agent.port("udp"), [rfc3164("v6 udp " + tok)], host="::1")
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 2, 10)
    for m in msgs:
        assert "::1" in (m.get("source") or ""), "source %r for a ::1 client" % m.get("source")
    bad = _refused_tcp(agent, agent.port("tcp", 1), "::1")
    agent.wait_metric('connections_refused_total{reason="allowlist"}', 1, 5)
    _barrier(agent, agent.port("tcp", 0), "::1")
    assert not agent.with_text(bad), "a refused ::1 connection reached the tap"
    agent.stop()
