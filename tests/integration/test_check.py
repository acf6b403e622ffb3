"""`rtr-agent check -c FILE` (agent/cmd/check.h): the development config passes;
each kind of problem is reported on a line naming its file and key, and
the run ends with "test failed" and exit status 1; what `run` refuses,
check refuses too. Also the command line's usage errors (exit status 2)."""
import json
import os
import re

from harness import ROOT, Skip, certs, run_agent

# Under valgrind (tests/integration/run.py).
VALGRIND_SKIP = ("only short-lived commands (check, parse, a refused run): the ASan run "
                 "covers them; valgrind would only repeat process start-ups")

MAPPINGS = os.path.join(ROOT, "mappings", "*.json")

GOOD_MAPPING = {"name": "good", "when": [{"field": "cef.vendor", "equals": "Acme"}],
                "rule": {"field": "cef.name"}, "user": {"field": "cef.ext.suser"}}


agent = run_agent


def check(config):
    """Runs check; returns (exit status, stderr text)."""
    return agent("check", "-c", config)


def assert_succeeds(config_path):
    """check passes; returns its stderr."""
    rc, err = check(config_path)
    assert rc == 0, "check exited %d:\n%s" % (rc, err[-2000:])
    assert "configuration file %s test is successful" % config_path in err, err[-1000:]
    return err


def assert_run_refuses(config_path, text):
    """`run` exits 1 at start with a line holding text (it fails before
    binding anything, so it cannot hang on the listeners)."""
    rc, err = agent("run", "-c", config_path)
    assert rc == 1, "run exited %d, want 1:\n%s" % (rc, err[-2000:])
    assert text in err, "run did not say %r:\n%s" % (text, err[-2000:])


def write(ctx, name, content):
    path = ctx.path(name)
    with open(path, "w") as f:
        f.write(content if isinstance(content, str) else json.dumps(content, indent=2))
    return path


def config(ctx, name="check.json", mappings=None, extra=None):
    """A valid config in ctx's folder (a users.csv beside it), plus extra."""
    users = write(ctx, "users.csv", "# identifier,email\nEXAMPLE\\amorgan,alice@example.com\n")
    cfg = {"listen": [{"proto": "udp", "address": "127.0.0.1:0"}],
           "mappings": mappings or [MAPPINGS],
           "identity": {"static": {"file": users}},
           "dispatch": {"mode": "dry-run"}}
    for k, v in (extra or {}).items():
        cfg[k] = v
    return write(ctx, name, cfg)


def assert_fails(config_path, *problems):
    """check fails; for each problem (file, key regex) a stderr line names both."""
    rc, err = check(config_path)
    assert rc == 1, "check exited %d, want 1:\n%s" % (rc, err[-2000:])
    last = err.rstrip("\n").splitlines()[-1] if err.strip() else ""
    assert "configuration file %s test failed" % config_path in last, \
        "last line is not '... configuration file %s test failed': %r" % (config_path, last)
    for files, key in problems:
        files = files if isinstance(files, tuple) else (files,)
        lines = [line for line in err.splitlines()
                 if re.search(key, line) and any(f in line for f in files)]
        assert lines, "no line names %s and %s:\n%s" % (" or ".join(files), key, err[-2000:])
    return err


def test_check_dev_config_passes(ctx):
    path = os.path.join(ROOT, "systemd", "rtr-agent.dev.json")
    rc, err = check(path)
    assert rc == 0, "check of the dev config exited %d:\n%s" % (rc, err[-2000:])
    assert re.search(r"configuration file \S*rtr-agent\.dev\.json test is successful", err), \
        "no 'test is successful' line: %r" % err[-1000:]
    assert "test failed" not in err, err[-1000:]


def test_check_shipped_mappings_with_tmp_config(ctx):
    """The shipped mappings and a directory beside the config pass too."""
    path = config(ctx)
    rc, err = check(path)
    assert rc == 0, "check exited %d:\n%s" % (rc, err[-2000:])
    assert "configuration file %s test is successful" % path in err, err[-1000:]


