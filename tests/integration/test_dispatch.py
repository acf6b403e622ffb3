"""SafeTitan dispatch end to end (issue 4): the real agent fed syslog over
TCP (raw sockets and util-linux `logger`) sends to a real HTTPS stand-in
(tests/servers/standin.py) on 127.0.0.1.

Direct mode: every sample line decides exactly the requests of
expected.jsonl and a request carries nothing but {event, email, id,
occurred_at}, the Idempotency-Key and the API key. Orchestrator mode: the
documented query form, percent-encoded, and its `code` secret never in the
log, the audit or the dead letters. Outages (503s, Retry-After, a stand-in
stopped and restarted on its port, a hang past dispatch.timeout_s) are
retried until delivered; 4xx goes to the dead-letter file; an exact
duplicate inside the window is sent once, another message about the same
user and rule is sent again; TLS is always verified (a certificate for
another host, a CA not given). `rtr-agent check` takes the live configs and
names a missing API key file."""
import email.utils
import json
import os
import re
import socket
import subprocess
import time
import urllib.parse

from harness import AGENT, REPORT, WRAPPER, t, token
import response_env as R

HEX64 = re.compile(r"^[0-9a-f]{64}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
BODY_KEYS = {"event", "email", "id", "occurred_at"}
# What a direct request may carry as headers: transport, the key, the API key.
ALLOWED_HEADERS = {"host", "accept", "user-agent", "content-type", "content-length",
                   "idempotency-key", "x-api-key", "expect", "accept-encoding", "connection"}
BKHAN = ("bkhan@example.com", "bilal.khan@example.com")  # users.csv


def _agent(ctx, st, mode="direct", **kw):
    return R.start_agent(ctx, R.live_config(ctx, st, mode=mode, **kw))


def _body(req):
    return json.loads(req["body"])


def _events(reqs):
    return sorted((_body(r)["event"], _body(r)["email"]) for r in reqs)


def _keys_of(lines, outcome):
    return {a["key"] for a in R.outcomes(lines, outcome)}


def test_samples_reach_safetitan(ctx):
    """Every sample line over TCP: exactly one request per decision of
    expected.jsonl, with its rule as the event and its email; the noise
    (and the sample that decides nothing) sends nothing."""
    want, lines = R.expected_samples()
    st = R.standin(ctx)
    agent = _agent(ctx, st)
    R.send_tcp(agent, lines)
    R.wait_requests(st, len(want))
    lines_ = R.wait_audit(agent, "dispatched", len(want))
    reqs = R.quiet(st, 1.0)
    assert _events(reqs) == sorted((rule, email) for rule, _, email in want), \
        "requests differ from expected.jsonl:\n got %s\nwant %s" % (
            _events(reqs), sorted((r, e) for r, _, e in want))
    assert all(r["method"] == "POST" and r["path"] == "/v1/events" for r in reqs), reqs[0]
    assert len({_body(r)["id"] for r in reqs}) == len(want), "idempotency keys repeat"
    lines_ = R.audit(agent)
    assert len(R.outcomes(lines_, "spooled")) == len(want), lines_
    assert _keys_of(lines_, "dispatched") == {_body(r)["id"] for r in reqs}
    for a in R.outcomes(lines_, "dispatched"):
        assert a["status"] == 200 and a["attempts"] == 1 and a["email"], a
        assert isinstance(a["latency_ms"], int) and a["latency_ms"] >= 0, a
    assert agent.metric('alerts_total{outcome="dispatched"}') == len(want)
    assert agent.metric("dispatch_requests_total") == len(want)
    agent.stop()


def _forbidden(line, decision_user):
    """Parts of a raw sample line that must never leave the agent: its
    syslog hostname, every IPv4 address, the user identifier, and every
    other word of 4+ characters (checked against the request minus the
    event and email it is allowed to carry)."""
    text = line.decode()
    out = {decision_user, decision_user.replace("\\", "\\\\")}
    out.update(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text))
    hdr = re.match(r"<\d+>(?:1 \S+ (\S+)|\w{3} [ \d]\d \d\d:\d\d:\d\d (\S+))", text)
    out.add(hdr.group(1) or hdr.group(2))
    out.update(w for w in re.split(r"[\s|=^\"\\,:\[\]()<>]+", text) if len(w) >= 4)
    return out


