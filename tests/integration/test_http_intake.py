"""HTTP intake (issue 15, the generic route): POST /v1/alerts/{source}
with a JSON body, authenticated by an API key, acknowledged only once
every alert it produced is spooled and fsynced.

Real clients: python's http.client over plain HTTP on 127.0.0.1 and over
TLS (verified against the test CA), and curl when installed. A
Sentinel-style alert reaches the SafeTitan stand-in through a mapping that
reads json.* fields and http.source; arrays and JSON lines; 401 for a
missing or wrong key (never in any log); 400 naming the path for invalid
JSON, a duplicate key, deep nesting, a non-object element, too many
objects (and nothing of such a body is decided); 413 for an oversize body;
a slow body cut at the timeout decides nothing; a full spool answers 503
with Retry-After and the retry is accepted once SafeTitan is back; a 202
survives kill -9; the same Idempotency-Key twice dispatches once."""
import http.client
import json
import os
import signal
import shutil
import socket
import ssl
import subprocess
import time

import response_env as env
from harness import listener, run_agent, t, wait_until
from numbered import kill9

KEY = "hk-SECRET-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
WRONG = "hk-WRONG-ffffffffffffffffffffffffffffffff"
ALICE = "alice.morgan@example.com"


def _mapping(ctx):
    path = ctx.path("webhook.json")
    with open(path, "w") as f:
        json.dump({"mappings": [{
            "name": "webhook-sentinel",
            "when": [{"field": "http.source", "equals": "sentinel"},
                     {"field": "json.ProductName", "equals": "Azure Sentinel"}],
            "rule": [{"field": "json.AlertName"}],
            "user": [{"field": "json.Entities.0.Name"}]}]}, f)
    return path


def _alert(name="Impossible travel", user="EXAMPLE\\amorgan", **more):
    a = {"ProductName": "Azure Sentinel", "AlertName": name,
         "Entities": [{"Name": user, "Type": "account"}], "Severity": "High"}
    a.update(more)
    return a


def _agent(ctx, st=None, http=None, spool=None, name="agent", port=0, tls=False, down=False,
           limits=None, request_timeout_s=None):
    """An agent with a plain HTTP listener (and a TLS one); down: SafeTitan
    is stopped once the agent has started (its config needs it running).
    request_timeout_s: 3 s scaled (valgrind is slow to spool a request)
    unless a test waits for it to pass."""
    keyfile = env.write_secret(ctx, "http-key", KEY)
    entry = listener("http", api_key_file=keyfile, address="127.0.0.1:%d" % port,
                     request_timeout_s=request_timeout_s or int(t(3)), max_alerts=50,
                     max_body_bytes=65536)
    entry.update(http or {})
    listen = [entry]
    if tls:
        c = env.certs()
        listen.append(listener("http", api_key_file=keyfile, tls=True, cert=c["server"],
                               key=c["server_key"]))
    extra = env.live_config(ctx, st, mappings=[_mapping(ctx)], spool=spool)
    if limits:
        extra["limits"] = limits
    a = env.start_agent(ctx, extra, listen=listen, name=name)
    if down:
        st.stop()
    return a


