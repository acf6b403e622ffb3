"""Bad input ("Bad input" in issue 2): the agent survives, counts, escapes,
and keeps the connection wherever the framing allows."""
import random
import socket
import struct
import time

from harness import (check_sequence, listener, octet, rfc3164, t, tcp_connect, token, udp_send,
                     wait_closed)

MAX = 4096
LIMITS = {"max_message_bytes": MAX, "max_connections": 64, "idle_timeout_s": 30}


def _send(port, data, chunks=1, pause=0.0):
    """One connection: data in `chunks` pieces, then close."""
    s = tcp_connect(port)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    step = max(1, len(data) // chunks)
    for i in range(0, len(data), step):
        s.sendall(data[i:i + step])
        if pause:
            time.sleep(pause)
    return s


def _good(agent, port, text):
    """A good message on a fresh connection arrives: the agent is serving."""
    s = _send(port, rfc3164(text) + b"\n")
    s.close()
    return agent.wait_tap(lambda m: text in (m.get("msg") or ""), 1, 10,
                          what="a good message after bad input")[0]


def _check_log_escaped(agent):
    err = agent.stderr_bytes()
    try:
        err.decode("utf-8", "strict")
    except UnicodeDecodeError as e:
        raise AssertionError("agent log holds invalid UTF-8 (%s)" % e)
    ctl = sorted({b for b in err if b < 0x20 and b != 0x0a})
    assert not ctl, "agent log holds raw control bytes %s" % [hex(b) for b in ctl]


def test_garbage_burst(ctx):
    agent = ctx.agent([listener("tcp"), listener("udp")], limits=LIMITS)
    rnd = random.Random(2)
    s = _send(agent.port("tcp"), rnd.randbytes(256 * 1024), chunks=16)
    s.close()
    s = _send(agent.port("tcp"), bytes(rnd.choice(b"0123456789 \n<>|=CEF:") for _ in range(65536)))
    s.close()
    udp_send(agent.port("udp"), [rnd.randbytes(rnd.randrange(1, 9000)) for _ in range(50)])
    time.sleep(0.3)
    agent.assert_alive()
    _good(agent, agent.port("tcp"), "alive after garbage " + token())
    agent.tap()  # every tap line must still be valid JSON without raw control characters
    agent.stop()
    _check_log_escaped(agent)


def test_control_chars_and_invalid_utf8(ctx):
    agent = ctx.agent([listener("tcp"), listener("udp")], limits=LIMITS)
    tok = token()
    body = b"ctl " + tok.encode() + b" \x01\x02\x07\x08\x0b\x0c\x1b[31mred\x7f tab\tcr\rmid " \
        b"bad\xff\xfe\xc3\x28 overlong\xc0\xaf surrogate\xed\xa0\x80 ok\xc3\xa9 end"
    s = _send(agent.port("tcp"), b"<13>Nov 23 10:00:00 h\x01st app\x1b: " + body + b"\n")
    s.close()
    udp_send(agent.port("udp"), [b"<13>Nov 23 10:00:00 host app: udp " + body])
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 2, 10)
    for m in msgs:
        text = m["msg"]
        for want in ("\x01\x02\x07\x08\x0b\x0c\x1b[31mred", "tab\tcr\rmid", "ok\u00e9 end"):
            assert want in text, "%r not kept (escaped, then decoded) in msg %r" % (want, text)
        # invalid UTF-8 bytes are escaped, one way or another, never dropped silently
        assert "bad" in text and "overlong" in text and "surrogate" in text, text
        for part in ("bad", "overlong", "surrogate"):
            after = text.split(part, 1)[1].split(" ", 1)[0]
            assert after, "invalid bytes after %r vanished: %r" % (part, text)
    agent.stop()
    _check_log_escaped(agent)


