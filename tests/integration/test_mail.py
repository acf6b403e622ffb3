"""Email actions over SMTP (issue 16): tests/tools/mail_send sends one
message the way the agent does (agent/core/mail.c on the HTTPS engine's
loop) to the aiosmtpd stand-in (tests/servers/smtp_server.py) and prints the
verdict. STARTTLS then AUTH delivers exactly one message with the right
envelope, headers and body (dots not doubled); smtps:// too; plain text on
localhost; a certificate from a CA we do not trust fails with a TLS reason
(STARTTLS and smtps) and nothing arrives; 451 is retryable and the retry
delivers once; 550 and a wrong password (535) are permanent; a server that
is down is retryable. The password never appears in what the tool prints."""
import json
import os
import subprocess
import sys

import harness
from harness import REPORT, WRAPPER, Skip, free_port, t, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVERS = os.path.join(ROOT, "tests", "servers")
MAIL_SEND = os.path.join(harness.BUILD, "tools", "mail_send")
PASSWORD = "s3cret-pass"
FROM = "rtr@example.com"


def _python():
    """An interpreter with aiosmtpd: Debian's python3-aiosmtpd is in
    /usr/bin/python3's path, which another python3 first in PATH lacks."""
    for py in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(py) and subprocess.run(
                [py, "-c", "import aiosmtpd"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL).returncode == 0:
            return py
    raise Skip("python3-aiosmtpd is not installed (.ci/install-test-deps installs it)")


def _certs():
    sys.path.insert(0, SERVERS)
    import certs
    d = os.path.join(os.environ.get("RTR_IT_RUNDIR") or "/tmp", "smtp-certs")
    os.makedirs(d, exist_ok=True)
    ca = certs.make_ca(d)
    pem, key = certs.make_cert(d, ca, "server")
    other = certs.make_ca(d, name="other-ca")
    return {"ca": ca, "pem": pem, "key": key, "other_ca": other}


class Server:
    """smtp_server.py in its own process; .port, .messages()."""

    def __init__(self, ctx, *args):
        self.ctx = ctx
        self.port_file = ctx.path("smtp-%d.port" % id(self))
        self.messages_file = ctx.path("smtp-%d.jsonl" % id(self))
        ctx.spawn([_python(), os.path.join(SERVERS, "smtp_server.py"),
                   "--port-file", self.port_file, "--messages", self.messages_file] + list(args))
        wait_until(lambda: os.path.exists(self.port_file), 10, "the SMTP stand-in's port file")
        with open(self.port_file) as f:
            self.port = int(f.read())

    def messages(self):
        try:
            with open(self.messages_file) as f:
                return [json.loads(line) for line in f]
        except FileNotFoundError:
            return []


def _tls_server(ctx, c, *args):
    return Server(ctx, "--cert", c["pem"], "--key", c["key"], *args)


def _send(ctx, url, to=("analyst@example.com",), subject="Alert", body="hello\n", user=None,
          ca=None, message_id=None, timeout_ms=5000):
    """Runs mail_send; returns {"verdict", "code", "reason"} and its output."""
    assert os.path.exists(MAIL_SEND), "%s is missing: make test-binaries builds it" % MAIL_SEND
    body_file = ctx.path("body.txt")
    with open(body_file, "w", encoding="utf-8") as f:
        f.write(body)
    argv = WRAPPER + [MAIL_SEND, "--url", url, "--from", FROM, "--subject", subject,
                      "--body-file", body_file, "--timeout-ms", str(timeout_ms)]
    for addr in to:
        argv += ["--to", addr]
    if user is not None:
        pw = ctx.path("smtp.pw")
        with open(pw, "w") as f:
            f.write(user[1] + "\n")
        os.chmod(pw, 0o600)
        argv += ["--user", user[0], "--password-file", pw]
    if ca is not None:
        argv += ["--ca-file", ca]
    if message_id is not None:
        argv += ["--message-id", message_id]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=t(30))
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    found = REPORT.search(p.stderr)
    assert not found, "sanitizer/valgrind report:\n%s" % err[-3000:]
    assert p.returncode == 0, "mail_send exited %d:\n%s%s" % (p.returncode, out, err)
    assert PASSWORD not in out + err, "the password was printed:\n%s%s" % (out, err)
    line = out.strip()
    fields = dict(kv.split("=", 1) for kv in line.split(" ", 2))
    return {"verdict": fields["verdict"], "code": int(fields["code"]),
            "reason": fields["reason"]}, line


def _headers(data):
    head, _, body = data.partition("\r\n\r\n")
    fields = {}
    for line in head.replace("\r\n ", " ").split("\r\n"):
        name, _, value = line.partition(": ")
        fields[name] = value
    return fields, body