def test_check_broken_regex(ctx):
    bad = write(ctx, "broken-regex.json", {"mappings": [
        {"name": "broken", "when": [{"field": "msg", "regex": "user=(\\S+"}],
         "rule": {"value": "r"}, "user": {"value": "u"}}]})
    assert_fails(config(ctx, mappings=[bad]), (bad, re.escape("mappings[0].when[0].regex")))


def test_check_missing_directory_file(ctx):
    missing = ctx.path("no-such-users.csv")
    path = config(ctx, extra={"identity": {"static": {"file": missing}}})
    assert_fails(path, ((path, missing), re.escape("identity.static.file")))


def test_check_missing_mapping_file(ctx):
    """A mapping path without a wildcard must name an existing file."""
    missing = ctx.path("no-such-mappings.json")
    path = config(ctx, mappings=[MAPPINGS, missing])
    assert_fails(path, ((path, missing), "mappings|no-such-mappings"))


def test_check_duplicate_mapping_name(ctx):
    """Names are unique across files (decisions and logs name the mapping)."""
    one = write(ctx, "one.json", {"mappings": [GOOD_MAPPING]})
    two = write(ctx, "two.json", {"mappings": [dict(GOOD_MAPPING, rule={"value": "x"})]})
    assert_fails(config(ctx, mappings=[one, two]), (two, re.escape("mappings[0].name")))


def test_check_bad_json_in_mapping(ctx):
    bad = write(ctx, "bad-json.json", '{"mappings": [\n  {"name": "x",, "rule": 1}\n]}\n')
    assert_fails(config(ctx, mappings=[bad]), (bad, re.escape(bad) + r":2:\d+: "))


def test_check_unknown_key_in_mapping(ctx):
    bad = write(ctx, "unknown-key.json", {"mappings": [dict(GOOD_MAPPING, colour="red")]})
    assert_fails(config(ctx, mappings=[bad]), (bad, re.escape("mappings[0].colour")))


def test_check_unknown_key_in_config(ctx):
    path = config(ctx, extra={"bogus_key": 1})
    assert_fails(path, (path, "bogus_key"))


def test_check_reports_every_problem(ctx):
    """Not just the first: a bad regex, an unknown field name and an unknown
    key in one file, and a second file with an unknown key, all named."""
    first = write(ctx, "first.json", {"mappings": [
        dict(GOOD_MAPPING, name="a", when=[{"field": "msg", "regex": "[unclosed"}]),
        dict(GOOD_MAPPING, name="b", when=[{"field": "cef.nosuchfield", "exists": True}]),
        dict(GOOD_MAPPING, name="c", bogus=True)]})
    second = write(ctx, "second.json", {"mappings": [dict(GOOD_MAPPING, name="d", extra=1)]})
    assert_fails(config(ctx, mappings=[first, second]),
                 (first, re.escape("mappings[0].when[0].regex")),
                 (first, re.escape("mappings[1].when[0].field")),
                 (first, re.escape("mappings[2].bogus")),
                 (second, re.escape("mappings[0].extra")))


def test_check_tls_listener_files(ctx):
    """A TLS listener's missing cert, key and client_ca: each named by its key."""
    missing = {k: ctx.path("no-such-" + k + ".pem") for k in ("cert", "key", "client_ca")}
    listen = dict({"proto": "tls", "address": "127.0.0.1:0"}, **missing)
    path = config(ctx, extra={"listen": [listen]})
    assert_fails(path, *[((path, missing[k]), re.escape("listen[0].%s:" % k)) for k in missing])


def _live(ctx, **dispatch):
    return {"dispatch": dict({"mode": "direct", "url": "https://safetitan.example/v1/events",
                              "api_key_file": write(ctx, "live.key", "s3cret\n")}, **dispatch),
            "spool": {"dir": ctx.path("spool")}}


