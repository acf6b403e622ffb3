"""Decisions in the daemon: the shipped mappings over the shared samples (TCP
and UDP) give exactly the decisions of expected.jsonl in the audit log; a
decision queue far smaller than the burst loses nothing (and counts each
refused record once); SIGHUP swaps reloaded mappings into every worker and
reloads the directory, keeps the running ones when the new ones do not
load, and reopens the audit log even then; SIGHUP reads the config file
again (new mapping globs, a new directory file, a moved audit log), keeps
the running configuration when the file no longer loads (and still reopens
the audit log), and warns that a changed listener needs a restart; a
message cut at
max_message_bytes or by a reset is not decided on, in the daemon and in
replay; a catastrophic regex is a counted non-match that lets the next
mapping decide; dispatch modes this build lacks are refused."""
import glob
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess

from harness import (AGENT, REPORT, ROOT, SHARED, WRAPPER, Skip, for_wrapper,
                     free_port, json_lines, sample_decisions, listener, t, tcp_connect, token, wait_until)

SAMPLES = os.path.join(SHARED, "samples")
MAPPINGS = os.path.join(ROOT, "mappings", "*.json")

# The Splunk ES raw key=value form (mappings/splunk.json): the rule is the
# search_name, the user bkhan@example.com is in the samples' users.csv.
SPLUNK_KV = ('<13>Oct  2 09:13:05 splunk-hf01 search_name="%s" user="%s" '
             'src_user="EXAMPLE\\bkhan" urgency=critical orig_time=1791018785')


def _samples():
    if not os.path.isdir(SAMPLES):
        raise Skip("%s is missing" % SAMPLES)
    if not glob.glob(MAPPINGS):
        raise Skip("no shipped mappings in %s" % os.path.dirname(MAPPINGS))


def _agent(ctx, listen, users=None, mappings=None, limits=None, **extra):
    cfg = {"mappings": mappings or [MAPPINGS],
           "identity": {"static": {"file": users or os.path.join(SAMPLES, "users.csv")}},
           "dispatch": {"mode": "dry-run"},
           "audit": {"file": "audit.jsonl"}}
    cfg.update(extra)
    return ctx.agent(listen, limits=limits, extra=cfg)


def _audit(agent, name="audit.jsonl"):
    """Every complete audit line so far (of audit log `name`), as dicts."""
    return json_lines(os.path.join(agent.dir, name), "audit")


def _wait_audit(agent, n, timeout=10, name="audit.jsonl"):
    got = []

    def enough():
        nonlocal got
        agent.assert_alive()
        got = _audit(agent, name)
        return len(got) >= n
    try:
        wait_until(enough, timeout, "%d audit lines" % n)
    except AssertionError as e:
        raise AssertionError("%s (have %d)\n%s" % (e, len(got), agent.stderr_tail()))
    return got


def _check_samples(agent, want, source):
    got = _wait_audit(agent, len(want))
    agent.wait_metric("decisions_total", len(want))
    agent.stop()  # everything decided is audited before the agent exits
    got = _audit(agent)
    assert sorted((a["rule"], a["user"], a["email"]) for a in got) == want, \
        "audit (rule, user, email) differ from expected.jsonl:\n got %s\nwant %s" % (
            sorted((a["rule"], a["user"], a["email"]) for a in got), want)
    for a in got:
        assert a["outcome"] == "would-dispatch", "outcome %r in %s" % (a["outcome"], a)
        assert a["source"] == source, "source %r, want %r" % (a["source"], source)
        assert a["mapping"] and a["event"], "mapping or event missing in %s" % a
        assert a["time"].endswith("Z"), "time %r" % a["time"]


def test_samples_over_tcp(ctx):
    """Every sample line over one TCP connection: the audit holds exactly
    the decisions of expected.jsonl, nothing for the noise."""
    _samples()
    want, lines = sample_decisions()
    agent = _agent(ctx, [listener("tcp")])
    s = tcp_connect(agent.port("tcp"))
    source = "127.0.0.1:%d" % s.getsockname()[1]
    s.sendall(b"".join(line + b"\n" for line in lines))
    s.close()
    agent.wait_metric("messages_received_total", len(lines))
    assert agent.metric("messages_decided_total") == len(want)
    _check_samples(agent, want, source)


