"""The durable spool, end to end (issue 4, items 3 and 8): the real agent,
real sockets, a real HTTPS SafeTitan stand-in.

- restart: SafeTitan hangs, then answers 503; the alerts wait in the spool
  across a SIGTERM; a new agent on the same spool sends every one, with
  the idempotency key the first one used, counts spool_recovered, and a
  third start finds nothing left to send;
- kill -9 at random moments (seeded, the seed is printed) while thousands of
  sequence-numbered alerts flow from an at-least-once sender and SafeTitan
  misbehaves at random: every alert reaches SafeTitan, every repeat with
  the same key;
- a corrupt spool tail (garbage appended, the last record torn, a flipped
  byte): quarantined to a side file, counted, logged, everything valid
  before it delivered;
- a full spool (spool.max_bytes) while SafeTitan is down, and a disk that
  refuses writes (a file size limit, EFBIG): alerts are held, TCP input
  pauses, nothing is lost once there is room again;
- a second agent on the same spool folder refuses to start, naming the
  folder and the first agent's pid.

Every alert is a Splunk ES notable as CEF (mappings/splunk.json,
splunk-es-cef) whose user and externalId carry its sequence number; a
generated static directory maps user<N>@example.com to
user<N>@mail.example.com, so each request at the stand-in names its
sequence number in its email."""
import json
import os
import random
import re
import resource
import select
import socket
import struct
import threading
import time

import harness
import response_env as env
from harness import Agent, listener, t, wait_until
from numbered import (RULE, check_deliveries, check_nothing_pending, deliveries, directory, kill9,
                      start, start_untapped, wait_delivered, wait_finished)

HOST = "splunk-sh01"
SEG = re.compile(r"^seg-[0-9a-f]{16}\.spool$")


# ------------------------------------------------------------------ alerts

def _frame(n, rule=RULE):
    """Alert number n: its user and its externalId carry n, so its
    idempotency key differs from every other alert's."""
    return ("<134>Oct  2 09:12:44 %s CEF:0|Splunk|Enterprise Security|7.3|notable|%s|7|"
            "suser=user%d@example.com cs1Label=search_name cs1=%s externalId=%d"
            % (HOST, env.cef_escape(rule), n, rule, n)).encode()


def _config(ctx, st, n, spool=None, dispatch=None, audit="audit.jsonl", limits=None):
    """The live config every test uses: direct mode to st, the spool in the
    test folder (shared by every agent of the test), a directory of n users."""
    sp = {"dir": ctx.path("spool")}
    sp.update(spool or {})
    extra = env.live_config(ctx, st, users=directory(ctx, n), spool=sp, dispatch=dispatch,
                            audit=audit)
    if limits:
        extra["limits"] = limits
    return extra


# --------------------------------------------------------------- requests

# ------------------------------------------------------------------ agents

def _spooled_keys(agents):
    """{alert email: key} from the "spooled" audit lines of these agents."""
    out = {}
    for a in agents:
        for line in env.outcomes(env.audit(a), "spooled"):
            out.setdefault(line["user"], set()).add(line["key"])
    return out


def _segments(spool):
    return sorted(f for f in os.listdir(spool) if SEG.match(f))


def _spool_bytes(spool):
    return sum(os.path.getsize(os.path.join(spool, f)) for f in _segments(spool))


# ------------------------------------------------------------------ tests