def test_request_carries_only_allowed_fields(ctx):
    """Each captured request: body keys exactly {event, email, id,
    occurred_at}; id == Idempotency-Key == 64 hex; the API key header; no
    other header; and nothing of the raw line (hostname, IPs, the user
    identifier, any other word of it) in the URL, a header or the body."""
    want, lines = R.expected_samples()
    st = R.standin(ctx)
    agent = _agent(ctx, st)
    R.send_tcp(agent, lines)
    reqs = R.wait_requests(st, len(want))
    by_event = {}
    with open(os.path.join(R.SAMPLES, "expected.jsonl")) as f:
        for entry in map(json.loads, f):
            d = entry["decision"]
            if d:
                with open(os.path.join(R.SAMPLES, entry["file"]), "rb") as lf:
                    raw = [x for x in lf.read().split(b"\n") if x.strip()][entry["line"] - 1]
                by_event[(d["rule"], d["email"])] = (raw, d["user"])
    for r in reqs:
        body = _body(r)
        assert set(body) == BODY_KEYS, "body keys %s" % sorted(body)
        assert all(isinstance(v, str) for v in body.values()), body
        assert HEX64.match(body["id"]), body["id"]
        assert r["headers"].get("idempotency-key") == body["id"], r["headers"]
        assert r["headers"].get("x-api-key") == R.API_KEY, r["headers"]
        assert RFC3339.match(body["occurred_at"]), body["occurred_at"]
        extra = set(r["headers"]) - ALLOWED_HEADERS
        assert not extra, "headers beyond the allowed ones: %s" % {
            h: r["headers"][h] for h in extra}
        assert r["query"] == "", r["query"]
        raw, user = by_event[(body["event"], body["email"])]
        # What may carry data: the URL and headers (not the key, the API key,
        # the stand-in's own host:port and the length), the body's values
        # except the hash and the time, which are checked above.
        hdrs = {k: v for k, v in r["headers"].items()
                if k not in ("idempotency-key", "x-api-key", "host", "content-length")}
        sent = "\n".join([urllib.parse.unquote(r["path"]), r["query"]] + list(hdrs.values()) +
                         [body["event"], body["email"]])
        allowed = body["event"] + "\n" + body["email"]
        for word in _forbidden(raw, user):
            if word in allowed:
                continue
            assert word not in sent, \
                "%r of the raw line %r left the agent in %s" % (word, raw, r)
    agent.stop()


# Rule names that need percent-encoding in a query (and one that does not).
ORCH_RULES = ["Mass download & exfil = 100%", "Données sensibles — Ü+ß", "Plain rule",
              "hash # and ? and /slash"]


def test_orchestrator_mode(ctx):
    """POST {base}/api/event/splunk/alert?code=..&orchid=..&orgId=..
    &user=<email>&ruleName=<event>, each value percent-encoded so it
    decodes back exactly (spaces, '&', '=', '+', '#', non-ASCII); and the
    code, a secret, is in no log line (at debug level), audit line or
    dead-letter line, including those of a retried and a refused alert."""
    st = R.standin(ctx)
    # The 400's error page echoes the request URL, and with it the code.
    st.script([{"status": 503, "match": "/alert"},
               {"status": 400, "body": "bad request: /api/event/splunk/alert?code=%s"
                % R.ORCH_CODE, "match": "/alert"}])
    agent = R.start_agent(ctx, dict(R.live_config(ctx, st, mode="orchestrator"),
                                    log_level="debug"))
    tok = token()
    rules = [r + " " + tok for r in ORCH_RULES]
    R.send_tcp(agent, [R.splunk_kv(rule, BKHAN[0]) for rule in rules])
    # One of them was refused (the 400): dead-lettered; the rest delivered.
    R.wait_audit(agent, lambda a: a["outcome"] in ("dispatched", "failed"), len(rules))
    reqs = R.quiet(st, 0.5)
    assert len(reqs) == len(rules) + 1, "%d requests for %d alerts and one 503" % (
        len(reqs), len(rules))
    for r in reqs:
        assert r["method"] == "POST", r
        assert r["path"] == "/api/event/splunk/alert", r["path"]
        p = r["params"]
        assert set(p) == {"code", "orchid", "orgId", "user", "ruleName"}, p
        assert (p["code"], p["orchid"], p["orgId"], p["user"]) == \
            (R.ORCH_CODE, "orch-42", "org-7", BKHAN[1]), p
        # Exactly one way to read it: strict percent-decoding (no '+' for space).
        strict = dict(urllib.parse.parse_qsl(r["query"].replace("+", "%2B"), strict_parsing=True))
        assert strict == p, "query %r reads differently with '+' kept: %s" % (r["query"], strict)
        assert "#" not in r["query"] and " " not in r["query"], r["query"]
        for h, v in r["headers"].items():
            assert BKHAN[0] not in v and tok not in v, "header %s: %r" % (h, v)
    assert sorted({r["params"]["ruleName"] for r in reqs}) == sorted(rules)
    agent.stop()
    lines = R.audit(agent)
    dead = R.dead_letters(agent)
    assert len(dead) == 1 and len(R.outcomes(lines, "retry")) == 1, (dead, lines)
    R.assert_no_secret(agent, R.ORCH_CODE, "SECRET")