def test_samples_over_udp(ctx):
    """The same, one datagram per line."""
    _samples()
    want, lines = sample_decisions()
    agent = _agent(ctx, [listener("udp")])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        source = "127.0.0.1:%d" % s.getsockname()[1]
        for line in lines:
            s.sendto(line, ("127.0.0.1", agent.port("udp")))
    _check_samples(agent, want, source)


def _burst(ctx, n):
    """Starts an agent with decision (and tap) queues of 8 records and sends
    it n deciding lines over one TCP connection, left open. Returns (agent,
    connection, the n rules sent: "seq=I run=TOKEN")."""
    _samples()
    tok = token()
    rules = ["seq=%d run=%s" % (i, tok) for i in range(n)]
    agent = _agent(ctx, [listener("tcp")], limits={"queue_messages": 8})
    s = tcp_connect(agent.port("tcp"))
    s.sendall(b"".join((SPLUNK_KV % (rule, "bkhan@example.com")).encode() + b"\n"
                       for rule in rules))
    return agent, s, rules


def test_backpressure_loses_no_decision(ctx):
    """A decision queue (and tap queue) of 8 records and a burst of 3000
    deciding lines: every one is audited once, and the full queues paused
    the connection instead of dropping anything."""
    n = 3000
    agent, s, sent = _burst(ctx, n)
    s.close()
    _wait_audit(agent, n, timeout=30)
    m = agent.metrics()
    agent.stop()
    got = _audit(agent)
    rules = sorted(a["rule"] for a in got)
    assert rules == sorted(sent), "%d audit lines for %d messages; missing %s" % (
        len(rules), n, sorted(set(sent) - set(rules))[:5])
    assert all(a["email"] == "bilal.khan@example.com" for a in got)
    assert m["rtr_agent_decisions_total"] == n and m["rtr_agent_audit_lines_total"] == n, m
    assert m["rtr_agent_decision_queue_full_total"] > 0, \
        "a burst of %d into a decision queue of 8 never found it full: %s" % (n, m)
    # Counted once per refused record, not per offer: never more than the records.
    assert m["rtr_agent_decision_queue_full_total"] <= m["rtr_agent_messages_decided_total"], m


test_backpressure_loses_no_decision.timeout = 60


def _reloads(agent):
    """(successful, failed) SIGHUP reloads so far."""
    return (agent.metric('reloads_total{result="success"}'),
            agent.metric('reloads_total{result="failure"}'))


def _summary(agent):
    """The counters of the agent's "stopped:" line."""
    for line in agent.stderr_bytes().decode("utf-8", "replace").splitlines():
        if " stopped: " in line:
            return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}
    raise AssertionError("no summary line\n%s" % agent.stderr_tail())


def test_sigterm_with_full_queues_audits_every_decision(ctx):
    """SIGTERM in the middle of a burst into queues of 8: the workers finish
    what they read (what the pipeline holds pending included) before the
    decision queue closes, so every message decided on is audited and every
    message received is in the tap."""
    agent, s, _ = _burst(ctx, 3000)
    agent.wait_metric("messages_decided_total", 1)
    agent.stop()
    s.close()
    c = _summary(agent)
    assert c["messages_decided"] > 0 and c["messages_decided"] == c["decisions"], c
    assert 0 < c["decision_queue_full"] <= c["messages_decided"], \
        "the burst never found the decision queue full (or counted offers, not records): %s" % c
    assert c["audit_lines"] == c["decisions"] == len(_audit(agent)), c
    assert c["tap_lines"] == c["messages_received"] == len(agent.tap()), c


