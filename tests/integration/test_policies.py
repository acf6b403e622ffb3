"""Response policies (issue 16): the shipped insider-threat runbook
(mappings/policies/insider-threat.json) driven end to end from syslog in.
SafeTitan, the ticketing system and the analysts' SMTP server are stand-ins
(the HTTPS stand-in for both web services; aiosmtpd with STARTTLS and AUTH).

Two low-risk Securonix alerts for a user, then one of medium risk: the third
is critical by correlation (three alerts for the user within 60 minutes) and
runs SafeTitan, the ticket webhook and the analysts' email, each once, each
audited with its policy, priority and why; the first two run only SafeTitan.
A fourth alert in the burst reaches SafeTitan while the ticket and the
email are held back by their cool-down. The counts survive a kill -9
(rebuilt from the spool). An SMTP server that is
down has its email retried, then delivered when it comes up. A template fed
a field that tries to inject JSON or a header is escaped. `replay --explain`
says which tier held and why, and what would run; `check` lists what each
action sends and names the file and key of a broken policy."""
import json
import os
import subprocess
import time

import harness
import response_env as env
from harness import AGENT, WRAPPER, free_port, listener, t, wait_until
from numbered import kill9
from test_mail import Server as SmtpServer
from test_replay import replay, write_config

ROOT = harness.ROOT
POLICY = os.path.join(ROOT, "mappings", "policies", "insider-threat.json")
HENRIK = "henrik.lund@example.com"
TICKET_KEY = "Bearer tk-SECRET-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
SMTP_PASSWORD = "smtp-SECRET-9f8e7d6c5b4a"
ANALYSTS = "soc@example.com"


def _alert(n, risk, user="hlund", rule="Uploads to personal websites", extra=""):
    """A Securonix SNYPR violation as CEF (the samples' layout), n its
    externalId: every alert its own idempotency key."""
    return ("<134>1 2026-10-02T09:30:11Z snypr-console securonix - - - CEF:0|Securonix|SNYPR|6.4|"
            "Violation|%s|8|suser=%s cs1Label=policyname cs1=%s cfp1Label=riskscore cfp1=%s "
            "externalId=pt-%d%s" % (rule, user, rule, risk, n, extra)).encode()


def _policy_file(ctx, ticket, name="insider-threat.json", text=None):
    """The shipped runbook pointed at the stand-ins: the ticket URL, its
    secret and the test CA."""
    c = env.certs()
    secret = env.write_secret(ctx, "ticket.key", TICKET_KEY)
    if text is None:
        with open(POLICY) as f:
            text = f.read()
    text = text.replace("https://ticketing.example.com", ticket.url)
    text = text.replace('"secret_file": "/etc/rtr-agent/ticketing.key",',
                        '"secret_file": "%s", "ca_file": "%s",' % (secret, c["ca"]))
    path = ctx.path(name)
    with open(path, "w") as f:
        f.write(text)
    return path


def _smtp(ctx, **kw):
    c = env.certs()
    args = ["--tls", "starttls", "--cert", c["server"], "--key", c["server_key"],
            "--user", "rtr", "--password", SMTP_PASSWORD]
    if kw.get("port"):
        args += ["--port", str(kw["port"])]
    return SmtpServer(ctx, *args)


def _smtp_config(ctx, port):
    return {"url": "smtp://127.0.0.1:%d" % port, "from": "rtr-agent@example.com",
            "username": "rtr", "password_file": env.write_secret(ctx, "smtp.pass", SMTP_PASSWORD),
            "ca_file": env.certs()["ca"], "timeout_s": 10, "connect_timeout_s": 2}


def _config(ctx, st, ticket, smtp_port, policy=None, spool=None):
    cfg = env.live_config(ctx, st, spool=spool)
    cfg["policies"] = [policy or _policy_file(ctx, ticket)]
    cfg["smtp"] = _smtp_config(ctx, smtp_port)
    return cfg


def _action_lines(agent, action, outcome="dispatched"):
    return [a for a in env.audit(agent) if a.get("action") == action and a["outcome"] == outcome]


