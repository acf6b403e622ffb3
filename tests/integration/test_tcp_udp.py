"""util-linux logger -> rtr-agent over TCP (LF and octet-counted) and UDP,
RFC 5424 and RFC 3164; the status endpoint; a second agent on the same
fixed ports refused, and no other user's socket let in on them; a restart
over TIME_WAIT connections allowed."""
import errno
import json
import os
import re
import signal
import socket
import subprocess

from harness import (AGENT, REPORT, ROOT, WRAPPER, Skip, check_sequence, listener,
                     logger_lines, rfc3164, seq_messages, stats_counters, t, tcp_connect, token,
                     tool, udp_send, wait_closed, wait_until)

N_TCP = 200
N_UDP = 50


def _hostname():
    return socket.gethostname()


def _logger(ctx, agent, proto, fmt, n, octet=False, tag="rtrtest", prio="local0.info"):
    """Sends n sequence-numbered lines with one logger process (one TCP
    connection); returns the run token."""
    logger = tool("logger")
    tok = token()
    port = agent.port("udp" if proto == "udp" else "tcp")
    argv = [logger, "-n", "127.0.0.1", "-P", str(port), "--" + proto, "--" + fmt,
            "-t", tag, "-p", prio, "--id=4242"]
    if octet:
        argv.append("--octet-count")
    if fmt == "rfc5424":
        argv += ["--msgid", "ITEST", "--sd-id", "seq@32473", "--sd-param", 'run="%s"' % tok]
    ctx.run(argv, input=logger_lines(n, tok))
    return tok


def _check_fields(msgs, fmt, tag, transport):
    host = _hostname()
    for seq, m in msgs:
        s = m.get("syslog") or {}
        want = {"format": fmt, "app": tag, "pri": 134, "facility": 16, "severity": 6,
                "procid": "4242"}
        if fmt == "rfc5424":
            want["version"] = 1
            want["hostname"] = host
            want["msgid"] = "ITEST"
        else:
            want["hostname"] = host.split(".")[0]
        bad = {k: (s.get(k), v) for k, v in want.items() if s.get(k) != v}
        assert not bad, "message %d: syslog fields (got, want): %s; tap line %s" % (seq, bad, m)
        assert m.get("transport") == transport, "message %d: transport %r" % (
            seq, m.get("transport"))
        assert (m.get("source") or "").startswith("127.0.0.1:"), "source %r" % m.get("source")
        assert "error" not in m, "message %d has an error: %s" % (seq, m)
        if fmt == "rfc5424":
            # logger adds [timeQuality tzKnown="1" isSynced="0"]
            sd = s.get("sd") or {}
            assert sd.get("timeQuality", {}).get("tzKnown") == "1", "sd %r" % sd
            assert sd.get("seq@32473", {}).get("run") and sd["seq@32473"]["run"] in m["msg"], \
                "sd %r" % sd
        else:
            assert s.get("msgid") is None, "rfc3164 msgid %r" % s.get("msgid")
        assert m["msg"].startswith("seq="), "msg %r keeps header bytes" % m["msg"]


def _tcp(ctx, fmt, octet):
    agent = ctx.agent([listener("tcp", framing="auto")])
    tok = _logger(ctx, agent, "tcp", fmt, N_TCP, octet=octet)
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), N_TCP, 10)
    seqs = check_sequence(msgs, tok, N_TCP)
    _check_fields(seqs, fmt, "rtrtest", "tcp")
    sources = {m["source"] for _, m in seqs}
    assert len(sources) == 1, "one logger connection, yet sources %s" % sources
    assert agent.metric("messages_received_total") >= N_TCP
    assert agent.metric("connections_accepted_total") >= 1
    agent.stop()


def test_logger_tcp_lf_rfc5424(ctx):
    _tcp(ctx, "rfc5424", octet=False)


def test_logger_tcp_octet_rfc5424(ctx):
    _tcp(ctx, "rfc5424", octet=True)


def test_logger_tcp_lf_rfc3164(ctx):
    _tcp(ctx, "rfc3164", octet=False)


def test_logger_tcp_octet_rfc3164(ctx):
    _tcp(ctx, "rfc3164", octet=True)


