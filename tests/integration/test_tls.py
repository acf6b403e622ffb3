"""TLS (RFC 5425) with openssl s_client: client-certificate verification,
refusals, protocol floor, framing over TLS; the listener policy keys
(allowed_names, crl_file, min_version, ciphers, ciphersuites) and session
resumption without tickets."""
import os
import re
import socket
import ssl
import subprocess
import time

from harness import (Agent, Skip, certs, check_sequence, listener, octet, run_agent, t,
                     tcp_connect, tls_connect, tls_listener, token, tool, wait_closed)

N = 100


def frame5424(i, tok, app="tlsapp"):
    return b"<134>1 2026-11-23T10:00:00.000Z itest-host %s - - - seq=%05d run=%s" % (
        app.encode(), i, tok.encode())


def s_client(ctx, port, cert="client", data=b"", extra=(), timeout=15):
    """openssl s_client -quiet, feeding data on stdin, closing at its end.
    cert: "client", "wrong-client", a (certificate, key) pair of paths, or
    None. Returns CompletedProcess."""
    c = certs()
    argv = [tool("openssl"), "s_client", "-connect", "127.0.0.1:%d" % port, "-quiet",
            "-no_ign_eof", "-CAfile", c["ca.pem"], "-verify_return_error",
            "-verify_hostname", "localhost"]
    if isinstance(cert, tuple):
        argv += ["-cert", cert[0], "-key", cert[1]]
    elif cert:
        argv += ["-cert", c[cert + ".pem"], "-key", c[cert + ".key"]]
    return ctx.run(argv + list(extra), input=data, check=False, timeout=timeout)


def _out(p):
    return (p.stdout + p.stderr).decode("utf-8", "replace")[-1500:]


def test_tls_client_cert_lf(ctx):
    agent = ctx.agent([tls_listener(certs())])
    tok = token()
    data = b"".join(frame5424(i, tok) + b"\n" for i in range(N))
    p = s_client(ctx, agent.port("tls"), data=data)
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), N, 10,
                          what="%d messages over TLS (s_client said: %s)" % (N, _out(p)))
    seqs = check_sequence(msgs, tok, N)
    for _, m in seqs:
        assert m.get("transport") == "tls", "transport %r" % m.get("transport")
        s = m.get("syslog") or {}
        assert (s.get("format"), s.get("app"), s.get("hostname")) == (
            "rfc5424", "tlsapp", "itest-host"), "syslog fields %s" % s
    assert agent.metric("tls_handshake_failures_total") == 0
    agent.stop()


def test_tls_client_cert_octet(ctx):
    """Octet-counted frames over TLS, one of them with embedded LFs."""
    agent = ctx.agent([tls_listener(certs())])
    tok = token()
    frames = [frame5424(i, tok) for i in range(N)]
    frames[7] += b"\nsecond line\nthird line"
    p = s_client(ctx, agent.port("tls"), data=b"".join(octet(f) for f in frames))
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), N, 10,
                          what="%d octet-counted messages over TLS (s_client: %s)" % (N, _out(p)))
    seqs = dict(check_sequence(msgs, tok, N))
    assert seqs[7]["msg"].endswith("\nsecond line\nthird line"), \
        "embedded LF lost: %r" % seqs[7]["msg"]
    agent.stop()


def _refused(ctx, agent, cert, extra=(), what="", good="client"):
    """A client that must be refused: nothing reaches the tap, the handshake
    failure is counted, and the agent still serves a good client (cert good)
    after."""
    before = agent.metric("tls_handshake_failures_total")
    tok = token()
    data = b"".join(frame5424(i, tok) + b"\n" for i in range(5))
    p = s_client(ctx, agent.port("tls"), cert=cert, data=data, extra=extra)
    # a good client afterwards proves the agent is alive and flushed its tap
    good_tok = token()
    s_client(ctx, agent.port("tls"), cert=good, data=frame5424(0, good_tok) + b"\n")
    agent.wait_tap(lambda m: good_tok in (m.get("msg") or ""), 1, 10)
    time.sleep(0.2)
    leaked = agent.with_text(tok)
    assert not leaked, "%s: %d messages of a refused client reached the tap: %s" % (
        what, len(leaked), leaked[0])
    agent.wait_metric("tls_handshake_failures_total", before + 1, 5)
    return p