def test_malformed_cef_then_good_same_connection(ctx):
    agent = ctx.agent([listener("tcp")], limits=LIMITS)
    before = agent.metric('parse_errors_total{kind="cef"}')
    tok = token()
    bad = rfc3164("CEF:0|only|three " + tok, app="cefapp")
    good = rfc3164("CEF:0|Good|Product|1.0|100|Fine " + tok + "|5|suser=alice act=ok",
                   app="cefapp")
    s = _send(agent.port("tcp"), bad + b"\n" + good + b"\n")
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 2, 10)
    s.close()
    assert len(msgs) == 2, "want 2 messages, got %d: %s" % (len(msgs), msgs)
    first, second = msgs
    assert "only|three" in first["msg"], "order: the malformed message should come first: %s" % msgs
    assert (first.get("error") or "").lower().startswith("cef"), \
        "malformed CEF without a \"cef: ...\" error: %s" % first
    assert "error" not in second, "the good message got an error: %s" % second
    cef = second.get("cef") or {}
    header = (cef.get("vendor"), cef.get("product"), cef.get("severity"))
    assert header == ("Good", "Product", "5"), \
        "good CEF header: %s" % cef
    assert (cef.get("ext") or {}).get("suser") == "alice", "good CEF ext: %s" % cef
    assert first["source"] == second["source"], "not the same connection"
    agent.wait_metric('parse_errors_total{kind="cef"}', before + 1, 5)
    agent.stop()


def _oversized_then_good(agent, port, frame, good_text, what):
    before = agent.metric("frames_oversized_total")
    s = _send(port, frame, chunks=7, pause=0.01)
    good = "<13>Nov 23 10:00:00 itest-host itest: " + good_text
    s.sendall(octet(good.encode()) if frame[:1].isdigit() else good.encode() + b"\n")
    try:
        got = agent.wait_tap(lambda m: good_text in (m.get("msg") or ""), 1, 10,
                             what="the frame after %s on the same connection" % what)
    finally:
        s.close()
    assert got[0]["msg"] == good_text, "frame after %s not intact: %r" % (what, got[0]["msg"])
    agent.wait_metric("frames_oversized_total", before + 1, 5)
    for m in agent.tap():
        text = m.get("msg") or ""
        assert "TAILMARK" not in text and "INJECTED" not in text, \
            "bytes past max_message_bytes of %s surfaced as a message: %r..." % (what, text[:120])
        assert len(text.encode()) <= MAX, "a %d-byte msg passed max_message_bytes %d" % (
            len(text.encode()), MAX)


def test_oversized_lf_frame(ctx):
    agent = ctx.agent([listener("tcp")], limits=LIMITS)
    frame = b"<13>Nov 23 10:00:00 itest-host big: " + b"A" * 12000 + b" TAILMARK\n"
    _oversized_then_good(agent, agent.port("tcp"), frame, "after-lf " + token(),
                         "a 12 KB LF frame")
    agent.stop()


def test_oversized_truncate_and_reject_policies(ctx):
    """limits.oversize: "truncate" (default) delivers the first
    max_message_bytes of an over-long LF frame; "reject" delivers nothing
    of it (LF or octet-counted). Both count it."""
    tr = ctx.agent([listener("tcp")], limits=LIMITS, name="truncate")
    tok = token()
    frame = b"<13>Nov 23 10:00:00 itest-host big: " + tok.encode() + b"A" * 12000 + b" TAILMARK\n"
    _oversized_then_good(tr, tr.port("tcp"), frame, "after-trunc " + tok, "a 12 KB LF frame")
    cut = tr.with_text(tok + "AAAA")
    assert len(cut) == 1, "truncate: want the cut frame once in the tap, found %d" % len(cut)
    assert 3000 < len(cut[0]["msg"]) <= MAX, "truncated msg is %d bytes" % len(cut[0]["msg"])
    assert cut[0].get("error") == "frame: truncated", "the cut frame is not flagged: %s" % {
        k: v for k, v in cut[0].items() if k not in ("raw", "msg")}
    tr.stop()
    rej = ctx.agent([listener("tcp")], limits=dict(LIMITS, oversize="reject"), name="reject")
    for body in (frame, octet(frame[:-1])):
        tok2 = token()
        body = body.replace(tok.encode(), tok2.encode())
        _oversized_then_good(rej, rej.port("tcp"), body, "after-reject " + tok2,
                             "a rejected 12 KB frame")
        assert not rej.with_text(tok2 + "AAAA"), "reject policy: part of the frame was delivered"
    rej.stop()