def test_check_empty_secret_file(ctx):
    """A secret file holding nothing (or only white space) fails. In a dry
    run, which needs no SafeTitan key, the same problem is a warning saying
    so: it would fail the day dispatching is switched on."""
    for name, text in (("empty.key", ""), ("blank.key", " \n\t\n")):
        key = write(ctx, name, text)
        path = config(ctx, name=name + ".json", extra=_live(ctx, api_key_file=key))
        assert_fails(path, ((path, key), re.escape("dispatch.api_key_file:") + ".*empty"))
        path = config(ctx, name=name + ".dry.json",
                      extra={"dispatch": {"mode": "dry-run", "api_key_file": key}})
        err = assert_succeeds(path)
        assert re.search(r"warning: .*dispatch\.api_key_file: %s: .*empty.*\(not needed while "
                         r"dispatch\.mode is \"dry-run\"\)" % re.escape(key), err), err[-2000:]
        path = config(ctx, name=name + ".audit.json",
                      extra={"audit": {"file": ctx.path("audit.jsonl"), "hash_key_file": key}})
        assert_fails(path, ((path, key),
                            re.escape("audit.hash_key_file:") + ".*shorter than 16 bytes"))


def test_check_bad_dispatch_ca_file(ctx):
    """dispatch.ca_file must load as a PEM CA bundle, and must exist."""
    bad = write(ctx, "not-a-ca.pem", "this is not a certificate\n")
    path = config(ctx, extra=_live(ctx, ca_file=bad))
    assert_fails(path, ((path, bad), re.escape("dispatch.ca_file:") + ".*no PEM CA"))
    missing = ctx.path("no-such-ca.pem")
    path = config(ctx, name="missing-ca.json", extra=_live(ctx, ca_file=missing))
    assert_fails(path, ((path, missing), re.escape("dispatch.ca_file:")))


def test_check_audit_folder_missing(ctx):
    """The audit log is created at start: its folder must exist."""
    audit = ctx.path("no-such-folder", "audit.jsonl")
    path = config(ctx, extra={"audit": {"file": audit}})
    assert_fails(path, ((path, audit), re.escape("audit.file: %s: cannot create the audit log in "
                                                  % audit) + ".*No such file or directory"))


def test_check_graph_identity(ctx):
    """identity.order naming "graph" passes with a readable secret and fails,
    naming the key, with an empty one, a missing one or a CA bundle that does
    not load; the secret never shows."""
    secret = write(ctx, "graph.secret", "s3cret\n")
    users = write(ctx, "graph-users.csv", "jdoe,jdoe@example.com\n")
    graph = {"tenant_id": "example.com", "client_id": "abc", "client_secret_file": secret}
    path = config(ctx, extra={"identity": {
        "order": ["static", "graph"], "static": {"file": users}, "graph": graph}})
    assert "s3cret" not in assert_succeeds(path)
    write(ctx, "graph.secret", "\n")
    assert_fails(path, ((path, secret), re.escape("identity.graph.client_secret_file:")))
    graph = dict(graph, client_secret_file=ctx.path("missing.secret"),
                 ca_file=write(ctx, "not-a-ca.pem", "not a certificate\n"))
    path = config(ctx, name="graph2.json", extra={"identity": {
        "order": ["graph"], "graph": graph}})
    assert_fails(path, (path, re.escape("identity.graph.client_secret_file:")),
                 (path, re.escape("identity.graph.ca_file:") + ".*no PEM CA certificate"))


def test_check_live_dispatch(ctx):
    """dispatch.mode "direct" and "orchestrator" pass with their keys and a
    spool folder, and fail naming the key when the API key file is missing;
    the key never shows."""
    key = write(ctx, "api.key", "s3cret\n")
    for mode, extra in (("direct", {}),
                        ("orchestrator", {"source": "splunk", "orch_id": "1", "org_id": "2"})):
        dispatch = dict({"mode": mode, "url": "https://safetitan.example/v1/events",
                         "api_key_file": key}, **extra)
        path = config(ctx, name=mode + ".json", extra={
            "dispatch": dispatch, "spool": {"dir": ctx.path("spool")}})
        assert "s3cret" not in assert_succeeds(path)
        dispatch["api_key_file"] = ctx.path("missing.key")
        path = config(ctx, name=mode + "-nokey.json", extra={
            "dispatch": dispatch, "spool": {"dir": ctx.path("spool")}})
        assert_fails(path, (path, re.escape("dispatch.api_key_file:")))