def test_runbook_critical_by_correlation(ctx):
    """Two low-risk alerts for hlund, then a medium-risk one: critical by
    correlation. SafeTitan hears all three; the ticket webhook and the
    analysts' email run once, for the third, with what their templates
    name; the secret header reaches the ticket system and nowhere else."""
    st = env.standin(ctx)
    ticket = env.standin(ctx)
    smtp = _smtp(ctx)
    a = env.start_agent(ctx, _config(ctx, st, ticket, smtp.port))
    env.send_tcp(a, [_alert(1, 10), _alert(2, 12)])
    env.wait_requests(st, 2)
    env.send_tcp(a, [_alert(3, 55)])
    events = env.wait_requests(st, 3)
    tickets = env.wait_requests(ticket, 1)
    wait_until(lambda: len(smtp.messages()) >= 1, t(15), "the analysts' email")
    time.sleep(t(0.5))
    assert len(st.requests()) == 3 and len(ticket.requests()) == 1, (
        st.requests(), ticket.requests())
    assert [json.loads(e["body"])["email"] for e in events] == [HENRIK] * 3
    keys = {e["headers"]["idempotency-key"] for e in events}
    assert len(keys) == 3, keys

    r = tickets[0]
    assert (r["method"], r["path"]) == ("POST", "/api/now/table/incident"), r
    assert r["headers"]["authorization"] == TICKET_KEY
    assert r["headers"]["content-type"] == "application/json"
    assert len(r["headers"]["idempotency-key"]) == 64
    assert r["headers"]["idempotency-key"] not in keys
    body = json.loads(r["body"])
    assert body["caller"] == HENRIK, body
    assert body["short_description"] == "Insider threat (critical): Uploads to personal websites"
    assert "risk 55" in body["description"], body
    assert len(body["correlation_id"]) == 64, body

    msgs = smtp.messages()
    assert len(msgs) == 1, msgs
    m = msgs[0]
    assert m["rcpt_tos"] == [ANALYSTS] and m["tls"] and m["login"] == "rtr", m
    assert "Subject: [critical] Uploads to personal websites: " + HENRIK in m["data"], m["data"]
    assert "Risk score: 55" in m["data"] and "Policy insider-threat" in m["data"], m["data"]

    training = _action_lines(a, "training")
    assert [x["priority"] for x in training] == ["low", "low", "critical"], training
    crit = [x for x in env.audit(a) if x.get("priority") == "critical"
            and x["outcome"] == "dispatched"]
    assert sorted(x["action"] for x in crit) == ["analysts", "ticket", "training"], crit
    for x in crit:
        assert x["policy"] == "insider-threat", x
        assert "3 alerts for the user within 60 min" in x["why"], x

    # A fourth critical alert in the burst: SafeTitan hears it (never held
    # back); the ticket and the email are in their 15-minute cool-down.
    env.send_tcp(a, [_alert(4, 90)])
    env.wait_requests(st, 4)
    env.wait_audit(a, "cooldown", 2)
    time.sleep(t(0.5))
    assert len(ticket.requests()) == 1 and len(smtp.messages()) == 1
    cooled = env.outcomes(env.audit(a), "cooldown")
    assert sorted(x["action"] for x in cooled) == ["analysts", "ticket"], cooled
    env.assert_no_secret(a, TICKET_KEY.split()[1], SMTP_PASSWORD)


test_runbook_critical_by_correlation.timeout = 60


def test_counts_survive_kill9(ctx):
    """The counts are rebuilt from the spool: two alerts, kill -9, a new
    start on the same spool, and the third is still critical."""
    st = env.standin(ctx)
    ticket = env.standin(ctx)
    smtp = _smtp(ctx)
    extra = _config(ctx, st, ticket, smtp.port, spool={"dir": ctx.path("spool")})
    a = env.start_agent(ctx, extra, name="first")
    env.send_tcp(a, [_alert(1, 10), _alert(2, 12)])
    env.wait_requests(st, 2)
    env.wait_audit(a, lambda x: x.get("action") == "training" and x["outcome"] == "dispatched", 2)
    kill9(a)
    b = env.start_agent(ctx, extra, name="second")
    env.send_tcp(b, [_alert(3, 55)])
    env.wait_requests(ticket, 1)
    wait_until(lambda: len(smtp.messages()) >= 1, t(15), "the analysts' email")
    lines = env.wait_audit(b, lambda x: x.get("priority") == "critical" and
                           x["outcome"] == "dispatched", 3)
    assert all("3 alerts for the user" in x["why"] for x in lines
               if x.get("priority") == "critical"), lines


test_counts_survive_kill9.timeout = 60


def test_smtp_down_is_retried(ctx):
    """The analysts' SMTP server is down: the email is retried (audited),
    not lost, and goes out once the server is up."""
    st = env.standin(ctx)
    ticket = env.standin(ctx)
    port = free_port()
    a = env.start_agent(ctx, _config(ctx, st, ticket, port))
    env.send_tcp(a, [_alert(1, 91)])
    env.wait_requests(ticket, 1)
    env.wait_audit(a, lambda x: x.get("action") == "analysts" and x["outcome"] == "retry",
                   timeout=t(15))
    smtp = _smtp(ctx, port=port)
    wait_until(lambda: len(smtp.messages()) >= 1, t(20), "the email after the server came up")
    env.wait_audit(a, lambda x: x.get("action") == "analysts" and x["outcome"] == "dispatched",
                   timeout=t(10))
    assert env.dead_letters(a) == []
    assert "Subject: [critical]" in smtp.messages()[0]["data"]


test_smtp_down_is_retried.timeout = 60