# The Splunk raw key=value form decided by a mapping this file controls: v1
# takes the rule from the message, v2 (the reloaded one) is a constant.
HUP_USER = {"field": "msg", "regex": "\\suser=\"(?<user>[^\"]*)\""}


def _hup_mapping(rule):
    return {"mappings": [{"name": "hup", "when": [{"field": "msg", "regex": "search_name="}],
                          "rule": rule, "user": HUP_USER}]}


HUP_V1 = _hup_mapping({"field": "msg", "regex": "search_name=\"(?<rule>[^\"]*)\""})


def _write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f)


def _sighup_agent(ctx):
    """An agent with a copy of users.csv and a mapping folder holding
    hup.json (HUP_V1); returns (agent, users path, mapping folder, send)
    where send() sends one deciding message on a new connection and returns
    its audit line."""
    _samples()
    users = ctx.path("users.csv")
    shutil.copy(os.path.join(SAMPLES, "users.csv"), users)
    mapdir = ctx.path("mappings")
    os.makedirs(mapdir)
    _write_json(os.path.join(mapdir, "hup.json"), HUP_V1)
    agent = _agent(ctx, [listener("tcp")], users=users,
                   mappings=[os.path.join(mapdir, "*.json")])
    tok = token()
    sent = [0]

    def send():
        s = tcp_connect(agent.port("tcp"))
        s.sendall((SPLUNK_KV % ("hup %d %s" % (sent[0], tok), "bkhan@example.com")).encode()
                  + b"\n")
        s.close()
        sent[0] += 1
        return _wait_audit(agent, sent[0])[-1]
    send.rule = lambda: "hup %d %s" % (sent[0] - 1, tok)
    return agent, users, mapdir, send


def _replace_in(path, old, new):
    with open(path) as f:
        text = f.read()
    assert old in text, "%r not in %s" % (old, path)
    with open(path, "w") as f:
        f.write(text.replace(old, new))


BROKEN_MAPPING = '{"mappings": [{"name": "x", "when": [{"field": "msg", "regex": "("}]}]}'


def test_sighup_reloads_directory_and_mappings(ctx):
    """SIGHUP swaps in the reloaded mappings on every worker (a changed rule
    shows in the audit) and reloads the static directory (a changed email is
    used at once: the cache is cleared); a directory or a mapping file that
    no longer loads is counted as a failed reload and the running one stays
    in use (the good file was changed too, and its change does not show)."""
    agent, users, mapdir, send = _sighup_agent(ctx)
    a = send()
    assert (a["rule"], a["email"]) == (send.rule(), "bilal.khan@example.com"), a

    _replace_in(users, "bilal.khan@example.com", "bilal.new@example.com")
    _write_json(os.path.join(mapdir, "hup.json"), _hup_mapping({"value": "reloaded rule"}))
    os.kill(agent.proc.pid, signal.SIGHUP)
    agent.wait_metric('reloads_total{result="success"}', 1)
    # Several connections: each worker must have swapped.
    for _ in range(6):
        a = send()
        assert (a["rule"], a["email"]) == ("reloaded rule", "bilal.new@example.com"), a

    with open(users, "a") as f:
        f.write("an-identifier-without-an-email\n")
    os.kill(agent.proc.pid, signal.SIGHUP)
    agent.wait_metric('reloads_total{result="failure"}', 1)
    a = send()
    assert a["email"] == "bilal.new@example.com", "the old directory was not kept: %s" % a
    assert a["rule"] == "reloaded rule", a

    _write_json(os.path.join(mapdir, "hup.json"), _hup_mapping({"value": "must not load"}))
    with open(os.path.join(mapdir, "broken.json"), "w") as f:
        f.write(BROKEN_MAPPING)
    os.kill(agent.proc.pid, signal.SIGHUP)
    agent.wait_metric('reloads_total{result="failure"}', 2)
    for _ in range(6):
        a = send()
        assert a["rule"] == "reloaded rule", "the old mappings were not kept: %s" % a
    # One count per SIGHUP, however many of its parts failed.
    assert _reloads(agent) == (1, 2)
    err = agent.stderr_bytes()
    assert b"broken.json" in err, "the broken mapping file is not named in the log"
    agent.stop()