def test_check_bad_api_key_header(ctx):
    """dispatch.api_key_header must be an HTTP header name (an RFC 9110
    token): with a CR LF, a ':' or a space every request would be malformed
    and retried forever. check says which key, value and character; run
    refuses it the same way."""
    key = write(ctx, "api.key", "s3cret\n")
    os.chmod(key, 0o600)
    for i, (header, what) in enumerate((("X-Key\r\nEvil: 1", "byte 0x0d"),
                                        ("X-API-Key:", "':'"), ("X API Key", "a space"))):
        path = config(ctx, name="header%d.json" % i, extra={
            "dispatch": {"mode": "direct", "url": "https://safetitan.example/v1/events",
                         "api_key_file": key, "api_key_header": header},
            "spool": {"dir": ctx.path("spool")}})
        # The value as JSON text, its backslashes escaped again by the log.
        got = json.dumps(header).replace("\\", "\\\\")
        want = ("%s: dispatch.api_key_header: expected an HTTP header name (letters, digits and "
                "!#$%%&'*+-.^_`|~), got %s: %s is not allowed" % (path, got, what))
        err = assert_fails(path, (path, re.escape("dispatch.api_key_header:")))
        assert want in err, "check did not say %r:\n%s" % (want, err[-2000:])
        assert_run_refuses(path, want)


def test_check_warns_on_readable_secret(ctx):
    """A secret file its group or other users may read passes, with a
    warning naming it and its mode; one only its owner reads, silently."""
    key = write(ctx, "open.key", "s3cret\n")
    path = config(ctx, extra=_live(ctx, api_key_file=key))
    for mode, who in ((0o644, "its group and every user"), (0o640, "its group")):
        os.chmod(key, mode)
        err = assert_succeeds(path)
        want = "%s: secret file readable by %s (mode %04o)" % (key, who, mode)
        assert want in err, "no warning %r:\n%s" % (want, err[-2000:])
    os.chmod(key, 0o600)
    err = assert_succeeds(path)
    assert "secret file readable" not in err, err[-2000:]


def test_check_short_audit_hash_key(ctx):
    """A key shorter than 16 bytes: check fails, naming the key, with the
    words run refuses it with; the key never shows."""
    key = write(ctx, "short.key", "0123456789abcde\n")
    path = config(ctx, extra={"audit": {"file": ctx.path("audit.jsonl"), "hash_key_file": key}})
    err = assert_fails(path, ((path, key), re.escape("audit.hash_key_file: %s: " % key) +
                              "the audit hash key is shorter than 16 bytes"))
    assert "0123456789" not in err.replace(key, "")
    assert_run_refuses(path, "audit.hash_key_file: %s: the audit hash key is shorter than 16 "
                             "bytes" % key)
    assert not os.path.exists(ctx.path("audit.jsonl")), "check or run created the audit log"


def test_check_audit_file_is_a_directory(ctx):
    """audit.file naming a folder: check fails as run does."""
    folder = ctx.path("audit.d")
    os.mkdir(folder)
    path = config(ctx, extra={"audit": {"file": folder}})
    assert_fails(path, (path, re.escape("audit.file: %s: " % folder) +
                        "cannot open the audit log: Is a directory"))
    assert_run_refuses(path, "audit.file: %s: cannot open the audit log: Is a directory" % folder)


def test_check_creates_no_audit_log(ctx):
    """A log still to be created passes, and check does not create it; an
    existing one passes and stays as it was."""
    audit = ctx.path("new-audit.jsonl")
    assert_succeeds(config(ctx, extra={"audit": {"file": audit}}))
    assert not os.path.exists(audit), "check created the audit log"
    with open(audit, "w") as f:
        f.write("kept\n")
    assert_succeeds(config(ctx, name="existing.json", extra={"audit": {"file": audit}}))
    with open(audit) as f:
        assert f.read() == "kept\n", "check changed the audit log"


def test_check_no_identity_resolver_warns(ctx):
    """No static directory and no graph: allowed, with a warning."""
    path = config(ctx)
    with open(path) as f:
        cfg = json.load(f)
    del cfg["identity"]
    path = write(ctx, "no-resolver.json", cfg)
    err = assert_succeeds(path)
    want = ("%s: identity: no resolver is configured (identity.static.file): every decision will "
            "be unresolved-user" % path)
    assert want in err, "no warning %r:\n%s" % (want, err[-2000:])
    assert "error:" not in err, err[-2000:]