def test_oversized_octet_frame_skipped_exactly(ctx):
    """`99999 ` + 99999 bytes with max 4096: skipped by exactly its count
    (LFs and frame-looking bytes inside are not frames), on auto and octet
    listeners."""
    agent = ctx.agent([listener("tcp", framing="auto"), listener("tcp", framing="octet")],
                      limits=LIMITS)
    inner = b"\n" + octet(b"<13>Nov 23 10:00:00 h INJECTED: x") + b"\n<13>INJECTED line\n"
    head = b"<13>Nov 23 10:00:00 itest-host big: "
    fill = 99999 - len(head) - len(inner) - len(b"TAILMARK")
    body = head + b"B" * (fill // 2) + inner + b"B" * (fill - fill // 2) + b"TAILMARK"
    assert len(body) == 99999
    for i, framing in enumerate(("auto", "octet")):
        _oversized_then_good(agent, agent.port("tcp", i), b"99999 " + body,
                             "after-octet-%s %s" % (framing, token()),
                             "a 99999-byte octet frame (%s listener)" % framing)
    agent.stop()


def test_absurd_octet_count(ctx):
    """A 20-digit count can neither overflow nor make the agent wait for or
    allocate 10^20 bytes: it is counted as malformed (or, on an auto
    listener, taken as a text line) and the next frame arrives."""
    agent = ctx.agent([listener("tcp", framing="auto"), listener("tcp", framing="octet")],
                      limits=LIMITS)
    for i, framing in enumerate(("auto", "octet")):
        before = agent.metric("frames_bad_octet_count_total")
        tok = token()
        good = b"<13>Nov 23 10:00:00 itest-host itest: after-absurd " + tok.encode()
        s = _send(agent.port("tcp", i), b"99999999999999999999 x" + tok.encode() + b"\n")
        s.sendall(octet(good) if framing == "octet" else good + b"\n")
        got = agent.wait_tap(lambda m: "after-absurd " + tok in (m.get("msg") or ""), 1, 10,
                             what="the frame after an absurd count (%s listener)" % framing)
        s.close()
        assert got[0]["msg"] == "after-absurd " + tok, got[0]
        counted = agent.metric("frames_bad_octet_count_total") > before
        as_text = [m for m in agent.tap() if "x" + tok in (m.get("raw") or m.get("msg") or "")]
        if framing == "octet":
            assert counted, "octet listener: rtr_agent_frames_bad_octet_count did not increase"
            assert not as_text, "octet listener delivered a malformed count as a message"
        else:
            assert counted or as_text, \
                "auto listener: the absurd count was neither counted nor delivered as text"
    agent.assert_alive()
    agent.stop()


def test_max_connections(ctx):
    agent = ctx.agent([listener("tcp")],
                      limits={"max_message_bytes": MAX, "max_connections": 2, "idle_timeout_s": 30})
    tok = token()
    conns = []
    for i in range(2):
        s = _send(agent.port("tcp"), rfc3164("conn %d %s" % (i, tok)) + b"\n")
        conns.append(s)
    agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 2, 10)
    extra = tcp_connect(agent.port("tcp"))
    try:
        extra.sendall(rfc3164("conn extra " + tok) + b"\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    closed, _ = wait_closed(extra, 5)
    extra.close()
    assert closed, "a third connection was kept open with max_connections=2"
    agent.wait_metric('connections_refused_total{reason="limit"}', 1, 5)
    assert not agent.with_text("conn extra " + tok), "the refused connection's data reached the tap"
    # the first two still work; closing one makes room again
    conns[1].sendall(rfc3164("still open " + tok) + b"\n")
    agent.wait_tap(lambda m: "still open " + tok in (m.get("msg") or ""), 1, 10)
    conns[0].close()
    time.sleep(0.5)
    s = _send(agent.port("tcp"), rfc3164("room again " + tok) + b"\n")
    agent.wait_tap(lambda m: "room again " + tok in (m.get("msg") or ""), 1, 10,
                   what="a new connection after one of two closed")
    s.close()
    conns[1].close()
    agent.stop()


def test_idle_timeout(ctx):
    agent = ctx.agent([listener("tcp")],
                      limits={"max_message_bytes": MAX, "max_connections": 64, "idle_timeout_s": 1})
    tok = token()
    before = agent.metric('connections_closed_total{reason="idle"}')
    busy = _send(agent.port("tcp"), rfc3164("busy 0 " + tok) + b"\n")
    idle = _send(agent.port("tcp"), rfc3164("idle " + tok) + b"\n")
    t0 = time.monotonic()
    # the busy connection talks every 0.3 s and must survive well past 1 s
    for i in range(1, 8):
        time.sleep(0.3)
        busy.sendall(rfc3164("busy %d %s" % (i, tok)) + b"\n")
    closed, _ = wait_closed(idle, 4)
    took = time.monotonic() - t0
    idle.close()
    assert closed, "an idle connection was not closed within %.1fs (idle_timeout_s=1)" % took
    assert took >= 0.8, "idle connection closed after %.2fs, before idle_timeout_s=1" % took
    agent.wait_tap(lambda m: "busy 7 " + tok in (m.get("msg") or ""), 1, 5,
                   what="the busy connection's last message")
    busy.settimeout(0.05)
    try:
        data = busy.recv(1)
        assert data != b"", "the busy connection was closed although it kept sending"
    except socket.timeout:
        pass
    busy.close()
    assert agent.with_text("idle " + tok), "the idle connection's message was lost"
    agent.wait_metric('connections_closed_total{reason="idle"}', before + 1, 5)
    agent.stop()


def test_frames_split_anywhere_and_mixed_framing(ctx):
    """One connection that switches between octet counting and LF/CRLF/NUL
    trailers per frame, sent in tiny random pieces: every frame arrives, in
    order, without trailers; a last frame without a trailer arrives at close."""
    agent = ctx.agent([listener("tcp", framing="auto")], limits=LIMITS)
    tok = token()
    rnd = random.Random(5)
    data = b""
    n = 60
    for i in range(n):
        frame = rfc3164("seq=%05d run=%s" % (i, tok))
        kind = i % 4
        data += [octet(frame), frame + b"\n", frame + b"\r\n", frame + b"\0"][kind]
    data += rfc3164("seq=%05d run=%s" % (n, tok))  # no trailer: ends at close
    s = tcp_connect(agent.port("tcp"))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pos = 0
    while pos < len(data):
        step = rnd.randrange(1, 40)
        s.sendall(data[pos:pos + step])
        pos += step
        if rnd.random() < 0.1:
            time.sleep(0.002)
    s.shutdown(socket.SHUT_WR)
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), n + 1, 10)
    seqs = check_sequence(msgs, tok, n + 1)
    for seq, m in seqs:
        assert m["msg"] == "seq=%05d run=%s" % (seq, tok), "frame %d: msg %r" % (seq, m["msg"])
    s.close()
    agent.stop()