def test_sighup_with_broken_mappings_still_reopens_audit_and_reloads_directory(ctx):
    """logrotate moved the audit log, users.csv changed and a mapping file
    broke: SIGHUP keeps the running mappings (a failed reload), yet still
    reopens the audit log (the next line goes to a new file) and reloads
    the directory (the new email is used)."""
    agent, users, mapdir, send = _sighup_agent(ctx)
    assert send()["email"] == "bilal.khan@example.com"
    audit = os.path.join(agent.dir, "audit.jsonl")
    os.rename(audit, audit + ".1")
    _replace_in(users, "bilal.khan@example.com", "bilal.rotated@example.com")
    _write_json(os.path.join(mapdir, "hup.json"), _hup_mapping({"value": "must not load"}))
    with open(os.path.join(mapdir, "broken.json"), "w") as f:
        f.write(BROKEN_MAPPING)
    os.kill(agent.proc.pid, signal.SIGHUP)
    agent.wait_metric('reloads_total{result="failure"}', 1)
    # The first line went to the renamed file: this one must open a new audit.jsonl.
    s = tcp_connect(agent.port("tcp"))
    s.sendall((SPLUNK_KV % ("after rotation", "bkhan@example.com")).encode() + b"\n")
    s.close()
    got = _wait_audit(agent, 1)
    assert [(a["rule"], a["email"]) for a in got] == \
        [("after rotation", "bilal.rotated@example.com")], \
        "the audit log was not reopened or the directory not reloaded: %s" % got
    with open(audit + ".1", "rb") as f:
        assert f.read().count(b"\n") == 1, "a line went to the rotated audit file"
    assert _reloads(agent) == (0, 1)
    agent.stop()


def _rewrite_config(agent, text=None, **changes):
    """Changes top-level keys of the agent's config file (or writes text
    instead: a file that does not load)."""
    agent.config.update(changes)
    with open(agent.config_path, "w") as f:
        f.write(text if text is not None else json.dumps(agent.config, indent=2))


def _send_line(agent, line):
    s = tcp_connect(agent.port("tcp"))
    s.sendall(line.encode() + b"\n")
    s.close()


EXTRA_MAPPING = {"mappings": [{"name": "extra", "when": [{"field": "msg", "regex": "extra_alert="}],
                               "rule": {"value": "extra rule"}, "user": HUP_USER}]}
EXTRA_LINE = '<13>Oct  2 09:13:05 host app: extra_alert=1 user="bkhan@example.com" %s'


def test_sighup_reads_the_config_file(ctx):
    """The reported case: a glob added to "mappings", identity.static.file
    pointed at another CSV and audit.file moved in the config file, then
    SIGHUP: the new mapping decides, the new file's email is used, the
    lines go to the new audit log, and the log names the mapping globs and
    the directory file loaded; nothing else changed, so no restart warning."""
    agent, users, mapdir, send = _sighup_agent(ctx)
    assert send()["email"] == "bilal.khan@example.com"
    extra = ctx.path("extra")
    os.makedirs(extra)
    _write_json(os.path.join(extra, "extra.json"), EXTRA_MAPPING)
    other = ctx.path("other.csv")
    with open(other, "w") as f:
        f.write("bkhan@example.com,bilal.other@example.com\n")
    globs = agent.config["mappings"] + [os.path.join(extra, "*.json")]
    _rewrite_config(agent, mappings=globs, identity={"static": {"file": other}},
                    audit={"file": "moved.jsonl"})
    os.kill(agent.proc.pid, signal.SIGHUP)
    agent.wait_metric('reloads_total{result="success"}', 1)

    tok = token()
    _send_line(agent, EXTRA_LINE % tok)
    _send_line(agent, SPLUNK_KV % ("hup after " + tok, "bkhan@example.com"))
    got = _wait_audit(agent, 2, name="moved.jsonl")
    assert sorted((a["mapping"], a["rule"], a["email"]) for a in got) == [
        ("extra", "extra rule", "bilal.other@example.com"),
        ("hup", "hup after " + tok, "bilal.other@example.com")], got
    agent.stop()
    assert len(_audit(agent)) == 1, "a line went to the old audit log after the move"
    err = agent.stderr_bytes().decode("utf-8", "replace")
    want = "SIGHUP: 2 mappings from 2 files of %s" % ", ".join(globs)
    assert want in err, "%r not logged:\n%s" % (want, err[-2000:])
    want = "static directory %s reloaded: 1 identifiers" % other
    assert want in err, "%r not logged:\n%s" % (want, err[-2000:])
    assert "SIGHUP: reload complete" in err
    assert "restart rtr-agent" not in err, err[-2000:]


