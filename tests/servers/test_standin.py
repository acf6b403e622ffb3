#!/usr/bin/env python3
"""Self-test of the stand-ins (certs.py, standin.py) with real HTTPS clients
(http.client verifying against the test CA).

    python3 tests/servers/test_standin.py [-k SUBSTRING]

Prints PASS/FAIL per test and "standin: N passed, N failed"; exits 1 on a
failure. A watchdog ends the run after 120 s.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import certs  # noqa: E402
import standin  # noqa: E402

TMP = tempfile.mkdtemp(prefix="rtr-standin-test-")
CERTS = {}


def setup_certs():
    CERTS.update(certs.make_all(os.path.join(TMP, "certs")))


def ctx_for(ca=None):
    return ssl.create_default_context(cafile=ca or CERTS["ca"])


def conn(s, host="127.0.0.1", ca=None, timeout=10):
    return http.client.HTTPSConnection(host, s.port, context=ctx_for(ca), timeout=timeout)


def call(c, method, path, body=None, headers=None):
    """One request on connection c: (status, {lowercased header: value}, body bytes)."""
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def eq(got, want, what=""):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what or "value", got, want))


def server(kind="safetitan", **kw):
    return standin.Standin(kind, CERTS["server"], CERTS["server_key"], **kw)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def token_form(cid="client-id", secret="client-secret", scope="https://graph.example/.default",
               grant="client_credentials"):
    from urllib.parse import urlencode
    return urlencode({"grant_type": grant, "client_id": cid, "client_secret": secret,
                      "scope": scope})


def get_token(s, c=None, tenant="tenant-1"):
    c = c or conn(s)
    st, _, body = call(c, "POST", "/%s/oauth2/v2.0/token" % tenant, token_form(), FORM)
    eq(st, 200, "token status")
    return json.loads(body)["access_token"]


def graph_get(s, path, tok=None, advanced=False, c=None):
    """GET path on a graph stand-in with a bearer token: (status, JSON body)."""
    tok = tok or get_token(s)
    h = {"Authorization": "Bearer " + tok}
    if advanced:
        h["ConsistencyLevel"] = "eventual"
    st, _, body = call(c or conn(s), "GET", path, headers=h)
    return st, json.loads(body)


def graph_error(doc):
    expect(isinstance(doc, dict) and isinstance(doc.get("error"), dict),
           "not a Graph error body: %r" % doc)
    expect(isinstance(doc["error"].get("message"), str), "error without a message")
    return doc["error"]["code"]


def openssl_text(pem):
    return subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-text"], check=True,
                          stdout=subprocess.PIPE).stdout.decode()


# ---------------------------------------------------------------- certs

def test_certs_cli_files_and_cache():
    d = os.path.join(TMP, "cli-certs")
    p = subprocess.run([sys.executable, os.path.join(HERE, "certs.py"), d],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    eq(p.returncode, 0, "exit status")
    eq(p.stdout + p.stderr, b"", "output")
    names = ("ca.pem", "server.pem", "server.key", "wrong.pem", "wrong.key")
    before = {n: os.stat(os.path.join(d, n)).st_mtime_ns for n in names}
    subprocess.run([sys.executable, os.path.join(HERE, "certs.py"), d], check=True, timeout=60)
    after = {n: os.stat(os.path.join(d, n)).st_mtime_ns for n in names}
    eq(after, before, "files remade on a second run")
    ca = openssl_text(os.path.join(d, "ca.pem"))
    expect("CA:TRUE" in ca, "CA without CA:TRUE")
    srv = openssl_text(os.path.join(d, "server.pem"))
    expect("IP Address:127.0.0.1" in srv and "DNS:localhost" in srv, "server SAN: " + srv)
    expect("CA:FALSE" in srv, "server cert is a CA")
    wrong = openssl_text(os.path.join(d, "wrong.pem"))
    expect("DNS:wrong.example" in wrong and "127.0.0.1" not in wrong, "wrong SAN")
    v = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", os.path.join(d, "ca.pem"),
                        os.path.join(d, "server.pem")], stdout=subprocess.PIPE)
    eq(v.returncode, 0, "openssl verify -x509_strict")


def test_certs_api_cache_and_new_hosts():
    d = os.path.join(TMP, "api-certs")
    ca = certs.make_ca(d)
    eq(certs.make_ca(d), ca, "make_ca path")
    pem, key = certs.make_cert(d, ca, "x")
    m = os.stat(pem).st_mtime_ns
    eq(certs.make_cert(d, ca, "x"), (pem, key), "make_cert paths")
    eq(os.stat(pem).st_mtime_ns, m, "cached cert remade")
    certs.make_cert(d, ca, "x", hosts=("other.example",))
    expect("DNS:other.example" in openssl_text(pem), "new hosts not applied")


def test_tls_wrong_host_refused():
    with standin.Standin("safetitan", CERTS["wrong"], CERTS["wrong_key"]) as s:
        try:
            call(conn(s), "GET", "/")
            raise AssertionError("a certificate for wrong.example was accepted")
        except ssl.SSLCertVerificationError as e:
            expect("mismatch" in str(e) or "match" in str(e), "reason: %s" % e)
        deadline = time.monotonic() + 5
        while s.tls_failures < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        eq(s.tls_failures, 1, "tls_failures")
        eq(s.requests(), [], "requests")


def test_tls_other_ca_refused():
    d = os.path.join(TMP, "other")
    other = certs.make_ca(d, name="other-ca")
    pem, key = certs.make_cert(d, other, "srv")
    with standin.Standin("safetitan", pem, key) as s:
        try:
            call(conn(s), "GET", "/")
            raise AssertionError("a certificate from another CA was accepted")
        except ssl.SSLCertVerificationError:
            pass
        # ...and accepted by a client that trusts that CA.
        eq(call(conn(s, ca=other), "GET", "/")[0], 200, "status")


def test_tls_localhost_name_and_tls12_minimum():
    with server() as s:
        eq(call(conn(s, host="localhost"), "GET", "/")[0], 200, "via localhost")
        ctx = ctx_for()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        c = http.client.HTTPSConnection("127.0.0.1", s.port, context=ctx, timeout=10)
        eq(call(c, "GET", "/")[0], 200, "TLS 1.2")
        eq(c.sock.version(), "TLSv1.2", "version")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
                ctx.minimum_version = ssl.TLSVersion.TLSv1_1
                ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, ssl.SSLError):
            return  # this OpenSSL cannot even offer TLS 1.1
        try:
            with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:
                with ctx.wrap_socket(raw) as t:
                    raise AssertionError("TLS 1.1 accepted: %s" % t.version())
        except ssl.SSLError as e:
            # The server's refusal, not a client-side failure.
            expect("VERSION" in str(e).upper(), "TLS 1.1 failed for another reason: %s" % e)
        deadline = time.monotonic() + 5
        while s.tls_failures < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        eq(s.tls_failures, 1, "server-side handshake failure")


# ---------------------------------------------------------------- safetitan

def test_safetitan_records_requests():
    with server() as s:
        c = conn(s)
        body = json.dumps({"event": "e1", "email": "a@b.c", "id": "k1"})
        st, h, data = call(c, "POST", "/api/event/x/alert?code=S3CR%2BT&user=a+b%40c&ruleName=r",
                           body, {"Content-Type": "application/json", "X-API-Key": "k",
                                  "Idempotency-Key": "k1"})
        eq((st, json.loads(data)), (200, {"ok": True}), "answer")
        eq(h.get("content-length"), str(len(data)), "Content-Length")
        eq(call(c, "GET", "/health")[0], 200, "GET")
        recs = s.requests()
        eq(len(recs), 2, "records")
        r = recs[0]
        eq(r["method"], "POST", "method")
        eq(r["path"], "/api/event/x/alert", "path")
        eq(r["query"], "code=S3CR%2BT&user=a+b%40c&ruleName=r", "query (as sent)")
        eq(r["params"], {"code": "S3CR+T", "user": "a b@c", "ruleName": "r"}, "params")
        eq(r["headers"]["x-api-key"], "k", "lowercased header")
        eq(r["headers"]["idempotency-key"], "k1", "header")
        expect(all(k == k.lower() for k in r["headers"]), "header names not lowercased")
        eq(json.loads(r["body"]), json.loads(body), "body")
        expect(abs(r["time"] - time.time()) < 60, "time")
        eq(recs[1]["method"], "GET", "second method")
        # requests() is a copy
        recs[0]["headers"]["x-api-key"] = "changed"
        recs.clear()
        eq(s.requests()[0]["headers"]["x-api-key"], "k", "copy")
        s.clear_requests()
        eq(s.requests(), [], "clear_requests")


def test_keepalive_and_connection_ids():
    with server() as s:
        c = conn(s)
        for _ in range(3):
            eq(call(c, "POST", "/a", "{}")[0], 200, "status")
        sock = c.sock
        eq(call(c, "GET", "/b")[0], 200, "status")
        expect(c.sock is sock and sock is not None, "the connection was not kept")
        call(conn(s), "GET", "/c")
        ids = [r["conn"] for r in s.requests()]
        eq(len(set(ids[:4])), 1, "one connection for the first four")
        expect(ids[4] != ids[0], "a new connection has a new number")


def test_chunked_request_and_expect_continue():
    with server() as s:
        c = conn(s)
        c.request("POST", "/chunked", body=iter([b'{"a":', b'1}']),
                  headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
        r = c.getresponse()
        r.read()
        eq(r.status, 200, "chunked status")
        big = "x" * 5000
        st, _, _ = call(c, "POST", "/expect", big, {"Expect": "100-continue"})
        eq(st, 200, "Expect status")
        recs = s.requests()
        eq(recs[0]["body"], '{"a":1}', "chunked body")
        eq(recs[1]["body"], big, "body after 100-continue")


# ---------------------------------------------------------------- scripts

def test_script_status_retry_after_then_normal():
    with server() as s:
        s.script([{"status": 503, "retry_after": "2"},
                  {"status": 429, "retry_after": 7, "body": "slow down"}])
        c = conn(s)
        st, h, data = call(c, "POST", "/x", "{}")
        eq((st, h.get("retry-after")), (503, "2"), "first")
        expect(json.loads(data).get("ok") is False, "error body: %r" % data)
        st, h, data = call(c, "POST", "/x", "{}")
        eq((st, h.get("retry-after"), data), (429, "7", b"slow down"), "second")
        st, h, data = call(c, "POST", "/x", "{}")
        eq((st, "retry-after" in h, json.loads(data)), (200, False, {"ok": True}), "normal")
        eq(s.pending_actions(), 0, "pending")
        eq(len(s.requests()), 3, "all recorded")


def test_script_match_only_some_requests():
    with server("graph") as s:
        s.script([{"status": 429, "retry_after": "1", "match": "/v1.0/users"},
                  {"status": 500, "match": "/oauth2/"}])
        c = conn(s)
        st, _, data = call(c, "POST", "/t/oauth2/v2.0/token", token_form(), FORM)
        eq(st, 500, "token request takes the action that matches it")
        eq(json.loads(data)["error"], "temporarily_unavailable", "OAuth error body")
        tok = get_token(s, c)
        st, doc = graph_get(s, "/v1.0/users/jsmith@contoso.com", tok, c=c)
        eq((st, graph_error(doc)), (429, "TooManyRequests"), "lookup throttled")
        st, doc = graph_get(s, "/v1.0/users/jsmith@contoso.com", tok, c=c)
        eq(st, 200, "then normal")
        # match against the decoded path too
        s.script([{"status": 503, "match": "#EXT#"}])
        st, _ = graph_get(s, "/v1.0/users/jsmith@contoso.com", tok, c=c)
        eq(st, 200, "a non-matching lookup")
        st, doc = graph_get(s, "/v1.0/users/guest_fabrikam.com%23EXT%23%40contoso.onmicrosoft.com",
                            tok, c=c)
        eq((st, graph_error(doc)), (503, "ServiceUnavailable"), "decoded match")


def test_script_malformed_and_wrongly_typed():
    with server("graph") as s:
        tok = get_token(s)
        s.script([{"body": "not json", "status": 200}, {"body": {"value": "not a list"}},
                  {"status": 200, "body": [1, 2]}, {"status": 202}])
        c = conn(s)
        h = {"Authorization": "Bearer " + tok}
        eq(call(c, "GET", "/v1.0/users?$filter=mail%20eq%20'a'", headers=h)[::2],
           (200, b"not json"), "malformed")
        st, _, data = call(c, "GET", "/v1.0/users", headers=h)
        eq(json.loads(data), {"value": "not a list"}, "dict body")
        eq(json.loads(call(c, "GET", "/v1.0/users", headers=h)[2]), [1, 2], "list body")
        st, _, data = call(c, "GET", "/v1.0/users/jsmith@contoso.com?$select=mail", headers=h)
        eq((st, json.loads(data)["mail"]), (202, "john.smith@contoso.com"),
           "status below 400 without body: the normal answer with that status")


def test_script_delay():
    with server() as s:
        s.script([{"delay": 0.4}])
        t = time.monotonic()
        st, _, data = call(conn(s), "POST", "/x", "{}")
        took = time.monotonic() - t
        eq((st, json.loads(data)), (200, {"ok": True}), "answer after the delay")
        expect(took >= 0.35, "answered after %.2fs" % took)


def test_script_huge():
    with server() as s:
        s.script([{"huge": 1048576}, {"huge": 300000, "chunked": True}, {"huge": 5}])
        c = conn(s)
        st, h, data = call(c, "GET", "/big")
        eq((st, h.get("content-length"), len(data)), (200, "1048576", 1048576), "huge")
        expect(data.startswith(b'{"value":"x') and data.endswith(b'"}'), "huge shape")
        st, h, data = call(c, "GET", "/big")
        eq((st, h.get("transfer-encoding"), len(data)), (200, "chunked", 300000), "chunked")
        eq(call(c, "GET", "/big")[2], b"xxxxx", "tiny")
        eq(call(c, "GET", "/after")[0], 200, "keep-alive after huge bodies")
        # A client that stops reading early does not hurt the server.
        s.script([{"huge": 50 * 1048576}])
        c2 = conn(s)
        c2.request("GET", "/big")
        r = c2.getresponse()
        r.read(1000)
        c2.close()
        eq(call(conn(s), "GET", "/x")[0], 200, "still serving")


def test_script_close():
    with server() as s:
        s.script([{"close": True}])
        c = conn(s)
        try:
            call(c, "POST", "/x", "{}")
            raise AssertionError("got an answer")
        except (http.client.RemoteDisconnected, ConnectionError, ssl.SSLError):
            pass
        eq(len(s.requests()), 1, "recorded")
        eq(call(conn(s), "POST", "/x", "{}")[0], 200, "normal afterwards")


def test_script_hang_until_stop():
    s = server().start()
    try:
        s.script([{"hang": True}])
        out = {}

        def client():
            try:
                out["status"] = call(conn(s, timeout=15), "GET", "/hang")[0]
            except Exception as e:  # noqa: BLE001 - any failure is the point
                out["error"] = e
        t = threading.Thread(target=client, daemon=True)
        t.start()
        s.wait_requests(1, timeout=5)
        time.sleep(0.2)
        expect(t.is_alive() and not out, "answered while hanging: %r" % out)
    finally:
        t0 = time.monotonic()
        s.stop()
        took = time.monotonic() - t0
    expect(took < 10, "stop took %.1fs" % took)
    t.join(5)
    expect(not t.is_alive(), "client still waiting after stop")
    expect("error" in out, "the hung request got an answer: %r" % out)


def test_stop_closes_idle_keepalive_and_listener():
    s = server().start()
    port = s.port
    c = conn(s)
    eq(call(c, "GET", "/")[0], 200, "status")
    t0 = time.monotonic()
    s.stop()
    expect(time.monotonic() - t0 < 10, "stop slow")
    c.sock.settimeout(5)
    try:
        eq(c.sock.recv(1), b"", "idle connection not closed")
    except (ssl.SSLError, OSError):
        pass
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        raise AssertionError("still listening")
    except OSError:
        pass
    s.stop()  # twice is fine


def test_concurrent_requests_and_scripts():
    with server() as s:
        s.script([{"status": 503}] * 50)
        results, lock = [], threading.Lock()

        def worker(n):
            c = conn(s)
            for i in range(25):
                st = call(c, "POST", "/w/%d/%d" % (n, i), "{}")[0]
                with lock:
                    results.append(st)
        ts = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        eq(len(results), 200, "answers")
        eq(results.count(503), 50, "scripted answers")
        eq(results.count(200), 150, "normal answers")
        eq(s.pending_actions(), 0, "pending")
        paths = [r["path"] for r in s.requests()]
        eq(len(paths), 200, "records")
        eq(len(set(paths)), 200, "each recorded once")
        eq(len(s.wait_requests(200, timeout=1)), 200, "wait_requests")
        eq(len(s.wait_requests(25, timeout=1, match="/w/3/")), 25, "wait_requests match")
        try:
            s.wait_requests(201, timeout=0.1)
            raise AssertionError("wait_requests did not time out")
        except TimeoutError:
            pass


# ---------------------------------------------------------------- graph: token

def test_token_issue_and_tenant():
    with server("graph") as s:
        c = conn(s)
        st, h, data = call(c, "POST", "/my-tenant/oauth2/v2.0/token", token_form(), FORM)
        doc = json.loads(data)
        eq(st, 200, "status")
        eq((doc["token_type"], doc["expires_in"], doc["access_token"]),
           ("Bearer", 3600, "tok-1"), "token")
        eq(get_token(s, c), "tok-2", "second token")
        r = s.requests()[0]
        eq(r["tenant"], "my-tenant", "tenant recorded")
        eq(r["params"], {}, "params")
        expect("client_secret=client-secret" in r["body"], "body recorded")


def test_token_errors():
    with server("graph") as s:
        c = conn(s)
        path = "/t/oauth2/v2.0/token"
        cases = [
            (token_form(secret="nope"), FORM, 401, "invalid_client"),
            (token_form(cid="other"), FORM, 400, "unauthorized_client"),
            (token_form(grant="password"), FORM, 400, "unsupported_grant_type"),
            (token_form(scope="User.Read"), FORM, 400, "invalid_scope"),
            (token_form(), {"Content-Type": "application/json"}, 400, "invalid_request"),
            ("grant_type=client_credentials&client_id=client-id", FORM, 400, "invalid_request"),
        ]
        for body, headers, want_status, want_error in cases:
            st, _, data = call(c, "POST", path, body, headers)
            doc = json.loads(data)
            eq((st, doc.get("error")), (want_status, want_error), body)
            expect(isinstance(doc.get("error_description"), str), "no error_description")
            expect("client-secret" not in data.decode() and "nope" not in data.decode(),
                   "the secret is echoed")
        eq(call(c, "GET", path)[0], 405, "GET token")
    with server("graph", tenant="right") as s:
        st, _, data = call(conn(s), "POST", "/wrong/oauth2/v2.0/token", token_form(), FORM)
        eq((st, json.loads(data)["error"]), (400, "invalid_tenant"), "tenant checked")


def test_token_configurable_and_expiry():
    with server("graph", client_id="app", client_secret="s3", token_expires=1) as s:
        c = conn(s)
        st, _, data = call(c, "POST", "/t/oauth2/v2.0/token",
                           token_form(cid="app", secret="s3"), FORM)
        doc = json.loads(data)
        eq((st, doc["expires_in"]), (200, 1), "expires_in")
        tok = doc["access_token"]
        eq(graph_get(s, "/v1.0/users/jsmith@contoso.com", tok, c=c)[0], 200, "fresh token")
        time.sleep(1.1)
        st, doc = graph_get(s, "/v1.0/users/jsmith@contoso.com", tok, c=c)
        eq((st, graph_error(doc)), (401, "InvalidAuthenticationToken"), "expired token")
        expect("expired" in doc["error"]["message"], doc["error"]["message"])


def test_bearer_missing_unknown_and_expire_tokens():
    with server("graph") as s:
        c = conn(s)
        st, _, data = call(c, "GET", "/v1.0/users/jsmith@contoso.com")
        eq((st, graph_error(json.loads(data))), (401, "InvalidAuthenticationToken"), "missing")
        st, doc = graph_get(s, "/v1.0/users/jsmith@contoso.com", "tok-999", c=c)
        eq((st, graph_error(doc)), (401, "InvalidAuthenticationToken"), "unknown")
        tok = get_token(s, c)
        eq(graph_get(s, "/v1.0/users/jsmith@contoso.com", tok, c=c)[0], 200, "valid")
        s.expire_tokens()
        st, doc = graph_get(s, "/v1.0/users/jsmith@contoso.com", tok, c=c)
        eq((st, graph_error(doc)), (401, "InvalidAuthenticationToken"), "after expire_tokens")
        tok2 = get_token(s, c)
        expect(tok2 != tok, "same token issued again")
        eq(graph_get(s, "/v1.0/users/jsmith@contoso.com", tok2, c=c)[0], 200, "new token")


# ---------------------------------------------------------------- graph: containment

def test_containment_revoke_disable_unknown_and_403():
    with server("graph") as s:
        tok = get_token(s)
        c = conn(s)
        h = {"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
        st, _, data = call(c, "POST", "/v1.0/users/jsmith%40contoso.com/revokeSignInSessions",
                           "{}", h)
        eq((st, json.loads(data)["value"]), (200, True), "revoke")
        st, _, data = call(c, "PATCH", "/v1.0/users/6f1e2d3c-0000-4000-8000-000000000001",
                           '{"accountEnabled": false}', h)
        eq((st, data), (204, b""), "disable")
        st, doc = graph_get(s, "/v1.0/users/jsmith@contoso.com?$select=accountEnabled", tok, c=c)
        eq((st, doc["accountEnabled"]), (200, False), "disabled account seen")
        st, _, data = call(c, "POST", "/v1.0/users('%24svc%40contoso.com')/revokeSignInSessions",
                           "{}", h)
        eq(st, 200, "revoke, key in parentheses")
        st, _, data = call(c, "POST", "/v1.0/users/nobody%40contoso.com/revokeSignInSessions",
                           "{}", h)
        eq((st, graph_error(json.loads(data))), (404, "Request_ResourceNotFound"), "unknown")
        st, _, data = call(c, "PATCH", "/v1.0/users/jsmith%40contoso.com", '{"bogus": 1}', h)
        eq((st, graph_error(json.loads(data))), (400, "Request_BadRequest"), "unknown property")
        s.script([{"status": 403, "match": "revokeSignInSessions"}])
        st, _, data = call(c, "POST", "/v1.0/users/jsmith%40contoso.com/revokeSignInSessions",
                           "{}", h)
        eq((st, graph_error(json.loads(data))), (403, "Authorization_RequestDenied"), "scripted")
        st, _, data = call(c, "POST", "/v1.0/users/jsmith%40contoso.com/revokeSignInSessions",
                           "{}", {"Content-Type": "application/json"})
        eq(st, 401, "no token")
        eq([r["method"] for r in s.requests()][-3:], ["PATCH", "POST", "POST"], "recorded")


# ---------------------------------------------------------------- graph: users

def test_get_user_by_upn_and_id_with_select():
    with server("graph") as s:
        tok = get_token(s)
        c = conn(s)
        st, doc = graph_get(s, "/v1.0/users/JSmith%40Contoso.com?$select=id,mail", tok, c=c)
        eq(st, 200, "status")
        eq(set(doc), {"@odata.context", "id", "mail"}, "selected keys")
        eq(doc["mail"], "john.smith@contoso.com", "mail")
        st, doc = graph_get(s, "/v1.0/users/6F1E2D3C-0000-4000-8000-000000000001"
                            "?%24select=userPrincipalName", tok, c=c)
        eq((st, set(doc) - {"@odata.context"}), (200, {"userPrincipalName"}), "by id")
        st, doc = graph_get(s, "/v1.0/users/jsmith@contoso.com", tok, c=c)
        eq(set(doc) - {"@odata.context"}, set(standin.DEFAULT_SELECT), "default properties")
        expect("onPremisesSamAccountName" not in doc, "default has extra properties")
        st, doc = graph_get(s, "/v1.0/users/jsmith@contoso.com?$select=mail,nonsense", tok, c=c)
        eq((st, graph_error(doc)), (400, "BadRequest"), "unknown $select")
        st, doc = graph_get(s, "/v1.0/users/jsmith@contoso.com?$expand=manager", tok, c=c)
        eq(st, 400, "unsupported query option")


def test_guest_upn_percent_encoded():
    with server("graph") as s:
        tok = get_token(s)
        st, doc = graph_get(s, "/v1.0/users/guest_fabrikam.com%23EXT%23@contoso.onmicrosoft.com"
                            "?$select=mail", tok)
        eq((st, doc.get("mail")), (200, "guest@fabrikam.com"), "guest")
        st, doc = graph_get(s, "/v1.0/users/guest_fabrikam.com#EXT#@contoso.onmicrosoft.com", tok)
        eq((st, graph_error(doc)), (400, "BadRequest"), "bare '#'")
        eq(s.requests()[1]["path"],
           "/v1.0/users/guest_fabrikam.com%23EXT%23@contoso.onmicrosoft.com", "path as sent")


def test_dollar_upn_needs_parenthesis_form():
    with server("graph") as s:
        tok = get_token(s)
        for path in ("/v1.0/users('$svc@contoso.com')?$select=mail",
                     "/v1.0/users('%24svc%40contoso.com')?$select=mail",
                     "/v1.0/users(%27%24svc%40contoso.com%27)?$select=mail"):
            st, doc = graph_get(s, path, tok)
            eq((st, doc.get("mail")), (200, "svc@contoso.com"), path)
        st, doc = graph_get(s, "/v1.0/users('o''brien@contoso.com')?$select=mail", tok)
        eq((st, doc.get("mail")), (200, "pat.o'brien@contoso.com"), "quote doubled in key")
        for path in ("/v1.0/users/$svc@contoso.com", "/v1.0/users/%24svc%40contoso.com"):
            st, doc = graph_get(s, path, tok)
            eq((st, graph_error(doc)), (400, "BadRequest"), path)


def test_not_found_shape():
    with server("graph") as s:
        tok = get_token(s)
        for path in ("/v1.0/users/nobody@contoso.com", "/v1.0/users/john.smith@contoso.com",
                     "/v1.0/users('nobody@contoso.com')"):
            st, doc = graph_get(s, path, tok)
            eq((st, graph_error(doc)), (404, "Request_ResourceNotFound"), path)
        st, doc = graph_get(s, "/v1.0/groups", tok)
        eq(st, 400, "unknown segment")


def F(text):
    """A $filter as a client percent-encodes it."""
    from urllib.parse import quote
    return quote(text, safe="")


def test_filter_mail_with_apostrophe():
    with server("graph") as s:
        tok = get_token(s)
        st, doc = graph_get(s, "/v1.0/users?$filter=%s&$select=mail"
                            % F("mail eq 'PAT.O''BRIEN@contoso.com'"), tok)
        eq(st, 200, "status")
        eq(doc["value"], [{"mail": "pat.o'brien@contoso.com"}], "value")
        expect("@odata.count" not in doc, "count without $count")
        st, doc = graph_get(s, "/v1.0/users?$filter=%s" % F("mail eq 'pat.o'brien@contoso.com'"),
                            tok)
        eq((st, graph_error(doc)), (400, "BadRequest"), "undoubled quote")
        st, doc = graph_get(s, "/v1.0/users?$filter=%s&$select=mail"
                            % F("mail eq 'nobody@contoso.com'"), tok)
        eq((st, doc["value"]), (200, []), "no match")


def test_filter_proxy_addresses_and_or():
    with server("graph") as s:
        tok = get_token(s)
        for text in ("proxyAddresses/any(p:p eq 'smtp:JSmith@contoso.com')",
                     "proxyAddresses/any(x:x eq 'SMTP:john@old.contoso.com')",
                     "mail eq 'jsmith@contoso.com' or "
                     "proxyAddresses/any(p:p eq 'smtp:jsmith@contoso.com')",
                     "(mail eq 'john.smith@contoso.com') and startswith(displayName,'john')"):
            st, doc = graph_get(s, "/v1.0/users?$filter=%s&$select=id,mail" % F(text), tok)
            eq((st, [u["mail"] for u in doc.get("value", [])]),
               (200, ["john.smith@contoso.com"]), text)
        for text in ("proxyAddresses eq 'smtp:x'", "proxyAddresses/any(p:q eq 'x')",
                     "mail eq", "mail eq 'a' or", "nonsense eq 'a'", "mail gt 'a'"):
            st, doc = graph_get(s, "/v1.0/users?$filter=%s" % F(text), tok)
            eq(st, 400, text)
            graph_error(doc)


def test_filter_sam_needs_advanced_query():
    with server("graph") as s:
        tok = get_token(s)
        path = "/v1.0/users?$filter=%s&$select=mail" % F("onPremisesSamAccountName eq 'JSMITH'")
        st, doc = graph_get(s, path, tok)
        eq((st, graph_error(doc)), (400, "Request_UnsupportedQuery"), "without advanced")
        st, doc = graph_get(s, path, tok, advanced=True)
        eq((st, graph_error(doc)), (400, "Request_UnsupportedQuery"), "header only")
        st, doc = graph_get(s, path + "&$count=true", tok)
        eq(st, 400, "$count without ConsistencyLevel")
        st, doc = graph_get(s, path + "&$count=true", tok, advanced=True)
        eq((st, doc["@odata.count"], doc["value"]),
           (200, 1, [{"mail": "john.smith@contoso.com"}]), "advanced")
        expect(list(doc)[:3] == ["@odata.context", "@odata.count", "value"], "key order")
        r = s.requests()[-1]
        eq(r["headers"]["consistencylevel"], "eventual", "header recorded")


def test_filter_sid_retry_with_advanced():
    with server("graph") as s:
        tok = get_token(s)
        sid = "S-1-5-21-1004336348-1177238915-682003330-1002"
        path = "/v1.0/users?$filter=%s&$select=mail" % F("onPremisesSecurityIdentifier eq '%s'"
                                                          % sid)
        st, doc = graph_get(s, path, tok)
        eq((st, graph_error(doc)), (400, "Request_UnsupportedQuery"), "plain")
        st, doc = graph_get(s, path + "&$count=true", tok, advanced=True)
        eq((st, doc["value"]), (200, [{"mail": "pat.o'brien@contoso.com"}]), "advanced")
        st, doc = graph_get(s, "/v1.0/users?$filter=%s" % F("mail ne 'x'"), tok)
        eq((st, graph_error(doc)), (400, "Request_UnsupportedQuery"), "ne")


def test_filter_employee_id_top_and_several_matches():
    users = [{"id": "1", "userPrincipalName": "a@x.com", "mail": "same@x.com", "employeeId": "7"},
             {"id": "2", "userPrincipalName": "b@x.com", "mail": "same@x.com", "employeeId": "8"},
             {"id": "3", "userPrincipalName": "c+d@x.com"}]
    upath = os.path.join(TMP, "users.json")
    with open(upath, "w") as f:
        json.dump(users, f)
    with server("graph", users=upath) as s:
        tok = get_token(s)
        st, doc = graph_get(s, "/v1.0/users?$filter=%s&$select=id" % F("employeeId eq '8'"), tok)
        eq((st, doc["value"]), (200, [{"id": "2"}]), "employeeId")
        st, doc = graph_get(s, "/v1.0/users?$filter=%s&$select=id,mail"
                            % F("mail eq 'same@x.com'"), tok)
        eq([u["id"] for u in doc["value"]], ["1", "2"], "two matches")
        st, doc = graph_get(s, "/v1.0/users?$filter=%s&$select=id&$top=1"
                            % F("mail eq 'same@x.com'"), tok)
        eq(doc["value"], [{"id": "1"}], "$top")
        st, doc = graph_get(s, "/v1.0/users/c+d@x.com?$select=id,mail", tok)
        eq((st, doc.get("mail", "absent")), (200, None), "no mail: null; '+' in a path is '+'")
        st, doc = graph_get(s, "/v1.0/users?$filter=userPrincipalName%20eq%20'c+d@x.com'", tok)
        eq((st, doc["value"]), (200, []), "'+' in a query is a space (like Graph)")
        st, doc = graph_get(s, "/v1.0/users?$filter=userPrincipalName%20eq%20'c%2Bd@x.com'"
                            "&$select=id", tok)
        eq(doc["value"], [{"id": "3"}], "%2B")
        s.set_users([])
        st, doc = graph_get(s, "/v1.0/users/a@x.com", tok)
        eq(st, 404, "set_users")


# ---------------------------------------------------------------- CLI

def start_cli(d, *extra):
    port_file = os.path.join(d, "port")
    reqs = os.path.join(d, "requests.jsonl")
    argv = [sys.executable, os.path.join(HERE, "standin.py"), "--cert", CERTS["server"],
            "--key", CERTS["server_key"], "--port-file", port_file, "--requests", reqs]
    p = subprocess.Popen(argv + list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not os.path.exists(port_file):
        if p.poll() is not None or time.monotonic() > deadline:
            p.kill()
            raise AssertionError("no port file: %r" % (p.communicate(),))
        time.sleep(0.02)
    with open(port_file) as f:
        port = int(f.read())
    fake = type("S", (), {"port": port})()
    return p, fake, reqs


def stop_cli(p):
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise AssertionError("no exit 5 s after SIGTERM")
    eq(p.returncode, 0, "exit status after SIGTERM (stderr %r)" % err[-500:])
    eq(out + err, b"", "output")


def test_cli_graph():
    d = tempfile.mkdtemp(dir=TMP)
    upath = os.path.join(d, "users.json")
    with open(upath, "w") as f:
        json.dump([{"id": "1", "userPrincipalName": "u@x.com", "mail": "m@x.com"}], f)
    script = json.dumps([{"status": 429, "retry_after": "3", "match": "/v1.0/"}])
    p, s, reqs = start_cli(d, "--kind", "graph", "--users", upath, "--token-expires", "5",
                           "--script", script, "--client-secret", "sek")
    try:
        c = conn(s)
        st, _, data = call(c, "POST", "/tid/oauth2/v2.0/token", token_form(secret="sek"), FORM)
        doc = json.loads(data)
        eq((st, doc["expires_in"]), (200, 5), "token")
        tok = doc["access_token"]
        st, h, _ = call(c, "GET", "/v1.0/users/u@x.com", headers={"Authorization": "Bearer " + tok})
        eq((st, h.get("retry-after")), (429, "3"), "scripted")
        st, doc = graph_get(s, "/v1.0/users/U@x.com?$select=mail", tok, c=c)
        eq((st, doc["mail"]), (200, "m@x.com"), "user from --users")
        p.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while graph_get(s, "/v1.0/users/u@x.com", tok, c=c)[0] != 401:
            expect(time.monotonic() < deadline, "SIGUSR1 did not expire the token")
            time.sleep(0.05)
        with open(reqs) as f:
            lines = [json.loads(line) for line in f]
        expect(len(lines) >= 4, "request lines: %d" % len(lines))
        eq(lines[0]["tenant"], "tid", "tenant")
        eq(lines[1]["headers"]["authorization"], "Bearer " + tok, "headers")
        eq(set(lines[0]) >= {"method", "path", "query", "headers", "body", "time"}, True, "keys")
    finally:
        c.close()
        stop_cli(p)


def test_cli_safetitan_script_file_and_sigterm_with_hang():
    d = tempfile.mkdtemp(dir=TMP)
    spath = os.path.join(d, "script.json")
    with open(spath, "w") as f:
        json.dump([{"status": 500}, {"hang": True}], f)
    p, s, reqs = start_cli(d, "--kind", "safetitan", "--script", spath)
    out = {}
    try:
        eq(call(conn(s), "POST", "/x", "{}")[0], 500, "scripted from file")

        def client():
            try:
                out["status"] = call(conn(s, timeout=15), "POST", "/hang", "{}")[0]
            except Exception as e:  # noqa: BLE001
                out["error"] = e
        t = threading.Thread(target=client, daemon=True)
        t.start()
        deadline = time.monotonic() + 5
        while sum(1 for _ in open(reqs)) < 2:
            expect(time.monotonic() < deadline, "hanging request not recorded")
            time.sleep(0.02)
    finally:
        stop_cli(p)  # must not wait for the hanging request
    t.join(5)
    expect("error" in out, "hung request answered: %r" % out)


# ---------------------------------------------------------------- runner

def main():
    only = sys.argv[sys.argv.index("-k") + 1] if "-k" in sys.argv else ""
    watchdog = threading.Timer(120, lambda: (print("standin: watchdog: run over 120 s"),
                                             sys.stdout.flush(), os._exit(3)))
    watchdog.daemon = True
    watchdog.start()
    passed = failed = 0
    try:
        setup_certs()
        tests = [(n, f) for n, f in globals().items()
                 if n.startswith("test_") and callable(f) and only in n]
        for name, fn in tests:
            t0 = time.monotonic()
            try:
                fn()
                passed += 1
                print("PASS %s (%.2fs)" % (name, time.monotonic() - t0))
            except Exception as e:  # noqa: BLE001 - report and go on
                failed += 1
                print("FAIL %s: %s" % (name, e))
                traceback.print_exc(limit=3, file=sys.stdout)
            sys.stdout.flush()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print("standin: %d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