def test_check_port_file_folder_missing(ctx):
    """run writes each port file beside itself: its folder must exist."""
    port_file = ctx.path("no-such-folder", "udp.port")
    path = config(ctx, extra={"listen": [{"proto": "udp", "address": "127.0.0.1:0",
                                          "port_file": port_file}]})
    assert_fails(path, ((path, port_file), re.escape("listen[0].port_file:")))


def test_check_non_local_address_warns(ctx):
    """An address of no interface here (TEST-NET-1) cannot be bound here; the
    config may be meant for another host, so it is only a warning."""
    path = config(ctx, extra={"listen": [{"proto": "tcp", "address": "192.0.2.1:5514"}]})
    err = assert_succeeds(path)
    assert re.search(re.escape(path) + r": listen\[0\]\.address: 192\.0\.2\.1:5514 is not an "
                     r"address of this host", err), err[-2000:]


def test_usage_errors(ctx):
    """Usage errors say what was wrong, then print the usage; exit status 2."""
    cfg = config(ctx)
    cases = [
        (["replay", "-c", cfg, "--explian"], "rtr-agent replay: unknown option --explian"),
        (["check"], "rtr-agent check: -c FILE is required"),
        (["check", "-c"], "rtr-agent check: -c needs a value"),
        (["run", "--tap", "tap.jsonl"], "rtr-agent run: -c FILE is required"),
        (["run", "-c", cfg, "extra"], "rtr-agent run: unexpected argument extra"),
        (["parse", "--framing", "crlf"], "rtr-agent parse: --framing is lf or octet, not crlf"),
        (["explode"], "rtr-agent: unknown command explode"),
        ([], "rtr-agent: a command is required"),
    ]
    for args, want in cases:
        rc, err = agent(*args)
        lines = err.splitlines()
        assert rc == 2, "rtr-agent %s exited %d, want 2:\n%s" % (" ".join(args), rc, err)
        assert lines and lines[0] == want, "rtr-agent %s: first line %r, want %r" % (
            " ".join(args), lines[:1], want)
        assert len(lines) > 1 and lines[1].startswith("usage: rtr-agent run"), err
    rc, err = agent("help")
    assert rc == 0 and err == "", "rtr-agent help exited %d: %s" % (rc, err)


def test_check_warns_on_open_listener(ctx):
    """A listener beyond loopback with no "allow" list and no client
    certificates takes alerts from anyone who reaches it: check says so (UDP:
    and that its source addresses can be forged); with an allow list, or on
    loopback, it does not."""
    cases = (
        ([{"proto": "tcp", "address": "0.0.0.0:0"}],
         "listen[0]: 0.0.0.0:0 (tcp) takes alerts from anyone who can reach it"),
        ([{"proto": "udp", "address": "[::]:0"}],
         "listen[0]: [::]:0 (udp) takes alerts from anyone who can reach it: set \"allow\" to the "
         "senders' addresses (UDP source addresses can be forged"),
        ([{"proto": "tcp", "address": "0.0.0.0:0", "allow": ["10.0.0.0/8"]},
          {"proto": "udp", "address": "127.0.0.1:0"}], None),
    )
    for i, (listen, want) in enumerate(cases):
        path = config(ctx, name="open%d.json" % i, extra={"listen": listen})
        err = assert_succeeds(path)
        if want:
            assert want in err, "check did not warn %r:\n%s" % (want, err[-2000:])
        else:
            assert "takes alerts from anyone" not in err, err[-2000:]


def test_check_key_errors_do_not_hide_file_problems(ctx):
    """A wrong key and missing files in one config: one run names them all
    (the keys that loaded are checked though others did not)."""
    path = config(ctx, mappings=[ctx.path("no-such-mapping.json")], extra={
        "listen": [{"proto": "udp", "address": "127.0.0.1:0"},
                   {"proto": "tcp", "address": "nowhere"}],
        "limits": {"max_connections": "many"},
        "identity": {"static": {"file": ctx.path("no-such-users.csv")}},
        "audit": {"file": ctx.path("no-such-folder", "audit.jsonl")}})
    err = assert_fails(path, (path, re.escape("limits.max_connections:")),
                       (path, re.escape("listen[1].address:")),
                       ("no-such-mapping.json", "no-such-mapping.json"),
                       (path, re.escape("identity.static.file:") + ".*no-such-users.csv"),
                       (path, re.escape("audit.file:") + ".*no-such-folder"))
    # The listener whose address did not load is not warned about as "(null)".
    assert "(null)" not in err, err[-2000:]