def test_sighup_audit_section_removed_needs_no_restart(ctx):
    """A section that only held a reloadable key (audit.file) removed from
    the file: the SIGHUP applies it (the audit log is off) and does not ask
    for a restart it does not need."""
    agent, users, mapdir, send = _sighup_agent(ctx)
    assert send()["email"] == "bilal.khan@example.com"
    del agent.config["audit"]
    _rewrite_config(agent)
    os.kill(agent.proc.pid, signal.SIGHUP)
    agent.wait_metric('reloads_total{result="success"}', 1)
    err = agent.stderr_bytes().decode("utf-8", "replace")
    assert "restart rtr-agent" not in err, err[-2000:]
    agent.stop()


def test_sighup_with_a_config_that_does_not_load(ctx):
    """The config file no longer parses: SIGHUP says so and keeps the
    running configuration (the edited mapping and directory are not read:
    the old rule and email stay), counts a failed reload, and still reopens
    the rotated audit log. Once the file is fixed, the next SIGHUP applies."""
    agent, users, mapdir, send = _sighup_agent(ctx)
    assert send()["email"] == "bilal.khan@example.com"
    _replace_in(users, "bilal.khan@example.com", "bilal.new@example.com")
    _write_json(os.path.join(mapdir, "hup.json"), _hup_mapping({"value": "reloaded rule"}))
    audit = os.path.join(agent.dir, "audit.jsonl")
    os.rename(audit, audit + ".1")
    _rewrite_config(agent, text='{"listen": [')
    os.kill(agent.proc.pid, signal.SIGHUP)
    agent.wait_metric('reloads_total{result="failure"}', 1)

    tok = token()
    _send_line(agent, SPLUNK_KV % ("kept " + tok, "bkhan@example.com"))
    got = _wait_audit(agent, 1)
    assert [(a["rule"], a["email"]) for a in got] == [("kept " + tok, "bilal.khan@example.com")], \
        "the running mappings and directory were not kept, or the audit log not reopened: %s" % got
    assert _reloads(agent) == (0, 1)
    err = agent.stderr_bytes().decode("utf-8", "replace")
    want = "SIGHUP: %s does not load: keeping the running configuration" % agent.config_path
    assert want in err, "%r not logged:\n%s" % (want, err[-2000:])
    assert re.search(re.escape(agent.config_path) + r":\d+:\d+: invalid JSON", err), \
        "the JSON problem is not named:\n%s" % err[-2000:]
    assert "reload complete" not in err

    _rewrite_config(agent)
    os.kill(agent.proc.pid, signal.SIGHUP)
    agent.wait_metric('reloads_total{result="success"}', 1)
    _send_line(agent, SPLUNK_KV % ("fixed " + tok, "bkhan@example.com"))
    got = _wait_audit(agent, 2)
    assert (got[-1]["rule"], got[-1]["email"]) == ("reloaded rule", "bilal.new@example.com"), got
    agent.stop()
    with open(audit + ".1", "rb") as f:
        assert f.read().count(b"\n") == 1, "a line went to the rotated audit file"


