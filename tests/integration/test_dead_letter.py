"""The dead-letter file (issue 12, item 7), end to end: the real agent in
direct mode, alerts for a user the static directory does not know (so
they are dead-lettered as "unresolved-user" without a request).

- SIGHUP after `mv dead-letter.jsonl dead-letter.1` (logrotate's rename):
  the next dead letter lands in a new file, the old one keeps its lines,
  the reload line says the file was reopened, and dead_letter_bytes
  follows the new file;
- a write the disk refuses (a file size limit, RLIMIT_FSIZE, set on the
  running agent, that only the pre-filled dead-letter file exceeds): the
  alert stays in the spool and its line is tried again while the agent runs
  (dead_letter_errors counts each try); once the limit goes the line is
  written without a restart, and a new start finds nothing left to send;
- spool.max_bytes bounds the dead-letter file too: pre-filled to the cap, it
  makes new alerts held (spool_full) with dead_letter_bytes showing its
  size; rotated away (mv, SIGHUP), the held alert goes through;
- `check` checks spool.dead_letter as it checks audit.file (a symbolic
  link refused, naming the key), when dispatching only;
- the order on disk (strace attached to the running agent, skipped when
  strace or ptrace is missing, or under valgrind): the dead-letter line is
  written and fdatasync'ed before the spool's completion record is
  written."""
import json
import os
import re
import resource
import signal
import subprocess
import time

import harness
import response_env as env
from harness import Skip, json_lines, listener, run_agent, t, token, tool, wait_until
from numbered import check_nothing_pending, start_untapped

MIB = 1024 * 1024


def _config(ctx, spool=None, audit="audit.jsonl"):
    """A live config whose dead-letter file is ctx's dead.jsonl, outside
    the spool folder (so that a test can fill it before the start)."""
    sp = {"dir": ctx.path("spool"), "dead_letter": ctx.path("dead.jsonl")}
    sp.update(spool or {})
    return env.live_config(ctx, spool=sp, audit=audit)


def _fill(path, size):
    """Writes size bytes of valid JSON lines (1 KiB each, the last one
    shorter) to path."""
    with open(path, "w") as f:
        left = size
        while left > 0:
            n = min(1024, left)
            f.write('{"f":"%s"}\n' % ("x" * (n - 9)))
            left -= n
    assert os.path.getsize(path) == size


def _unresolved(agent, rule):
    """An alert whose user no resolver knows: it is dead-lettered."""
    env.send_tcp(agent, [env.splunk_kv(rule, "nobody-%s@example.com" % token())])


def _ours(path, rule):
    return [d for d in json_lines(path, "dead-letter") if d.get("rule") == rule]


def _wait_dead(agent, path, rule, timeout=10):
    def found():
        agent.assert_alive()
        return _ours(path, rule)
    try:
        return wait_until(found, timeout, "the dead letter of %r in %s" % (rule, path))
    except AssertionError as e:
        raise AssertionError("%s\n%s" % (e, agent.stderr_tail()))


def _hup(agent):
    before = agent.stderr_bytes().count(b"SIGHUP: reload")
    os.kill(agent.proc.pid, signal.SIGHUP)
    wait_until(lambda: agent.stderr_bytes().count(b"SIGHUP: reload") > before, 5,
               "the reload's log line")
    return agent.stderr_bytes().decode(errors="replace").splitlines()[-1]