def test_tls_no_client_cert_refused(ctx):
    agent = ctx.agent([tls_listener(certs())])
    _refused(ctx, agent, None, what="no client certificate")
    agent.stop()


def test_tls_wrong_ca_client_cert_refused(ctx):
    agent = ctx.agent([tls_listener(certs())])
    _refused(ctx, agent, "wrong-client", what="client certificate from another CA")
    agent.stop()


def test_tls_1_1_refused(ctx):
    """TLS 1.2 is the floor. The local client must be able to offer TLS 1.1
    (OpenSSL 3 needs security level 0 for it), else this is skipped."""
    agent = ctx.agent([tls_listener(certs())])
    before = agent.metric("tls_handshake_failures_total")
    c = certs()
    argv = [tool("openssl"), "s_client", "-connect", "127.0.0.1:%d" % agent.port("tls"),
            "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", "-no_ign_eof",
            "-cert", c["client.pem"], "-key", c["client.key"], "-CAfile", c["ca.pem"]]
    tok = token()
    p = ctx.run(argv, input=frame5424(0, tok) + b"\n", check=False)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    if "no protocols available" in out:
        raise Skip("the local OpenSSL client cannot offer TLS 1.1: %s" % out.strip()[-200:])
    established = re.search(r"New, (TLSv[\d.]+), Cipher is (?!\(NONE\))(\S+)", out)
    assert not established, "a %s session was established with a TLS 1.1-only client (%s)" % (
        established.group(1), established.group(2))
    agent.wait_metric("tls_handshake_failures_total", before + 1, 5)
    time.sleep(0.3)
    assert not agent.with_text(tok), "a TLS 1.1 client's message reached the tap"
    agent.stop()
    err = agent.stderr_bytes().decode("utf-8", "replace")
    found = re.search(r"handshake failed: (.*)", err)
    assert found and "lib(0)" not in found.group(1) and "unknown" not in found.group(1), \
        "the refusal does not say why: %r" % (found.group(0) if found else err[-500:])


def _tls12_handshake(port, ciphers):
    """A TLS 1.2 handshake offering only ciphers, with the client
    certificate. Returns the suite agreed, or the error."""
    c = certs()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(c["ca.pem"])
    context.load_cert_chain(c["client.pem"], c["client.key"])
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=t(10)) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as s:
                return s.cipher()[0]
    except (ssl.SSLError, OSError) as e:
        return "refused: %s" % e


def test_tls12_ecdhe_aead_only(ctx):
    """TLS 1.2 takes ECDHE with AES-GCM or ChaCha20-Poly1305 only: a client
    offering nothing but CBC suites (or static-RSA key exchange) is refused,
    one offering GCM gets it."""
    agent = ctx.agent([tls_listener(certs())])
    port = agent.port("tls")
    for offered in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "AES128-GCM-SHA256"):
        got = _tls12_handshake(port, offered)
        assert got.startswith("refused"), "a TLS 1.2 client offering only %s got %s" % (
            offered, got)
    for offered in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"):
        got = _tls12_handshake(port, offered)
        assert got == offered, "a TLS 1.2 client offering %s: %s" % (offered, got)
    agent.stop()


def test_tls_without_client_verification(ctx):
    """Without client_ca a client with no certificate is accepted."""
    agent = ctx.agent([tls_listener(certs(), verify=False)])
    tok = token()
    s_client(ctx, agent.port("tls"), cert=None,
             data=b"".join(frame5424(i, tok) + b"\n" for i in range(20)))
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 20, 10)
    check_sequence(msgs, tok, 20)
    agent.stop()


