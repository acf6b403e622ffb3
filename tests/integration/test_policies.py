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
import email
import email.header
import http.client
import json
import os
import re
import subprocess
import time
import urllib.parse

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
HTTP_KEY = "http-SECRET-1a2b3c4d5e6f7a8b9c0d"


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
            "ca_file": env.certs()["ca"], "timeout_s": 30, "connect_timeout_s": 10}


def _config(ctx, st, ticket, smtp_port, policy=None, spool=None, http_port=None):
    """A live config with the policy, the SMTP server and approvals.url
    naming the HTTP listener _listen(http_port) makes."""
    cfg = env.live_config(ctx, st, spool=spool)
    cfg["policies"] = [policy or _policy_file(ctx, ticket)]
    cfg["smtp"] = _smtp_config(ctx, smtp_port)
    cfg["approvals"] = {"url": "http://127.0.0.1:%d" % (http_port or 9)}
    return cfg


def _listen(ctx, http_port):
    return [listener("tcp"), listener("http", address="127.0.0.1:%d" % http_port,
                                      api_key_file=env.write_secret(ctx, "http.key", HTTP_KEY))]


def _start(ctx, st, ticket, smtp, policy=None, spool=None, name=None, http_port=None):
    http_port = http_port or free_port()
    cfg = _config(ctx, st, ticket, smtp.port if smtp else free_port(), policy=policy, spool=spool,
                  http_port=http_port)
    a = env.start_agent(ctx, cfg, listen=_listen(ctx, http_port), name=name)
    a.http_port = http_port
    return a


def _subject(message):
    """The Subject header decoded (a long or non-ASCII one is RFC 2047)."""
    parsed = email.message_from_string(message["data"])
    return str(email.header.make_header(email.header.decode_header(parsed["Subject"])))


def _mails(smtp, subject):
    """The messages whose subject starts with subject."""
    return [m for m in smtp.messages() if _subject(m).startswith(subject)]


def _link(message, which="Approve"):
    m = re.search(r"^%s: (http://\S+)$" % which, message["data"].replace("\r\n", "\n"), re.M)
    assert m, message["data"]
    return m.group(1)


