"""Shared helpers for the response-path integration tests (test_dispatch.py,
test_graph.py, test_spool.py): HTTPS stand-ins for SafeTitan and Microsoft
Graph (tests/servers/standin.py) with certificates from tests/servers/certs.py,
secret files, a live (non dry-run) agent config, the audit and dead-letter
files, and senders (raw TCP, `logger`).

Stable API (other test modules import it; keep these signatures):

  SAMPLES, MAPPINGS, USERS_CSV     the shared samples, shipped mappings, users.csv
  need_samples()                   Skip when ../shared/samples or mappings are missing
  expected_samples()               -> (sorted [(rule, user, email)] of every decision in
                                   expected.jsonl, [sample line bytes] in file order)
  certs(ctx=None)                  -> {"ca", "server", "server_key", "wrong", "wrong_key"}
                                   paths (made once per run, or in ctx's folder when the
                                   test wants its own: certs(ctx))
  standin(ctx, kind="safetitan", cert="server", users=None, port=None, **kw)
                                   -> a started Standin (kind "safetitan" or "graph",
                                   cert "server" or "wrong"), stopped when the test ends;
                                   port=N binds that port (restart on the same port)
  restart(ctx, old)                -> a new Standin of old's kind, users and certificate
                                   on old's port (after old.stop())
  write_secret(ctx, name, value)   -> path of a 0600 file holding value (no newline)
  app_cert(ctx, name="app")        -> (cert, key): a self-signed RSA certificate and its
                                   0600 key, as `openssl req -x509 -newkey rsa:2048` makes
                                   one for an app registration's certificate credential
  API_KEY, GRAPH_SECRET, ORCH_CODE distinctive secrets (they must never leak)
  live_config(ctx, st=None, mode="direct", graph=None, order=None, users=USERS_CSV,
              dispatch=None, spool=None, identity=None, mappings=None, audit="audit.jsonl",
              graph_cert=None)
                                   -> the "extra" dict for ctx.agent: mappings, identity
                                   (static users unless users=None, graph from a graph
                                   stand-in with its client secret file, or with
                                   graph_cert=(cert, key) that certificate credential
                                   instead, order), dispatch
                                   (direct: url st.url + "/v1/events", api key file;
                                   orchestrator: base st.url, source "splunk", orch_id,
                                   org_id, code file; retry_max_s 2, retry_min_s 1;
                                   ca_file the test CA; `dispatch` overrides keys, a key
                                   set to None is removed), spool {"dir": "spool"} (plus
                                   `spool` overrides), audit file
  start_agent(ctx, extra, listen=None, env=None, name=None, workers=2)
                                   -> a started harness.Agent (TCP listener by default)
  agent_file(agent, rel)           -> absolute path of a file relative to the agent folder
  audit(agent, name="audit.jsonl") -> every complete audit line, as dicts
  wait_audit(agent, pred, n=1, timeout=10, name="audit.jsonl")
                                   -> all audit lines once >= n lines satisfy pred (a
                                   callable, or an outcome string); fails with the tail
  outcomes(lines, outcome)         -> the lines with that outcome
  dead_letters(agent)              -> dead-letter lines (spool/dead-letter.jsonl unless
                                   spool.dead_letter is set), as dicts
  assert_no_secret(agent, *secrets)
                                   fails when a secret is in the agent's stderr, audit
                                   log, dead letters or spool files
  send_tcp(agent, frames, octet=False)   sends byte frames on one TCP connection (LF- or
                                   octet-counted framing), closes it
  send_logger(ctx, agent, text, rfc3164=False, tag=None)
                                   util-linux `logger --tcp --octet-count -n 127.0.0.1 -P
                                   PORT` with text as the message
  wait_requests(st, n, timeout=10, match=None)
                                   -> the stand-in's requests once >= n (matching path
                                   text), with a clear failure (scaled by harness.t)
  quiet(st, seconds=0.5)           -> the stand-in's requests after `seconds` of waiting
                                   (to assert that nothing more arrives)
  splunk_kv(rule, user, host="splunk-hf01")
                                   -> a Splunk raw key=value line (mappings/splunk.json)
  cef(rule, user, host="splunk-sh01", ext_id=None, extra="")
                                   -> a CEF line (Splunk ES vendor: mappings/splunk.json's
                                   splunk-es-cef) with rule as the CEF name, suser=user
                                   (write a backslash in user as two: CEF escaping) and
                                   externalId=ext_id when given
  cef_escape(text)                 -> text escaped for a CEF header field
"""
import glob
import http.server
import inspect
import json
import os
import subprocess
import sys
import time

from harness import (ROOT, SHARED, Skip, json_lines, listener, sample_decisions, t, tcp_connect,
                     tool, wait_until)

sys.path.insert(0, os.path.join(ROOT, "tests", "servers"))
import certs as _certs  # noqa: E402
import standin as _standin  # noqa: E402

