"""What the agent's log says (issue 13 item 11): a start banner (version,
config file, resolvers and the directory's size, listeners, where decisions
go, loudly for a dry run), a periodic one-line summary (summary_interval_s),
a rate-limited trace of each decided and undecided message at log_level
"debug", and log_format "json" (one JSON object per line, whatever the
message holds)."""
import json
import os
import re

import response_env as env
from harness import json_lines, listener, wait_until

USERS = "alice@example.com,alice@mail.example.com\n"


def _extra(ctx, **kw):
    users = ctx.path("users.csv")
    with open(users, "w") as f:
        f.write(USERS)
    extra = {"mappings": [env.MAPPINGS], "identity": {"static": {"file": users}},
             "audit": {"file": ctx.path("audit.jsonl")}}
    extra.update(kw)
    return extra


def _alert(n=0):
    """An alert for alice; n tells them apart (the same alert twice is a
    duplicate)."""
    return env.cef("USB Rule", "alice@example.com", ext_id=n)


def _log(agent):
    return agent.stderr_bytes().decode("utf-8", "replace")


def test_start_banner_says_where_decisions_go(ctx):
    """A dry run says so in capitals with the audit log; the banner names
    the version, the config file, the directory's size and the resolvers;
    a live config names its mode, URL, spool and dead-letter file."""
    agent = ctx.agent([listener("tcp")], extra=_extra(ctx))
    log = _log(agent)
    agent.stop()
    assert re.search(r"info: rtr-agent \S+.* starting: config %s" % re.escape(agent.config_path),
                     log), log
    assert "identity: static directory %s: 1 identifiers" % ctx.path("users.csv") in log, log
    assert "identity: resolvers in order: static" in log, log
    assert "DRY RUN: decisions are audited, NOTHING IS SENT to SafeTitan" in log, log
    assert "audit log %s" % ctx.path("audit.jsonl") in log, log

    live = env.live_config(ctx)
    agent = env.start_agent(ctx, live)
    log = _log(agent)
    agent.stop()
    assert "DRY RUN" not in log, log
    assert re.search(r"dispatch: direct to %s; spool \S+; dead letters \S+dead-letter\.jsonl" %
                     re.escape(live["dispatch"]["url"]), log), log


def test_summary_every_interval(ctx):
    """summary_interval_s 1: a line per second with what came in and what
    it became since the previous line; 3 alerts and 2 messages no mapping
    takes show as 5 received, 3 decisions, 3 would be sent."""
    agent = ctx.agent([listener("tcp")], extra=_extra(ctx, summary_interval_s=1))
    env.send_tcp(agent, [_alert(n) for n in range(3)] +
                 [b"<13>Oct  2 09:13:06 host app: nothing to see"] * 2)
    wait_until(lambda: len(json_lines(ctx.path("audit.jsonl"), "audit")) >= 3, 10,
               "3 audit lines")

    def summary():
        lines = re.findall(r"info: last 1 s: (\d+) messages received .*?, (\d+) decisions: "
                           r"\d+ sent to SafeTitan, (\d+) would be \(dry run\)", _log(agent))
        total = [sum(int(x[i]) for x in lines) for i in range(3)]
        return total if total == [5, 3, 3] else None
    wait_until(summary, 10, "summaries adding up to 5 received, 3 decided, 3 would be sent")
    agent.stop()
    # The default (3600 s) prints none in a short run.
    agent = ctx.agent([listener("tcp")], extra=_extra(ctx))
    agent.stop()
    assert "info: last " not in _log(agent)


def test_debug_traces_decided_and_undecided(ctx):
    """log_level "debug": a line per decided message (mapping, rule, user)
    and per undecided one (its start), at most 20 a second: 200 undecided
    messages in a burst give far fewer lines and a count of the rest."""
    agent = ctx.agent([listener("tcp")], extra=_extra(ctx, log_level="debug"))
    env.send_tcp(agent, [_alert()])
    wait_until(lambda: "decided: a message from" in _log(agent), 10, "the decided trace")
    env.send_tcp(agent, [b"<13>Oct  2 09:13:06 host app: undecided %d" % i for i in range(200)])
    wait_until(lambda: agent.metric("messages_received_total") >= 201, 10, "201 messages")
    agent.stop()
    log = _log(agent)
    assert re.search(r'debug: decided: a message from 127\.0\.0\.1:\d+: mapping splunk-es-cef, '
                     r'rule "USB Rule", user "alice@example\.com"', log), log[-3000:]
    undecided = re.findall(r"debug: undecided: a message from .*: no mapping decided: "
                           r"<13>Oct  2 09:13:06 host app: undecided \d+", log)
    assert 1 <= len(undecided) <= 60, "%d undecided traces" % len(undecided)


def test_json_log_format(ctx):
    """log_format "json": every line of a run is one JSON object with time,
    level and msg, also for a message whose text holds quotes, backslashes
    and control bytes (a parse error quoting what a sender sent)."""
    agent = ctx.agent([listener("tcp")], extra=_extra(ctx, log_format="json"))
    env.send_tcp(agent, [b'<134>CEF:0|Vendor|"quoted\\\\|\x01\x02|x|y|5|bad'])
    env.send_tcp(agent, [_alert()])
    wait_until(lambda: len(json_lines(ctx.path("audit.jsonl"), "audit")) >= 1, 10, "the alert")
    agent.stop()
    lines = agent.stderr_bytes().decode("utf-8").splitlines()
    assert len(lines) >= 5, lines
    for line in lines:
        obj = json.loads(line)
        assert set(obj) >= {"time", "level", "msg"}, obj
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", obj["time"]), obj
        assert obj["level"] in ("error", "warning", "info", "debug"), obj
    msgs = [json.loads(line)["msg"] for line in lines]
    assert any(m.startswith("rtr-agent ") and "starting" in m for m in msgs), msgs
    assert any(m.startswith("stopped:") for m in msgs), msgs
    assert os.path.getsize(ctx.path("audit.jsonl")) > 0


def test_stop_says_what_stays_in_the_spool(ctx):
    """A stop while SafeTitan answers 503: the log says how many alerts the
    spool keeps for the next start."""
    st = env.standin(ctx)
    st.script([{"status": 503}] * 50)
    agent = env.start_agent(ctx, env.live_config(ctx, st, users=None, identity={
        "static": {"file": _extra(ctx)["identity"]["static"]["file"]}}))
    env.send_tcp(agent, [_alert(n) for n in range(2)])
    env.wait_audit(agent, "spooled", n=2)
    agent.stop()
    assert "stopping: 2 alerts remain in the spool for the next start" in _log(agent), \
        _log(agent)[-3000:]