def test_unterminated_last_frame(ctx):
    """What a connection leaves unterminated is delivered flagged "frame:
    truncated" and counted in frames_truncated, however the connection
    ended: an LF line at a clean EOF (the sender may have been killed
    mid-line), an octet-counted frame whose count was not met, a line cut by
    a reset or the idle timeout. A truncated frame is never decided."""
    agent = ctx.agent([listener("tcp")],
                      limits={"max_message_bytes": MAX, "max_connections": 64, "idle_timeout_s": 1})
    port = agent.port("tcp")
    tok = token()
    s = _send(port, rfc3164("eof-line " + tok))
    s.close()
    s = _send(port, b"200 " + rfc3164("eof-octet " + tok))
    s.close()
    s = _send(port, rfc3164("reset-line " + tok))
    time.sleep(0.2)  # read before the reset, which drops what is unread
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    idle = _send(port, rfc3164("idle-line " + tok))
    closed, _ = wait_closed(idle, 5)
    idle.close()
    assert closed, "the idle connection was not closed"
    for what in ("eof-line", "eof-octet", "reset-line", "idle-line"):
        agent.wait_tap(lambda m, w=what: w + " " + tok in (m.get("msg") or ""), 1, 10, what=what)
    for what in ("eof-line", "eof-octet", "reset-line", "idle-line"):
        m = agent.with_text(what + " " + tok)[0]
        assert m.get("error") == "frame: truncated", "%s: error %r" % (what, m.get("error"))
    assert agent.metric("frames_truncated_total") == 4
    per_listener = 'listener_frames_truncated_total{listener="127.0.0.1:%d",proto="tcp"}' % port
    assert agent.metric(per_listener) == 4, sorted(k for k in agent.metrics() if "trunc" in k)
    agent.stop()