def test_logger_tcp_fixed_framing(ctx):
    """Listeners pinned to "lf" and to "octet" framing each take their kind."""
    agent = ctx.agent([listener("tcp", framing="lf"), listener("tcp", framing="octet")])
    logger = tool("logger")
    toks = []
    for i, octet in enumerate((False, True)):
        tok = token()
        argv = [logger, "-n", "127.0.0.1", "-P", str(agent.port("tcp", i)), "--tcp",
                "--rfc5424", "-t", "fixed"]
        if octet:
            argv.append("--octet-count")
        ctx.run(argv, input=logger_lines(50, tok))
        toks.append(tok)
    for tok in toks:
        msgs = agent.wait_tap(lambda m, tok=tok: tok in (m.get("msg") or ""), 50, 10)
        check_sequence(msgs, tok, 50)
    agent.stop()


def _udp(ctx, fmt):
    agent = ctx.agent([listener("udp")])
    tok = _logger(ctx, agent, "udp", fmt, N_UDP)
    try:
        msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), N_UDP, 5)
    except AssertionError:
        msgs = agent.with_text(tok)
        got = len(seq_messages(msgs, tok))
        m = agent.metrics()
        raise AssertionError(
            "UDP loss on loopback: %d of %d datagrams reached the tap (udp_datagrams=%s, "
            "udp_kernel_drops=%s)" % (got, N_UDP, m.get("rtr_agent_udp_datagrams_total"),
                                      m.get("rtr_agent_udp_kernel_drops_total")))
    seqs = check_sequence(msgs, tok, N_UDP, ordered=False)
    _check_fields(seqs, fmt, "rtrtest", "udp")
    assert agent.metric("udp_datagrams_total") >= N_UDP
    agent.stop()


def test_logger_udp_rfc5424(ctx):
    _udp(ctx, "rfc5424")


def test_logger_udp_rfc3164(ctx):
    _udp(ctx, "rfc3164")


def test_parallel_tcp_connections(ctx):
    """Several logger connections at once, spread over the workers: all
    messages arrive, in order per connection."""
    agent = ctx.agent([listener("tcp")], workers=2)
    logger = tool("logger")
    tok = token()
    procs = []
    n_conn, per = 6, 100
    for c in range(n_conn):
        lines = b"".join(b"seq=%d run=%s conn=%d\n" % (c * per + i, tok.encode(), c)
                         for i in range(per))
        p = ctx.spawn([logger, "-n", "127.0.0.1", "-P", str(agent.port("tcp")), "--tcp",
                       "--rfc5424", "-t", "par"], stdin=subprocess.PIPE,
                      stderr=subprocess.PIPE)
        p.stdin.write(lines)
        p.stdin.close()
        procs.append(p)
    for p in procs:
        assert p.wait(t(20)) == 0, "logger failed: %s" % p.stderr.read()
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), n_conn * per, 10)
    check_sequence(msgs, tok, n_conn * per)
    sources = {m["source"] for m in msgs}
    assert len(sources) == n_conn, "expected %d source connections, saw %d" % (
        n_conn, len(sources))
    agent.stop()


def _stats_metrics():
    """The samples agent/core/stats.h puts in /metrics (the metrics
    contract): the third field of each X(name, kind, "metric", help)."""
    with open(os.path.join(ROOT, "agent", "core", "stats.h")) as f:
        text = f.read().replace("\\\n", "\n")
    found = re.findall(r'^\s*X\(\w+,\s*\w+,\s*"((?:[^"\\]|\\.)*)"', text, re.M)
    return [m.replace('\\"', '"') for m in found]