def test_logger_bare_cef(ctx):
    """The "Done when" scenario: util-linux logger (--tcp --octet-count)
    with a bare CEF line reaches SafeTitan with the right event and email."""
    st = R.standin(ctx)
    agent = _agent(ctx, st)
    rule = "Logger rule %s" % token()
    R.send_logger(ctx, agent, "CEF:0|Splunk|Enterprise Security|7.3.2|notable|%s|7|"
                  "suser=%s dvchost=LT-9999.example.com" % (rule, BKHAN[0]))
    reqs = R.wait_requests(st, 1)
    assert _events(reqs) == [(rule, BKHAN[1])], _events(reqs)
    assert "LT-9999" not in json.dumps(reqs[0])
    R.wait_audit(agent, "dispatched")
    assert len(R.quiet(st, 0.3)) == 1
    agent.stop()


def test_safetitan_down_then_back(ctx):
    """Six 503s (three with Retry-After: 1) over three alerts: every alert
    is delivered, the audit has one "retry" per 503 (status 503) and a
    "dispatched" with attempts > 1, dispatch_retries counts them, and each
    alert kept its idempotency key across attempts."""
    st = R.standin(ctx)
    st.script([{"status": 503, "retry_after": "1"} if i % 2 else {"status": 503}
               for i in range(6)])
    agent = _agent(ctx, st)
    tok = token()
    rules = ["outage %d %s" % (i, tok) for i in range(3)]
    R.send_tcp(agent, [R.splunk_kv(rule, BKHAN[0]) for rule in rules])
    lines = R.wait_audit(agent, "dispatched", 3, timeout=20)
    reqs = R.quiet(st, 0.3)
    assert len(reqs) == 9, "%d requests, want 3 alerts + 6 failures" % len(reqs)
    assert sorted({_body(r)["event"] for r in reqs}) == sorted(rules)
    for r in reqs:
        same = [x for x in reqs if _body(x)["event"] == _body(r)["event"]]
        assert {x["headers"]["idempotency-key"] for x in same} == {_body(r)["id"]}, \
            "an alert changed its idempotency key between attempts"
    retries = R.outcomes(lines, "retry")
    assert len(retries) == 6 and all(a["status"] == 503 for a in retries), retries
    done = R.outcomes(lines, "dispatched")
    assert max(a["attempts"] for a in done) > 1, done
    assert sum(a["attempts"] for a in done) == 9, done
    assert agent.metric("dispatch_retries_total") == 6
    assert agent.metric('alerts_total{outcome="dispatched"}') == 3
    agent.stop()


test_safetitan_down_then_back.timeout = 40


def test_safetitan_stopped_and_restarted(ctx):
    """The stand-in is stopped (connection refused): alerts are retried
    ("retry" lines naming the connection failure) and delivered once a new
    stand-in listens on the same port."""
    st = R.standin(ctx)
    agent = _agent(ctx, st)
    st.stop()
    tok = token()
    rules = ["refused %d %s" % (i, tok) for i in range(2)]
    R.send_tcp(agent, [R.splunk_kv(rule, BKHAN[0]) for rule in rules])
    lines = R.wait_audit(agent, "retry", 4)
    for a in R.outcomes(lines, "retry"):
        assert re.search(r"connect|refused", a.get("detail") or "", re.I), a
    assert not R.outcomes(lines, "dispatched")
    st2 = R.restart(ctx, st)
    lines = R.wait_audit(agent, "dispatched", 2, timeout=15)
    assert sorted(_body(r)["event"] for r in st2.requests()) == sorted(rules)
    retries = R.outcomes(lines, "retry")
    for a in R.outcomes(lines, "dispatched"):
        tries = sum(1 for x in retries if x["key"] == a["key"])
        assert tries >= 1 and a["attempts"] == tries + 1, (a, tries)
    assert agent.metric("dispatch_retries_total") >= 4
    agent.stop()