def test_check_fails_without_mappings(ctx):
    """No mapping loaded (a glob that matches nothing only warns): check
    fails, since no message could ever decide."""
    path = config(ctx, mappings=[ctx.path("mappings.d", "*.json")])
    assert_fails(path, (path, re.escape("mappings: no mapping loaded")))


def _quiet_extra():
    """What keeps check free of warnings here: as root, a user to drop to."""
    return {"user": "nobody"} if os.geteuid() == 0 else {}


def test_check_strict_fails_on_warnings(ctx):
    """--strict counts warnings as problems: a TCP listener on every
    address without an allow list passes with a warning, and fails with
    --strict naming the count; a config without warnings passes both."""
    clean = config(ctx, name="clean.json", extra=_quiet_extra())
    for argv in (("check", "-c", clean), ("check", "--strict", "-c", clean)):
        rc, err = agent(*argv)
        assert rc == 0 and "Z warning: " not in err, "%s: %d\n%s" % (argv, rc, err[-2000:])
    open_listener = config(ctx, name="open.json", extra=dict(
        _quiet_extra(), listen=[{"proto": "tcp", "address": "0.0.0.0:0"}]))
    rc, err = agent("check", "-c", open_listener)
    assert rc == 0 and "Z warning: " in err, err[-2000:]
    rc, err = agent("check", "--strict", "-c", open_listener)
    assert rc == 1 and re.search(r"\d+ warnings?, which --strict counts as problems", err), \
        err[-2000:]


def test_check_credentials_from_folder(ctx):
    """Credentials systemd provides at start (/run/credentials/UNIT/NAME)
    cannot be read before it: check fails on them, and with
    --credentials-from DIR checks DIR/NAME instead."""
    pem = certs()
    creds = ctx.path("credstore")
    os.mkdir(creds)
    with open(pem["server.key"]) as f:
        write(ctx, os.path.join("credstore", "tls-key"), f.read())
    write(ctx, os.path.join("credstore", "graph-client-secret"), "graph-s3cret\n")
    for name in ("tls-key", "graph-client-secret"):
        os.chmod(os.path.join(creds, name), 0o600)
    run_creds = "/run/credentials/rtr-agent.service/"
    path = config(ctx, extra={
        "listen": [{"proto": "tls", "address": "127.0.0.1:0", "cert": pem["server.pem"],
                    "key": run_creds + "tls-key", "allow": ["127.0.0.0/8"]}],
        "identity": {"order": ["graph"], "graph": {
            "tenant_id": "t", "client_id": "c",
            "client_secret_file": run_creds + "graph-client-secret"}}})
    if os.path.exists(run_creds):
        raise Skip("%s exists here" % run_creds)
    assert_fails(path, (path, re.escape("listen[0].key:")),
                 (path, re.escape("identity.graph.client_secret_file:")))
    rc, err = agent("check", "--credentials-from", creds, "-c", path)
    assert rc == 0, err[-2000:]
    assert "are checked as %s/NAME" % creds in err, err[-2000:]


def test_check_folders_systemd_creates(ctx):
    """The spool and audit folders of the shipped unit (StateDirectory=,
    LogsDirectory=), missing before the first start, are said to be made by
    systemd, not reported as problems."""
    for folder in ("/var/lib/rtr-agent", "/var/log/rtr-agent"):
        if os.path.exists(folder):
            raise Skip("%s exists on this machine" % folder)
    path = config(ctx, extra={"audit": {"file": "/var/log/rtr-agent/audit.jsonl"},
                              "spool": {"dir": "/var/lib/rtr-agent"}})
    err = assert_succeeds(path)
    for key, folder in (("audit.file", "/var/log/rtr-agent"), ("spool.dir", "/var/lib/rtr-agent")):
        assert re.search(r"info: .*%s: .*not checked: %s is not there yet, and systemd creates "
                         r"it" % (re.escape(key), re.escape(folder)), err), err[-2000:]