def test_status_endpoint(ctx):
    """/healthz answers 200; /metrics lists every entry of agent/core/stats.h
    under its Prometheus name (counters end in _total, families carry
    labels, the old names are gone) and counts what arrived."""
    agent = ctx.agent([listener("tcp"), listener("udp")])
    status, _ = agent.http_get("/healthz")
    assert status == 200, "/healthz answered %d" % status
    before = agent.metrics()
    want = _stats_metrics()
    assert len(want) == len(stats_counters()), "stats.h parsed wrong: %s" % want
    missing = ["rtr_agent_" + m for m in want if "rtr_agent_" + m not in before]
    assert not missing, "/metrics lacks %s" % missing
    for old in stats_counters() + ["udp_kernel_drops"]:
        if "rtr_agent_" + old in before and old + "_total" not in want and old not in want:
            raise AssertionError("the old name rtr_agent_%s is still in /metrics" % old)
    assert 'rtr_agent_parse_errors_total{kind="cef"}' in before
    assert 'rtr_agent_alerts_total{outcome="would-dispatch"}' in before
    assert "rtr_agent_parse_errors_cef" not in before
    assert "rtr_agent_outcome_dispatched" not in before
    tok = _logger(ctx, agent, "tcp", "rfc3164", 10)
    agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 10, 10)
    after = agent.metrics()
    for name in ("messages_received_total", "tap_lines_total"):
        key = "rtr_agent_" + name
        assert after[key] - before[key] >= 10, "%s went %s -> %s after 10 messages" % (
            key, before[key], after[key])
    received = "rtr_agent_received_bytes_total"
    assert after[received] - before[received] >= 10 * 30
    assert "rtr_agent_messages_parsed" not in after, "messages_parsed (= messages_received) is back"
    for gauge in ("connections_open", "decision_queue_records", "decision_queue_bytes",
                  "inputs_paused", "spool_pending_alerts", "spool_held_alerts",
                  "config_last_reload_successful"):
        assert "rtr_agent_" + gauge in after, "/metrics lacks the %s gauge" % gauge
    agent.stop()


def test_bytes_received_counts_what_was_read(ctx):
    """bytes_received is what the sockets gave: stream bytes with octet
    counts and trailers, whole datagrams."""
    agent = ctx.agent([listener("tcp"), listener("udp")], workers=1)
    tok = token()
    before = agent.metric("received_bytes_total")
    stream = b"".join(rfc3164("tcp %d %s" % (i, tok)) + b"\r\n" for i in range(5))
    frame = rfc3164("octet " + tok)
    stream += b"%d %s" % (len(frame), frame)
    datagrams = [rfc3164("udp %d %s" % (i, tok)) + b"\n" for i in range(5)]
    s = tcp_connect(agent.port("tcp"))
    s.sendall(stream)
    s.close()
    udp_send(agent.port("udp"), datagrams)
    agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 11, 10)
    want = len(stream) + sum(len(d) for d in datagrams)
    wait_until(lambda: agent.metric("received_bytes_total") - before == want, 5,
               "bytes_received to grow by %d (it grew by %d)" % (
                   want, agent.metric("received_bytes_total") - before))
    agent.stop()


def test_udp_kernel_drops_seen_without_a_later_datagram(ctx):
    """Datagrams the kernel dropped (the agent stopped, a tiny receive
    buffer) are counted when /metrics is read, though no datagram came
    after them: delivered + dropped = sent, nothing counted twice."""
    agent = ctx.agent([listener("udp", rcvbuf=4096)], workers=1)
    tok = token()
    n = 300
    os.kill(agent.proc.pid, signal.SIGSTOP)
    try:
        udp_send(agent.port("udp"), [rfc3164("drop %d %s" % (i, tok)) for i in range(n)])
    finally:
        os.kill(agent.proc.pid, signal.SIGCONT)
    state = {}

    def balanced():
        state["got"] = len(agent.with_text(tok))
        state["drops"] = agent.metric("udp_kernel_drops_total")
        return state["got"] + state["drops"] == n
    try:
        wait_until(balanced, 10, "delivered + dropped == %d" % n)
    except AssertionError as e:
        raise AssertionError("%s (delivered %s, udp_kernel_drops %s)" % (
            e, state.get("got"), state.get("drops")))
    assert state["drops"] > 0, "nothing was dropped: the test did not test drops"
    agent.stop()


def test_udp_buffers_do_not_scale_with_max_message_bytes(ctx):
    """max_message_bytes 16 MiB: the UDP batch buffers stay at 64 KiB each (no
    datagram is larger) and the tap ring is capped, so four workers stay far
    below the gigabytes of address space they used to reserve."""
    with open(AGENT, "rb") as f:
        binary = f.read()
    sanitized = b"__asan_init" in binary or b"__tsan_init" in binary
    if WRAPPER or sanitized:
        raise Skip("address space is not comparable under valgrind or sanitizers")
    agent = ctx.agent([listener("udp"), listener("tcp")], workers=4,
                      limits={"max_message_bytes": 16 << 20})
    with open("/proc/%d/status" % agent.proc.pid) as f:
        vm = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    size_mib = int(vm["VmSize"].split()[0]) // 1024
    assert size_mib < 1024, "the agent maps %d MiB with 4 workers" % size_mib
    tok = token()
    big = rfc3164("big " + tok) + b"x" * 60000
    udp_send(agent.port("udp"), [big])
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 1, 10)
    assert "error" not in msgs[0] and msgs[0]["msg"].endswith("x" * 100), msgs[0].get("error")
    agent.stop()


