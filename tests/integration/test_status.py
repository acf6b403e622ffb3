"""The status endpoint under abuse (issue 12 item 3): out of descriptors it
pauses accepting instead of spinning, a request trickled byte by byte is cut
at the whole-request deadline, and connections beyond the cap are closed at
once; /metrics answers again once the abuse ends."""
import os
import resource
import socket
import time

from harness import listener, t, tcp_connect, wait_closed, wait_until

# agent/cmd/status.c: STATUS_TIMEOUT_S and STATUS_MAX_CONNECTIONS.
DEADLINE_S = 10
MAX_CONNECTIONS = 32


def _cpu_seconds(pid):
    """User + system CPU time of every thread of pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_below(pid, limit):
    """How many descriptor numbers below limit pid does not use."""
    return limit - len([fd for fd in os.listdir("/proc/%d/fd" % pid) if int(fd) < limit])


def _limit_leaving(pid, free):
    """The RLIMIT_NOFILE under which pid can open exactly `free` more
    descriptors: a new descriptor takes the lowest free number and must stay
    below the limit (valgrind's own descriptors sit near the old limit)."""
    limit = 0
    while _free_below(pid, limit) < free:
        limit += 1
    return limit


def _metrics_answer(agent):
    try:
        status, _ = agent.http_get("/metrics", timeout=2)
    except OSError:
        return False
    return status == 200


def test_status_fd_exhaustion_pauses_accepting(ctx):
    """With no descriptor left, the endpoint stops accepting for a while
    (one rate-limited line) instead of retrying accept() in a loop (87 % of
    a core and 66 MB/s of libevent warnings before); it serves again once
    descriptors are back."""
    agent = ctx.agent([listener("tcp")], workers=1)
    pid = agent.proc.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    limit = _limit_leaving(pid, 2)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, hard))
    socks = []
    try:
        # Two are accepted, the rest wait in the backlog while accept fails.
        socks = [tcp_connect(agent.status_port) for _ in range(8)]
        wait_until(lambda: _free_below(pid, limit) == 0, 5,
                   "the agent to use its last descriptors")
        time.sleep(0.2)
        cpu0, err0, start = _cpu_seconds(pid), len(agent.stderr_bytes()), time.monotonic()
        time.sleep(1.0)
        cpu = _cpu_seconds(pid) - cpu0
        wall = time.monotonic() - start
        grown = len(agent.stderr_bytes()) - err0
        agent.assert_alive()
        assert cpu < 0.3 * wall, "the agent used %.2f s of CPU in %.2f s out of descriptors" % (
            cpu, wall)
        assert grown < 4096, "stderr grew by %d bytes in %.2f s out of descriptors\n%s" % (
            grown, wall, agent.stderr_tail(5))
        assert b"status: accept: Too many open files" in agent.stderr_bytes(), (
            agent.stderr_tail(5))
    finally:
        for s in socks:
            s.close()
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    wait_until(lambda: _metrics_answer(agent), 5, "GET /metrics to answer again")
    agent.stop()


def test_status_trickled_request_cut_at_deadline(ctx):
    """A request sent one byte a second (each byte resets evhttp's idle
    timeout) is cut at the whole-request deadline, not left open for as
    long as the sender likes."""
    agent = ctx.agent([listener("tcp")], workers=1)
    request = b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 200
    bound = DEADLINE_S + t(5)
    s = tcp_connect(agent.status_port)
    s.settimeout(1.0)  # the trickle's pace: one byte, then up to 1 s reading
    start = time.monotonic()
    closed = False
    try:
        for byte in request:
            try:
                s.sendall(bytes([byte]))
                closed = s.recv(4096) == b""
            except socket.timeout:
                pass
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            if closed or time.monotonic() - start > bound:
                break
    finally:
        s.close()
    elapsed = time.monotonic() - start
    assert closed, "a request trickled at 1 byte/s was still open after %.0f s (bound %.0f s)" % (
        elapsed, bound)
    assert b"no complete request within" in agent.stderr_bytes(), agent.stderr_tail(5)
    assert _metrics_answer(agent), "GET /metrics does not answer after the cut"
    agent.stop()


def test_status_connections_capped(ctx):
    """Connections beyond the cap are closed at once while those within it
    are served; once they go, /metrics answers again; a stop frees a
    connection still open."""
    agent = ctx.agent([listener("tcp")], workers=1)
    port = agent.status_port
    held = []
    extra = []
    try:
        held = [tcp_connect(port) for _ in range(MAX_CONNECTIONS)]
        extra = [tcp_connect(port) for _ in range(4)]
        for i, s in enumerate(extra):
            closed, got = wait_closed(s, 3)
            assert closed and got == b"", "connection %d beyond the cap of %d: %s" % (
                i + 1, MAX_CONNECTIONS, "answered %r" % got[:40] if got else "left open")
        # One within the cap is still served (kept-alive connections are not
        # what the cap cuts).
        held[0].settimeout(t(5))
        held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = held[0].recv(4096)
        assert answer.startswith(b"HTTP/1.1 200"), "a connection within the cap got %r" % answer
    finally:
        for s in held + extra:
            s.close()
    assert b"connections are open (the most)" in agent.stderr_bytes(), agent.stderr_tail(5)
    wait_until(lambda: _metrics_answer(agent), 5, "GET /metrics to answer once they went")
    # A connection mid-request at the stop is freed with the endpoint.
    with tcp_connect(port) as s:
        s.sendall(b"GET /metr")
        agent.stop()