def test_spool_restart_resends(ctx):
    """SafeTitan hangs (the first requests) then answers 503 while alerts
    arrive; SIGTERM; a new agent on the same spool, SafeTitan fixed: every
    alert delivered with the key the first agent spooled it with
    (spool_recovered counts them, nothing is appended again); a third start
    finds nothing pending."""
    env.need_samples()
    n = 20
    st = env.standin(ctx)
    st.script([{"hang": True}] * 3 + [{"status": 503}] * 100000)
    extra = _config(ctx, st, n, dispatch={"timeout_s": 30})
    a = start(ctx, extra, "first")
    env.send_tcp(a, [_frame(i) for i in range(n)])
    a.wait_metric("spool_appends_total", n, timeout=10)
    a.wait_metric('alerts_total{outcome="spooled"}', n, timeout=10)
    a.wait_metric("dispatch_retries_total", n - 3, timeout=15)
    assert a.metric('alerts_total{outcome="dispatched"}') == 0, "dispatched while SafeTitan fails"
    first = deliveries(st.requests())
    a.stop()  # SIGTERM with 3 requests hanging and the rest waiting to retry
    st.stop()

    st2 = env.restart(ctx, st)
    b = start(ctx, extra, "second")
    got = wait_delivered([st2], range(n), 15, agent=b)
    b.wait_metric('alerts_total{outcome="dispatched"}', n, timeout=10)
    assert b.metric("spool_recovered_total") == n, "spool_recovered %s, want %d" % (
        b.metric("spool_recovered_total"), n)
    assert b.metric("spool_appends_total") == 0, "the second agent appended alerts again"
    assert "spool: %d alerts not yet delivered" % n in b.stderr_bytes().decode(errors="replace"), \
        "no log line about the resent alerts\n" + b.stderr_tail()
    spooled = _spooled_keys([a])
    for seq, keys in got.items():
        assert keys == first.get(seq, keys), "alert %d: key %s now, %s before the restart" % (
            seq, keys, first[seq])
        assert keys == spooled["user%d@example.com" % seq], \
            "alert %d: key %s, the first agent spooled it with %s" % (
                seq, keys, spooled["user%d@example.com" % seq])
    check_deliveries(deliveries(st.requests() + st2.requests()), range(n))
    assert len(st2.requests()) == n, "%d requests for %d alerts from a healthy SafeTitan" % (
        len(st2.requests()), n)
    b.stop()

    check_nothing_pending(ctx, extra, "third")
    assert len(st2.requests()) == n, "completed alerts were sent again"


def _flaky_script(rng, n):
    """n stand-in actions: mostly normal answers, and 503s (with and without
    Retry-After), 429s, slow answers, answers slower than dispatch.timeout_s
    and connections closed without an answer."""
    bad = [lambda: {"status": 503},
           lambda: {"status": 503, "retry_after": "1"},
           lambda: {"status": 429, "retry_after": "1"},
           lambda: {"status": 502},
           lambda: {"close": True},
           lambda: {"delay": round(rng.uniform(0.05, 0.6), 2)},
           lambda: {"delay": 3}]  # over timeout_s: the agent gives up and retries
    return [rng.choice(bad)() if rng.random() < 0.25 else {"status": 200} for _ in range(n)]


def test_spool_kill9_random(ctx):
    """kill -9 at 3-5 random moments (random.Random(seed), the seed is
    printed; RTR_SPOOL_SEED replays one) while 5,000 sequence-numbered
    alerts flow in batches over TCP and SafeTitan misbehaves at random (503,
    429 with Retry-After, 502, slow answers, answers past the timeout,
    connections closed). The sender is at-least-once, as a SIEM forwarder
    with a disk queue: after each batch it waits until the agent counted it
    (spool_appends + outcome_duplicate), and when the agent was killed
    meanwhile it starts it again on the same spool and sends the whole batch
    again (the same frames, so the same keys). One kill comes after the last
    batch, while dispatch is in full swing. At the end every alert reached
    SafeTitan, every repeat with the same Idempotency-Key, and the spool
    holds nothing pending. In 20 batches; under valgrind: 300 alerts
    (RTR_SPOOL_ALERTS sets another count)."""
    env.need_samples()
    seed = int(os.environ.get("RTR_SPOOL_SEED") or random.SystemRandom().randrange(1 << 32))
    print("test_spool_kill9_random: seed %d (RTR_SPOOL_SEED=%d replays it)" % (seed, seed),
          flush=True)
    kills = []
    try:
        _kill9_run(ctx, seed, kills)
    except AssertionError as e:
        first, _, rest = str(e).partition("\n")
        raise AssertionError("seed %d: %s (kills: %s)\n%s" % (seed, first, "; ".join(kills), rest))


test_spool_kill9_random.timeout = 120