def test_udp_source_of_each_datagram(ctx):
    """Three senders (IPv4 twice, IPv6 once) take turns datagram by
    datagram: each tap line names the address and port of its own sender,
    though the worker formats a sender's address only when it changes."""
    agent = ctx.agent([listener("udp"), listener("udp", address="[::1]:0")], workers=1)
    tok = token()
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
             socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
             socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)]
    targets = [("127.0.0.1", agent.port("udp")), ("127.0.0.1", agent.port("udp")),
               ("::1", agent.port("udp", 1))]
    for s, target in zip(socks, targets):
        s.bind((target[0], 0))
    names = ["127.0.0.1:%d" % socks[0].getsockname()[1], "127.0.0.1:%d" % socks[1].getsockname()[1],
             "[::1]:%d" % socks[2].getsockname()[1]]
    n = 60
    for i in range(n):
        k = i % 3 if i < 30 else (i // 2) % 3  # alternating, then in pairs
        socks[k].sendto(b"<13>Nov 23 10:00:00 itest-host s%d: seq=%05d run=%s"
                        % (k, i, tok.encode()), targets[k])
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), n, 10)
    wrong = [(m["syslog"]["app"], m["source"]) for m in msgs
             if m["source"] != names[int(m["syslog"]["app"][1:])]]
    assert not wrong, "tap lines naming another sender: %s (senders %s)" % (wrong[:5], names)
    for s in socks:
        s.close()
    agent.stop()


def test_tcp_volume_in_order(ctx):
    """A sender much faster than the pipeline (20,000 messages at once over
    one connection, one worker): every message arrives, once, in order, in
    the tap batches the worker writes."""
    agent = ctx.agent([listener("tcp")], workers=1, limits={"max_message_bytes": 65536})
    tok = token()
    n = 20000
    data = b"".join(b"<13>Nov 23 10:00:00 itest-host vol: seq=%05d run=%s %s\n"
                    % (i, tok.encode(), b"x" * 60) for i in range(n))
    s = socket.create_connection(("127.0.0.1", agent.port("tcp")), timeout=t(30))
    s.sendall(data)
    s.close()
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), n, 30)
    check_sequence(msgs, tok, n)
    assert agent.metric("tap_lines_total") == n, agent.metric("tap_lines_total")
    agent.stop()


test_tcp_volume_in_order.timeout = 60


def test_tap_lines_whole_across_workers(ctx):
    """Two workers write their tap batches to one file while four
    connections send at once: every line is whole JSON (tap() fails on any
    other), each connection's messages arrive once and in order, and
    tap_lines counts them all."""
    agent = ctx.agent([listener("tcp")], workers=2)
    tok = token()
    n, conns = 5000, 4
    socks = [socket.create_connection(("127.0.0.1", agent.port("tcp")), timeout=t(30))
             for _ in range(conns)]
    for c, s in enumerate(socks):
        s.sendall(b"".join(b"<13>Nov 23 10:00:00 itest-host c%d: seq=%05d run=%s %s\n"
                           % (c, i, tok.encode(), b"y" * (i % 300)) for i in range(n)))
    for s in socks:
        s.close()
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), n * conns, 30)
    for c in range(conns):
        check_sequence([m for m in msgs if m["syslog"]["app"] == "c%d" % c], tok, n,
                       what="messages of connection %d" % c)
    assert agent.metric("tap_lines_total") == n * conns, agent.metric("tap_lines_total")
    agent.stop()


test_tap_lines_whole_across_workers.timeout = 60