def _http(url, method="GET", body=None):
    """-> (status, content type, body text)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=t(20))
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        conn.request(method, u.path + ("?" + u.query if u.query else ""), body=body,
                     headers=headers)
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        conn.close()


def _action_lines(agent, action, outcome="dispatched"):
    return [a for a in env.audit(agent) if a.get("action") == action and a["outcome"] == outcome]


def test_runbook_critical_by_correlation(ctx):
    """Two low-risk alerts for hlund (each asks the analysts' approval),
    then a medium-risk one: critical by correlation. SafeTitan, the ticket
    webhook and the analysts' email run once, for the third, with what
    their templates name; the secret header reaches the ticket system and
    nowhere else. A fourth critical alert in the burst reaches SafeTitan
    while the ticket and the email are in their cool-down."""
    st = env.standin(ctx)
    ticket = env.standin(ctx)
    smtp = _smtp(ctx)
    a = _start(ctx, st, ticket, smtp)
    env.send_tcp(a, [_alert(1, 10), _alert(2, 12)])
    wait_until(lambda: len(_mails(smtp, "[approval]")) >= 2, t(15), "two approval emails")
    env.send_tcp(a, [_alert(3, 55)])
    events = env.wait_requests(st, 1)
    tickets = env.wait_requests(ticket, 1)
    wait_until(lambda: len(_mails(smtp, "[critical]")) >= 1, t(15), "the analysts' email")
    time.sleep(t(0.5))
    assert len(st.requests()) == 1 and len(ticket.requests()) == 1, (
        st.requests(), ticket.requests())
    assert json.loads(events[0]["body"])["email"] == HENRIK

    r = tickets[0]
    assert (r["method"], r["path"]) == ("POST", "/api/now/table/incident"), r
    assert r["headers"]["authorization"] == TICKET_KEY
    assert r["headers"]["content-type"] == "application/json"
    assert len(r["headers"]["idempotency-key"]) == 64
    assert r["headers"]["idempotency-key"] != events[0]["headers"]["idempotency-key"]
    body = json.loads(r["body"])
    assert body["caller"] == HENRIK, body
    assert body["short_description"] == "Insider threat (critical): Uploads to personal websites"
    assert "risk 55" in body["description"], body
    assert len(body["correlation_id"]) == 64, body

    msgs = _mails(smtp, "[critical]")
    assert len(msgs) == 1, msgs
    m = msgs[0]
    assert m["rcpt_tos"] == [ANALYSTS] and m["tls"] and m["login"] == "rtr", m
    assert _subject(m) == "[critical] Uploads to personal websites: " + HENRIK, m["data"]
    assert "Risk score: 55" in m["data"] and "Policy insider-threat" in m["data"], m["data"]

    asks = [x for x in env.audit(a) if x.get("action") == "ask"]
    # (a "retry" may come first: a TLS handshake slower than the timeout)
    assert [x["outcome"] for x in asks if x["outcome"] not in ("spooled", "retry")] == \
        ["awaiting-approval"] * 2, asks
    assert all(x["priority"] == "low" for x in asks), asks
    crit = [x for x in env.audit(a) if x.get("priority") == "critical"
            and x["outcome"] == "dispatched"]
    assert sorted(x["action"] for x in crit) == ["analysts", "ticket", "training"], crit
    for x in crit:
        assert x["policy"] == "insider-threat", x
        assert "3 alerts for the user within 60 min" in x["why"], x

    env.send_tcp(a, [_alert(4, 90)])
    env.wait_requests(st, 2)
    env.wait_audit(a, "cooldown", 2)
    time.sleep(t(0.5))
    assert len(ticket.requests()) == 1 and len(_mails(smtp, "[critical]")) == 1
    cooled = env.outcomes(env.audit(a), "cooldown")
    assert sorted(x["action"] for x in cooled) == ["analysts", "ticket"], cooled
    env.assert_no_secret(a, TICKET_KEY.split()[1], SMTP_PASSWORD)


test_runbook_critical_by_correlation.timeout = 60


def test_counts_and_approvals_survive_kill9(ctx):
    """Two low-risk alerts wait for approval; kill -9; a new start on the
    same spool: both are pending again with the same deadline (their
    emails sent again), the third alert is still critical (the counts are
    rebuilt from the spool), and a link from the first run's email still
    decides."""
    st = env.standin(ctx)
    ticket = env.standin(ctx)
    smtp = _smtp(ctx)
    spool = {"dir": ctx.path("spool")}
    a = _start(ctx, st, ticket, smtp, spool=spool, name="first")
    env.send_tcp(a, [_alert(1, 10), _alert(2, 12)])
    first = env.wait_audit(a, "awaiting-approval", 2)
    wait_until(lambda: len(_mails(smtp, "[approval]")) >= 2, t(15), "two approval emails")
    link = _link(_mails(smtp, "[approval]")[0])
    kill9(a)
    b = _start(ctx, st, ticket, smtp, spool=spool, name="second", http_port=a.http_port)
    again = env.wait_audit(b, "awaiting-approval", 2)
    until = sorted(x["detail"] for x in env.outcomes(first, "awaiting-approval"))
    assert sorted(x["detail"] for x in env.outcomes(again, "awaiting-approval")) == until, again
    wait_until(lambda: len(_mails(smtp, "[approval]")) >= 4, t(15), "the approvals asked again")
    env.send_tcp(b, [_alert(3, 55)])
    env.wait_requests(ticket, 1)
    wait_until(lambda: len(_mails(smtp, "[critical]")) >= 1, t(15), "the analysts' email")
    lines = env.wait_audit(b, lambda x: x.get("priority") == "critical" and
                           x["outcome"] == "dispatched", 3)
    assert all("3 alerts for the user" in x["why"] for x in lines
               if x.get("priority") == "critical"), lines
    status, _, text = _http(link, "POST", "decision=approve")
    assert (status, json.loads(text)) == (200, {"approval": "approved"}), text
    events = env.wait_requests(st, 2)
    assert [json.loads(e["body"])["email"] for e in events] == [HENRIK, HENRIK]


test_counts_and_approvals_survive_kill9.timeout = 60
test_counts_and_approvals_survive_kill9.valgrind_skip = (
    "two agents and two rounds of TLS emails: over a minute under valgrind; the recovery paths "
    "run under ASan")


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
    assert _subject(smtp.messages()[0]).startswith("[critical]")


test_smtp_down_is_retried.timeout = 60
test_smtp_down_is_retried.valgrind_skip = "waits for a retry backoff; it runs under ASan"


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
    assert decisions[0]["actions"] == ["ask", "training"], decisions[0]
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
                                            "from": "rtr@example.com"},
                                   "approvals": {"url": "https://rtr-agent.example.com:8443"}})
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
    assert p.returncode != 0, p.stderr
    assert "smtp: policies have email actions: the smtp section is required" in p.stderr, p.stderr
    assert "approvals: policies have approval actions: approvals.url" in p.stderr, p.stderr

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


APPROVAL_POLICY = """{"policies": [
  {"name": "ask-first", "tiers": [{"priority": "low"}],
   "actions": {"low": [
     {"name": "ask", "type": "approval", "to": ["soc@example.com", "lead@example.com"],
      "subject": "[approval] {{rule}} for {{email}}",
      "text": "Approve: {{approve_url}}\\nDeny: {{deny_url}}\\nBy {{expires}}\\n",
      "then": ["training"], "expires_s": EXPIRES, "default": "DEFAULT"},
     {"name": "training", "type": "safetitan", "event": "Training: {{rule}}"}]}}]}
"""


def _approval_policy(ctx, expires=3600, default="deny", name="ask.json"):
    path = ctx.path(name)
    with open(path, "w") as f:
        f.write(APPROVAL_POLICY.replace("EXPIRES", str(expires)).replace("DEFAULT", default))
    return path


def test_approval_link_decides_once(ctx):
    """A low alert asks both approvers by email, each with links of their
    own; the link's GET shows a page and decides nothing; a POST approves
    (the held-back SafeTitan event goes out, audited with who approved), a
    second POST or the other approver's link is refused (410), a forged
    token is unknown (404). A second alert denied sends nothing."""
    st = env.standin(ctx)
    smtp = _smtp(ctx)
    a = _start(ctx, st, None, smtp, policy=_approval_policy(ctx))
    env.send_tcp(a, [_alert(1, 10, rule="Rule One")])
    wait_until(lambda: len(_mails(smtp, "[approval] Rule One")) >= 2, t(15), "two approval emails")
    mails = sorted(_mails(smtp, "[approval] Rule One"), key=lambda m: m["rcpt_tos"])
    assert [m["rcpt_tos"] for m in mails] == [["lead@example.com"], ["soc@example.com"]]
    lead, soc = _link(mails[0]), _link(mails[1])
    assert lead != soc and lead.startswith("http://127.0.0.1:%d/v1/approvals/" % a.http_port)
    assert _link(mails[1], "Deny").endswith("?decision=deny")

    status, ctype, page = _http(soc)
    assert status == 200 and ctype.startswith("text/html") and 'value="approve"' in page, page
    time.sleep(t(1.5))
    assert st.requests() == [], "a GET must decide nothing"
    # A waiting approval is no stuck alert: the going-live guide alerts on this gauge.
    status, body = a.http_get("/metrics")
    metrics = harness.parse_metrics(body)
    assert metrics["rtr_agent_spool_oldest_pending_age_seconds"] == 0, body
    assert metrics["rtr_agent_spool_pending_alerts"] == 1, body

    forged = soc[:-len("?decision=approve")]
    forged = forged[:-1] + ("0" if forged[-1] != "0" else "1")
    status, _, text = _http(forged, "POST", "decision=approve")
    assert status == 404, (status, text)

    status, _, text = _http(soc, "POST", "decision=approve")
    assert (status, json.loads(text)) == (200, {"approval": "approved"}), text
    ev = env.wait_requests(st, 1)[0]
    assert json.loads(ev["body"])["event"] == "Training: Rule One", ev
    assert json.loads(ev["body"])["email"] == HENRIK
    status, _, text = _http(soc, "POST", "decision=approve")
    assert status == 410, (status, text)
    status, _, text = _http(lead, "POST", "decision=deny")
    assert status == 410, (status, text)
    approved = env.wait_audit(a, "approved")
    line = env.outcomes(approved, "approved")[0]
    assert line["action"] == "ask" and line["detail"].startswith("by soc@example.com from 127.0.0.1:"), line

    env.send_tcp(a, [_alert(2, 10, rule="Rule Two")])
    wait_until(lambda: len(_mails(smtp, "[approval] Rule Two")) >= 2, t(15), "the second ask")
    deny = _link(_mails(smtp, "[approval] Rule Two")[0], "Deny")
    status, _, text = _http(deny, "POST", "decision=deny")
    assert (status, json.loads(text)) == (200, {"approval": "denied"}), text
    env.wait_audit(a, "denied")
    time.sleep(t(0.5))
    assert len(st.requests()) == 1, st.requests()
    assert env.dead_letters(a) == []


test_approval_link_decides_once.timeout = 60


def test_denial_survives_kill9(ctx):
    """A denial is answered once it is durable: killed right after the
    200, the next start does not ask the approvers again, and with
    "default": "approve" nothing runs at the deadline either."""
    st = env.standin(ctx)
    smtp = _smtp(ctx)
    spool = {"dir": ctx.path("spool")}
    policy = _approval_policy(ctx, max(4, int(t(4))), "approve")
    a = _start(ctx, st, None, smtp, policy=policy, spool=spool, name="first")
    env.send_tcp(a, [_alert(1, 10, rule="Rule One")])
    wait_until(lambda: len(_mails(smtp, "[approval] Rule One")) >= 2, t(15), "two approval emails")
    status, _, text = _http(_link(_mails(smtp, "[approval] Rule One")[0], "Deny"), "POST",
                            "decision=deny")
    assert (status, json.loads(text)) == (200, {"approval": "denied"}), text
    kill9(a)
    b = _start(ctx, st, None, smtp, policy=policy, spool=spool, name="second",
               http_port=a.http_port)
    time.sleep(t(1) + max(4, int(t(4))))
    assert len(_mails(smtp, "[approval] Rule One")) == 2, smtp.messages()
    assert st.requests() == [], st.requests()
    assert not [x for x in env.audit(b) if x.get("action") == "ask"], env.audit(b)


test_denial_survives_kill9.timeout = 60
test_denial_survives_kill9.valgrind_skip = "two agents and a deadline; it runs under ASan"


def test_approval_one_approver_refused(ctx):
    """The first approver's mailbox refuses the message for good (550):
    the other approver is asked all the same, the approval waits (its
    line names who was not reached) and that approver's link decides."""
    st = env.standin(ctx)
    c = env.certs()
    smtp = SmtpServer(ctx, "--tls", "starttls", "--cert", c["server"], "--key", c["server_key"],
                      "--user", "rtr", "--password", SMTP_PASSWORD, "--fail-first", "1",
                      "--fail-code", "550")
    a = _start(ctx, st, None, smtp, policy=_approval_policy(ctx))
    env.send_tcp(a, [_alert(1, 10, rule="Rule One")])
    lines = env.wait_audit(a, "awaiting-approval", timeout=t(15))
    line = env.outcomes(lines, "awaiting-approval")[0]
    assert "not sent to every approver: SMTP 550" in line["detail"], line
    mails = _mails(smtp, "[approval] Rule One")
    assert len(mails) == 1, mails
    status, _, text = _http(_link(mails[0]), "POST", "decision=approve")
    assert (status, json.loads(text)) == (200, {"approval": "approved"}), text
    env.wait_requests(st, 1)


test_approval_one_approver_refused.timeout = 40


def test_run_refuses_what_policies_cannot_do(ctx):
    """The start refuses policies whose actions the config cannot serve
    (as check does): no smtp section, no approvals.url."""
    class Fake:
        url = "https://127.0.0.1:9"
    cfg = write_config(ctx, extra={"policies": [_policy_file(ctx, Fake())]})
    p = subprocess.run(WRAPPER + [AGENT, "run", "-c", cfg], capture_output=True, text=True,
                       timeout=t(20))
    assert p.returncode != 0, p.stderr
    assert "smtp: policies have email actions: the smtp section is required" in p.stderr, p.stderr
    assert "approvals: policies have approval actions" in p.stderr, p.stderr


def test_approval_expiry_applies_default(ctx):
    """Nobody decides: at the deadline the default applies, deny (nothing
    sent) or approve (the held-back action runs), and the link is spent."""
    for default, sent in (("deny", 0), ("approve", 1)):
        st = env.standin(ctx)
        smtp = _smtp(ctx)
        # Long enough for the emails to go out first, also under valgrind.
        expires = max(2, int(t(3)))
        a = _start(ctx, st, None, smtp,
                   policy=_approval_policy(ctx, expires, default, default + ".json"),
                   name="expiry-" + default)
        env.send_tcp(a, [_alert(1, 10, rule="Rule " + default)])
        wait_until(lambda: len(_mails(smtp, "[approval]")) >= 2, t(15), "the approval emails")
        link = _link(_mails(smtp, "[approval]")[0])
        lines = env.wait_audit(a, "approved" if sent else "denied", timeout=t(15) + expires)
        line = env.outcomes(lines, "approved" if sent else "denied")[0]
        assert line["detail"] == "nobody decided before the deadline: the default, " + default
        time.sleep(t(0.5))
        assert len(st.requests()) == sent, st.requests()
        status, _, _ = _http(link, "POST", "decision=approve")
        assert status == 410, status


test_approval_expiry_applies_default.timeout = 60
test_approval_expiry_applies_default.valgrind_skip = (
    "waits out two deadlines; the expiry path runs under ASan")