SAMPLES = os.path.join(SHARED, "samples")
MAPPINGS = os.path.join(ROOT, "mappings", "*.json")
USERS_CSV = os.path.join(SAMPLES, "users.csv")

API_KEY = "ak-SECRET-7f3e9c1d5b2a4e6f8091a2b3c4d5e6f7"
GRAPH_SECRET = "graph-SECRET-4Kc9Tz1Hw6Ym"  # what standin(ctx, "graph") accepts
ORCH_CODE = "code-SECRET-Zq8vN3xT5kP2mR7wY4"
TENANT = "contoso-tenant"
CLIENT_ID = "client-id"


def need_samples():
    if not os.path.isdir(SAMPLES):
        raise Skip("%s is missing" % SAMPLES)
    if not glob.glob(MAPPINGS):
        raise Skip("no shipped mappings in %s" % os.path.dirname(MAPPINGS))


def expected_samples():
    need_samples()
    return sample_decisions()


# ------------------------------------------------------------- certificates

def certs(ctx=None):
    if ctx is not None:
        d = ctx.path("certs")
    else:
        d = os.path.join(os.environ.get("RTR_IT_RUNDIR") or ROOT + "/build", "response-certs")
    tool("openssl")
    return _certs.make_all(d)


# ------------------------------------------------------------------ stand-ins

class _Handle:
    """Looks like a Popen to harness.Ctx.close, which stops it with the test."""

    def __init__(self, st):
        self.st = st
        self.done = False

    def poll(self):
        return 0 if self.done else None

    def terminate(self):
        self.done = True
        self.st.stop()

    kill = terminate

    def wait(self, timeout=None):
        return 0


def _start_on(st, port):
    """Standin.start() on a given port (the stand-in binds port 0 itself)."""
    class Fixed(_standin._Server):
        def __init__(self, standin, ctx):
            self.standin, self.ctx = standin, ctx
            http.server.HTTPServer.__init__(self, ("127.0.0.1", port), _standin._Handler)

    orig = _standin._Server
    _standin._Server = Fixed
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                return st.start()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        _standin._Server = orig


def standin(ctx, kind="safetitan", cert="server", users=None, port=None, **kw):
    c = certs()
    pem, key = (c["server"], c["server_key"]) if cert == "server" else (c["wrong"], c["wrong_key"])
    if kind == "graph":
        kw.setdefault("client_id", CLIENT_ID)
        kw.setdefault("client_secret", GRAPH_SECRET)
    takes_port = "port" in inspect.signature(_standin.Standin.__init__).parameters
    if port is not None and takes_port:
        kw["port"] = port
    st = _standin.Standin(kind, pem, key, users=users, **kw)
    if port is not None and not takes_port:
        _start_on(st, port)
    else:
        st.start()
    st.cert_name = cert
    st.kw = dict(kw)
    st.last_port = st.port
    ctx._procs.append(_Handle(st))
    return st


def restart(ctx, old):
    kw = dict(old.kw)
    kw.pop("port", None)
    return standin(ctx, old.kind, cert=old.cert_name, users=old.users, port=old.last_port, **kw)


