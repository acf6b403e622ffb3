"""`check --probe IDENTIFIER [--send-test EVENT EMAIL]` (issue 13 item 7),
against HTTPS stand-ins for Microsoft Graph and SafeTitan: the identifier is
resolved through Graph (a token first) and nothing reaches SafeTitan unless
--send-test asks, which sends exactly one request and writes one audit line
marked as a test. Each failure names its layer: TCP, TLS (with the
certificate problem), HTTP with the service's error code."""
import json
import os
import socket

import response_env as R
from harness import listener, run_agent

USERS = [{"id": "00000000-0000-0000-0000-000000000001", "userPrincipalName": "amorgan@contoso.com",
          "mail": "alice.morgan@contoso.com", "onPremisesSamAccountName": "amorgan"}]


def _config(ctx, graph=None, st=None, **kw):
    cfg = R.live_config(ctx, st, graph=graph, order=["graph"] if graph else None,
                        audit=ctx.path("audit.jsonl"), **kw)
    cfg["listen"] = [listener("udp")]
    cfg["spool"]["dir"] = ctx.path("spool")
    path = ctx.path("probe.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path, cfg


def _probe(path, *args, rc=0):
    code, err = run_agent("check", "-c", path, *args, timeout=60)
    assert code == rc, "check exited %d, want %d:\n%s" % (code, rc, err[-3000:])
    return err


def _audit(ctx):
    try:
        with open(ctx.path("audit.jsonl")) as f:
            return [json.loads(line) for line in f]
    except FileNotFoundError:
        return []


def test_probe_resolves_through_graph_and_sends_nothing(ctx):
    """--probe amorgan@contoso.com: a token request and a lookup reach the
    Graph stand-in, the answer is printed, SafeTitan gets no request."""
    g = R.standin(ctx, "graph", users=USERS)
    st = R.standin(ctx)
    path, _ = _config(ctx, g, st)
    err = _probe(path, "--probe", "amorgan@contoso.com")
    assert "probe: identity: amorgan@contoso.com -> alice.morgan@contoso.com (graph" in err, err
    paths = [r["path"] for r in g.requests()]
    assert any("token" in p for p in paths) and any("/users" in p for p in paths), paths
    assert st.requests() == [], "the probe sent something to SafeTitan"
    assert _audit(ctx) == [], "the probe wrote an audit line without --send-test"
    err = _probe(path, "--probe", "nobody@contoso.com", rc=1)
    assert "probe: identity: nobody@contoso.com: not found (graph: no user matches)" in err, err


def test_probe_names_the_failing_layer(ctx):
    """A wrong client secret: the token request's HTTP status and Graph's
    error code. A stand-in with a certificate for another name: TLS and the
    certificate problem. Nothing listening: TCP."""
    g = R.standin(ctx, "graph", users=USERS, client_secret="another-secret")
    path, _ = _config(ctx, g)
    err = _probe(path, "--probe", "amorgan@contoso.com", rc=1)
    assert "token request failed: HTTP 401" in err and "invalid_client" in err, err[-2000:]

    wrong = R.standin(ctx, "graph", users=USERS, cert="wrong")
    path, _ = _config(ctx, wrong)
    err = _probe(path, "--probe", "amorgan@contoso.com", rc=1)
    assert "TLS: " in err and ("certificate" in err or "subject name" in err), err[-2000:]

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path, cfg = _config(ctx, g)
    cfg["identity"]["graph"]["authority_url"] = "https://127.0.0.1:%d" % port
    with open(path, "w") as f:
        json.dump(cfg, f)
    err = _probe(path, "--probe", "amorgan@contoso.com", rc=1)
    assert "TCP: " in err, err[-2000:]


def test_send_test_sends_one_audited_request(ctx):
    """--send-test EVENT EMAIL: one request with that event and email and a
    fresh idempotency key, and one audit line "test-dispatched"; a refusal
    (HTTP 400) is "test-failed" with the reason, and the exit status 1."""
    st = R.standin(ctx)
    path, _ = _config(ctx, st=st)
    err = _probe(path, "--send-test", "Phishing Training", "alice.morgan@contoso.com")
    reqs = st.wait_requests(1)
    assert len(reqs) == 1, reqs
    body = json.loads(reqs[0]["body"])
    assert body["event"] == "Phishing Training" and body["email"] == "alice.morgan@contoso.com"
    key = reqs[0]["headers"].get("idempotency-key", "")
    assert len(key) == 64, reqs[0]["headers"]
    assert "probe: --send-test: SafeTitan took event \"Phishing Training\"" in err, err
    lines = _audit(ctx)
    assert [(a["outcome"], a["event"], a["email"], a["key"]) for a in lines] == \
        [("test-dispatched", "Phishing Training", "alice.morgan@contoso.com", key)], lines

    st.script([{"status": 400, "body": "unknown event"}])
    err = _probe(path, "--send-test", "No Such Event", "alice.morgan@contoso.com", rc=1)
    assert "not taken: HTTP 400" in err, err[-2000:]
    assert [a["outcome"] for a in _audit(ctx)] == ["test-dispatched", "test-failed"]


def test_send_test_refused_in_a_dry_run(ctx):
    """A dry run has no SafeTitan to send to: said, and exit 1."""
    path = ctx.path("dry.json")
    with open(path, "w") as f:
        json.dump({"listen": [listener("udp")], "mappings": [R.MAPPINGS],
                   "identity": {"static": {"file": R.USERS_CSV}},
                   "dispatch": {"mode": "dry-run"}}, f)
    err = _probe(path, "--send-test", "E", "a@b.example", rc=1)
    assert "dispatch.mode is \"dry-run\"" in err, err
    assert not os.path.exists(ctx.path("audit.jsonl"))


def test_probe_reads_credentials_from_their_source(ctx):
    """With the secret named as a systemd credential (/run/credentials/...),
    which is not there before the service starts, --credentials-from DIR
    makes --send-test read it from DIR, as the file checks do."""
    st = R.standin(ctx)
    path, cfg = _config(ctx, st=st)
    creds = ctx.path("credstore")
    os.mkdir(creds)
    R.write_secret(ctx, os.path.join("credstore", "safetitan-api-key"), R.API_KEY)
    cfg["dispatch"]["api_key_file"] = "/run/credentials/rtr-agent.service/safetitan-api-key"
    with open(path, "w") as f:
        json.dump(cfg, f)
    err = _probe(path, "--credentials-from", creds, "--send-test", "E", "a@b.example")
    assert "SafeTitan took event" in err, err[-2000:]
    assert len(st.wait_requests(1)) == 1