test_safetitan_stopped_and_restarted.timeout = 40


def _gap_after(st, n=2, timeout=15):
    reqs = R.wait_requests(st, n, timeout=timeout)
    return reqs[n - 1]["time"] - reqs[n - 2]["time"]


def test_retry_after_honoured(ctx):
    """A 429 with Retry-After: 2 (seconds) and a 503 with Retry-After as an
    HTTP-date 3 s ahead: the next attempt of that alert waits for it
    (retry_min_s 1, retry_max_s 10: the backoff alone could retry at once)."""
    st = R.standin(ctx)
    st.script([{"status": 429, "retry_after": "2"}])
    agent = _agent(ctx, st, dispatch={"retry_max_s": 10})
    R.send_tcp(agent, [R.splunk_kv("retry after %s" % token(), BKHAN[0])])
    gap = _gap_after(st)
    assert gap >= 1.5, "retried %.2fs after a 429 with Retry-After: 2" % gap
    R.wait_audit(agent, "dispatched")

    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    st.script([{"status": 503, "retry_after": when}])
    R.send_tcp(agent, [R.splunk_kv("retry after date %s" % token(), BKHAN[0])])
    gap = _gap_after(st, 4)
    assert gap >= 1.5, "retried %.2fs after a 503 with Retry-After: %s" % (gap, when)
    R.wait_audit(agent, "dispatched", 2)
    agent.stop()


test_retry_after_honoured.timeout = 45


def test_retry_after_odd_values(ctx):
    """Retry-After values that are huge, negative, garbage, empty, zero or a
    date long past: the agent keeps working, the wait is capped at
    retry_max_s (1 s here: a honoured huge value would never deliver), and
    every alert is delivered."""
    st = R.standin(ctx)
    odd = ["99999999999999999999", "-5", "soon", "", "0", "Thu, 01 Jan 1970 00:00:00 GMT",
           "2147483648", "1e9"]
    st.script([{"status": 429, "retry_after": v} for v in odd])
    agent = _agent(ctx, st, dispatch={"retry_max_s": 1})
    tok = token()
    rules = ["odd %d %s" % (i, tok) for i in range(2)]
    R.send_tcp(agent, [R.splunk_kv(rule, BKHAN[0]) for rule in rules])
    lines = R.wait_audit(agent, "dispatched", 2, timeout=15)
    assert len(R.outcomes(lines, "retry")) == len(odd)
    assert len(st.requests()) == len(odd) + 2
    agent.assert_alive()
    agent.stop()


test_retry_after_odd_values.timeout = 40


def test_retry_after_zero_does_not_hammer(ctx):
    """429 with Retry-After: 0 again and again: the agent waits at least the
    backoff's floor (100 ms) between tries, instead of retrying at loopback
    speed, and delivers once SafeTitan accepts."""
    st = R.standin(ctx)
    st.script([{"status": 429, "retry_after": "0"}] * 5)
    agent = _agent(ctx, st)
    R.send_tcp(agent, [R.splunk_kv("zero %s" % token(), BKHAN[0])])
    R.wait_audit(agent, "dispatched", timeout=20)
    times = [r["time"] for r in st.requests()]
    assert len(times) == 6, times
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.09, "retried %.3f s after a Retry-After: 0" % min(gaps)
    agent.stop()


test_retry_after_zero_does_not_hammer.timeout = 40


def test_alert_with_escaped_bytes_at_the_caps_is_handled(ctx):
    """A message whose rule and user are 1000 bytes that are not UTF-8 (6
    bytes each once escaped for JSON): the alert takes its course (here an
    unknown user: dead-lettered) instead of blocking the spool, and the next
    alert is delivered."""
    st = R.standin(ctx)
    agent = _agent(ctx, st)
    junk = b"\xff" * 1000
    line = (b"<13>Oct  2 09:13:05 splunk-hf01 CEF:0|Splunk|Enterprise Security|7.3|notable|"
            + junk + b"|7|suser=" + junk + b" cs1Label=search_name cs1=" + junk)
    rule = "after the junk %s" % token()
    R.send_tcp(agent, [line, R.splunk_kv(rule, BKHAN[0])])
    R.wait_audit(agent, "unresolved-user")
    R.wait_audit(agent, "dispatched")
    assert [json.loads(r["body"])["event"] for r in st.requests()] == [rule]
    assert agent.metric("spool_full_total") == 0
    agent.stop()