def test_sighup_reopens_dead_letter(ctx):
    """logrotate renames the file and sends SIGHUP: the next dead letter
    goes to a new file at the configured path; the renamed one keeps only
    the earlier line; the reload line says so; dead_letter_bytes is the new
    file's size."""
    env.need_samples()
    agent = env.start_agent(ctx, _config(ctx))
    dead = ctx.path("dead.jsonl")
    tok = token()
    _unresolved(agent, "before " + tok)
    _wait_dead(agent, dead, "before " + tok)
    wait_until(lambda: agent.metric("dead_letter_bytes") == os.path.getsize(dead), 5,
               "dead_letter_bytes to be the file's size")
    os.rename(dead, dead + ".1")
    line = _hup(agent)
    assert "SIGHUP: reload complete" in line and "the dead-letter file reopened" in line, line
    assert os.path.exists(dead), "SIGHUP did not create a new dead-letter file"
    assert agent.metric("dead_letter_bytes") == 0
    _unresolved(agent, "after " + tok)
    _wait_dead(agent, dead, "after " + tok)
    assert [d["rule"] for d in json_lines(dead, "dead-letter")] == ["after " + tok]
    assert [d["rule"] for d in json_lines(dead + ".1", "dead-letter")] == ["before " + tok]
    assert agent.metric("dead_letter_bytes") == os.path.getsize(dead)
    assert agent.metric('alerts_total{outcome="dead-letter"}') == 2
    assert agent.metric('reloads_total{result="success"}') == 1
    assert agent.metric('reloads_total{result="failure"}') == 0
    agent.stop()