def test_tls_port_plaintext_refused(ctx):
    """Plain syslog sent to the TLS port is a failed handshake, not a message."""
    agent = ctx.agent([tls_listener(certs()), listener("tcp")])
    before = agent.metric("tls_handshake_failures_total")
    tok = token()
    s = tcp_connect(agent.port("tls"))
    s.sendall(b"".join(frame5424(i, tok) + b"\n" for i in range(5)))
    closed, _ = wait_closed(s, 5)
    s.close()
    assert closed, "the agent kept a plaintext connection to its TLS port open"
    agent.wait_metric("tls_handshake_failures_total", before + 1, 5)
    time.sleep(0.3)
    assert not agent.with_text(tok), "plaintext on the TLS port reached the tap"
    agent.assert_alive()
    agent.stop()


def test_tls_handshake_timeout(ctx):
    """A client that connects and never says hello is dropped after
    handshake_timeout_s and counted."""
    agent = ctx.agent([tls_listener(certs(), handshake_timeout_s=1)])
    before = agent.metric("tls_handshake_failures_total")
    s = tcp_connect(agent.port("tls"))
    t0 = time.monotonic()
    closed, _ = wait_closed(s, 6)
    took = time.monotonic() - t0
    s.close()
    assert closed, "a silent TLS client was not dropped within %.0fs (handshake_timeout_s=1)" % t(6)
    assert took >= 0.5, "dropped after %.2fs: sooner than handshake_timeout_s=1" % took
    agent.wait_metric("tls_handshake_failures_total", before + 1, 5)
    agent.stop()


def test_tls_burst_of_small_messages_from_an_idle_sender(ctx):
    """max_message_bytes 480 (a 1920-byte connection buffer) and 100 messages
    in one write (one TLS record): every one arrives while the sender stays
    connected and silent, and none is lost when the idle timeout closes it."""
    tok = token()
    data = b"".join(frame5424(i, tok) + b"\n" for i in range(N))
    # 1 s, longer under valgrind, where a handshake alone can take a second
    short = max(1, int(t(1)))
    for idle in (300, short):
        agent = ctx.agent([tls_listener(certs())], name="idle%d" % idle,
                          limits={"max_message_bytes": 480, "idle_timeout_s": idle})
        s = tls_connect(agent.port("tls"))
        s.sendall(data)
        if idle == short:
            closed, _ = wait_closed(s, 5 + idle)
            assert closed, "the idle connection was not closed"
        msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), N, 5,
                              what="%d messages of one TLS write (idle_timeout_s %d)" % (N, idle))
        check_sequence(msgs, tok, N)
        s.close()
        agent.stop()


def test_tls_session_resumption_with_client_certificates(ctx):
    """A TLS 1.2 client resuming its session (client certificates verified):
    the resumed connection is accepted and its messages arrive."""
    agent = ctx.agent([tls_listener(certs())])
    tok = token()
    first = tls_connect(agent.port("tls"), max_version=ssl.TLSVersion.TLSv1_2)
    first.sendall(frame5424(0, tok) + b"\n")
    session, context = first.session, first.context
    agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 1, 10)
    first.close()
    second = tls_connect(agent.port("tls"), session=session, context=context)
    assert second.session_reused, "the agent did not resume the TLS 1.2 session"
    second.sendall(frame5424(1, tok) + b"\n")
    second.close()
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 2, 10,
                          what="the message of the resumed session")
    check_sequence(msgs, tok, 2, ordered=False)
    assert agent.metric("tls_handshake_failures_total") == 0
    agent.stop()