def test_mail_starttls_auth_delivers_one_message(ctx):
    """STARTTLS, AUTH, two recipients, a UTF-8 subject, a body whose lines
    start with dots: one message, the envelope and every header as sent,
    the body back exactly (libcurl's dot-stuffing undone once), CRLF."""
    c = _certs()
    s = _tls_server(ctx, c, "--user", "alice", "--password", PASSWORD)
    body = "User jsmith triggered an alert.\n.hidden line\n..two dots\nend"
    r, line = _send(ctx, "smtp://127.0.0.1:%d" % s.port,
                    to=("a@example.com", "b@example.org"), subject="Alerte: café ☕",
                    body=body, user=("alice", PASSWORD), ca=c["ca"], message_id="key-0001")
    assert r == {"verdict": "done", "code": 250, "reason": "-"}, line
    msgs = s.messages()
    assert len(msgs) == 1, msgs
    m = msgs[0]
    assert m["tls"] is True and m["login"] == "alice", m
    assert m["mail_from"] == FROM and m["rcpt_tos"] == ["a@example.com", "b@example.org"], m
    fields, got_body = _headers(m["data"])
    assert fields["From"] == FROM, fields
    assert fields["To"] == "a@example.com, b@example.org", fields
    assert fields["Subject"] == "=?UTF-8?B?QWxlcnRlOiBjYWbDqSDimJU=?=", fields
    assert fields["Message-ID"] == "<key-0001@rtr-agent>", fields
    assert fields["Content-Type"] == "text/plain; charset=utf-8", fields
    assert fields["Content-Transfer-Encoding"] == "8bit" and fields["MIME-Version"] == "1.0"
    assert fields["Date"].endswith(" +0000"), fields
    assert got_body == body.replace("\n", "\r\n") + "\r\n", repr(got_body)
    assert "\n" not in m["data"].replace("\r\n", ""), "a bare LF in %r" % m["data"]


def test_mail_smtps_delivers(ctx):
    """smtps:// (TLS from the first byte) with AUTH."""
    c = _certs()
    s = _tls_server(ctx, c, "--tls", "implicit", "--user", "alice", "--password", PASSWORD)
    r, line = _send(ctx, "smtps://localhost:%d" % s.port, user=("alice", PASSWORD), ca=c["ca"])
    assert r["verdict"] == "done", line
    assert [m["tls"] for m in s.messages()] == [True]


def test_mail_plain_on_localhost(ctx):
    """A server without STARTTLS is accepted on a loopback host (localhost
    and 127.0.0.1): nothing leaves the machine."""
    s = Server(ctx, "--tls", "none")
    for host in ("localhost", "127.0.0.1"):
        r, line = _send(ctx, "smtp://%s:%d" % (host, s.port))
        assert r["verdict"] == "done", line
    assert [m["tls"] for m in s.messages()] == [False, False]


def test_mail_untrusted_certificate_fails_tls(ctx):
    """A certificate from a CA we do not trust, in STARTTLS and in smtps:
    retryable with a TLS reason, and the server got nothing."""
    c = _certs()
    for mode, scheme in (("starttls", "smtp"), ("implicit", "smtps")):
        s = _tls_server(ctx, c, "--tls", mode, "--user", "alice", "--password", PASSWORD)
        r, line = _send(ctx, "%s://127.0.0.1:%d" % (scheme, s.port), user=("alice", PASSWORD),
                        ca=c["other_ca"])
        assert r["verdict"] == "again" and r["code"] == 0, line
        assert r["reason"].startswith("TLS: ") and "certificate" in r["reason"], line
        assert s.messages() == []


def test_mail_451_is_retryable(ctx):
    """451 to the data: retryable with the server's words; the retry goes
    through and the message is there once."""
    c = _certs()
    s = _tls_server(ctx, c, "--fail-first", "1", "--fail-code", "451")
    r, line = _send(ctx, "smtp://127.0.0.1:%d" % s.port, ca=c["ca"], message_id="k-451")
    assert r["verdict"] == "again" and r["code"] == 451, line
    assert r["reason"].startswith("SMTP 451: 4.3.0 Temporary local problem"), line
    assert s.messages() == []
    r, line = _send(ctx, "smtp://127.0.0.1:%d" % s.port, ca=c["ca"], message_id="k-451")
    assert r["verdict"] == "done", line
    assert len(s.messages()) == 1


def test_mail_550_is_permanent(ctx):
    c = _certs()
    s = _tls_server(ctx, c, "--fail-first", "1", "--fail-code", "550")
    r, line = _send(ctx, "smtp://localhost:%d" % s.port, ca=c["ca"])
    assert r == {"verdict": "dead", "code": 550,
                 "reason": "SMTP 550: 5.1.1 Mailbox unavailable (stand-in)"}, line
    assert s.messages() == []


def test_mail_wrong_password_is_permanent(ctx):
    """535 from AUTH: permanent (a dead letter until the secret is fixed);
    no AUTH at all where it is required: 530, permanent too."""
    c = _certs()
    s = _tls_server(ctx, c, "--user", "alice", "--password", PASSWORD)
    r, line = _send(ctx, "smtp://127.0.0.1:%d" % s.port, user=("alice", "not-it"), ca=c["ca"])
    assert r["verdict"] == "dead" and r["code"] == 535, line
    assert r["reason"] == "SMTP 535: 5.7.8 Authentication credentials invalid", line
    r, line = _send(ctx, "smtp://127.0.0.1:%d" % s.port, ca=c["ca"])
    assert r["verdict"] == "dead" and r["code"] == 530, line
    # The refusal's words, not those of the QUIT's "221 Bye" after it.
    assert r["reason"] == "SMTP 530: 5.7.0 Authentication required", line
    assert s.messages() == []


def test_mail_server_down_is_retryable(ctx):
    r, line = _send(ctx, "smtp://127.0.0.1:%d" % free_port())
    assert r["verdict"] == "again" and r["code"] == 0, line
    assert r["reason"].startswith("TCP: "), line