def test_trickled_message_closed_at_frame_timeout(ctx):
    """A sender that trickles a message a byte now and then (each resetting
    the idle timeout) is closed once the message has taken
    limits.frame_timeout_s, counted in connections_closed_slow; what it sent
    comes out flagged truncated, never decided."""
    agent = ctx.agent([listener("tcp")], limits={"frame_timeout_s": 1, "idle_timeout_s": 30})
    tok = token()
    s = tcp_connect(agent.port("tcp"))
    s.sendall(rfc3164("trickle " + tok))
    closed = False
    deadline = time.monotonic() + t(10)
    while not closed and time.monotonic() < deadline:
        try:
            s.sendall(b"x")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        closed, _ = wait_closed(s, 0.3)
    s.close()
    assert closed, "a trickling sender was still connected after %.0f s" % t(10)
    agent.wait_metric('connections_closed_total{reason="slow"}', 1, 5)
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 1, 5)
    assert msgs[0].get("error") == "frame: truncated", msgs[0].get("error")
    agent.stop()


def test_busy_stream_outlives_frame_timeout(ctx):
    """A stream whose writes end mid-line for longer than frame_timeout_s
    (each message ending within it) is not closed: the deadline runs per
    message, not per connection."""
    agent = ctx.agent([listener("tcp")], limits={"frame_timeout_s": 1})
    tok = token()
    s = tcp_connect(agent.port("tcp"))
    lines = [rfc3164("busy seq=%d run=%s" % (i, tok)) + b"\n" for i in range(30)]
    data = b"".join(lines)
    step = len(data) // 30 + 7  # cuts fall mid-line
    for off in range(0, len(data), step):
        s.sendall(data[off:off + step])
        time.sleep(0.1)  # 3 s in all, past frame_timeout_s
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 30, 10)
    check_sequence(msgs, tok, 30)
    assert agent.metric('connections_closed_total{reason="slow"}') == 0
    s.close()
    agent.stop()


def test_max_connections_per_source(ctx):
    """One source address may hold at most max_connections_per_source
    connections: its third is refused (counted), another address still
    gets in, and a closed one makes room again."""
    agent = ctx.agent([listener("tcp")],
                      limits={"max_connections_per_source": 2, "idle_timeout_s": 30})
    port = agent.port("tcp")
    tok = token()

    def connect(source, text):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(rfc3164("%s %s" % (text, tok)) + b"\n")
        return s
    first = [connect("127.0.0.1", "first%d" % i) for i in range(2)]
    agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 2, 10)
    extra = connect("127.0.0.1", "third")
    closed, _ = wait_closed(extra, 5)
    extra.close()
    assert closed, "a third connection from 127.0.0.1 was kept with max_connections_per_source 2"
    agent.wait_metric('connections_refused_total{reason="limit"}', 1, 5)
    other = connect("127.0.0.2", "other source")
    agent.wait_tap(lambda m: "other source " + tok in (m.get("msg") or ""), 1, 10,
                   what="a connection from 127.0.0.2")
    first[0].close()
    time.sleep(0.5)
    again = connect("127.0.0.1", "room again")
    agent.wait_tap(lambda m: "room again " + tok in (m.get("msg") or ""), 1, 10,
                   what="a connection from 127.0.0.1 after one of its two closed")
    assert not agent.with_text("third " + tok), "the refused connection's data reached the tap"
    for s in first[1:] + [other, again]:
        s.close()
    agent.stop()