def test_dead_letter_write_refused_then_retried(ctx):
    """A file size limit the pre-filled dead-letter file is already at makes
    every write to it fail (EFBIG; the agent ignores SIGXFSZ): the alert is
    not completed, its line is tried again while the agent runs (more than
    one dead_letter_errors, logged), and nothing of it reaches the file.
    Once the limit is raised the line is written without a restart; a new
    start on the spool finds nothing left to send (it was completed)."""
    env.need_samples()
    limit = 256 * 1024
    dead = ctx.path("dead.jsonl")
    _fill(dead, limit)
    extra = _config(ctx)
    agent = start_untapped(ctx, [listener("tcp")], extra, "agent")
    soft, hard = resource.prlimit(agent.proc.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(agent.proc.pid, resource.RLIMIT_FSIZE, (limit, hard))
    rule = "refused " + token()
    try:
        _unresolved(agent, rule)
        env.wait_audit(agent, "unresolved-user")
        agent.wait_metric("dead_letter_errors_total", 2, timeout=10)
        assert os.path.getsize(dead) == limit, "a line or fragment got past the limit"
        assert agent.metric('alerts_total{outcome="dead-letter"}') == 0
        assert agent.metric("dead_letter_bytes") == limit
        err = agent.stderr_bytes().decode(errors="replace")
        assert "File too large" in err and "its dead-letter line was not written" in err, \
            agent.stderr_tail()
    finally:
        resource.prlimit(agent.proc.pid, resource.RLIMIT_FSIZE, (soft, hard))
    got = _wait_dead(agent, dead, rule, timeout=10)
    assert len(got) == 1 and got[0]["outcome"] == "unresolved-user", got
    assert agent.metric('alerts_total{outcome="dead-letter"}') == 1
    assert agent.metric('alerts_total{outcome="unresolved-user"}') == 1
    assert agent.metric("dead_letter_bytes") == os.path.getsize(dead)
    agent.stop()
    check_nothing_pending(ctx, extra, "again")
    assert len(_ours(dead, rule)) == 1, "the alert was dead-lettered again after a restart"


def test_dead_letter_counts_against_max_bytes(ctx):
    """spool.max_bytes (1 MiB, the least) bounds the spool's segments plus
    the dead-letter file: a file already at the cap makes a new alert held
    (spool_full, as for a full spool) and shows in dead_letter_bytes.
    Rotated away (mv, SIGHUP), the cap has room again: the held alert is
    spooled and, its user unknown, dead-lettered into the new file."""
    env.need_samples()
    dead = ctx.path("dead.jsonl")
    _fill(dead, MIB)
    agent = env.start_agent(ctx, _config(ctx, spool={"max_bytes": MIB}))
    assert agent.metric("dead_letter_bytes") == MIB
    rule = "held " + token()
    _unresolved(agent, rule)
    agent.wait_metric("spool_full_total", 1, timeout=5)
    time.sleep(t(0.5))
    assert agent.metric('alerts_total{outcome="spooled"}') == 0, \
        "an alert was spooled past spool.max_bytes"
    assert not _ours(dead, rule) and os.path.getsize(dead) == MIB
    assert "full (spool.max_bytes)" in agent.stderr_bytes().decode(errors="replace")
    os.rename(dead, dead + ".1")
    _hup(agent)
    got = _wait_dead(agent, dead, rule, timeout=10)
    assert len(got) == 1, got
    assert agent.metric('alerts_total{outcome="spooled"}') == 1
    assert agent.metric("dead_letter_bytes") == os.path.getsize(dead)
    agent.stop()


def test_check_dead_letter(ctx):
    """check refuses a symbolic link where the dead-letter file goes, as run
    would, naming the key and leaving the file behind it alone; in dry-run
    (no dead letters) it does not look at the file."""
    target = ctx.path("elsewhere.txt")
    with open(target, "w") as f:
        f.write("untouched\n")
    dead = ctx.path("dead.jsonl")
    os.symlink(target, dead)
    cfg = _config(ctx, audit=None)
    cfg["listen"] = [listener("udp")]
    for mode, want in (("direct", 1), ("dry-run", 0)):
        cfg["dispatch"]["mode"] = mode
        path = ctx.path("%s.json" % mode)
        with open(path, "w") as f:
            json.dump(cfg, f)
        rc, err = run_agent("check", "-c", path)
        assert rc == want, "check (%s) exited %d:\n%s" % (mode, rc, err[-2000:])
        said = "spool.dead_letter: %s: cannot open the dead-letter file: it is a symbolic link" \
            % dead
        assert (said in err) == (mode == "direct"), err[-2000:]
    with open(target) as f:
        assert f.read() == "untouched\n"


def _traced(pid):
    """Whether every thread of pid has a tracer (strace -p attaches them one
    by one)."""
    tasks = os.listdir("/proc/%d/task" % pid)
    for tid in tasks:
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            if re.search(r"^TracerPid:\s+0$", f.read(), re.M):
                return False
    return bool(tasks)


def test_dead_letter_synced_before_completion(ctx):
    """strace on the running agent: the dead-letter line is written, then
    fdatasync'ed on the same descriptor, and only after that does the
    spool's completion record of the alert (written at the stop, with the
    last batch) go to its segment."""
    env.need_samples()
    if harness.UNDER_VALGRIND:
        raise Skip("strace and valgrind do not mix")
    strace = tool("strace")
    # LeakSanitizer's exit check needs ptrace, which strace holds until the
    # agent has exited: it stays off here (other tests cover leaks).
    lsan = {"ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")}
    agent = env.start_agent(ctx, _config(ctx), env=lsan)
    trace = ctx.path("strace.txt")
    tracer = ctx.spawn([strace, "-f", "-y", "-s", "0", "-e",
                        "trace=write,pwrite64,fdatasync,fsync", "-o", trace,
                        "-p", str(agent.proc.pid)], stderr=subprocess.PIPE)
    wait_until(lambda: tracer.poll() is not None or _traced(agent.proc.pid), 5,
               "strace to attach to every thread")
    if tracer.poll() is not None:
        raise Skip("strace cannot attach here: %s" % tracer.stderr.read().decode()[-300:])
    rule = "synced " + token()
    _unresolved(agent, rule)
    _wait_dead(agent, ctx.path("dead.jsonl"), rule)
    agent.stop()
    tracer.wait(t(10))
    with open(trace) as f:
        calls = f.read().splitlines()
    dead = re.escape(ctx.path("dead.jsonl"))
    seg = r"/seg-[0-9a-f]{16}\.spool>"

    def first(pattern, start=0):
        for i in range(start, len(calls)):
            if re.search(pattern, calls[i]):
                return i
        return None
    wrote = first(r"\bwrite\(\d+<%s>" % dead)
    assert wrote is not None, "no write to the dead-letter file traced:\n%s" % "\n".join(calls)
    synced = first(r"\bfdatasync\(\d+<%s>" % dead, wrote)
    completed = first(r"\bpwrite64\(\d+<[^>]*%s" % seg, wrote)
    assert synced is not None, "the dead-letter line was never fdatasync'ed:\n%s" % "\n".join(
        calls[wrote:])
    assert completed is not None, "no spool write after the dead letter:\n%s" % "\n".join(
        calls[wrote:])
    assert synced < completed, "the completion was written before the dead letter was synced:" \
        "\n%s" % "\n".join(calls[wrote:completed + 1])