def _post(port, body, key=KEY, path="/v1/alerts/sentinel", headers=None, tls=False, conn=None):
    """-> (status, headers, body as text); body: bytes, or JSON-encoded."""
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    h = {"Content-Type": "application/json"}
    if key is not None:
        h["X-API-Key"] = key
    h.update(headers or {})
    own = conn is None
    if own and tls:
        sc = ssl.create_default_context(cafile=env.certs()["ca"])
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=t(20), context=sc)
    elif own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=t(20))
    try:
        conn.request("POST", path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        if own:
            conn.close()


def _emails(reqs):
    return [json.loads(r["body"])["email"] for r in reqs]


def test_http_sentinel_plain_tls_curl(ctx):
    """A Sentinel-style alert POSTed over plain HTTP, over TLS (twice on one
    keep-alive connection) and with curl reaches SafeTitan with the user's
    email; the 202 lists the decision; a body no mapping decides is 200
    with no decisions, and reaches nobody."""
    st = env.standin(ctx)
    a = _agent(ctx, st, tls=True)
    plain, tls = a.port("http", 0), a.port("http", 1)
    status, hdr, body = _post(plain, _alert())
    assert status == 202, (status, body)
    got = json.loads(body)["decisions"]
    assert [(d["index"], d["mapping"], d["rule"]) for d in got] == [
        (0, "webhook-sentinel", "Impossible travel")], got
    assert len(got[0]["key"]) == 64, got
    env.wait_requests(st, 1)
    sc = ssl.create_default_context(cafile=env.certs()["ca"])
    conn = http.client.HTTPSConnection("127.0.0.1", tls, timeout=t(20), context=sc)
    for i in range(2):
        status, _, body = _post(tls, _alert("TLS alert %d" % i), conn=conn)
        assert status == 202, (status, body)
    conn.close()
    status, _, body = _post(plain, _alert(ProductName="Other"))
    assert (status, json.loads(body)) == (200, {"decisions": []}), (status, body)
    status, _, body = _post(plain, _alert(), path="/v1/alerts/splunk")
    assert (status, json.loads(body)) == (200, {"decisions": []}), (status, body)
    n = 3
    if shutil.which("curl"):
        out = subprocess.run(
            ["curl", "-sS", "--cacert", env.certs()["ca"], "-H", "X-API-Key: " + KEY,
             "-H", "Content-Type: application/json", "-w", "\n%{http_code}",
             "--data-binary", json.dumps(_alert("curl alert")),
             "https://127.0.0.1:%d/v1/alerts/sentinel" % tls],
            capture_output=True, timeout=t(30), text=True)
        assert out.stdout.rstrip().endswith("202"), (out.stdout, out.stderr)
        n = 4
    reqs = env.wait_requests(st, n)
    time.sleep(t(0.5))
    reqs = st.requests()
    assert _emails(reqs) == [ALICE] * n, reqs
    events = sorted(json.loads(r["body"])["event"] for r in reqs)
    assert "Impossible travel" in events and "TLS alert 1" in events, events
    assert a.metric('http_requests_total{route="/v1/alerts",status="202"}') == n
    assert a.metric('http_requests_total{route="/v1/alerts",status="200"}') == 2
    a.stop()


def test_http_array_and_json_lines(ctx):
    """An array of objects and JSON lines: one decision per object, in
    order, each dispatched."""
    st = env.standin(ctx)
    a = _agent(ctx, st)
    port = a.port("http")
    arr = [_alert("A%d" % i) for i in range(3)]
    status, _, body = _post(port, arr)
    assert status == 202, (status, body)
    assert [(d["index"], d["rule"]) for d in json.loads(body)["decisions"]] == [
        (0, "A0"), (1, "A1"), (2, "A2")], body
    lines = "\n".join(json.dumps(_alert("L%d" % i)) for i in range(2)) + "\n"
    status, _, body = _post(port, lines)
    assert status == 202, (status, body)
    assert [d["rule"] for d in json.loads(body)["decisions"]] == ["L0", "L1"], body
    reqs = env.wait_requests(st, 5)
    assert sorted(json.loads(r["body"])["event"] for r in reqs) == ["A0", "A1", "A2", "L0", "L1"]
    a.stop()


def test_http_queue_full_mid_request(ctx):
    """A decision queue of one record: the objects of one request meet a
    full queue, the intake pauses and goes on once the delivery thread
    drained it; every object is decided once, in order, and answered in
    one 202."""
    st = env.standin(ctx)
    a = _agent(ctx, st, limits={"queue_messages": 1})
    n = 50
    status, _, body = _post(a.port("http"), [_alert("Q%d" % i) for i in range(n)])
    assert status == 202, (status, body)
    assert [d["index"] for d in json.loads(body)["decisions"]] == list(range(n)), body
    env.wait_requests(st, n, timeout=30)
    time.sleep(t(0.5))
    assert sorted(json.loads(r["body"])["event"] for r in st.requests()) == sorted(
        "Q%d" % i for i in range(n))
    print("test_http_queue_full_mid_request: %d pauses"
          % a.metric("backpressure_pauses_total"), flush=True)
    assert a.metric("backpressure_pauses_total") >= 1, "the queue never refused a record"
    a.stop()


def test_http_auth(ctx):
    """No key or a wrong key: 401 without detail, nothing decided, and
    neither key in any output; GET is 405, another path 404."""
    st = env.standin(ctx)
    a = _agent(ctx, st)
    port = a.port("http")
    for key in (None, WRONG, KEY[:-1]):
        status, _, body = _post(port, _alert(), key=key)
        assert (status, json.loads(body)) == (401, {"error": "unauthorized"}), (status, body)
    status, _, body = _post(port, _alert(), key=WRONG, path="/nowhere")
    assert status == 401, "an unauthenticated client learns no routes: %d" % status
    status, _, body = _post(port, _alert(), path="/v1/other/sentinel")
    assert status == 404, (status, body)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=t(10))
    conn.request("GET", "/v1/alerts/sentinel", headers={"X-API-Key": KEY})
    r = conn.getresponse()
    assert (r.status, r.getheader("Allow")) == (405, "POST"), (r.status, r.read())
    conn.close()
    assert env.quiet(st) == []
    assert a.metric("messages_received_total") == 0
    assert a.metric('http_requests_total{route="/v1/alerts",status="401"}') == 3
    # A path that is no route counts apart, whatever the answer.
    assert a.metric('http_requests_total{route="other",status="401"}') == 1
    assert a.metric('http_requests_total{route="other",status="404"}') == 1
    assert a.metric('http_requests_total{route="/v1/alerts",status="405"}') == 1
    a.stop()
    env.assert_no_secret(a, KEY, WRONG, KEY[:-1])