def test_4xx_goes_to_dead_letter(ctx):
    """400, 403, 404 and 422 are not retried: one request each, audit
    "failed" with the status, a dead-letter JSON line with the status and
    the start of the body, outcome_dead_letter counts them."""
    st = R.standin(ctx)
    statuses = [400, 403, 404, 422]
    st.script([{"status": s, "body": "refused-%d: the event name is unknown" % s}
               for s in statuses])
    agent = _agent(ctx, st)
    tok = token()
    rules = ["refused %d %s" % (i, tok) for i in range(len(statuses))]
    R.send_tcp(agent, [R.splunk_kv(rule, BKHAN[0]) for rule in rules])
    lines = R.wait_audit(agent, "failed", len(statuses))
    reqs = R.quiet(st, 2.0)  # retry_min_s is 1: a retry would be here by now
    assert len(reqs) == len(statuses), "%d requests for %d refused alerts" % (
        len(reqs), len(statuses))
    lines = R.audit(agent)
    assert not R.outcomes(lines, "retry") and not R.outcomes(lines, "dispatched"), lines
    failed = R.outcomes(lines, "failed")
    assert sorted(a["status"] for a in failed) == statuses, failed
    dead = R.dead_letters(agent)
    assert len(dead) == len(statuses), dead
    assert sorted(d["status"] for d in dead) == statuses, dead
    for d in dead:
        detail = d.get("detail") or ""
        assert "HTTP %d" % d["status"] in detail and "refused-%d" % d["status"] in detail, \
            "the dead-letter reason lacks the status or the body's start: %s" % d
        assert d["outcome"] == "failed" and d["attempts"] == 1, d
        assert d["rule"] in rules and d["email"] == BKHAN[1] and HEX64.match(d["key"]), d
    assert {d["key"] for d in dead} == {_body(r)["id"] for r in reqs}
    assert agent.metric('alerts_total{outcome="dead-letter"}') == len(statuses)
    assert agent.metric("dispatch_retries_total") == 0
    agent.stop()


def test_exact_duplicate_only(ctx):
    """The same frame twice inside the window: one request, one "duplicate"
    audit line with the same key. The same user and rule in another message
    (another frame): a second request, another key. A CEF event with the
    same externalId from the same host: a duplicate, though the text
    differs."""
    st = R.standin(ctx)
    agent = _agent(ctx, st)
    tok = token()
    frame = R.splunk_kv("dup %s" % tok, BKHAN[0])
    R.send_tcp(agent, [frame])
    R.wait_requests(st, 1)
    R.send_tcp(agent, [frame])
    lines = R.wait_audit(agent, "duplicate")
    other = frame.replace(b"orig_time=1791018785", b"orig_time=1791018786")
    R.send_tcp(agent, [other])
    reqs = R.wait_requests(st, 2)
    lines = R.wait_audit(agent, "dispatched", 2)
    assert len(R.quiet(st, 0.5)) == 2
    assert reqs[0]["headers"]["idempotency-key"] != reqs[1]["headers"]["idempotency-key"]
    assert [_body(r)["event"] for r in reqs] == ["dup %s" % tok] * 2
    dup = R.outcomes(lines, "duplicate")
    assert len(dup) == 1 and dup[0]["key"] == reqs[0]["headers"]["idempotency-key"], dup
    assert len(R.outcomes(lines, "spooled")) == 2, "a duplicate was spooled"

    ext = "ext-%s" % tok
    R.send_tcp(agent, [R.cef("cef dup %s" % tok, BKHAN[0], ext_id=ext),
                       R.cef("cef dup %s" % tok, BKHAN[0], ext_id=ext, extra="cnt=2")])
    R.wait_audit(agent, "duplicate", 2)
    R.wait_audit(agent, "dispatched", 3)
    assert len(R.quiet(st, 0.5)) == 3
    assert agent.metric('alerts_total{outcome="duplicate"}') == 2
    agent.stop()


