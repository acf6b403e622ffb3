"""Orchestrator-compatible webhook routes (issue 15): the SIEM-specific
routes of the HTTP intake with the shipped webhook mappings and a static
directory, SafeTitan played by the stand-in.

A Sentinel playbook POST, a Logpoint GET and a DTEX webhook (two dataset
entries, one with two hits: three alerts) sent with curl each reach
SafeTitan with the right event and email; Logpoint POST with an empty body,
LogRhythm SmartResponse GET and POST (the query seen by every object); the
orchestrator's hosted form authenticated by `code` alone (401 for a wrong or
missing one, the code never in any output and never a field); query errors
(a parameter twice, a bad %-escape, %00, invalid UTF-8) answered 400 naming
the parameter; 405 with Allow and 404; DTEX bodies without a dataset array;
"auth": "client_cert" on a TLS listener; "idempotency_field"; and
`replay --http` over request fixtures."""
import glob
import http.client
import json
import os
import shutil
import ssl
import subprocess
import time

import harness
import response_env as env
from harness import listener, t
from test_replay import replay, write_config

KEY = "wh-SECRET-5c1e9a7b3d2f40618a9b7c6d5e4f3a2b"
WRONG = "wh-WRONG-0000111122223333444455556666777788"
ALICE = "alice.morgan@example.com"
BILAL = "bilal.khan@example.com"
CARMEN = "carmen.diaz@example.com"
DAN = "dan.wright@example.com"
EIMEAR = "eimear.oneil@example.com"
FILIP = "filip.novak@example.com"
GRACE = "grace.mensah@example.com"
HENRIK = "henrik.lund@example.com"
IVAN = "ivan.petrov@example.com"

LOGPOINT = "/api/SIEM/logpoint/alert"
LOGRHYTHM = "/api/SIEM/logrhythm/smartresponse"
DTEX = "/api/SIEM/dtex/alert"


def _agent(ctx, st, http=None, mappings=None, listen=None):
    """An agent with one plain HTTP listener keyed with KEY (or `listen`),
    the shipped mappings (or `mappings`) and the samples' static directory."""
    if listen is None:
        entry = listener("http", api_key_file=env.write_secret(ctx, "http-key", KEY),
                         request_timeout_s=int(t(3)), max_alerts=50, max_body_bytes=65536)
        entry.update(http or {})
        listen = [entry]
    return env.start_agent(ctx, env.live_config(ctx, st, mappings=mappings), listen=listen)


def _req(port, method, path, body=None, key=KEY, headers=None, context=None):
    """-> (status, headers, body text). body: None (no body), bytes/str, or
    JSON-encoded; key None sends no X-API-Key; context: HTTPS with it."""
    h = {}
    if key is not None:
        h["X-API-Key"] = key
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if body:
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    if context is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=t(20), context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=t(20))
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        conn.close()