def test_sighup_after_a_listener_changed(ctx):
    """A listener's address and the worker count changed in the config
    file, and identity.static.file was removed (which changes the default
    identity.order): SIGHUP warns once per section ("identity", "listen",
    "workers") that a restart applies it, reloads the rest (counted as a
    reload), and the agent keeps serving on the old listener with the
    directory it has."""
    agent, users, mapdir, send = _sighup_agent(ctx)
    assert send()["email"] == "bilal.khan@example.com"
    port = free_port()
    moved = [dict(agent.config["listen"][0], address="127.0.0.1:%d" % port)]
    _rewrite_config(agent, listen=moved, workers=agent.config["workers"] + 1, identity={})
    os.kill(agent.proc.pid, signal.SIGHUP)
    agent.wait_metric('reloads_total{result="success"}', 1)
    a = send()  # on the old port
    assert (a["rule"], a["email"]) == (send.rule(), "bilal.khan@example.com"), a
    try:
        tcp_connect(port).close()
        raise AssertionError("something listens on the new address %d before a restart" % port)
    except ConnectionRefusedError:
        pass
    err = agent.stderr_bytes().decode("utf-8", "replace")
    warned = re.findall(r"SIGHUP: %s: (\S+) changed: restart rtr-agent to apply it"
                        % re.escape(agent.config_path), err)
    assert sorted(warned) == ["identity", "listen", "workers"], "restart warnings: %s\n%s" % (
        warned, err[-2000:])
    assert agent.metric('reloads_total{result="failure"}') == 0
    agent.stop()


# users.csv for the cut-value tests: a user whose name is a prefix of another's.
SMITHS = "jsmith,john.smith@example.com\njsmith2,jane.smith2@example.com\n"
CUT_MAPPING = {"mappings": [{"name": "cut", "when": [{"field": "msg", "regex": "user="}],
                             "rule": {"value": "cut test"},
                             "user": {"field": "msg", "regex": "user=(?<user>\\S+)"}}]}
CUT_MAX = 480  # the smallest limits.max_message_bytes


def _cut_line():
    """A line whose first CUT_MAX bytes end in "user=jsmith": the limit cuts
    jsmith2 to jsmith, another user."""
    head = b"<13>Oct  2 09:13:05 host app: cut "
    tail = b" user=jsmith"
    return head + b"x" * (CUT_MAX - len(head) - len(tail)) + tail + b"2"


def _cut_files(ctx):
    users = ctx.path("smiths.csv")
    with open(users, "w") as f:
        f.write(SMITHS)
    mapping = ctx.path("cut.json")
    _write_json(mapping, CUT_MAPPING)
    return users, mapping


def test_truncated_message_is_not_decided(ctx):
    """A message cut at max_message_bytes (truncate policy) or by a reset
    is not run through the mappings: its cut user value would audit the
    wrong person. It is counted, logged naming its source, still tapped;
    a whole message on the same connection decides."""
    users, mapping = _cut_files(ctx)
    agent = _agent(ctx, [listener("tcp")], users=users, mappings=[mapping],
                   limits={"max_message_bytes": CUT_MAX})
    s = tcp_connect(agent.port("tcp"))
    source = "127.0.0.1:%d" % s.getsockname()[1]
    s.sendall(_cut_line() + b"\n<13>Oct  2 09:13:06 host app: whole user=jsmith2\n")
    s.close()
    got = _wait_audit(agent, 1)
    assert agent.metric("messages_truncated_undecided_total") == 1

    # A reset cuts "user=jsmith2" to "user=jsmith" too.
    partial = b"<13>Oct  2 09:13:07 host app: reset user=jsmith"
    before = agent.metric("received_bytes_total")
    s = tcp_connect(agent.port("tcp"))
    s.sendall(partial)
    agent.wait_metric("received_bytes_total", before + len(partial))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    agent.wait_metric("messages_truncated_undecided_total", 2)
    agent.stop()
    got = _audit(agent)
    assert [(a["user"], a["email"]) for a in got] == [("jsmith2", "jane.smith2@example.com")], \
        "a cut message was decided on: %s" % got
    c = _summary(agent)
    assert (c["messages_truncated_undecided"], c["messages_decided"]) == (2, 1), c
    cut = [m for m in agent.tap() if m.get("error") == "frame: truncated"]
    assert len(cut) == 2, "the cut messages are not in the tap: %s" % cut
    err = agent.stderr_bytes().decode("utf-8", "replace")
    assert re.search(r"not decided on.*%s" % re.escape(source), err) or \
        re.search(r"%s.*not decided on" % re.escape(source), err), \
        "no warning names the source %s:\n%s" % (source, err[-2000:])