def _kill9_run(ctx, seed, kills):
    rng = random.Random(seed)
    n = int(os.environ.get("RTR_SPOOL_ALERTS") or (300 if harness.UNDER_VALGRIND else 5000))
    n_batches = 20
    batch = -(-n // n_batches)
    n_kills = rng.randint(3, 5)
    # Kills while batches are taken in, and (always) one after the last.
    kill_batches = set(rng.sample(range(1, n_batches), n_kills - 1))
    st = env.standin(ctx)
    st.script(_flaky_script(rng, 2 * n))
    extra = _config(ctx, st, n, dispatch={"timeout_s": 2, "connect_timeout_s": 2})
    runs = [start(ctx, extra, "run0")]

    def kill(why):
        a = runs[-1]
        m = a.metrics()
        kills.append("%s (appended %d, requests %d, dispatched %d)" % (
            why, m["rtr_agent_spool_appends_total"], m["rtr_agent_dispatch_requests_total"],
            m['rtr_agent_alerts_total{outcome="dispatched"}']))
        kill9(a)
        runs.append(start(ctx, extra, "run%d" % len(runs)))

    def counted(a):
        a.assert_alive()
        m = a.metrics()
        return m["rtr_agent_spool_appends_total"] + m['rtr_agent_alerts_total{outcome="duplicate"}']

    for b in range(n_batches):
        frames = [_frame(i) for i in range(b * batch, min(n, (b + 1) * batch))]
        while True:
            a = runs[-1]
            base = counted(a)
            try:
                env.send_tcp(a, frames)
            except OSError:
                pass  # the agent died under the sender: sent again below
            if b in kill_batches:
                kill_batches.discard(b)
                time.sleep(rng.uniform(0, 0.2))
                kill("during batch %d" % b)
                continue  # the whole batch again, to the new agent
            wait_until(lambda: counted(a) >= base + len(frames), 20,
                       "batch %d counted by the agent" % b, interval=0.05)
            break
    kill("after the last batch")

    last = runs[-1]
    wait_delivered([st], range(n), 60, agent=last)

    wait_finished(last, 60)
    assert last.metric('alerts_total{outcome="dead-letter"}') == 0, \
        "dead letters from a merely flaky SafeTitan"
    reqs = st.requests()
    check_deliveries(deliveries(reqs), range(n))
    print("test_spool_kill9_random: %d alerts, %d requests, kills: %s"
          % (n, len(reqs), "; ".join(kills)), flush=True)
    last.stop()
    check_nothing_pending(ctx, extra, "check")


# ------------------------------------------------------------ corrupt tails

def _records(data):
    """[(offset, size, type, payload)] of the records of a segment's bytes
    (agent/deliver/spool_format.c's layout: magic, version, then len, CRC,
    type, id, in version 2 an alert's 32-byte stamp, payload); stops where
    a length does not fit."""
    assert data[:8] == b"RTRSPOL1", "segment magic %r" % data[:8]
    stamp = 32 if struct.unpack_from("<I", data, 8)[0] >= 2 else 0
    out, off = [], 12
    while off + 17 <= len(data):
        length, _crc = struct.unpack_from("<II", data, off)
        if off + 8 + length > len(data):
            break
        head = stamp if data[off + 8] == 1 else 0
        out.append((off, 8 + length, data[off + 8], data[off + 17 + head:off + 8 + length]))
        off += 8 + length
    assert off == len(data), "segment has %d bytes after its last record" % (len(data) - off)
    return out


def _seq_of(payload):
    m = re.match(r"^user(\d+)@example\.com$", json.loads(payload.decode())["user"])
    assert m, "spool payload user %r" % payload[:200]
    return int(m.group(1))


def _damage_garbage(data, recs):
    """Bytes appended after the last record: a plausible length and a wrong
    CRC, then filler."""
    return data + struct.pack("<II", 100, 0x12345678) + b"\x01" + b"g" * 107, len(data)


def _damage_torn(data, recs):
    """The last record cut in its middle (a write torn by a crash)."""
    off, size = recs[-1][0], recs[-1][1]
    return data[:off + size // 2], off


def _damage_flip(data, recs):
    """One byte of a record's payload in the middle of the segment flipped:
    that record and every one after it are quarantined."""
    alerts = [r for r in recs if r[2] == 1]
    off, size = alerts[len(alerts) // 2][0], alerts[len(alerts) // 2][1]
    at = off + 17 + (size - 17) // 2
    return data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1:], off


def _corrupt_tail(ctx, damage, crash):
    """N alerts spooled while SafeTitan refuses connections; the agent
    stopped (SIGTERM, or kill -9 when crash); damage(data, records) ->
    (new bytes, offset where the bad part starts) applied to the newest
    segment; a new agent with SafeTitan up: exactly the alerts before the
    bad part are delivered, the bad part is in the side file, counted once
    and logged; the start after that finds nothing more to quarantine."""
    env.need_samples()
    n = 30
    st = env.standin(ctx)
    extra = _config(ctx, st, n)
    st.stop()  # down: connections refused
    a = start(ctx, extra, "first")
    env.send_tcp(a, [_frame(i) for i in range(n)])
    a.wait_metric("spool_appends_total", n, timeout=10)
    a.wait_metric("dispatch_retries_total", 1, timeout=10)
    if crash:
        kill9(a)
    else:
        a.stop()
    spool = extra["spool"]["dir"]
    seg = os.path.join(spool, _segments(spool)[-1])
    with open(seg, "rb") as f:
        data = f.read()
    recs = _records(data)
    assert sorted(_seq_of(r[3]) for r in recs if r[2] == 1) == list(range(n)), \
        "the segment does not hold the %d alerts" % n
    damaged, bad_at = damage(data, recs)
    with open(seg, "wb") as f:
        f.write(damaged)
    valid = {_seq_of(r[3]) for r in recs if r[2] == 1 and r[0] + r[1] <= bad_at}
    assert valid, "the damage leaves no valid alert"

    st2 = env.restart(ctx, st)
    b = start(ctx, extra, "second")
    got = wait_delivered([st2], valid, 15, agent=b)
    b.wait_metric('alerts_total{outcome="dispatched"}', len(valid), timeout=10)
    time.sleep(t(0.5))  # nothing more may come
    got = deliveries(st2.requests())
    check_deliveries(got, valid)
    assert b.metric("spool_corrupt_total") == 1, \
        "spool_corrupt_total %s, want 1" % b.metric("spool_corrupt_total")
    assert b.metric("spool_recovered_total") == len(valid), "spool_recovered %s, want %d" % (
        b.metric("spool_recovered_total"), len(valid))
    sides = [f for f in os.listdir(spool) if f.startswith(os.path.basename(seg) + ".corrupt-")]
    assert len(sides) == 1, "side files: %s" % sorted(os.listdir(spool))
    with open(os.path.join(spool, sides[0]), "rb") as f:
        assert f.read() == damaged[bad_at:], "the side file does not hold the damaged tail"
    err = b.stderr_bytes().decode(errors="replace")
    assert sides[0] in err and os.path.basename(seg) in err, \
        "no log line naming %s and its side file\n%s" % (seg, b.stderr_tail())
    spooled = _spooled_keys([a])
    for seq, keys in got.items():
        assert keys == spooled["user%d@example.com" % seq], "alert %d: key changed" % seq
    b.stop()

    m = check_nothing_pending(ctx, extra, "third")
    assert m["rtr_agent_spool_corrupt_total"] == 0, "the tail was quarantined twice"
    assert sorted(f for f in os.listdir(spool) if ".corrupt-" in f) == sides, \
        "side files now: %s" % sorted(os.listdir(spool))


def test_spool_corrupt_tail_garbage(ctx):
    """Garbage after the last record (a plausible length, a wrong CRC):
    every alert is delivered, the garbage is in the side file."""
    _corrupt_tail(ctx, _damage_garbage, crash=False)


def test_spool_corrupt_tail_torn(ctx):
    """kill -9, then the last record cut in its middle: every other alert
    is delivered, the torn bytes are in the side file."""
    _corrupt_tail(ctx, _damage_torn, crash=True)


def test_spool_corrupt_flipped_byte(ctx):
    """A byte flipped inside a record in the middle of the segment: the
    alerts before it are delivered, it and the rest of the segment are
    quarantined (and not sent)."""
    _corrupt_tail(ctx, _damage_flip, crash=False)


# ---------------------------------------------------------------- full disk

class _Sender(threading.Thread):
    """Writes LF-framed frames on one TCP connection as fast as the agent
    takes them (non-blocking, so it can tell when the agent stops reading):
    .sent is how many frames went out whole, .stalled(s) whether nothing
    could be written for s seconds."""

    def __init__(self, port, frames):
        super().__init__(daemon=True)
        self.port = port
        self.data = b"".join(f + b"\n" for f in frames)
        self.ends = []
        end = 0
        for f in frames:
            end += len(f) + 1
            self.ends.append(end)
        self.off = 0
        self.error = None
        self.progress = time.monotonic()

    @property
    def sent(self):
        return sum(1 for e in self.ends if e <= self.off)

    def done(self):
        return self.off == len(self.data)

    def stalled(self, seconds):
        return not self.done() and time.monotonic() - self.progress >= seconds

    def run(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
            s.setblocking(False)
            while self.off < len(self.data):
                _, w, _ = select.select([], [s], [], 0.1)
                if w:
                    self.off += s.send(self.data[self.off:self.off + 65536])
                    self.progress = time.monotonic()
            s.close()
        except OSError as e:
            self.error = e


def _held(agent, sender, spool, max_bytes=None):
    """Waits until the agent holds alerts for room in the spool and has
    stopped reading the sender (the sender's writes block, inputs paused)."""
    sender.start()
    agent.wait_metric("spool_full_total", 1, timeout=20)
    try:
        wait_until(lambda: sender.stalled(t(1.5)) or sender.error, 30,
                   "the sender's writes to block", interval=0.1)
    except AssertionError as e:
        raise AssertionError("%s (%d frames sent, done: %s)" % (e, sender.sent, sender.done()))
    assert not sender.error, "sender: %s" % sender.error
    agent.wait_metric("inputs_paused", 1, timeout=5)
    if max_bytes is not None:
        assert _spool_bytes(spool) <= max_bytes, "the spool holds %d bytes, over max_bytes %d" % (
            _spool_bytes(spool), max_bytes)
    assert agent.metric("decisions_dropped_total") == 0, \
        "decisions dropped while the spool was full"


def test_spool_full_max_bytes(ctx):
    """spool.max_bytes 1 MiB and SafeTitan refusing connections: alerts of
    some 2.3 KiB fill it; further alerts are held (spool_full), the decision
    queue fills and TCP input pauses (the sender's writes block,
    inputs_paused); the spool never grows past max_bytes. SafeTitan back:
    completions free segments, the held alerts and the rest of the sender's
    stream go in, and every alert is delivered."""
    env.need_samples()
    n = 1500
    rule = "Bulk Download " + "x" * 1000  # big spool records (rules are capped at 1 KiB)
    max_bytes = 1 << 20
    st = env.standin(ctx)
    extra = _config(ctx, st, n, spool={"max_bytes": max_bytes}, limits={"queue_messages": 16})
    st.stop()  # down: connections refused
    a = start(ctx, extra, "agent")
    spool = extra["spool"]["dir"]
    sender = _Sender(a.port("tcp"), [_frame(i, rule) for i in range(n)])
    _held(a, sender, spool, max_bytes)
    held_at = sender.sent
    assert held_at < n, "all %d alerts went in: the spool never filled" % n

    st2 = env.restart(ctx, st)
    wait_until(sender.done, 60, "the sender to finish (sent %d of %d)" % (sender.sent, n))
    got = wait_delivered([st2], range(n), 60, agent=a, rule=rule)
    check_deliveries(got, range(n))
    a.wait_metric('alerts_total{outcome="dispatched"}', n, timeout=10)
    assert a.metric("decisions_dropped_total") == 0
    assert a.metric("inputs_paused") == 0, "inputs still paused"
    assert "spool: full (spool.max_bytes)" in a.stderr_bytes().decode(errors="replace"), \
        "no log line about the full spool\n" + a.stderr_tail()
    print("test_spool_full_max_bytes: held after %d of %d alerts, spool_full %d"
          % (held_at, n, a.metric("spool_full_total")), flush=True)
    a.stop()


test_spool_full_max_bytes.timeout = 90


def test_spool_full_then_sigterm_ends(ctx):
    """Stopped while alerts are held for a full spool and more records wait
    in the decision queue: the stop still ends (exit 0, no second signal),
    and what never reached the spool is logged and counted as lost
    (decisions_dropped), never silently."""
    env.need_samples()
    n = 1500
    rule = "Bulk Download " + "x" * 1000
    max_bytes = 1 << 20
    st = env.standin(ctx)
    extra = _config(ctx, st, n, spool={"max_bytes": max_bytes}, limits={"queue_messages": 16})
    st.stop()
    a = start(ctx, extra, "agent")
    sender = _Sender(a.port("tcp"), [_frame(i, rule) for i in range(n)])
    _held(a, sender, extra["spool"]["dir"], max_bytes)
    spooled = a.metric('alerts_total{outcome="spooled"}')
    a.stop(timeout=30)
    err = a.stderr_bytes().decode(errors="replace")
    assert "were not spooled and are lost" in err, a.stderr_tail()
    lost = int(re.search(r"stopping with (\d+) alerts the spool could not take", err).group(1))
    assert lost > 0
    assert spooled > 0


def test_spool_disk_refuses_writes(ctx):
    """A file size limit (RLIMIT_FSIZE, set on the running agent) stands for
    a full disk: the spool's writes fail with EFBIG (the agent ignores
    SIGXFSZ), are counted (spool_write_errors) and logged, the alerts are
    held (spool_full) and TCP input pauses; the segment keeps no torn
    record. Raising the limit: every alert is delivered, and a restart finds
    nothing corrupt. The tap goes to /dev/null and there is no audit log,
    so that only the spool meets the limit."""
    env.need_samples()
    n = 3000
    limit = 128 * 1024
    st = env.standin(ctx)
    extra = _config(ctx, st, n, audit=None, limits={"queue_messages": 16})
    a = start_untapped(ctx, [listener("tcp")], extra, "agent")
    spool = extra["spool"]["dir"]
    soft, hard = resource.prlimit(a.proc.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(a.proc.pid, resource.RLIMIT_FSIZE, (limit, hard))
    sender = _Sender(a.port("tcp"), [_frame(i) for i in range(n)])
    try:
        _held(a, sender, spool)
        assert a.metric("spool_write_errors_total") > 0, "no spool write error counted"
        sizes = [os.path.getsize(os.path.join(spool, f)) for f in _segments(spool)]
        assert max(sizes) <= limit, "a segment of %d bytes under a %d limit" % (max(sizes), limit)
        err = a.stderr_bytes().decode(errors="replace")
        assert "File too large" in err, "no log line about the refused write\n" + a.stderr_tail()
        held_at = sender.sent
    finally:
        resource.prlimit(a.proc.pid, resource.RLIMIT_FSIZE, (soft, hard))
    wait_until(sender.done, 60, "the sender to finish (sent %d of %d)" % (sender.sent, n))
    got = wait_delivered([st], range(n), 60, agent=a)
    check_deliveries(got, range(n))
    a.wait_metric('alerts_total{outcome="dispatched"}', n, timeout=20)
    assert a.metric("decisions_dropped_total") == 0
    print("test_spool_disk_refuses_writes: held after %d of %d alerts, spool_full %d, "
          "write errors %d" % (held_at, n, a.metric("spool_full_total"),
                               a.metric("spool_write_errors_total")), flush=True)
    a.stop()
    m = check_nothing_pending(ctx, _config(ctx, st, n, audit=None), "again")
    assert m["rtr_agent_spool_corrupt_total"] == 0, "a torn record was left in the spool"


test_spool_disk_refuses_writes.timeout = 90


# ------------------------------------------------------------- two agents

def test_spool_second_agent_refused(ctx):
    """A second agent on a spool folder in use refuses to start, naming the
    folder and the first agent's pid; the first keeps delivering; once it
    stopped, another agent starts on the folder."""
    env.need_samples()
    st = env.standin(ctx)
    extra = _config(ctx, st, 4)
    spool = extra["spool"]["dir"]
    a = start(ctx, extra, "first")
    b = Agent(ctx, [listener("tcp")], extra=extra, name="second")
    try:
        b.start()
    except AssertionError:
        pass
    try:
        status = b.proc.wait(t(10))
    finally:
        b.stopped = True
        b._err.close()
    assert status != 0, "the second agent exited %d" % status
    err = b.stderr_bytes().decode(errors="replace")
    want = "spool.dir: %s: held by another rtr-agent (pid %d)" % (spool, a.proc.pid)
    assert want in err, "no %r in the second agent's stderr:\n%s" % (want, err[-2000:])
    assert harness.REPORT.search(b.stderr_bytes()) is None, "report in the second agent's stderr"
    env.send_tcp(a, [_frame(0)])
    check_deliveries(wait_delivered([st], [0], 10, agent=a), [0])
    a.stop()
    c = start(ctx, extra, "third")
    env.send_tcp(c, [_frame(1)])
    check_deliveries(wait_delivered([st], [0, 1], 10, agent=c), [0, 1])
    c.stop()


# Under valgrind (tests/integration/run.py): kill -9 ends valgrind with the
# agent, so only the restarts are checked, and those run under it in
# test_spool_restart_resends and the corrupt-tail tests.
test_spool_kill9_random.valgrind_skip = "kill -9 leaves valgrind nothing to check; the restart " \
    "paths run under it in test_spool_restart_resends and the corrupt-tail tests"

# These mostly wait for the spool to fill and for hold-timer ticks; the
# hold and resume paths run under valgrind in test_http_intake's
# test_http_spool_full_503 and test_http_queue_full_mid_request.
for _fn in (test_spool_full_max_bytes, test_spool_full_then_sigterm_ends,
            test_spool_disk_refuses_writes):
    _fn.valgrind_skip = "waits on a full spool: the hold paths run under valgrind in " \
        "test_http_intake's spool tests"