def test_hang_times_out_and_retries(ctx):
    """A stand-in that never answers, dispatch.timeout_s 2 (8 under
    valgrind): the attempt ends with a "retry" naming a timeout and the
    alert is delivered next."""
    st = R.standin(ctx)
    st.script([{"hang": True}])
    # 2 s; more under valgrind, where the TLS handshake alone can take 2 s.
    agent = _agent(ctx, st, dispatch={"timeout_s": min(int(t(2)), 8)})
    R.send_tcp(agent, [R.splunk_kv("hang %s" % token(), BKHAN[0])])
    lines = R.wait_audit(agent, "dispatched", timeout=15)
    retry = R.outcomes(lines, "retry")
    assert len(retry) == 1 and re.search(r"time(d)? ?out", retry[0]["detail"], re.I), retry
    assert R.outcomes(lines, "dispatched")[0]["attempts"] == 2
    agent.stop()


test_hang_times_out_and_retries.timeout = 40


def test_odd_success_bodies_are_delivered(ctx):
    """2xx with a 4 MiB body (also chunked), a malformed body, a JSON list,
    an empty 204: each alert is delivered once, no retry."""
    st = R.standin(ctx)
    actions = [{"huge": 4 << 20}, {"huge": 4 << 20, "chunked": True},
               {"status": 200, "body": "not json {"}, {"status": 201, "body": [1, 2]},
               {"status": 204, "body": ""}]
    st.script(actions)
    agent = _agent(ctx, st)
    tok = token()
    R.send_tcp(agent, [R.splunk_kv("odd body %d %s" % (i, tok), BKHAN[0])
                       for i in range(len(actions))])
    lines = R.wait_audit(agent, "dispatched", len(actions))
    assert len(R.quiet(st, 1.5)) == len(actions)
    assert not R.outcomes(R.audit(agent), "retry"), lines
    assert sorted(a["status"] for a in R.outcomes(lines, "dispatched")) == \
        [200, 200, 200, 201, 204]
    agent.stop()


def _tls_refused(ctx, st, dispatch):
    agent = _agent(ctx, st, dispatch=dispatch)
    R.send_tcp(agent, [R.splunk_kv("tls %s" % token(), BKHAN[0])])
    lines = R.wait_audit(agent, "retry", 2)
    for a in R.outcomes(lines, "retry"):
        assert re.search(r"certificate|SSL|TLS|verif", a.get("detail") or "", re.I), a
    assert not R.outcomes(lines, "dispatched")
    assert st.requests() == [], "a request was sent over an unverified connection"
    assert agent.metric('alerts_total{outcome="dispatched"}') == 0
    agent.stop()


def test_wrong_host_certificate_is_refused(ctx):
    """The stand-in presents a certificate (from the trusted CA) for
    wrong.example: never sent, "retry" lines with a certificate reason."""
    st = R.standin(ctx, cert="wrong")
    _tls_refused(ctx, st, None)


def test_ca_not_given_is_refused(ctx):
    """No dispatch.ca_file: the test CA is not a system CA, so the
    stand-in's certificate does not verify."""
    st = R.standin(ctx)
    _tls_refused(ctx, st, {"ca_file": None})