def _closed_by_agent(sock, within):
    """Whether the agent ends sock (EOF or reset) within `within` seconds
    while the client sends nothing."""
    sock.settimeout(t(within))
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_http_connections_per_source(ctx):
    """limits.max_connections_per_source holds for HTTP from the accept on:
    with 2, a third connection from 127.0.0.1 is closed before it sends
    anything, the two admitted ones still work, and once one of them
    closes a new one is served."""
    st = env.standin(ctx)
    a = _agent(ctx, st, limits={"max_connections_per_source": 2})
    port = a.port("http")
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=t(10)) for _ in range(2)]
    for c in conns:
        assert _post(port, _alert(), conn=c)[0] == 202
    with socket.create_connection(("127.0.0.1", port)) as third:
        assert _closed_by_agent(third, 5), "a third connection from one address stayed open"
    assert a.metric('connections_refused_total{reason="limit"}') == 1
    assert _post(port, _alert(), conn=conns[1])[0] == 202
    conns[0].close()
    wait_until(lambda: _post(port, _alert())[0] == 202, 10, "a connection once one closed")
    conns[1].close()
    a.stop()


def test_http_allow_list_at_accept(ctx):
    """A client outside the listener's allow list is closed right after its
    accept, before it sends anything, and counted; nothing is answered."""
    st = env.standin(ctx)
    a = _agent(ctx, st, http={"allow": ["192.0.2.0/24"]})
    with socket.create_connection(("127.0.0.1", a.port("http"))) as c:
        assert _closed_by_agent(c, 5), "a client outside the allow list stayed connected"
    assert a.metric('connections_refused_total{reason="allowlist"}') == 1
    assert a.metric("connections_accepted_total") == 0
    a.stop()