def _curl(port, path, body=None, key=KEY):
    """curl (as a SIEM's webhook action would send): GET without a body,
    POST with one. -> (status, body text). Without curl, http.client."""
    if not shutil.which("curl"):
        status, _, text = _req(port, "POST" if body is not None else "GET", path, body, key)
        return status, text
    argv = ["curl", "-sS", "-g", "-w", "\n%{http_code}"]
    if key is not None:
        argv += ["-H", "X-API-Key: " + key]
    if body is not None:
        argv += ["-H", "Content-Type: application/json", "--data-binary",
                 body if isinstance(body, str) else json.dumps(body)]
    out = subprocess.run(argv + ["http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, timeout=t(30), text=True)
    assert out.returncode == 0, (path, out.stderr)
    text, _, code = out.stdout.rpartition("\n")
    return int(code), text


def _decided(resp, want):
    """resp (_req's or _curl's: status first, body last) is a 202 whose
    decisions are exactly want: [(index, mapping, rule)] (event = rule: the
    shipped mappings set none), each with a 64-hex key."""
    status, body = resp[0], resp[-1]
    assert status == 202, (status, body)
    got = json.loads(body)["decisions"]
    assert [(d["index"], d["mapping"], d["rule"], d["event"]) for d in got] == [
        w + (w[2],) for w in want], got
    for d in got:
        assert len(d["key"]) == 64 and int(d["key"], 16) >= 0, d
    return got


def _nothing(resp):
    status, body = resp[0], resp[-1]
    assert (status, json.loads(body)) == (200, {"decisions": []}), (status, body)


def _error(resp, code, *words):
    status, body = resp[0], resp[-1]
    assert status == code, (status, body)
    err = json.loads(body)["error"]
    for w in words:
        assert w in err, (w, err)
    return err


def _dispatched(st, n):
    """[(event, email)] sorted, once the stand-in holds n requests and
    nothing more arrives."""
    env.wait_requests(st, n)
    reqs = env.quiet(st)
    assert len(reqs) == n, "%d requests to SafeTitan, want %d" % (len(reqs), n)
    return sorted((json.loads(r["body"])["event"], json.loads(r["body"])["email"])
                  for r in reqs)


def _nothing_dispatched(a, st):
    assert env.quiet(st) == [], "a refused request reached SafeTitan"
    assert env.audit(a) == [], "a refused request was decided"


def _sentinel(name="Impossible travel to a new country", user="amorgan", **more):
    """A Sentinel alert as a playbook's HTTP action posts it (the alert's
    schema: AlertDisplayName, SystemAlertId, Entities)."""
    a = {"AlertDisplayName": name, "AlertName": name, "SystemAlertId": "7d1c5a02-0001",
         "ProductName": "Azure Sentinel", "Severity": "High",
         "TimeGenerated": "2026-12-06T16:00:00Z",
         "Entities": [{"$id": "2", "Name": user, "NTDomain": "EXAMPLE", "Type": "account"},
                      {"$id": "3", "Address": "203.0.113.9", "Type": "ip"}]}
    a.update(more)
    return a


def _dtex_body():
    """Two dataset entries, the first with two hits: three alerts."""
    return {"event_type": "alert", "dataset": [
        {"user_name": "EXAMPLE\\fnovak", "hostname": "ws-0042",
         "hits": [{"category": "Data Exfiltration", "score": 90},
                  {"category": "USB Mass Storage", "score": 40}]},
        {"user_name": "hlund", "hostname": "ws-0077",
         "hits": [{"category": "Cloud Upload", "score": 70}]}]}


def _all_files(top):
    """{relative path: bytes} of every file under top."""
    out = {}
    for d, _, files in os.walk(top):
        for name in files:
            p = os.path.join(d, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, top)] = f.read()
    return out


def test_webhooks_done_when_curl(ctx):
    """The issue's done-when: a Sentinel playbook POST, a Logpoint GET
    (a '+' and a %-encoded UTF-8 dash in its rule) and a DTEX webhook with
    two entries, one of two hits, each sent with curl: 202 listing the
    decisions in request order, and SafeTitan gets each event with the
    user's email."""
    st = env.standin(ctx)
    a = _agent(ctx, st)
    port = a.port("http")
    _decided(_curl(port, "/v1/alerts/sentinel", _sentinel()),
             [(0, "sentinel-playbook", "Impossible travel to a new country")])
    _decided(_curl(port, LOGPOINT + "?user=EXAMPLE%5Ccdiaz&ruleName=Brute+force+%E2%80%93+admin"),
             [(0, "logpoint-webhook", "Brute force \u2013 admin")])
    _decided(_curl(port, DTEX, _dtex_body()),
             [(0, "dtex-webhook", "Data Exfiltration"), (1, "dtex-webhook", "USB Mass Storage"),
              (2, "dtex-webhook", "Cloud Upload")])
    assert _dispatched(st, 5) == sorted([
        ("Impossible travel to a new country", ALICE), ("Brute force \u2013 admin", CARMEN),
        ("Data Exfiltration", FILIP), ("USB Mass Storage", FILIP), ("Cloud Upload", HENRIK)])
    a.stop()


def test_webhooks_logpoint_logrhythm_splunk(ctx):
    """Logpoint POST with the query and an empty body; LogRhythm
    SmartResponse as a GET, as a POST with a JSON body (rule and user from
    it), and as a POST whose query names the rule for each object of an
    array (the query wins over the object's own ruleName); Splunk's webhook
    alert action (the result row's user before its src_user); a Sentinel
    alert whose account entity comes last and carries a Sid (the Sid
    wins)."""
    st = env.standin(ctx)
    a = _agent(ctx, st)
    port = a.port("http")
    _decided(_req(port, "POST", LOGPOINT + "?user=bkhan%40example.com&ruleName=Malware+detected",
                  b""),
             [(0, "logpoint-webhook", "Malware detected")])
    _decided(_req(port, "GET", LOGRHYTHM + "?ruleName=Unknown%20USB%20Device"
                  "&user=EXAMPLE%5Cgmensah"),
             [(0, "logrhythm-smartresponse", "Unknown USB Device")])
    _decided(_req(port, "POST", LOGRHYTHM,
                  {"ruleName": "Suspicious PowerShell", "user": "dwright@example.com"}),
             [(0, "logrhythm-smartresponse", "Suspicious PowerShell")])
    _decided(_req(port, "POST", LOGRHYTHM + "?ruleName=Mass+Download",
                  [{"user": "hlund"}, {"user": "EXAMPLE\\fnovak", "ruleName": "Not this one"}]),
             [(0, "logrhythm-smartresponse", "Mass Download"),
              (1, "logrhythm-smartresponse", "Mass Download")])
    splunk = {"sid": "scheduler__admin__search__RMD5_at_1791018785_42",
              "search_name": "Excessive Logins", "app": "SplunkEnterpriseSecuritySuite",
              "owner": "admin",
              "result": {"src_user": "hlund", "user": "e.o'neil@example.com", "count": "42"}}
    _decided(_req(port, "POST", "/v1/alerts/splunk", splunk),
             [(0, "splunk-webhook", "Excessive Logins")])
    entities = [{"$id": "3", "Address": "203.0.113.9", "Type": "ip"},
                {"$id": "4", "Name": "hlund", "Type": "host"},
                {"$id": "2", "Type": "account", "Name": "amorgan",
                 "Sid": "S-1-5-21-1004336348-1177238915-682003330-1109"}]
    _decided(_req(port, "POST", "/v1/alerts/sentinel",
                  _sentinel("Rare process as a service", Entities=entities)),
             [(0, "sentinel-playbook", "Rare process as a service")])
    assert _dispatched(st, 7) == sorted([
        ("Malware detected", BILAL), ("Unknown USB Device", GRACE),
        ("Suspicious PowerShell", DAN), ("Mass Download", HENRIK), ("Mass Download", FILIP),
        ("Excessive Logins", EIMEAR), ("Rare process as a service", IVAN)])
    a.stop()


def test_webhooks_hosted_form_code(ctx):
    """/api/event/{source}/alert authenticated by ?code= alone: 202 and
    dispatched (a known source by its own mapping, another one by
    orchestrator-event); code= on a SIEM route and the header on the hosted
    form authenticate too; http.query.code is no field (a mapping reading it
    decides nothing, one reading orchid decides); a wrong, empty or missing code is 401; and no code
    value is in any file the agent wrote (stderr, tap, audit, dead letters,
    spool)."""
    probe = ctx.path("probes.json")
    with open(probe, "w") as f:
        json.dump({"mappings": [{
            "name": name + "-probe", "when": [{"field": "http.source", "equals": name + "probe"}],
            "rule": {"field": "http.query." + name}, "user": {"field": "http.query.user"}}
            for name in ("code", "orchid")]}, f)
    st = env.standin(ctx)
    a = _agent(ctx, st, mappings=[probe, env.MAPPINGS])
    port = a.port("http")
    status, _, body = _req(port, "GET", "/api/event/logpoint/alert?code=%s&orchid=o1&orgId=g1"
                           "&user=EXAMPLE%%5Cgmensah&ruleName=Phishing+link+clicked" % KEY,
                           key=None)
    assert status == 202, (status, body)
    got = json.loads(body)["decisions"]
    assert [(d["index"], d["rule"], d["event"]) for d in got] == [
        (0, "Phishing link clicked", "Phishing link clicked")], got
    assert got[0]["mapping"] in ("logpoint-webhook", "orchestrator-event"), got
    _decided(_req(port, "POST", "/api/event/acme-soar/alert?orchid=o1&orgId=g1"
                  "&user=e.o%%27neil%%40example.com&ruleName=Credential+stuffing&code=%s" % KEY,
                  b"", key=None),
             [(0, "orchestrator-event", "Credential stuffing")])
    _nothing(_req(port, "GET", "/api/event/codeprobe/alert?code=%s&orchid=o1&orgId=g1"
                  "&user=amorgan" % KEY, key=None))
    _decided(_req(port, "GET", "/api/event/orchidprobe/alert?code=%s&orchid=o1&orgId=g1"
                  "&user=amorgan" % KEY, key=None), [(0, "orchid-probe", "o1")])
    _decided(_req(port, "GET", LOGPOINT + "?user=hlund&ruleName=Code+on+a+SIEM+route&code=" + KEY,
                  key=None), [(0, "logpoint-webhook", "Code on a SIEM route")])
    _decided(_req(port, "GET", "/api/event/acme-soar/alert?orchid=o1&orgId=g1&user=EXAMPLE%5Ccdiaz"
                  "&ruleName=Header+on+the+hosted+form"),
             [(0, "orchestrator-event", "Header on the hosted form")])
    hosted = "/api/event/logpoint/alert?%sorchid=o1&orgId=g1&user=amorgan&ruleName=Refused"
    for what, code in (("wrong", "code=%s&" % WRONG), ("one byte short", "code=%s&" % KEY[:-1]),
                       ("empty", "code=&"), ("missing", "")):
        for method in ("GET", "POST"):
            status, _, body = _req(port, method, hosted % code, b"" if method == "POST" else None,
                                   key=None)
            assert (status, json.loads(body)) == (401, {"error": "unauthorized"}), \
                (method, what, status, body)
    assert _dispatched(st, 5) == sorted([
        ("Phishing link clicked", GRACE), ("Credential stuffing", EIMEAR), ("o1", ALICE),
        ("Code on a SIEM route", HENRIK), ("Header on the hosted form", CARMEN)])
    a.stop()
    env.assert_no_secret(a, KEY, WRONG, KEY[:-1])
    files = _all_files(a.dir)
    for want in ("tap.jsonl", "stderr.log", "audit.jsonl"):
        assert want in files, "no %s in %s: %s" % (want, a.dir, sorted(files))
    assert any(p.startswith("spool/") for p in files), sorted(files)
    for path, data in files.items():
        for secret in (KEY, WRONG, KEY[:-1]):
            assert secret.encode() not in data, "a code value (%s...) is in %s/%s" % (
                secret[:8], a.dir, path)


def test_webhooks_query_errors(ctx):
    """A parameter given twice, a bad or cut %-escape, %00, invalid UTF-8:
    400 naming the parameter, on every route, with the key in the header or
    as code= (whose value the error never repeats); nothing decided."""
    st = env.standin(ctx)
    a = _agent(ctx, st)
    port = a.port("http")
    good = "ruleName=Query+error&user=amorgan&"
    cases = [
        ("GET", LOGPOINT, "ruleName=A&user=amorgan&ruleName=B", "ruleName"),
        ("GET", LOGPOINT, good + "orgId=%zz1", "orgId"),
        ("GET", LOGPOINT, good + "trunc=ab%4", "trunc"),
        ("GET", LOGPOINT, good + "orchid=ab%00cd", "orchid"),
        ("GET", LOGPOINT, good + "tag9=%ff", "tag9"),
        ("GET", LOGPOINT, good + "tag8=%e2%80", "tag8"),
        ("POST", LOGRHYTHM, good + "dupe=1&dupe=1", "dupe"),
        ("POST", DTEX, "origin=%zz", "origin"),
        ("POST", "/v1/alerts/sentinel", "where=%00", "where"),
    ]
    for method, route, query, name in cases:
        body = _dtex_body() if route == DTEX else (_sentinel() if route.startswith("/v1") else
                                                   (b"" if method == "POST" else None))
        _error(_req(port, method, route + "?" + query, body), 400, name)
    err = _error(_req(port, "GET", "/api/event/logpoint/alert?code=%s&orchid=o1&orgId=g1"
                      "&user=%%ff&ruleName=x" % KEY, key=None), 400, "user")
    assert KEY not in err, err
    _nothing_dispatched(a, st)
    a.stop()
    env.assert_no_secret(a, KEY)


def test_webhooks_methods_routes(ctx):
    """GET on the DTEX route is 405 with Allow: POST, another method on the
    Logpoint route 405 allowing GET and POST; unknown paths under /api are
    404 (401 without a key: no route is revealed)."""
    st = env.standin(ctx)
    a = _agent(ctx, st)
    port = a.port("http")
    status, hdr, body = _req(port, "GET", DTEX)
    assert (status, hdr.get("Allow")) == (405, "POST"), (status, hdr, body)
    status, hdr, body = _req(port, "DELETE", LOGPOINT + "?user=amorgan&ruleName=x")
    assert status == 405, (status, body)
    assert {m.strip() for m in hdr.get("Allow", "").split(",")} == {"GET", "POST"}, hdr
    for method, path in (("POST", "/api/SIEM/nowhere/alert"), ("GET", "/api/SIEM/logpoint"),
                         ("GET", LOGPOINT + "/more?user=amorgan&ruleName=x"),
                         ("POST", "/api/SIEM/dtex/alerts"), ("GET", "/api/event/logpoint"),
                         ("GET", "/api/SIEM/logrhythm/alert"), ("POST", "/api/other")):
        status, _, body = _req(port, method, path, b"" if method == "POST" else None)
        assert status == 404, (method, path, status, body)
    status, _, body = _req(port, "POST", "/api/SIEM/nowhere/alert", b"", key=None)
    assert status == 401, (status, body)
    _nothing_dispatched(a, st)
    a.stop()


def test_webhooks_dtex_bad_bodies(ctx):
    """DTEX bodies without a "dataset" array (absent, an object, a string,
    null) are 400 naming $.dataset, an array body or invalid JSON is 400,
    more (entry, hit) pairs than max_alerts (2 x 26 > 50) is 400 naming it;
    nothing decided."""
    st = env.standin(ctx)
    a = _agent(ctx, st)
    port = a.port("http")
    for body in ({"data": _dtex_body()["dataset"]}, {"dataset": {"user_name": "hlund"}},
                 {"dataset": "hlund"}, {"dataset": None}):
        _error(_req(port, "POST", DTEX, body), 400, "$.dataset")
    for body in ([_dtex_body()], '{"dataset": [', ""):
        _error(_req(port, "POST", DTEX, body), 400)
    many = {"dataset": [{"user_name": "hlund", "hits": [{"category": "c%d" % i}
                                                        for i in range(26)]}] * 2}
    _error(_req(port, "POST", DTEX, many), 400, "max_alerts")
    _nothing_dispatched(a, st)
    a.stop()


def test_webhooks_client_cert(ctx):
    """"auth": "client_cert" on a TLS listener with client_ca and no API
    key: a client with a certificate from the test CA posts without a key
    and gets 202 (dispatched); a client without a certificate, or with one
    from another CA, is refused in the handshake and gets no answer."""
    c = harness.certs()
    st = env.standin(ctx)
    a = _agent(ctx, st, listen=[listener("http", tls=True, auth="client_cert",
                                         cert=c["server.pem"], key=c["server.key"],
                                         client_ca=c["ca.pem"], max_alerts=50,
                                         request_timeout_s=int(t(3)))])
    port = a.port("http")

    def context(cert):
        sc = ssl.create_default_context(cafile=c["ca.pem"])
        if cert:
            sc.load_cert_chain(c[cert + ".pem"], c[cert + ".key"])
        return sc
    _decided(_req(port, "POST", "/v1/alerts/sentinel", _sentinel(), key=None,
                  context=context("client")),
             [(0, "sentinel-playbook", "Impossible travel to a new country")])
    _decided(_req(port, "GET", LOGPOINT + "?user=hlund&ruleName=Cert+only", key=None,
                  context=context("client")),
             [(0, "logpoint-webhook", "Cert only")])
    for cert in (None, "wrong-client"):
        try:
            got = _req(port, "POST", "/v1/alerts/sentinel", _sentinel("Refused"), key=KEY,
                       context=context(cert))
        except (ssl.SSLError, ConnectionError, http.client.HTTPException) as e:
            got = e
        assert isinstance(got, Exception), "a client with %s was answered: %s" % (
            cert or "no certificate", got)
    assert _dispatched(st, 2) == sorted([("Impossible travel to a new country", ALICE),
                                         ("Cert only", HENRIK)])
    a.stop()


def test_webhooks_idempotency_field(ctx):
    """"idempotency_field": "SystemAlertId": the same Sentinel alert posted
    twice without an Idempotency-Key (a playbook rerun: its TimeGenerated
    differs) is dispatched once; another SystemAlertId is dispatched again."""
    st = env.standin(ctx)
    a = _agent(ctx, st, http={"idempotency_field": "SystemAlertId"})
    port = a.port("http")
    for i, sid in enumerate(["4b0e-aaaa", "4b0e-aaaa", "4b0e-bbbb"]):
        _decided(_req(port, "POST", "/v1/alerts/sentinel",
                      _sentinel(SystemAlertId=sid, TimeGenerated="2026-12-06T16:0%d:00Z" % i)),
                 [(0, "sentinel-playbook", "Impossible travel to a new country")])
    env.wait_requests(st, 2)
    time.sleep(t(1))
    reqs = st.requests()
    assert len(reqs) == 2, "dispatched %d times, want 2 (one per SystemAlertId)" % len(reqs)
    assert len({json.loads(r["body"])["id"] for r in reqs}) == 2, reqs
    a.stop()


def _fixture(ctx, name, head, body=b"", eol=b"\r\n"):
    """A request file for replay --http: head lines, a blank line, body."""
    path = ctx.path(name)
    with open(path, "wb") as f:
        f.write(eol.join(line.encode() for line in head) + eol + eol + body)
    return path


def test_webhooks_replay_http(ctx):
    """replay --dry-run --http: a DTEX request (CRLF, a wrong
    Content-Length, code= in its target) gives its three decisions with
    input_line 1..3; a Logpoint GET with LF line ends gives one; the code
    is in no output. With --explain, entries without hits are one alert
    each (three headers for three alerts)."""
    cfg = write_config(ctx)
    body = json.dumps(_dtex_body()).encode()
    dtex = _fixture(ctx, "dtex.http", [
        "POST %s?code=%s HTTP/1.1" % (DTEX, KEY), "Host: rtr-agent.example",
        "Content-Type: application/json", "Content-Length: 7"], body)
    logpoint = _fixture(ctx, "logpoint.http", [
        "GET %s?user=EXAMPLE%%5Ccdiaz&ruleName=Replayed+rule HTTP/1.1" % LOGPOINT,
        "Host: rtr-agent.example"], eol=b"\n")
    decisions, _, err = replay(cfg, ["--http", dtex, logpoint])
    got = [(os.path.basename(d["input_file"]), d["input_line"], d["mapping"], d["rule"],
            d["user"], d["email"], d["event"], d["outcome"]) for d in decisions]
    w = "would-dispatch"
    assert got == [
        ("dtex.http", 1, "dtex-webhook", "Data Exfiltration", "EXAMPLE\\fnovak", FILIP,
         "Data Exfiltration", w),
        ("dtex.http", 2, "dtex-webhook", "USB Mass Storage", "EXAMPLE\\fnovak", FILIP,
         "USB Mass Storage", w),
        ("dtex.http", 3, "dtex-webhook", "Cloud Upload", "hlund", HENRIK, "Cloud Upload", w),
        ("logpoint.http", 1, "logpoint-webhook", "Replayed rule", "EXAMPLE\\cdiaz", CARMEN,
         "Replayed rule", w)], got
    assert KEY not in err and KEY not in json.dumps(decisions)
    no_hits = json.dumps({"dataset": [
        {"user_name": "hlund"}, {"user_name": "amorgan", "hits": []},
        {"user_name": "EXAMPLE\\gmensah", "hits": [{"category": "Printing"}]}]}).encode()
    fixture = _fixture(ctx, "no-hits.http", ["POST %s HTTP/1.1" % DTEX, "Host: x"], no_hits)
    decisions, text, _ = replay(cfg, ["--http", fixture], explain=True)
    assert [(d["input_line"], d["rule"], d["email"]) for d in decisions] == [
        (3, "Printing", GRACE)], decisions
    heads = sorted({line.split(": ", 1)[0] for line in text if not line.startswith(" ")})
    assert heads == [fixture + ":%d" % i for i in (1, 2, 3)], text



def test_webhooks_fixtures(ctx):
    """tests/fixtures/http/*.http (one request per route, as sent) replayed
    with --http decide exactly as tests/fixtures/http/expected.jsonl lists."""
    folder = os.path.join(harness.ROOT, "tests", "fixtures", "http")
    files = sorted(glob.glob(os.path.join(folder, "*.http")))
    assert len(files) >= 7, files
    decisions, _, _ = replay(write_config(ctx), ["--http"] + files)
    got = [{"file": os.path.basename(d["input_file"]), "input_line": d["input_line"],
            "mapping": d["mapping"], "rule": d["rule"], "event": d["event"], "user": d["user"]}
           for d in decisions]
    with open(os.path.join(folder, "expected.jsonl")) as f:
        want = [json.loads(line) for line in f if line.strip()]
    assert got == want, got
    assert all(d["outcome"] == "would-dispatch" for d in decisions), decisions