def _check(ctx, name, cfg):
    path = ctx.path(name)
    with open(path, "w") as f:
        json.dump(dict(cfg, listen=[{"proto": "tcp", "address": "127.0.0.1:0"}]), f)
    p = subprocess.run(WRAPPER + [AGENT, "check", "-c", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=t(20))
    err = p.stderr.decode("utf-8", "replace")
    assert not REPORT.search(p.stderr), err[-3000:]
    return p.returncode, err, path


def test_check_live_configs(ctx):
    """`rtr-agent check` accepts complete direct, orchestrator and graph
    configs, and refuses one whose API key file is missing, naming the key
    (and never printing a secret)."""
    st = R.standin(ctx)
    g = R.standin(ctx, "graph")
    for name, cfg in (("direct.json", R.live_config(ctx, st)),
                      ("orch.json", R.live_config(ctx, st, mode="orchestrator")),
                      ("graph.json", R.live_config(ctx, st, graph=g, order=["static", "graph"]))):
        rc, err, path = _check(ctx, name, cfg)
        assert rc == 0, "check refused %s:\n%s" % (name, err[-2000:])
        assert "test is successful" in err, err[-1000:]
        assert R.API_KEY not in err and R.ORCH_CODE not in err and R.GRAPH_SECRET not in err
    for mode in ("direct", "orchestrator"):
        cfg = R.live_config(ctx, st, mode=mode,
                            dispatch={"api_key_file": ctx.path("no-such-key-file")})
        rc, err, path = _check(ctx, mode + "-nokey.json", cfg)
        assert rc == 1, "check exited %d with a missing api key file:\n%s" % (rc, err[-2000:])
        assert re.search(r"dispatch\.api_key_file.*no-such-key-file|no-such-key-file.*"
                         r"dispatch\.api_key_file", err), \
            "the key and the missing file are not named:\n%s" % err[-2000:]
        assert "test failed" in err


def test_event_text_survives_json_and_renamed_fields(ctx):
    """Rule names with quotes, backslashes, a tab, '|' and non-ASCII reach
    SafeTitan as the same text (JSON-escaped, never mangled); the body's
    field names follow dispatch.fields and the API key goes in
    dispatch.api_key_header. The API key is in no log line (debug), audit,
    dead-letter or spool file."""
    st = R.standin(ctx)
    st.script([{"status": 503}, {"status": 400, "body": "no"}])
    fields = {"event": "eventName", "email": "userEmail", "id": "eventId", "occurred_at": "ts"}
    cfg = R.live_config(ctx, st, dispatch={"fields": fields, "api_key_header": "X-Custom-Key"})
    agent = R.start_agent(ctx, dict(cfg, log_level="debug"))
    tok = token()
    rules = ['say "hi" %s' % tok, "back\\slash and |pipe| %s" % tok, "tab\there %s" % tok,
             "日本語 ünïcödé 🚨 %s" % tok, "a</script>&amp;%%s{} %s" % tok]
    R.send_tcp(agent, [R.cef(rule, BKHAN[0]) for rule in rules])
    R.wait_audit(agent, lambda a: a["outcome"] in ("dispatched", "failed"), len(rules))
    reqs = R.quiet(st, 0.3)
    assert len(reqs) == len(rules) + 1, len(reqs)
    for r in reqs:
        body = _body(r)
        assert set(body) == set(fields.values()), "body keys %s" % sorted(body)
        assert body["userEmail"] == BKHAN[1] and HEX64.match(body["eventId"]), body
        assert r["headers"].get("x-custom-key") == R.API_KEY, r["headers"]
        assert "x-api-key" not in r["headers"], r["headers"]
        assert r["headers"]["idempotency-key"] == body["eventId"]
    assert sorted({_body(r)["eventName"] for r in reqs}) == sorted(rules), \
        sorted({_body(r)["eventName"] for r in reqs})
    agent.stop()
    R.assert_no_secret(agent, R.API_KEY, "SECRET")


def test_closed_and_slow_answers(ctx):
    """A connection closed without an answer is retried; an answer that
    takes 1.5 s (under timeout_s) is a success at the first attempt."""
    st = R.standin(ctx)
    st.script([{"close": True}, {"delay": 1.5}])
    agent = _agent(ctx, st, dispatch={"timeout_s": 5})
    tok = token()
    R.send_tcp(agent, [R.splunk_kv("closed %s" % tok, BKHAN[0])])
    lines = R.wait_audit(agent, "dispatched", timeout=15)
    assert len(R.outcomes(lines, "retry")) == 1, lines
    R.send_tcp(agent, [R.splunk_kv("slow %s" % tok, BKHAN[0])])
    lines = R.wait_audit(agent, "dispatched", 2, timeout=15)
    slow = [a for a in R.outcomes(lines, "dispatched") if a["rule"] == "slow %s" % tok]
    assert slow and slow[0]["attempts"] == 1, slow
    assert len(R.outcomes(lines, "retry")) == 1, lines
    assert len(st.requests()) == 3
    agent.stop()


test_closed_and_slow_answers.timeout = 40


def test_no_redirect_to_plain_http(ctx):
    """A 302 to an http:// URL is not followed: nothing connects to the
    plain listener, the alert is not reported delivered (the audit has the
    302), and the agent keeps running."""
    plain = socket.socket()
    plain.bind(("127.0.0.1", 0))
    plain.listen(4)
    plain.settimeout(0.1)
    try:
        port = plain.getsockname()[1]
        st = R.standin(ctx)
        st.script([{"status": 302, "body": "",
                    "headers": {"Location": "http://127.0.0.1:%d/v1/events" % port}}] * 3)
        agent = _agent(ctx, st)
        R.send_tcp(agent, [R.splunk_kv("redirect %s" % token(), BKHAN[0])])
        R.wait_requests(st, 1)
        R.wait_audit(agent, lambda a: a["outcome"] not in ("spooled",))
        time.sleep(t(1.0))
        try:
            conn, _ = plain.accept()
            conn.close()
            raise AssertionError("the agent followed a redirect to plain http")
        except socket.timeout:
            pass
        lines = R.audit(agent)
        # Not followed means not delivered: never reported as dispatched.
        assert not R.outcomes(lines, "dispatched"), lines
        assert [a.get("status") for a in lines if a["outcome"] != "spooled"][0] == 302, lines
        agent.assert_alive()
        agent.stop()
    finally:
        plain.close()


def test_duplicate_window_expires(ctx):
    """dispatch.dedup_window_s 1: the same frame again after the window is
    sent again, with the same idempotency key (SafeTitan can still tell)."""
    st = R.standin(ctx)
    agent = _agent(ctx, st, dispatch={"dedup_window_s": 1})
    frame = R.splunk_kv("window %s" % token(), BKHAN[0])
    R.send_tcp(agent, [frame])
    R.wait_audit(agent, "dispatched")
    time.sleep(2.5)
    R.send_tcp(agent, [frame])
    reqs = R.wait_requests(st, 2)
    assert reqs[0]["headers"]["idempotency-key"] == reqs[1]["headers"]["idempotency-key"]
    assert not R.outcomes(R.wait_audit(agent, "dispatched", 2), "duplicate")
    agent.stop()


def test_audit_hashes_users(ctx):
    """audit.hash_key_file: the audit lines of every outcome (spooled,
    retry, dispatched) hold the user and email hashed, the same hash for the
    same person, never the clear values; SafeTitan still gets the email."""
    st = R.standin(ctx)
    st.script([{"status": 503}])
    cfg = R.live_config(ctx, st)
    cfg["audit"]["hash_key_file"] = R.write_secret(ctx, "hash-key", "k" * 32)
    agent = R.start_agent(ctx, cfg)
    tok = token()
    R.send_tcp(agent, [R.splunk_kv("hashed %d %s" % (i, tok), BKHAN[0]) for i in range(2)])
    lines = R.wait_audit(agent, "dispatched", 2)
    assert {_body(r)["email"] for r in st.requests()} == {BKHAN[1]}
    text = json.dumps(lines)
    assert "bkhan" not in text and "bilal" not in text, "clear user or email in the audit"
    assert len({a["user"] for a in lines}) == 1, {a["user"] for a in lines}
    assert len({a["email"] for a in lines if a["email"]}) == 1
    assert {a["outcome"] for a in lines} == {"spooled", "retry", "dispatched"}
    # The idempotency key hashes the user without the secret: next to a
    # hashed user it would let a guess be tested.
    assert not [a for a in lines if "key" in a], lines
    agent.stop()


def test_sigterm_while_a_request_hangs(ctx):
    """SIGTERM while SafeTitan holds a request open (timeout_s 30): the
    agent exits promptly with status 0 (the alert stays spooled for the next
    start), and the stand-in saw the request."""
    st = R.standin(ctx)
    st.script([{"hang": True}])
    agent = _agent(ctx, st, dispatch={"timeout_s": 30})
    R.send_tcp(agent, [R.splunk_kv("hang at stop %s" % token(), BKHAN[0])])
    R.wait_requests(st, 1)
    agent.stop(timeout=10)
    assert not R.outcomes(R.audit(agent), "dispatched")


def test_sigterm_while_an_alert_waits_to_retry(ctx):
    """SIGTERM while an alert waits out a 503's Retry-After: 30: prompt exit
    with status 0."""
    st = R.standin(ctx)
    st.script([{"status": 503, "retry_after": "30"}])
    agent = _agent(ctx, st, dispatch={"retry_max_s": 60})
    R.send_tcp(agent, [R.splunk_kv("waiting at stop %s" % token(), BKHAN[0])])
    R.wait_audit(agent, "retry")
    agent.stop(timeout=10)
    assert len(st.requests()) == 1