def test_tls_connect_and_close_is_not_a_failed_handshake(ctx):
    """Health checks and port scans connect and close without a byte: not a
    failed handshake, not worth a warning."""
    agent = ctx.agent([tls_listener(certs())])
    for _ in range(3):
        tcp_connect(agent.port("tls")).close()
    tok = token()
    p = s_client(ctx, agent.port("tls"), data=frame5424(0, tok) + b"\n")
    agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 1, 10,
                   what="a good client after the probes (s_client: %s)" % _out(p))
    time.sleep(0.2)
    assert agent.metric("tls_handshake_failures_total") == 0, \
        "connect-and-close counted as tls_handshake_failures"
    agent.stop()
    # (Started as root, as in CI, the agent also warns that it runs as root.)
    err = "\n".join(line for line in agent.stderr_bytes().decode("utf-8", "replace").splitlines()
                    if "RUNNING AS ROOT" not in line)
    assert "warning" not in err, "connect-and-close logged a warning: %s" % err[-500:]


def test_tls_write_only_sender_closing_at_once_loses_nothing(ctx):
    """A sender that writes 2,000 frames and closes at once, never reading:
    over TLS 1.3 the agent sends no session tickets (unread, they would turn
    the sender's close() into an RST and its kernel would discard what it
    had not yet sent: 419 of 2,000 arrived); over TLS 1.2 too. Every frame
    arrives."""
    agent = ctx.agent([tls_listener(certs())])
    n = 2000
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        tok = token()
        s = tls_connect(agent.port("tls"), max_version=version)
        assert s.version() == {ssl.TLSVersion.TLSv1_3: "TLSv1.3",
                               ssl.TLSVersion.TLSv1_2: "TLSv1.2"}[version], s.version()
        s.sendall(b"".join(frame5424(i, tok) + b"\n" for i in range(n)))
        s.close()
        msgs = agent.wait_tap(lambda m, k=tok: k in (m.get("msg") or ""), n, t(20),
                              what="%d frames over %s from a sender that closed at once"
                              % (n, version.name))
        check_sequence(msgs, tok, n)
    agent.stop()


# ------------------------------------------------ listener policy (issue 12)

def _openssl(cwd, *args):
    p = subprocess.run([tool("openssl")] + list(args), cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0, "openssl %s failed:\n%s" % (
        " ".join(args), p.stdout.decode(errors="replace"))


def _client_cert(ctx, name, cn, san=None, ca="ca"):
    """A client certificate issued by the run's CA ("ca" or "other-ca"),
    subject CN=cn, subjectAltName san ("DNS:a.example,URI:spiffe://x") or
    none. Returns (certificate, key) paths in the test's folder."""
    c = certs()
    d = ctx.path("certs")
    os.makedirs(d, exist_ok=True)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")
        if san:
            f.write("subjectAltName=%s\n" % san)
    _openssl(d, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
    _openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", c[ca + ".pem"],
             "-CAkey", c[ca + ".key"], "-CAserial", name + ".srl", "-CAcreateserial",
             "-out", name + ".pem", "-days", "30", "-extfile", ext)
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


def _crl(ctx, revoke=(), ca="ca"):
    """A CRL of the run's CA ca revoking the certificates revoke (paths),
    made by `openssl ca` with a minimal configuration. Returns its path."""
    c = certs()
    d = ctx.path("crl-" + ca)
    os.makedirs(d)
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\n"
                "default_md = sha256\ndefault_crl_days = 30\n")
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "crlnumber"), "w") as f:
        f.write("01\n")
    sign = ["-config", "ca.cnf", "-keyfile", c[ca + ".key"], "-cert", c[ca + ".pem"]]
    for pem in revoke:
        _openssl(d, "ca", *sign, "-revoke", pem)
    _openssl(d, "ca", *sign, "-gencrl", "-out", "ca.crl")
    return os.path.join(d, "ca.crl")


def _accepted(ctx, agent, cert, what):
    """cert's messages arrive."""
    tok = token()
    p = s_client(ctx, agent.port("tls"), cert=cert,
                 data=b"".join(frame5424(i, tok) + b"\n" for i in range(3)))
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 3, 10,
                          what="the messages of %s (s_client: %s)" % (what, _out(p)))
    check_sequence(msgs, tok, 3)