INJECT_POLICY = """{"policies": [
  {"name": "notes", "tiers": [{"priority": "high"}],
   "actions": {"high": [
     {"name": "ticket", "type": "webhook", "url": "https://ticketing.example.com/api/notes",
      "secret_file": "/etc/rtr-agent/ticketing.key",
      "body": {"note": "{{field \\"cef.ext.msg\\"}}", "user": "{{user}}"},
      "headers": {"X-Note": "{{field \\"cef.ext.msg\\"}}"}}]}}]}
"""


def test_template_injection_escaped(ctx):
    """A message field that tries to close the JSON string (and add a key)
    and to start a header line stays inside its string and its header."""
    st = env.standin(ctx)
    ticket = env.standin(ctx)
    policy = _policy_file(ctx, ticket, "notes.json", INJECT_POLICY)
    a = env.start_agent(ctx, _config(ctx, st, ticket, 9, policy=policy))
    # CEF unescapes \r and \n in extension values; a quote needs no escape.
    evil = r'a","admin":true,"x":"b\r\nX-Evil: 1'
    env.send_tcp(a, [_alert(1, 5, extra=" msg=" + evil)])
    r = env.wait_requests(ticket, 1)[0]
    body = json.loads(r["body"])
    assert body == {"note": 'a","admin":true,"x":"b\r\nX-Evil: 1', "user": "hlund"}, body
    assert "x-evil" not in r["headers"], r["headers"]
    assert r["headers"]["x-note"] == 'a","admin":true,"x":"b  X-Evil: 1', r["headers"]


test_template_injection_escaped.timeout = 40


def test_replay_explains_policy(ctx):
    """replay --explain: the tier that held and why (the risk value and
    the count), and the actions that would run; none runs."""
    ticket_url = "https://127.0.0.1:9"

    class Fake:
        url = ticket_url
    cfg = write_config(ctx, extra={"policies": [_policy_file(ctx, Fake())]})
    data = b"\n".join([_alert(1, 10), _alert(2, 10), _alert(3, 55), _alert(4, 87.5)]) + b"\n"
    decisions, explain, _ = replay(cfg, ["-"], explain=True, data=data)
    assert [d.get("priority") for d in decisions] == ["low", "low", "critical", "critical"]
    assert decisions[2]["actions"] == ["training", "ticket", "analysts"], decisions[2]
    assert decisions[0]["actions"] == ["training"], decisions[0]
    assert "3 alerts for the user within 60 min" in decisions[2]["why"], decisions[2]
    text = "\n".join(explain)
    assert 'when[0] cef.label.riskscore "87.5" >= 80' in text, text
    assert "policy insider-threat: yes: critical by tiers[1]" in text, text
    assert "actions: training (safetitan), ticket (webhook), analysts (email)" in text, text


def test_check_lists_and_errors(ctx):
    """check lists what each action sends; a broken policy is named by
    file and key; email actions need an smtp section."""
    class Fake:
        url = "https://127.0.0.1:9"
    policy = _policy_file(ctx, Fake())
    cfg = write_config(ctx, extra={"policies": [policy],
                                   "smtp": {"url": "smtp://127.0.0.1:25",
                                            "from": "rtr@example.com"}})
    p = subprocess.run(WRAPPER + [AGENT, "check", "-c", cfg], capture_output=True, text=True,
                       timeout=t(20))
    assert p.returncode == 0, p.stderr
    assert ("policy insider-threat, critical: ticket (webhook https://127.0.0.1:9/api/now/table/"
            "incident) sends: priority, rule, email, user, field cef.label.riskscore, key"
            ) in p.stderr or "ticket (webhook" in p.stderr, p.stderr
    assert "1 policies" in p.stderr, p.stderr

    cfg = write_config(ctx, "nosmtp.json", extra={"policies": [policy]})
    p = subprocess.run(WRAPPER + [AGENT, "check", "-c", cfg], capture_output=True, text=True,
                       timeout=t(20))
    assert p.returncode != 0 and "smtp" in p.stderr, p.stderr

    bad = ctx.path("bad.json")
    with open(bad, "w") as f:
        f.write('{"policies": [{"name": "x", "tiers": [{"priority": "urgent", "when": '
                '[{"field": "cef.severity", "ge": "7"}]}], "actions": {"low": []}}]}')
    cfg = write_config(ctx, "bad-cfg.json", extra={"policies": [bad]})
    p = subprocess.run(WRAPPER + [AGENT, "check", "-c", cfg], capture_output=True, text=True,
                       timeout=t(20))
    assert p.returncode != 0, p.stderr
    assert bad + ': policies[0].tiers[0].priority: expected one of "low", "medium", "high", ' \
        '"critical", got "urgent"' in p.stderr, p.stderr
    assert bad + ": policies[0].tiers[0].when[0].ge: expected a number, got \"7\"" in p.stderr, \
        p.stderr