def test_replay_does_not_decide_on_a_cut_line(ctx):
    """replay cuts a line at max_message_bytes as the daemon does, and then
    runs no mapping on it; --explain says why."""
    users, mapping = _cut_files(ctx)
    cfg = {"listen": [listener("udp")], "mappings": [mapping],
           "identity": {"static": {"file": users}}, "dispatch": {"mode": "dry-run"},
           "limits": {"max_message_bytes": CUT_MAX}}
    config = ctx.path("replay.json")
    _write_json(config, for_wrapper(cfg))
    data = ctx.path("cut.log")
    with open(data, "wb") as f:
        f.write(_cut_line() + b"\n<13>Oct  2 09:13:06 host app: whole user=jsmith2\n")
    for explain in (False, True):
        argv = WRAPPER + [AGENT, "replay", "-c", config, "--dry-run", data]
        p = subprocess.run(argv + (["--explain"] if explain else []), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=t(20))
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        assert p.returncode == 0 and not REPORT.search(p.stderr), \
            "replay exited %d:\n%s" % (p.returncode, err[-2000:])
        dec = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert [(d["input_line"], d["user"], d["email"], d["outcome"]) for d in dec] == \
            [(2, "jsmith2", "jane.smith2@example.com", "would-dispatch")], \
            "explain=%s: a cut line was decided on:\n%s" % (explain, out)
        assert "line 1" in err and "not decided on" in err, err[-2000:]
        assert all(line.startswith("{") for line in out.splitlines()), out  # explain: stderr
        if explain:
            lines = err.splitlines()
            at = next(i for i, line in enumerate(lines) if line.startswith(data + ":1: "))
            assert lines[at + 1] == \
                "  -> not matched: the line was cut at max_message_bytes (%d bytes)" % CUT_MAX, \
                err


def test_catastrophic_regex_is_a_counted_non_match(ctx):
    """Mapping 1's regex backtracks catastrophically on the message: it hits
    the match limit (counted once), does not match, and mapping 2 decides."""
    path = ctx.path("catastrophic.json")
    with open(path, "w") as f:
        json.dump({"mappings": [
            {"name": "catastrophic",
             "when": [{"field": "msg", "regex": "^(\\w+\\s?)*$"}],
             "rule": {"value": "never"}, "user": {"value": "nobody"}},
            {"name": "second",
             "when": [{"field": "msg", "regex": "user="}],
             "rule": {"value": "decided by the second"},
             "user": {"field": "msg", "regex": "user=(?<user>\\S+)"}}]}, f)
    users = ctx.path("users.csv")
    with open(users, "w") as f:
        f.write("amorgan,alice.morgan@example.com\n")
    agent = _agent(ctx, [listener("tcp")], users=users, mappings=[path])
    s = tcp_connect(agent.port("tcp"))
    s.sendall(b"<13>Oct  2 09:13:05 host app: " + b"a" * 40 + b" user=amorgan !\n")
    s.close()
    got = _wait_audit(agent, 1)
    assert [(a["mapping"], a["rule"], a["user"], a["email"]) for a in got] == \
        [("second", "decided by the second", "amorgan", "alice.morgan@example.com")], got
    assert agent.wait_metric("regex_limit_hits_total", 1) == 1
    agent.stop()
    assert len(_audit(agent)) == 1