def _refusal_logged(agent, text):
    err = agent.stderr_bytes().decode("utf-8", "replace")
    assert text in err, "no handshake failure line saying %r:\n%s" % (text, err[-1500:])


def test_tls_allowed_names_san(ctx):
    """allowed_names against subjectAltName entries: a DNS or URI entry
    equal to an allowed name passes; a certificate of the same CA naming
    someone else, even with an allowed name as its CN, is refused: failed
    handshake, counted, nothing decided, its names in the log."""
    sender = _client_cert(ctx, "sender", "sender cert", "DNS:sender.example")
    uri = _client_cert(ctx, "uri", "uri cert", "URI:spiffe://example/sender")
    other = _client_cert(ctx, "other", "sender.example",
                         "DNS:other.example,DNS:sender.example.evil")
    agent = ctx.agent([tls_listener(certs(), allowed_names=[
        "sender.example", "spiffe://example/sender"])])
    _accepted(ctx, agent, sender, "a certificate with SAN DNS:sender.example")
    _accepted(ctx, agent, uri, "a certificate with SAN URI:spiffe://example/sender")
    _refused(ctx, agent, other, what="SAN DNS:other.example (CN sender.example)", good=sender)
    _refused(ctx, agent, "client", what="the run's client certificate (DNS:client.test)",
             good=uri)
    agent.stop()
    _refusal_logged(agent, 'client certificate refused: its names are not in allowed_names: '
                    'DNS:"other.example", DNS:"sender.example.evil"')
    _refusal_logged(agent, 'allowed_names: DNS:"client.test"')


def test_tls_allowed_names_cn(ctx):
    """A certificate with no SAN DNS or URI entry is matched by its subject
    CN (ignoring case); one with another CN is refused."""
    cn_only = _client_cert(ctx, "cn-only", "Sender.Example")
    cn_other = _client_cert(ctx, "cn-other", "other.example")
    agent = ctx.agent([tls_listener(certs(), allowed_names=["sender.example"])])
    _accepted(ctx, agent, cn_only, "a certificate with CN Sender.Example and no SAN")
    _refused(ctx, agent, cn_other, what="CN other.example and no SAN", good=cn_only)
    agent.stop()
    _refusal_logged(agent, 'its names are not in allowed_names: CN:"other.example"')


def test_tls_crl_file(ctx):
    """A client certificate crl_file revokes is refused; the CA's other
    certificates pass. Without crl_file the revoked one passes."""
    revoked = _client_cert(ctx, "revoked", "revoked.test", "DNS:revoked.test")
    crl = _crl(ctx, revoke=[revoked[0]])
    agent = ctx.agent([tls_listener(certs(), crl_file=crl)], name="with-crl")
    _refused(ctx, agent, revoked, what="a revoked certificate")
    _accepted(ctx, agent, "client", "a certificate the CRL does not list")
    agent.stop()
    _refusal_logged(agent, "client certificate refused: certificate revoked")
    agent = ctx.agent([tls_listener(certs())], name="without-crl")
    _accepted(ctx, agent, revoked, "the revoked certificate, without crl_file")
    agent.stop()


def test_tls_crl_file_of_another_ca_fails_check_and_run(ctx):
    """A CRL no CA of client_ca signed could never apply (and every client
    would be refused for want of its CA's CRL): check and run refuse it."""
    crl = _crl(ctx, ca="other-ca")
    agent = Agent(ctx, [tls_listener(certs(), crl_file=crl)])
    for command in ("check", "run"):
        rc, err = run_agent(command, "-c", agent.config_path)
        assert rc == 1, "%s exited %d:\n%s" % (command, rc, err[-1500:])
        assert "the CRL of /CN=rtr-agent test other-ca is not signed by a CA of" in err, \
            "%s: %s" % (command, err[-1500:])


