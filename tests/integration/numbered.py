"""Numbered alerts, shared by test_spool.py, test_relp.py and
test_atleastonce.py: the CEF alert whose user and externalId carry its
sequence number, the static directory that maps them, and what SafeTitan
received of them.

Alert N is a Splunk ES notable as CEF (response_env.cef, mappings/splunk.json
splunk-es-cef) for user<N>@example.com with externalId N; the generated
directory resolves user<N>@example.com to user<N>@mail.example.com, so every
SafeTitan request names its alert's number. Not a test module (run.py only
collects test_*.py)."""
import json
import os
import re
import signal
import socket
import threading
import time

import response_env as env
from harness import Agent, t, wait_until

RULE = "USB Rule"
RATE = 2000  # alerts per second into rsyslog, as in the measurement
FIELDS = {"event", "email", "id", "occurred_at"}
EMAIL = re.compile(r"^user(\d+)@mail\.example\.com$")
KEY = re.compile(r"^[0-9a-f]{64}$")


# ------------------------------------------------------------------ alerts

def alert(n, extra=""):
    return env.cef(RULE, "user%d@example.com" % n, ext_id=n, extra=extra)


def directory(ctx, n):
    """A static directory for user0..user<n-1>."""
    path = ctx.path("users-%d.csv" % n)
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write("# identifier,email\n")
            for i in range(n):
                f.write("user%d@example.com,user%d@mail.example.com\n" % (i, i))
    return path


# ------------------------------------------------------------------ senders

class Paced(threading.Thread):
    """Writes LF-framed frames to 127.0.0.1:port at `rate` per second, in a
    batch every 50 ms; .sent is how many sendall() took."""

    def __init__(self, port, frames, rate=RATE):
        super().__init__(daemon=True)
        self.port, self.frames, self.rate = port, frames, rate
        self.sent = 0
        self.error = None

    def run(self):
        step = max(1, self.rate // 20)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                start = time.monotonic()
                for i in range(0, len(self.frames), step):
                    batch = self.frames[i:i + step]
                    s.sendall(b"".join(f + b"\n" for f in batch))
                    self.sent += len(batch)
                    ahead = start + self.sent / self.rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError as e:
            self.error = e


# --------------------------------------------------------------- requests

def deliveries(requests, rule=RULE):
    """{sequence number: set of idempotency keys} of the alerts the stand-in
    saw; fails on a request that is not exactly a direct-mode alert."""
    out = {}
    for r in requests:
        assert r["method"] == "POST" and r["path"] == "/v1/events", \
            "unexpected request %s %s" % (r["method"], r["path"])
        body = json.loads(r["body"])
        assert set(body) == FIELDS, "body fields %s, want %s" % (sorted(body), sorted(FIELDS))
        m = EMAIL.match(body["email"] or "")
        assert m, "email %r is not one of the directory's" % body["email"]
        key = r["headers"].get("idempotency-key")
        assert key and KEY.match(key), "Idempotency-Key %r" % key
        assert body["id"] == key, "body id %r differs from Idempotency-Key %r" % (body["id"], key)
        assert body["event"] == rule, "event %r, want %r" % (body["event"], rule)
        out.setdefault(int(m.group(1)), set()).add(key)
    return out


def check_deliveries(deliv, seqs, what="alerts"):
    """Every sequence number of seqs was delivered, each always with one
    key, no two with the same key, nothing else."""
    seqs = set(seqs)
    problems = []
    missing = sorted(seqs - set(deliv))
    if missing:
        problems.append("%d of %d %s never reached SafeTitan (first: %s)"
                        % (len(missing), len(seqs), what, missing[:10]))
    extra = sorted(set(deliv) - seqs)
    if extra:
        problems.append("unexpected sequence numbers %s" % extra[:10])
    split = sorted(s for s, keys in deliv.items() if len(keys) > 1)
    if split:
        problems.append("%d sequence numbers came with different keys (first: %d: %s)"
                        % (len(split), split[0], sorted(deliv[split[0]])))
    owners = {}
    for s, keys in deliv.items():
        for k in keys:
            owners.setdefault(k, set()).add(s)
    shared = [k for k, ss in owners.items() if len(ss) > 1]
    if shared:
        problems.append("sequence numbers %s share a key" % sorted(owners[shared[0]]))
    assert not problems, "; ".join(problems)


# ------------------------------------------------------------------ agents

def wait_delivered(sts, seqs, timeout, agent=None, rule=RULE):
    """Waits until every sequence number of seqs reached one of the
    stand-ins sts; returns {seq: keys} over all of them."""
    seqs = set(seqs)
    got = {}

    def done():
        nonlocal got
        if agent is not None:
            agent.assert_alive()
        got = deliveries([r for st in sts for r in st.requests()], rule)
        return seqs <= set(got)
    try:
        wait_until(done, timeout, "%d alerts at SafeTitan" % len(seqs), interval=0.2)
    except AssertionError as e:
        missing = sorted(seqs - set(got))
        raise AssertionError("%s: %d missing (first: %s)%s" % (
            e, len(missing), missing[:10], "\n" + agent.stderr_tail() if agent else ""))
    return got


def wait_finished(agent, timeout):
    """Waits until the agent has finished (dispatched or dead-lettered)
    every alert it recovered from its spool or appended to it."""
    def finished():
        m = agent.metrics()
        done = (m['rtr_agent_alerts_total{outcome="dispatched"}'] +
                m['rtr_agent_alerts_total{outcome="dead-letter"}'])
        return done >= m["rtr_agent_spool_recovered_total"] + m["rtr_agent_spool_appends_total"]
    wait_until(finished, timeout, "the agent to finish what it recovered and appended",
               interval=0.2)


def quiet_config(ctx, st, n, **kw):
    """Direct mode to the stand-in st for n numbered users, the spool in the
    test folder, no audit log (so that only the spool meets a file size
    limit); kw goes to response_env.live_config."""
    return env.live_config(ctx, st, users=directory(ctx, n), spool={"dir": ctx.path("spool")},
                           audit=None, **kw)


def start_untapped(ctx, listen, extra, name):
    """An agent whose tap goes to /dev/null: thousands of tap lines would
    only cost time, and only the spool is to meet a file size limit."""
    a = Agent(ctx, listen, extra=extra, name=name)
    a.tap_path = os.devnull
    return a.start()


def start(ctx, extra, name):
    return env.start_agent(ctx, extra, name=name)


def kill9(agent):
    """kill -9: no clean exit to check (the harness must not try)."""
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait()
    agent.stopped = True
    agent._err.close()


def pending_at_start(agent):
    """Alerts the agent's spool_open found pending (its log line; none
    without segments)."""
    m = re.search(r"spool\.dir: .*: \d+ segments read, (\d+) alerts pending",
                  agent.stderr_bytes().decode(errors="replace"))
    return int(m.group(1)) if m else 0


def check_nothing_pending(ctx, extra, name):
    """A start on the spool finds nothing to send again; returns its
    metrics."""
    c = start(ctx, extra, name)
    pending = pending_at_start(c)
    time.sleep(t(0.3))
    m = c.metrics()
    c.stop()
    assert pending == 0 and m["rtr_agent_spool_recovered_total"] == 0, \
        "a new start found %d alerts pending (spool_recovered %d)" % (
            pending, m["rtr_agent_spool_recovered_total"])
    return m