def test_http_tls_handshake_failures_counted(ctx):
    """Plain HTTP sent to the HTTPS listener, and a client that gives up on
    the agent's certificate, end in the handshake: each is counted in
    tls_handshake_failures_total; a good TLS client then is served."""
    st = env.standin(ctx)
    a = _agent(ctx, st, tls=True)
    port = a.port("http", 1)
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(b"POST /v1/alerts/sentinel HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _closed_by_agent(c, 5)
    with socket.create_connection(("127.0.0.1", port)) as raw:
        try:
            ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")
            raise AssertionError("a client without the test CA completed the handshake")
        except ssl.SSLError:
            pass
    a.wait_metric("tls_handshake_failures_total", 2)
    assert _post(port, _alert(), tls=True)[0] == 202
    assert a.metric("tls_handshake_failures_total") == 2
    a.stop()


def test_http_slow_clients_cut(ctx):
    """A client must send a whole request within request_timeout_s of its
    accept, or of the answer before on a keep-alive connection: one that
    sends nothing, one that sends its headers a byte at a time (each within
    the silence evhttp allows) and a keep-alive one that starts a second
    request and stalls are all closed (the first by the watch, counted as
    slow; the silent ones maybe by evhttp's silence timeout), decide nothing;
    a client that was quick is served meanwhile."""
    st = env.standin(ctx)
    a = _agent(ctx, st, request_timeout_s=2)
    port = a.port("http")
    silent = socket.create_connection(("127.0.0.1", port))
    trickle = socket.create_connection(("127.0.0.1", port))
    keep = http.client.HTTPConnection("127.0.0.1", port, timeout=t(10))
    assert _post(port, _alert(), conn=keep)[0] == 202
    keep.sock.sendall(b"POST /v1/alerts/sentinel HTTP/1.1\r\nHo")
    request = b"POST /v1/alerts/sentinel HTTP/1.1\r\nHost: x\r\nX-API-Key: " + KEY.encode()
    start = time.monotonic()
    cut = False
    for i in range(len(request)):
        try:
            trickle.sendall(request[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            cut = True
            break
        time.sleep(0.25)
        if time.monotonic() - start > t(8):
            break
    assert cut or _closed_by_agent(trickle, 1), "a byte-a-time client was never cut"
    assert time.monotonic() - start < t(6), "cut only after %.1f s" % (time.monotonic() - start)
    assert _closed_by_agent(silent, 5), "a silent client was never cut"
    assert _closed_by_agent(keep.sock, 5), "a stalled keep-alive request was never cut"
    assert _post(port, _alert(name="quick"))[0] == 202
    # The silent ones may be closed by evhttp's own timeout first; only
    # the watch can cut the one that keeps sending.
    assert a.metric('connections_closed_total{reason="slow"}') >= 1
    env.wait_requests(st, 2)
    for s in (silent, trickle):
        s.close()
    keep.close()
    a.stop()


def test_http_key_rotated_at_sighup(ctx):
    """SIGHUP reads api_key_file again: the new key works at once, the old
    one is 401; a new key that is too short is refused and the running key
    stays. Neither key is ever logged."""
    st = env.standin(ctx)
    a = _agent(ctx, st)
    port = a.port("http")
    new = "hk-ROTATED-11223344556677889900aabbccdd"
    assert _post(port, _alert())[0] == 202

    def hup(text):
        before = a.stderr_bytes().count(text)
        os.kill(a.proc.pid, signal.SIGHUP)
        wait_until(lambda: a.stderr_bytes().count(text) > before, 10, text.decode())

    env.write_secret(ctx, "http-key", new)
    hup(b"SIGHUP: HTTP listeners' API keys read again")
    assert _post(port, _alert(name="after the rotation"))[0] == 401
    assert _post(port, _alert(name="after the rotation"), key=new)[0] == 202
    env.write_secret(ctx, "http-key", "short")
    hup(b"the API key did not load again: the running key stays in use")
    assert _post(port, _alert(name="a bad key file"), key=new)[0] == 202
    assert a.metric('reloads_total{result="failure"}') >= 1
    a.stop()
    env.assert_no_secret(a, KEY, new)


def test_http_idempotency_field_per_alert(ctx):
    """idempotency_field names each alert, and a request of several gets
    "#<index>" on it: a DTEX body whose top-level AlertId every (entry, hit)
    document repeats still makes two trainings for two hits of one user and
    category, and sending the same body again makes none."""
    st = env.standin(ctx)
    path = ctx.path("dtex.json")
    with open(path, "w") as f:
        json.dump({"mappings": [{
            "name": "dtex-webhook-test",
            "when": [{"field": "http.source", "equals": "dtex"}],
            "rule": {"field": "json.dataset.0.hits.0.category"},
            "user": {"field": "json.dataset.0.user_name"}}]}, f)
    keyfile = env.write_secret(ctx, "http-key", KEY)
    entry = listener("http", api_key_file=keyfile, address="127.0.0.1:0",
                     idempotency_field="AlertId", request_timeout_s=int(t(3)))
    a = env.start_agent(ctx, env.live_config(ctx, st, mappings=[path]), listen=[entry])
    body = {"AlertId": "A-1", "dataset": [{"user_name": "EXAMPLE\\amorgan", "hits": [
        {"category": "USB", "at": 1}, {"category": "USB", "at": 2}]}]}
    status, _, text = _post(a.port("http"), body, path="/api/SIEM/dtex/alert")
    assert status == 202, (status, text)
    keys = [d["key"] for d in json.loads(text)["decisions"]]
    assert len(keys) == 2 and keys[0] != keys[1], text
    env.wait_requests(st, 2)
    assert _emails(st.requests()) == [ALICE, ALICE]
    status, _, text = _post(a.port("http"), body, path="/api/SIEM/dtex/alert")
    assert status == 202 and [d["key"] for d in json.loads(text)["decisions"]] == keys, text
    a.wait_metric('alerts_total{outcome="duplicate"}', 2)
    assert len(env.quiet(st)) == 2, "the resent body reached SafeTitan again"
    a.stop()


def test_http_bad_bodies(ctx):
    """Invalid JSON, a duplicate key, deep nesting, a non-object element,
    too many objects, invalid UTF-8 (and an encoded surrogate), an array of
    30,000 elements: 400 with the validator's reason naming the path, and
    nothing of the body decided; a body over max_body_bytes (a million
    elements) is 413."""
    st = env.standin(ctx)
    a = _agent(ctx, st)
    port = a.port("http")
    good = json.dumps(_alert("Should never be decided"))
    cases = [
        ('{"AlertName": "x",', "json:"),
        ('{"AlertName": "x", "Entities": [{"Name": "a", "Name": "b"}]}', "$.Entities[0]"),
        ('{"a":' * 40 + "1" + "}" * 40, "deep"),
        ("[" + good + ", 5]", "element 1 is not a JSON object"),
        ("[" + ",".join([good] * 51) + "]", "max_alerts"),
        (good + "\n" + '{"a": 1, "a": 2}' + "\n", "line 2"),
        (good + "\n[1]\n", "line 2"),
        ("", "empty body"),
        ('"just a string"', "expected a JSON object"),
        (b'{"AlertName": "Impossible \xff travel"}', "UTF-8"),
        (b'{"AlertName": "\xed\xa0\x80"}', "UTF-8"),
        # A bomb under max_body_bytes: 30,000 elements in one array.
        ("[" + "0," * 30000 + "0]", "$"),
        ("{\"Entities\": [" + "[" * 33 + "]" * 33 + "]}", "nesting deeper than 32"),
    ]
    for text, want in cases:
        status, _, body = _post(port, text)
        assert status == 400, (text[:80], status, body)
        err = json.loads(body)["error"]
        assert want in err, (text[:80], err)
    status, _, body = _post(port, _alert(pad="p" * 70000))
    assert status == 413, (status, body)
    # A million-element array (2 MB) is refused by its announced size: the
    # answer comes before its body is sent.
    with socket.create_connection(("127.0.0.1", port), timeout=t(10)) as c:
        c.sendall(b"POST /v1/alerts/sentinel HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                  % (KEY.encode(), len("[" + "0," * 1000000 + "0]")))
        assert c.recv(100).startswith(b"HTTP/1.1 413 "), "no 413 before the body"
    assert env.quiet(st) == []
    assert a.metric("messages_received_total") == 0, "part of a bad body was decided"
    assert a.metric('http_requests_total{route="/v1/alerts",status="400"}') == len(cases)
    a.stop()


def test_http_slow_body_cut(ctx):
    """A body that stops arriving is cut at request_timeout_s (the
    connection closed) and decides nothing, even if the rest comes later."""
    st = env.standin(ctx)
    a = _agent(ctx, st, request_timeout_s=3)
    body = json.dumps(_alert("Slow")).encode()
    s = socket.create_connection(("127.0.0.1", a.port("http")), timeout=t(20))
    s.sendall(b"POST /v1/alerts/sentinel HTTP/1.1\r\nHost: x\r\nX-API-Key: " + KEY.encode() +
              b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:10])
    start = time.monotonic()
    try:
        data = s.recv(4096)
    except ConnectionResetError:
        data = b""
    waited = time.monotonic() - start
    assert data == b"", "the agent answered a cut request: %r" % data
    assert waited >= 2, "closed after %.1fs, before request_timeout_s" % waited
    try:
        s.sendall(body[10:])
    except OSError:
        pass
    s.close()
    assert env.quiet(st, 1) == []
    assert a.metric("messages_received_total") == 0
    a.stop()


def test_http_spool_full_503(ctx):
    """SafeTitan down and spool.max_bytes reached: a request is answered
    503 with Retry-After (the one whose alerts wait for room after
    request_timeout_s, the next at once); SafeTitan back, the retry of the
    same request is accepted and every alert reaches SafeTitan once."""
    _spool_full(ctx, None)


def test_http_spool_full_mid_request_503(ctx):
    """The same with a decision queue of one record: the request that
    fills the spool stops half-way, its remaining objects refused by the
    blocked queue, and is answered 503 at request_timeout_s all the same;
    its retry is accepted later (what it did hand over comes back as
    duplicates: every alert reaches SafeTitan once)."""
    _spool_full(ctx, {"queue_messages": 1})


def _spool_full(ctx, limits):
    st = env.standin(ctx)
    a = _agent(ctx, st, spool={"max_bytes": 1 << 20}, down=True, limits=limits,
               request_timeout_s=3)
    port = a.port("http")
    big = "x" * 1000
    sent, refused, batches = 0, None, []
    for b in range(40):
        batch = [_alert("Bulk %s %d" % (big, b * 50 + i)) for i in range(50)]
        status, hdr, body = _post(port, batch)
        if status == 503:
            refused = (batch, hdr, body)
            break
        assert status == 202, (status, body)
        batches.append(batch)
        sent += len(batch)
    assert refused is not None, "the spool never filled (%d alerts accepted)" % sent
    batch, hdr, body = refused
    assert hdr.get("Retry-After") == "5", hdr
    assert "error" in json.loads(body), body
    status, hdr, _ = _post(port, [_alert("Another")])
    assert status == 503 and hdr.get("Retry-After"), (status, hdr)
    st2 = env.restart(ctx, st)

    def retried():
        s, _, _ = _post(port, batch)
        return s == 202
    wait_until(retried, t(60), "the retried request to be accepted", interval=1)
    total = sent + len(batch)
    env.wait_requests(st2, total, timeout=60)
    time.sleep(t(1))
    events = [json.loads(r["body"])["event"] for r in st2.requests()]
    assert len(set(events)) == total, "%d distinct alerts of %d" % (len(set(events)), total)
    assert len(events) == total, "%d requests for %d alerts" % (len(events), total)
    if limits:
        assert a.metric("backpressure_pauses_total") >= 1, "no request paused half-way"
    a.stop()


test_http_spool_full_503.timeout = 150
test_http_spool_full_mid_request_503.timeout = 150


def test_http_kill9_after_202(ctx):
    """A 202 means the alert is in the spool: killed with -9 right after,
    the agent sends it at its next start."""
    st = env.standin(ctx)
    spool = {"dir": ctx.path("spool")}
    a = _agent(ctx, st, spool=spool, down=True)
    status, _, body = _post(a.port("http"), _alert("Survives kill -9"))
    assert status == 202, (status, body)
    kill9(a)
    st2 = env.restart(ctx, st)
    b = _agent(ctx, st2, spool=spool, name="agent2")
    reqs = env.wait_requests(st2, 1, timeout=30)
    assert [json.loads(r["body"])["event"] for r in reqs] == ["Survives kill -9"], reqs
    b.stop()


def test_http_idempotency_key(ctx):
    """The same Idempotency-Key twice (the body differs: a retried webhook
    with a new timestamp) dispatches once, and the second 202 says its
    decision was a duplicate; another key dispatches again."""
    st = env.standin(ctx)
    a = _agent(ctx, st)
    port = a.port("http")
    outcomes = []
    for i, k in enumerate(["retry-1", "retry-1", "retry-2"]):
        status, _, body = _post(port, _alert(TimeGenerated="2026-12-06T16:0%d:00Z" % i),
                                headers={"Idempotency-Key": k})
        assert status == 202, (status, body)
        outcomes += [d["outcome"] for d in json.loads(body)["decisions"]]
    assert outcomes == ["accepted", "duplicate", "accepted"], outcomes
    reqs = env.wait_requests(st, 2)
    time.sleep(t(1))
    reqs = st.requests()
    assert len(reqs) == 2, "dispatched %d times, want 2 (one per key)" % len(reqs)
    assert len({json.loads(r["body"])["id"] for r in reqs}) == 2
    status, _, body = _post(port, _alert(), headers={"Idempotency-Key": "k" * 257})
    assert status == 400 and "Idempotency-Key" in json.loads(body)["error"], (status, body)
    a.stop()


def test_http_check(ctx):
    """`check` reads the listener's key as a start would: a key under 16
    bytes fails naming the key, and plain HTTP beyond loopback is refused
    unless forced."""
    key = env.write_secret(ctx, "short-key", "short")
    cfg = ctx.path("c.json")

    def check(entry):
        with open(cfg, "w") as f:
            json.dump({"listen": [entry], "mappings": [_mapping(ctx)],
                       "dispatch": {"mode": "dry-run"}}, f)
        return run_agent("check", "-c", cfg)
    rc, err = check(listener("http", api_key_file=key))
    assert rc == 1 and "listen[0].api_key_file" in err and "shorter than 16 bytes" in err, err
    assert "short" not in err.replace("shorter", "").replace("short-key", ""), \
        "the key's bytes in check's output"
    good = env.write_secret(ctx, "good-key", KEY)
    rc, err = check(listener("http", api_key_file=good, address="0.0.0.0:0"))
    assert rc == 1 and "listen[0].tls: plain HTTP beyond loopback" in err, err
    rc, err = check(listener("http", api_key_file=good, address="0.0.0.0:0",
                             plain_beyond_loopback=True, allow=["127.0.0.0/8"]))
    assert rc == 0, err
    assert KEY not in err


# Under valgrind (tests/integration/run.py): these mostly wait for
# request_timeout_s; test_http_spool_full_503 and test_http_queue_full_mid_request
# run the same paths under it.
test_http_spool_full_mid_request_503.valgrind_skip = "waits for timeouts: its paths run under " \
    "valgrind in test_http_spool_full_503 and test_http_queue_full_mid_request"
test_http_slow_clients_cut.valgrind_skip = "waits for timeouts: the watch's ticks run under " \
    "valgrind in every other HTTP test"
test_http_slow_body_cut.valgrind_skip = "waits for a timeout: evhttp's, not the agent's code"