def _fixed_port():
    """A port of 127.0.0.1 that was free for both TCP and UDP a moment ago."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise AssertionError("no port free for both TCP and UDP in 20 tries")


def _run_second_agent(ctx, name, listen):
    """Starts `rtr-agent run` on listen and expects it to give up; returns
    (exit status, stderr)."""
    path = ctx.path(name + ".json")
    with open(path, "w") as f:
        json.dump({"listen": listen, "workers": 2}, f)
    try:
        p = subprocess.run(WRAPPER + [AGENT, "run", "-c", path], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=t(10))
    except subprocess.TimeoutExpired as e:
        err = (e.stderr or b"").decode("utf-8", "replace")
        raise AssertionError("the second agent (%s) started on ports in use:\n%s" % (name, err))
    err = p.stderr.decode("utf-8", "replace")
    found = REPORT.search(p.stderr)
    assert not found, "sanitizer/valgrind report (%r):\n%s" % (found.group(0), err[-3000:])
    return p.returncode, err


def test_second_agent_on_the_same_ports_refused(ctx):
    """SO_REUSEPORT would let a second agent (same user, same ports) bind
    and take a share of the traffic: it must refuse to start instead, on
    TCP and on UDP, and the first keeps receiving everything."""
    port = _fixed_port()
    address = "127.0.0.1:%d" % port
    first = ctx.agent([listener("tcp", address=address), listener("udp", address=address)])
    for proto in ("tcp", "udp"):
        rc, err = _run_second_agent(ctx, "second-" + proto,
                                    [{"proto": proto, "address": address}])
        want = ("listen %s (%s): address already in use by another process (a second "
                "rtr-agent?)" % (address, proto))
        assert rc == 1, "the second agent (%s) exited %d, want 1:\n%s" % (proto, rc, err[-2000:])
        assert want in err, "no %r in the second agent's stderr:\n%s" % (want, err[-2000:])
    tok = token()
    n = 40
    s = tcp_connect(port)
    s.sendall(b"".join(rfc3164("seq=%d run=%s" % (i, tok)) + b"\n" for i in range(n)))
    s.close()
    udp_send(port, [rfc3164("seq=%d run=%s" % (n + i, tok)) for i in range(n)])
    msgs = first.wait_tap(lambda m: tok in (m.get("msg") or ""), 2 * n, 10)
    check_sequence(msgs, tok, 2 * n, ordered=False)
    first.stop()


def _bind_as_nobody(kind, port):
    """In a child running as nobody: binds a socket of kind to
    127.0.0.1:port with SO_REUSEADDR and SO_REUSEPORT. Returns "bound", "in
    use" or an error."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only system calls, then _exit
        try:
            os.close(r)
            os.setgid(65534)
            os.setuid(65534)
            s = socket.socket(socket.AF_INET, kind)
            for opt in (socket.SO_REUSEADDR, socket.SO_REUSEPORT):
                s.setsockopt(socket.SOL_SOCKET, opt, 1)
            try:
                s.bind(("127.0.0.1", port))
                verdict = b"bound"
            except OSError as e:
                verdict = b"in use" if e.errno == errno.EADDRINUSE else str(e).encode()
            os.write(w, verdict)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        verdict = f.read().decode()
    os.waitpid(pid, 0)
    return verdict


def test_ports_not_shared_with_another_user(ctx):
    """A process of another user (nobody), asking for SO_REUSEADDR and
    SO_REUSEPORT, cannot bind the running agent's UDP or TCP port: it would
    take a share of the alerts. Run as root, which can become nobody."""
    if os.geteuid() != 0:
        raise Skip("needs root, to run a process as nobody")
    agent = ctx.agent([listener("udp"), listener("tcp")])
    for proto, kind in (("udp", socket.SOCK_DGRAM), ("tcp", socket.SOCK_STREAM)):
        verdict = _bind_as_nobody(kind, agent.port(proto))
        assert verdict == "in use", "a process running as nobody binding the agent's %s port: " \
            "%s" % (proto, verdict)
    agent.stop()


def test_restart_over_time_wait(ctx):
    """An agent stopped with a connection open leaves it in TIME_WAIT on its
    fixed port; the next start binds it all the same (the probe for a second
    agent does not mistake it for one)."""
    address = "127.0.0.1:%d" % _fixed_port()
    first = ctx.agent([listener("tcp", address=address)])
    tok = token()
    s = tcp_connect(first.port("tcp"))
    s.sendall(rfc3164("before run=" + tok) + b"\n")
    first.wait_tap(lambda m: tok in (m.get("msg") or ""), 1, 10)
    first.stop()  # the agent closes the connection first: its end goes to TIME_WAIT
    closed, _ = wait_closed(s)
    s.close()
    assert closed, "the stopped agent did not close the connection"
    second = ctx.agent([listener("tcp", address=address)])
    s = tcp_connect(second.port("tcp"))
    s.sendall(rfc3164("after run=" + tok) + b"\n")
    s.close()
    second.wait_tap(lambda m: "after run=" + tok in (m.get("msg") or ""), 1, 10)
    second.stop()