def test_tls_min_version_1_3(ctx):
    """min_version "1.3": a client that speaks TLS 1.2 at most is refused,
    a TLS 1.3 client is served."""
    agent = ctx.agent([tls_listener(certs(), min_version="1.3")])
    before = agent.metric("tls_handshake_failures_total")
    got = _tls12_handshake(agent.port("tls"), "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert got.startswith("refused"), "a TLS 1.2-only client got %s" % got
    agent.wait_metric("tls_handshake_failures_total", before + 1, 5)
    tok = token()
    s = tls_connect(agent.port("tls"))
    assert s.version() == "TLSv1.3", s.version()
    s.sendall(frame5424(0, tok) + b"\n")
    s.close()
    agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 1, 10)
    agent.stop()


def test_tls12_ciphers_key(ctx):
    """A TLS 1.2 client offering only a CBC suite is refused by default and
    served when "ciphers" allows that suite."""
    cbc = "ECDHE-ECDSA-AES128-SHA"
    agent = ctx.agent([tls_listener(certs())], name="default")
    got = _tls12_handshake(agent.port("tls"), cbc)
    assert got.startswith("refused"), "default ciphers: a client offering only %s got %s" % (
        cbc, got)
    agent.stop()
    agent = ctx.agent([tls_listener(certs(), ciphers="ECDHE+AESGCM:" + cbc)], name="custom")
    got = _tls12_handshake(agent.port("tls"), cbc)
    assert got == cbc, "ciphers allowing %s: %s" % (cbc, got)
    assert _tls12_handshake(agent.port("tls"), "ECDHE-ECDSA-CHACHA20-POLY1305").startswith(
        "refused"), "ChaCha20 is not in the custom ciphers but was negotiated"
    agent.stop()


def test_tls_bad_cipher_strings_fail_check_and_run(ctx):
    """Cipher strings OpenSSL takes nothing from are config errors naming the
    key, from check and from run."""
    agent = Agent(ctx, [listener("tcp"),
                        tls_listener(certs(), ciphers="NOT-A-CIPHER"),
                        tls_listener(certs(), ciphersuites="TLS_NOPE_SHA256")])
    for command in ("check", "run"):
        rc, err = run_agent(command, "-c", agent.config_path)
        assert rc == 1, "%s exited %d:\n%s" % (command, rc, err[-1500:])
        for want in ('listen[1].ciphers: OpenSSL takes no TLS 1.2 cipher from "NOT-A-CIPHER"',
                     'listen[2].ciphersuites: OpenSSL takes no TLS 1.3 cipher suite from '
                     '"TLS_NOPE_SHA256"'):
            assert want in err, "%s did not say %r:\n%s" % (command, want, err[-1500:])


def test_tls12_resumption_by_session_id_without_tickets(ctx):
    """TLS 1.2: the agent issues no session ticket (its key would never be
    rotated), and a client resumes by session id from the agent's cache."""
    agent = ctx.agent([tls_listener(certs())])
    tok = token()
    first = tls_connect(agent.port("tls"), max_version=ssl.TLSVersion.TLSv1_2)
    first.sendall(frame5424(0, tok) + b"\n")
    agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 1, 10)
    session, context = first.session, first.context
    first.close()
    assert not session.has_ticket, "the agent issued a TLS 1.2 session ticket"
    assert session.id, "the TLS 1.2 session has no id to resume by"
    second = tls_connect(agent.port("tls"), session=session, context=context)
    assert second.session_reused, "the agent did not resume the TLS 1.2 session by id"
    assert not second.session.has_ticket, "the resumed session carries a ticket"
    second.sendall(frame5424(1, tok) + b"\n")
    second.close()
    msgs = agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 2, 10)
    check_sequence(msgs, tok, 2, ordered=False)
    agent.stop()
