"""rsyslog as a TLS-forwarding sender (omfwd + ossl driver), started with
its own configuration on loopback: logger -> rsyslog imtcp -> TLS -> agent."""
import time

from harness import (certs, check_sequence, logger_lines, start_rsyslog, tls_listener, token,
                     tool)

N = 500


def _forward(ctx, framing, authmode, template, fmt):
    c = certs()
    agent = ctx.agent([tls_listener(c)])
    port, _, log = start_rsyslog(ctx, agent.port("tls"), framing, c, authmode=authmode,
                                 template=template)
    tok = token()
    ctx.run([tool("logger"), "-n", "127.0.0.1", "-P", str(port), "--tcp", "--rfc3164",
             "-t", "rsyfwd"], input=logger_lines(N, tok))
    try:
        msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), N, 20)
    except AssertionError as e:
        with open(log, errors="replace") as f:
            raise AssertionError("%s\n--- rsyslogd output:\n%s" % (e, f.read()[-3000:]))
    seqs = check_sequence(msgs, tok, N)
    for seq, m in seqs:
        s = m.get("syslog") or {}
        assert m.get("transport") == "tls", "transport %r" % m.get("transport")
        assert s.get("format") == fmt and s.get("app") == "rsyfwd", \
            "message %d: format %r app %r, want %s/rsyfwd: %s" % (
                seq, s.get("format"), s.get("app"), fmt, m)
        # rsyslog keeps the space after "tag:" and SyslogProtocol23Format ends with LF
        assert m["msg"].strip().startswith("seq="), "message %d: msg %r" % (seq, m["msg"])
        assert "error" not in m, "message %d: %s" % (seq, m)
    assert agent.metric("tls_handshake_failures_total") == 0
    agent.stop()


def test_rsyslog_tls_octet_counted(ctx):
    """x509/name (rsyslog checks the agent's certificate name), client
    certificate presented, RFC 5424 over octet counting."""
    _forward(ctx, "octet-counted", "x509/name", "RSYSLOG_SyslogProtocol23Format", "rfc5424")


def test_rsyslog_tls_traditional_lf(ctx):
    """Traditional LF framing and the traditional RFC 3164 forward format."""
    _forward(ctx, "traditional", "x509/name", "RSYSLOG_TraditionalForwardFormat", "rfc3164")


test_rsyslog_tls_octet_counted.timeout = 45
test_rsyslog_tls_traditional_lf.timeout = 45


def test_rsyslog_without_client_cert_refused(ctx):
    """rsyslog without a client certificate is refused by a verifying agent."""
    c = certs()
    agent = ctx.agent([tls_listener(c)])
    port, _, _ = start_rsyslog(ctx, agent.port("tls"), "octet-counted", c, authmode="anon",
                               client_cert=False)
    tok = token()
    ctx.run([tool("logger"), "-n", "127.0.0.1", "-P", str(port), "--tcp", "-t", "rsyfwd"],
            input=logger_lines(10, tok))
    time.sleep(1.5)
    leaked = agent.with_text(tok)
    assert not leaked, "%d messages from rsyslog without a certificate reached the tap: %s" % (
        len(leaked), leaked[0])
    agent.wait_metric("tls_handshake_failures_total", 1, 10)
    agent.stop()


test_rsyslog_without_client_cert_refused.timeout = 45