def write_secret(ctx, name, value):
    path = ctx.path(name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return path


def app_cert(ctx, name="app"):
    cert, key = ctx.path(name + ".pem"), ctx.path(name + ".key")
    p = subprocess.run([tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2",
                        "-subj", "/CN=rtr-agent test %s" % name],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0, p.stdout.decode("utf-8", "replace")
    os.chmod(key, 0o600)
    return cert, key


# ------------------------------------------------------------------ config

def live_config(ctx, st=None, mode="direct", graph=None, order=None, users=USERS_CSV,
                dispatch=None, spool=None, identity=None, mappings=None, audit="audit.jsonl",
                graph_cert=None):
    c = certs()
    ident = {}
    if users:
        ident["static"] = {"file": users}
    if graph is not None:
        ident["graph"] = {"tenant_id": TENANT, "client_id": CLIENT_ID,
                          "authority_url": graph.url, "graph_url": graph.url,
                          "ca_file": c["ca"]}
        if graph_cert is None:
            ident["graph"]["client_secret_file"] = write_secret(ctx, "graph-secret",
                                                                GRAPH_SECRET)
        else:
            ident["graph"]["client_certificate_file"], ident["graph"]["client_key_file"] = \
                graph_cert
    if order is not None:
        ident["order"] = list(order)
    for k, v in (identity or {}).items():
        if isinstance(v, dict) and isinstance(ident.get(k), dict):
            ident[k].update(v)
        else:
            ident[k] = v
    disp = {"mode": mode, "ca_file": c["ca"], "retry_min_s": 1, "retry_max_s": 2}
    if mode == "direct":
        disp["url"] = (st.url if st else "https://127.0.0.1:9") + "/v1/events"
        disp["api_key_file"] = write_secret(ctx, "api-key", API_KEY)
    elif mode == "orchestrator":
        disp.update({"url": st.url if st else "https://127.0.0.1:9", "source": "splunk",
                     "orch_id": "orch-42", "org_id": "org-7",
                     "api_key_file": write_secret(ctx, "orch-code", ORCH_CODE)})
    for k, v in (dispatch or {}).items():
        if v is None:
            disp.pop(k, None)
        else:
            disp[k] = v
    sp = {"dir": "spool"}
    sp.update(spool or {})
    cfg = {"mappings": mappings or [MAPPINGS], "identity": ident, "dispatch": disp,
           "spool": sp}
    if audit:
        cfg["audit"] = {"file": audit}
    return cfg


def start_agent(ctx, extra, listen=None, env=None, name=None, workers=2):
    kw = {"extra": extra, "workers": workers}
    if name:
        kw["name"] = name
    return ctx.agent(listen or [listener("tcp")], env=env, **kw)


def agent_file(agent, rel):
    return rel if os.path.isabs(rel) else os.path.join(agent.dir, rel)


# ------------------------------------------------------------- audit files

def audit(agent, name="audit.jsonl"):
    return json_lines(agent_file(agent, name), "audit")


def outcomes(lines, outcome):
    return [a for a in lines if a.get("outcome") == outcome]


def wait_audit(agent, pred, n=1, timeout=10, name="audit.jsonl"):
    if isinstance(pred, str):
        outcome = pred

        def pred(a):
            return a.get("outcome") == outcome
    got = []

    def enough():
        nonlocal got
        agent.assert_alive()
        got = audit(agent, name)
        return sum(1 for a in got if pred(a)) >= n
    try:
        wait_until(enough, timeout, "%d matching audit lines" % n)
    except AssertionError as e:
        tail = "\n".join(json.dumps(a) for a in got[-8:])
        raise AssertionError("%s (have %d lines; last:\n%s)\n%s"
                             % (e, len(got), tail, agent.stderr_tail()))
    return got


def dead_letters(agent):
    path = (agent.config.get("spool") or {}).get("dead_letter") or "spool/dead-letter.jsonl"
    return json_lines(agent_file(agent, path), "dead-letter")


def assert_no_secret(agent, *secrets):
    places = {"stderr": agent.stderr_bytes().decode("utf-8", "replace"),
              "audit": json.dumps(audit(agent)), "dead letters": json.dumps(dead_letters(agent))}
    spool = agent_file(agent, (agent.config.get("spool") or {}).get("dir") or "spool")
    for name in sorted(os.listdir(spool)) if os.path.isdir(spool) else []:
        if os.path.isfile(os.path.join(spool, name)):
            with open(os.path.join(spool, name), "rb") as f:
                places["spool/" + name] = f.read().decode("latin-1")
    for where, text in places.items():
        for secret in secrets:
            assert secret not in text, "a secret (%r...) is in the %s of %s" % (
                secret[:6], where, agent.dir)


# ------------------------------------------------------------------ senders

def send_tcp(agent, frames, octet=False):
    s = tcp_connect(agent.port("tcp"))
    try:
        data = b"".join((b"%d %s" % (len(f), f)) if octet else f + b"\n" for f in frames)
        s.sendall(data)
    finally:
        s.close()


def send_logger(ctx, agent, text, rfc3164=False, tag=None):
    argv = [tool("logger"), "--tcp", "--octet-count", "-n", "127.0.0.1",
            "-P", str(agent.port("tcp"))]
    if rfc3164:
        argv.append("--rfc3164")
    if tag:
        argv += ["-t", tag]
    argv += ["--", text]
    ctx.run(argv)


def wait_requests(st, n, timeout=10, match=None):
    try:
        return st.wait_requests(n, timeout=t(timeout), match=match)
    except TimeoutError as e:
        got = st.requests()
        raise AssertionError("%s; got: %s" % (e, [(r["method"], r["path"]) for r in got][:10]))


def quiet(st, seconds=0.5):
    time.sleep(t(seconds))
    return st.requests()


# ------------------------------------------------------------------ lines

def splunk_kv(rule, user, host="splunk-hf01"):
    return ('<13>Oct  2 09:13:05 %s search_name="%s" user="%s" urgency=critical '
            'orig_time=1791018785' % (host, rule, user)).encode()


def cef(rule, user, host="splunk-sh01", ext_id=None, extra=""):
    ext = "suser=%s" % user
    if ext_id is not None:
        ext += " externalId=%s" % ext_id
    if extra:
        ext += " " + extra
    return ("<134>Oct  2 09:12:44 %s CEF:0|Splunk|Enterprise Security|7.3.2|notable|%s|7|%s"
            % (host, cef_escape(rule), ext)).encode()


def cef_escape(text):
    """A CEF header value: backslash and pipe escaped."""
    return text.replace("\\", "\\\\").replace("|", "\\|")

