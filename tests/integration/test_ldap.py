"""Active Directory over LDAP (issue 14): the real agent with identity.order
["ldap"] resolves each alert's user in a private slapd (ldap_fixture.py:
an AD-like schema and directory on 127.0.0.1, LDAPS and StartTLS with the
test CA) and sends the email to a SafeTitan stand-in.

First the fixture itself, with ldapsearch: the filters of
agent/identity/ldapfilter.h find exactly the expected user per identifier
kind, the disabled account is excluded by the bit-AND clause, a group never
matches, jdoe lives in two bases, an anonymous client sees nothing,
StartTLS works, a wrong CA, a wrong host name and a wrong password are
refused. Then the agent: logger with DOMAIN\\sam, a UPN and a SID over
LDAPS (the issue's "Done when"); every identifier kind through replay, and
its options (attribute, exclude_disabled, no domains map); ambiguous,
disabled and group users dead-lettered with the reason; /metrics; StartTLS
on ldap://; a wrong CA (LDAPS and StartTLS) and a wrong host name refused
without a bind (the alerts wait); a wrong password logged once while the
alerts wait; slapd stopped mid-run then restarted, and paused (timeouts,
while a static user is still delivered at once), with nothing lost;
failover to the second URI; search references not chased; an idle
connection closed and reopened; SIGTERM while slapd hangs; check and
check --probe. SASL EXTERNAL (a slapd demanding a client certificate and
mapping its subject to the service account): the fixture proven with
ldapwhoami; the agent binds with its client certificate over LDAPS and
StartTLS (slapd logs mechanism EXTERNAL, mapped to the service account,
and no simple bind) and resolves; a client certificate of another CA is
refused in the TLS handshake and the alert waits; one of the test CA whose
subject maps to nothing binds but reads nothing (noSuchObject): the
alerts wait, never dead-lettered; check names the missing
client certificate and key, check --probe binds with the certificate."""
import json
import os
import re
import socket
import subprocess
import threading
import time

import ldap_fixture as L
import response_env as R
from harness import (AGENT, REPORT, WRAPPER, check_json_line, run_agent, t, token, tool,
                     wait_until)

U = L.USERS
DEAD = "unresolved-user"


# ---------------------------------------------------------------- filters
# The filters of agent/identity/ldapfilter.h, built here independently, so
# the fixture is proven to answer them as AD would.

def _escape(value):
    raw = value if isinstance(value, bytes) else value.encode("utf-8")
    return "".join(chr(b) if 0x20 <= b < 0x7f and chr(b) not in "*()\\" else "\\%02x" % b
                   for b in raw)


def _filter(kind, value, exclude_disabled=True):
    if kind in ("upn", "email"):
        v = _escape(value)
        inner = "(|(userPrincipalName=%s)(mail=%s)(proxyAddresses=smtp:%s))" % (v, v, v)
    elif kind == "sam":
        inner = "(sAMAccountName=%s)" % _escape(value.split("\\", 1)[-1])
    elif kind == "sid":
        inner = "(objectSid=%s)" % _escape(L.sid_binary(value))
    elif kind == "guid":
        inner = "(objectGUID=%s)" % _escape(L.guid_binary(value))
    else:
        inner = "(employeeID=%s)" % _escape(value)
    disabled = "(!(userAccountControl:1.2.840.113556.1.4.803:=2))" if exclude_disabled else ""
    return "(&(objectCategory=person)(objectClass=user)%s%s)" % (disabled, inner)


# (kind, identifier, search base, the key of the one user it must find)
FIXTURE_CASES = [
    ("sam", "CORP\\amorgan", L.CORP_DN, "amorgan"),
    ("sam", "amorgan", L.BASE_DN, "amorgan"),
    ("upn", "amorgan@corp.example.com", L.BASE_DN, "amorgan"),
    ("email", "alex.morgan@example.com", L.BASE_DN, "amorgan"),
    ("email", "amorgan@legacy.example.com", L.BASE_DN, "amorgan"),
    ("email", "AMorgan@Legacy.Example.com", L.BASE_DN, "amorgan"),
    ("sid", U["amorgan"]["sid"], L.BASE_DN, "amorgan"),
    ("guid", U["amorgan"]["guid"], L.BASE_DN, "amorgan"),
    ("employee_id", "2044", L.BASE_DN, "amorgan"),
    ("upn", U["guest"]["upn"], L.BASE_DN, "guest"),
    ("upn", "e.o'neil@corp.example.com", L.BASE_DN, "eoneil"),
    ("sam", "CORP\\star*(paren)", L.CORP_DN, "star"),
    ("sam", "CORP\\zo\u00eb", L.CORP_DN, "zoe"),
    ("upn", "zo\u00eb.m\u00fcller@corp.example.com", L.BASE_DN, "zoe"),
    ("sam", "CORP\\jdoe", L.CORP_DN, "jdoe_corp"),
    ("sam", "EMEA\\jdoe", L.EMEA_DN, "jdoe_emea"),
    ("sam", "nomail", L.BASE_DN, "nomail"),
]


def _dns(entries):
    return sorted(dn for dn, _ in entries)


def test_fixture_answers_the_filters(ctx):
    """ldapsearch as the service account over LDAPS: each filter of
    ldapfilter.h finds exactly its user (binary SID and GUID, escaped '*'
    and '(', UTF-8, a case-insensitive smtp: alias); bare jdoe finds two;
    the disabled account only without the bit-AND clause, which itself
    finds exactly it; the group never; an anonymous search nothing."""
    slapd = L.start_slapd(ctx)
    problems = []
    for kind, ident, base, key in FIXTURE_CASES:
        got = _dns(slapd.search(_filter(kind, ident), base=base, attrs=["mail"]))
        if got != [U[key]["dn"]]:
            problems.append("%s %r in %s: found %s, want %s" % (kind, ident, base, got,
                                                               U[key]["dn"]))
    both = _dns(slapd.search(_filter("sam", "jdoe")))
    if both != sorted([U["jdoe_corp"]["dn"], U["jdoe_emea"]["dn"]]):
        problems.append("bare jdoe found %s" % both)
    if slapd.search(_filter("sam", "former")) != []:
        problems.append("the disabled account matched with exclude_disabled")
    if _dns(slapd.search(_filter("sam", "former", exclude_disabled=False))) != [
            U["former"]["dn"]]:
        problems.append("the disabled account is not found without the bit-AND clause")
    bitand = _dns(slapd.search("(userAccountControl:1.2.840.113556.1.4.803:=2)"))
    if bitand != [U["former"]["dn"]]:
        problems.append("integerBitAndMatch found %s, want only former" % bitand)
    if _dns(slapd.search("(sAMAccountName=admins)")) != [L.GROUP["dn"]]:
        problems.append("the group is not in the directory")
    if slapd.search(_filter("sam", "admins")) != [] or \
            slapd.search(_filter("email", "admins@example.com")) != []:
        problems.append("the group matched a user filter")
    # An unescaped '*' would widen the search to the decoy: the escaping matters here.
    if len(slapd.search("(sAMAccountName=star*)")) != 2:
        problems.append("the decoy for an unescaped '*' is missing")
    entry = slapd.search(_filter("sid", U["amorgan"]["sid"]), attrs=["objectSid", "objectGUID"])
    if entry and (entry[0][1].get("objectSid") != [L.sid_binary(U["amorgan"]["sid"])] or
                  entry[0][1].get("objectGUID") != [bytes.fromhex(
                      "2b3f1a7d1e9c554e9a0a2b1c0d9e8f70")]):
        problems.append("binary SID/GUID stored as %s" % entry[0][1])
    if slapd.search("(objectClass=*)", bind=None) != []:
        problems.append("an anonymous search found entries")
    if len(slapd.search("(objectClass=user)", bind="root")) != len(U):
        problems.append("the rootdn does not see every user")
    assert not problems, "\n".join(problems)


def test_fixture_transport_and_lifecycle(ctx):
    """StartTLS on ldap:// (-ZZ); a wrong CA, a certificate for another
    name and a wrong password refused; restart keeps ports and data; a
    paused slapd accepts TCP but does not answer until resumed."""
    slapd = L.start_slapd(ctx)
    want = [U["amorgan"]["dn"]]
    assert _dns(slapd.search(_filter("sam", "amorgan"), uri=slapd.uri, starttls=True)) == want
    assert "STARTTLS" in slapd.log_text() or "1.3.6.1.4.1.1466.20037" in slapd.log_text()
    rc, err = slapd.search("(cn=*)", ca_file=slapd.wrong_ca_file, check=False)
    assert rc != 0, "a wrong CA was accepted"
    rc, err = slapd.search("(cn=*)", uri=slapd.uri, starttls=True, ca_file=slapd.wrong_ca_file,
                           check=False)
    assert rc != 0, "a wrong CA was accepted with StartTLS"
    wrong = L.start_slapd(ctx, cert="wrong-name", name="slapd-wrong-name")
    rc, err = wrong.search("(cn=*)", check=False)
    assert rc != 0, "a certificate for wrong.example was accepted for 127.0.0.1"
    p = subprocess.run([tool("ldapwhoami"), "-x", "-H", slapd.tls_uri, "-D", slapd.svc_dn, "-y",
                        slapd.wrong_password_file], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=t(10),
                       env=dict(os.environ, LDAPTLS_CACERT=slapd.ca_file))
    assert p.returncode == 49, "wrong password: ldapwhoami exited %d: %s" % (
        p.returncode, p.stdout)
    ports = (slapd.port, slapd.tls_port)
    slapd.restart()
    assert (slapd.port, slapd.tls_port) == ports
    assert _dns(slapd.search(_filter("sam", "amorgan"))) == want
    slapd.pause()
    try:
        socket.create_connection(("127.0.0.1", slapd.tls_port), timeout=2).close()
        try:
            slapd.search("(cn=*)", timeout=2)
            raise AssertionError("a paused slapd answered")
        except subprocess.TimeoutExpired:
            pass
    finally:
        slapd.resume()
    assert _dns(slapd.search(_filter("sam", "amorgan"))) == want


# ---------------------------------------------------------------- the agent

def _env(ctx, slapd=None, order=("ldap",), **ldap_kw):
    """(slapd, SafeTitan stand-in, live config resolving through slapd)."""
    slapd = slapd or L.start_slapd(ctx)
    st = R.standin(ctx)
    cfg = R.live_config(ctx, st, users=None, order=list(order),
                        identity={"ldap": L.ldap_section(slapd, **ldap_kw)})
    return slapd, st, cfg


def _send(agent, pairs):
    R.send_tcp(agent, [R.splunk_kv(rule, user) for rule, user in pairs])


def _delivered(st):
    return {(json.loads(r["body"])["event"], json.loads(r["body"])["email"])
            for r in st.requests()}


def _searches(slapd):
    return re.findall(r' SRCH base="[^"]*" .*', slapd.log_text())


def _unescape(value):
    """A filter's assertion value (RFC 4515 \\xx escapes) -> bytes."""
    return re.sub(rb"\\([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]),
                  value.encode("utf-8"))


def _binds(slapd):
    """[(conn, err)] of every simple bind result in slapd's log."""
    log = slapd.log_text()
    bound = set(re.findall(r"conn=(\d+) op=(\d+) BIND dn=", log))
    return [(c, int(e)) for c, o, e in re.findall(r"conn=(\d+) op=(\d+) RESULT tag=97 err=(\d+)",
                                                    log) if (c, o) in bound]


def _bound_conns(slapd):
    """{conn: (listener port, [its log lines])} of the connections that
    sent a BIND (the fixture's own readiness probes never do)."""
    by_conn = {}
    for ln in slapd.log_text().splitlines():
        m = re.search(r" conn=(\d+) ", ln)
        if m:
            by_conn.setdefault(m.group(1), []).append(ln)
    out = {}
    for conn, lines in by_conn.items():
        if any(" BIND dn=" in ln for ln in lines):
            # slapd's threads log concurrently: ACCEPT may come after the first operation.
            port = re.search(r"ACCEPT from IP=\S+ \(IP=127\.0\.0\.1:(\d+)\)", "\n".join(lines))
            out[conn] = (int(port.group(1)) if port else None, lines)
    return out


def _tls_before_bind(lines):
    tls = [i for i, ln in enumerate(lines) if "TLS established" in ln]
    bind = [i for i, ln in enumerate(lines) if " BIND dn=" in ln]
    return bool(tls and bind and tls[0] < bind[0])


def test_logger_sam_upn_sid_over_ldaps(ctx):
    """The issue's "Done when": three alerts sent by logger (CEF suser
    CORP\\jdoe, a UPN, a SID) reach SafeTitan with the email slapd holds,
    looked up over LDAPS (TLS established before the bind) as the service
    account; the audit lines name the resolver "ldap"."""
    slapd, st, cfg = _env(ctx)
    agent = R.start_agent(ctx, cfg)
    tok = token()
    alerts = [("Logger sam %s" % tok, "CORP\\\\jdoe", "john.doe@example.com"),
              ("Logger upn %s" % tok, "user21@corp.example.com", "user21.mail@example.com"),
              ("Logger sid %s" % tok, U["amorgan"]["sid"], "alex.morgan@example.com")]
    for rule, suser, _ in alerts:
        R.send_logger(ctx, agent, "CEF:0|Splunk|Enterprise Security|7.3.2|notable|%s|7|"
                      "suser=%s src=10.9.8.7" % (rule, suser))
    lines = R.wait_audit(agent, "dispatched", 3, timeout=15)
    assert _delivered(st) == {(rule, email) for rule, _, email in alerts}, _delivered(st)
    assert {a.get("resolver") for a in R.outcomes(lines, "dispatched")} == {"ldap"}, lines
    log = slapd.log_text()
    conns = _bound_conns(slapd)
    assert conns and all(port == slapd.tls_port and _tls_before_bind(conn_lines)
                         for port, conn_lines in conns.values()), conns
    binds = _binds(slapd)
    assert binds and all(err == 0 for _, err in binds), binds
    assert 'BIND dn="%s"' % L.SVC_DN in log
    searches = _searches(slapd)
    assert any('base="%s"' % L.CORP_DN in s and "sAMAccountName=jdoe" in s for s in searches), \
        searches
    sids = [_unescape(m) for m in re.findall(r"\(objectSid=([^)]*)\)", "\n".join(searches))]
    assert L.sid_binary(U["amorgan"]["sid"]) in sids, searches
    attrs = set(re.findall(r" SRCH attr=(.*)", log))
    assert attrs == {"mail"}, "the agent asked for %s" % attrs
    assert R.dead_letters(agent) == []
    agent.stop()


# (identifier, email, what it tests)
KINDS = [
    ("CORP\\amorgan", "alex.morgan@example.com", "sam with domain"),
    ("corp\\amorgan", "alex.morgan@example.com", "domain compared case-insensitively"),
    ("amorgan", "alex.morgan@example.com", "bare sam (base_dn)"),
    ("amorgan@corp.example.com", "alex.morgan@example.com", "upn"),
    ("alex.morgan@example.com", "alex.morgan@example.com", "mail"),
    ("amorgan@legacy.example.com", "alex.morgan@example.com", "proxyAddresses smtp: alias"),
    ("AMorgan@Legacy.Example.com", "alex.morgan@example.com", "alias, other case"),
    (U["amorgan"]["sid"], "alex.morgan@example.com", "sid"),
    (U["amorgan"]["guid"], "alex.morgan@example.com", "guid"),
    ("{%s}" % U["amorgan"]["guid"].upper(), "alex.morgan@example.com", "guid in braces"),
    ("2044", "alex.morgan@example.com", "employee id"),
    (U["guest"]["upn"], "jsato@partner.example", "#EXT# guest"),
    ("e.o'neil@corp.example.com", "eimear.oneil@example.com", "apostrophe"),
    ("CORP\\star*(paren)", "star@example.com", "* and ( escaped"),
    ("CORP\\zo\u00eb", "zoe.mueller@example.com", "non-ASCII sam"),
    ("zo\u00eb.m\u00fcller@corp.example.com", "zoe.mueller@example.com", "non-ASCII upn"),
    ("CORP\\jdoe", "john.doe@example.com", "jdoe in corp"),
    ("EMEA\\jdoe", "jane.doe@emea.example.com", "jdoe in emea"),
]

# (identifier, text the unresolved detail must hold)
UNRESOLVED = [
    ("jdoe", "ambiguous"),
    ("CORP\\former", "no such user"),
    ("former@example.com", "no such user"),
    ("CORP\\nomail", "no mail"),
    ("CORP\\admins", "no such user"),
    ("admins@example.com", "no such user"),
    ("OTHER\\amorgan", "not in identity.ldap.domains"),
    ("CORP\\star*", "no such user"),
    ("CORP\\*", "no such user"),
    ("nobody@example.com", "no such user"),
]


def _replay_config(ctx, slapd, name="replay.json", **ldap_kw):
    cfg = {"listen": [{"proto": "udp", "address": "127.0.0.1:0"}], "mappings": [R.MAPPINGS],
           "identity": {"order": ["ldap"], "ldap": L.ldap_section(slapd, **ldap_kw)},
           "dispatch": {"mode": "dry-run"}}
    path = ctx.path(name)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return path


def _replay(ctx, config, users, timeout=30):
    """replay --dry-run of one Splunk line per user -> {user: decision}."""
    data = b"".join(R.splunk_kv("replay %d" % i, u) + b"\n" for i, u in enumerate(users))
    p = subprocess.run(WRAPPER + [AGENT, "replay", "-c", config, "--dry-run", "-"], input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=t(timeout))
    err = p.stderr.decode("utf-8", "replace")
    found = REPORT.search(p.stderr)
    assert not found, "sanitizer/valgrind report (%r):\n%s" % (found.group(0), err[-3000:])
    assert p.returncode == 0, "replay exited %d:\n%s" % (p.returncode, err[-3000:])
    out = [check_json_line(raw, "replay line") for raw in p.stdout.split(b"\n") if raw]
    assert len(out) == len(users), "%d decisions for %d lines:\n%s\n%s" % (
        len(out), len(users), out, err[-2000:])
    return {d["user"]: d for d in out}, err


def test_replay_every_identifier_kind(ctx):
    """replay resolves through LDAP: every kind (sam with and without a
    domain, UPN, mail, smtp: alias in any case, SID, GUID, employee id,
    #EXT# guest, apostrophe, '*' and '(' escaped, non-ASCII, jdoe by
    domain) gives its user's mail; the bare ambiguous jdoe, the disabled
    account, a user without mail, the group, an unknown domain and
    wildcards give none, each with its reason."""
    slapd = L.start_slapd(ctx)
    users = [i for i, _, _ in KINDS] + [i for i, _ in UNRESOLVED]
    got, err = _replay(ctx, _replay_config(ctx, slapd), users)
    problems = []
    for ident, email, what in KINDS:
        d = got.get(ident, {})
        if (d.get("email"), d.get("outcome")) != (email, "would-dispatch"):
            problems.append("%s (%r): %s" % (what, ident, d))
    for ident, why in UNRESOLVED:
        d = got.get(ident, {})
        if d.get("email") is not None or d.get("outcome") != DEAD or \
                why not in (d.get("detail") or ""):
            problems.append("%r: want %s with %r: %s" % (ident, DEAD, why, d))
    assert not problems, "\n".join(problems) + "\n" + err[-1500:]
    # A domain not in the map is answered without asking the server.
    assert not any("amorgan" in s and "OTHER" in s for s in _searches(slapd))


def test_replay_options(ctx):
    """attribute "userPrincipalName" returns the UPN; exclude_disabled
    false finds the disabled account; no domains map sends DOMAIN\\sam to
    base_dn (the Global Catalog's way): CORP\\jdoe is then ambiguous."""
    slapd = L.start_slapd(ctx)
    got, err = _replay(ctx, _replay_config(ctx, slapd, "upn.json", attribute="userPrincipalName",
                                           exclude_disabled=False),
                       ["CORP\\amorgan", "CORP\\former", "alex.morgan@example.com"])
    assert got["CORP\\amorgan"]["email"] == "amorgan@corp.example.com", got
    assert got["CORP\\former"]["email"] == "former@corp.example.com", got
    assert got["alex.morgan@example.com"]["email"] == "amorgan@corp.example.com", got
    got, err = _replay(ctx, _replay_config(ctx, slapd, "gc.json", domains=None),
                       ["CORP\\jdoe", "EMEA\\amorgan"])
    assert got["CORP\\jdoe"]["outcome"] == DEAD and "ambiguous" in got["CORP\\jdoe"]["detail"], \
        got
    assert got["EMEA\\amorgan"]["email"] == "alex.morgan@example.com", got


def test_ambiguous_and_disabled_are_dead_lettered(ctx):
    """The daemon: bare jdoe (two domains) is dead-lettered at once with
    "ambiguous" in its reason, the disabled account and the group as not
    found, never retried; CORP\\jdoe and EMEA\\jdoe reach SafeTitan."""
    slapd, st, cfg = _env(ctx)
    agent = R.start_agent(ctx, cfg)
    tok = token()
    bad = [("ambiguous %s" % tok, "jdoe"), ("disabled %s" % tok, "CORP\\former"),
           ("group %s" % tok, "CORP\\admins")]
    good = [("corp %s" % tok, "CORP\\jdoe"), ("emea %s" % tok, "EMEA\\jdoe")]
    _send(agent, bad + good)
    R.wait_audit(agent, DEAD, len(bad))
    R.wait_audit(agent, "dispatched", len(good))
    assert _delivered(st) == {("corp %s" % tok, "john.doe@example.com"),
                              ("emea %s" % tok, "jane.doe@emea.example.com")}
    dead = {d["rule"]: d for d in R.dead_letters(agent)}
    assert set(dead) == {rule for rule, _ in bad}, dead
    assert "ambiguous" in dead["ambiguous %s" % tok]["detail"], dead
    assert "no such user" in dead["disabled %s" % tok]["detail"], dead
    assert "no such user" in dead["group %s" % tok]["detail"], dead
    assert agent.metric("dispatch_retries_total") == 0
    agent.stop()


def test_metrics_count_ldap_lookups(ctx):
    """/metrics: ldap_lookups_total by result (found, not_found, and error
    while slapd is down), ldap_lookup_seconds (sum and count),
    ldap_connects_total, ldap_connect_failures_total."""
    slapd, st, cfg = _env(ctx)
    agent = R.start_agent(ctx, cfg)
    tok = token()
    _send(agent, [("m found %s" % tok, "CORP\\user20"), ("m found2 %s" % tok, "user22"),
                  ("m nf %s" % tok, "CORP\\nobody")])
    R.wait_audit(agent, "dispatched", 2)
    R.wait_audit(agent, DEAD)
    m = agent.metrics()
    ldap = sorted((k, v) for k, v in m.items() if "ldap" in k)
    assert m.get('rtr_agent_ldap_lookups_total{result="found"}') == 2, ldap
    assert m.get('rtr_agent_ldap_lookups_total{result="not_found"}') == 1, ldap
    assert m.get("rtr_agent_ldap_lookup_seconds_count") == 3, ldap
    # Seconds, not milliseconds: three lookups in a local slapd (the first
    # one connecting, starting TLS and binding) take well under a second
    # each, or some seconds under valgrind, never thousands.
    took = m.get("rtr_agent_ldap_lookup_seconds_sum", -1)
    assert 0 <= took < t(3), "ldap_lookup_seconds_sum %s for 3 local lookups" % took
    assert m.get("rtr_agent_ldap_connects_total", 0) >= 1, ldap
    slapd.stop()
    _send(agent, [("m err %s" % tok, "CORP\\user23")])
    R.wait_audit(agent, "retry")
    assert agent.metric('ldap_lookups_total{result="error"}') >= 1
    assert agent.metric("ldap_connect_failures_total") >= 1
    agent.stop()


def test_starttls_on_ldap_uri(ctx):
    """An ldap:// URI: the agent does StartTLS before binding (slapd logs
    the extended operation and TLS on that connection before the BIND) and
    resolves."""
    slapd, st, cfg = _env(ctx, uris=None)
    cfg["identity"]["ldap"]["uris"] = [slapd.uri]
    agent = R.start_agent(ctx, cfg)
    rule = "starttls %s" % token()
    _send(agent, [(rule, "CORP\\amorgan")])
    R.wait_audit(agent, "dispatched")
    assert _delivered(st) == {(rule, "alex.morgan@example.com")}
    conns = _bound_conns(slapd)
    assert conns, slapd.log_text()[-2000:]
    for port, lines in conns.values():
        starttls = [i for i, ln in enumerate(lines) if "1.3.6.1.4.1.1466.20037" in ln or
                    "STARTTLS" in ln]
        bind = [i for i, ln in enumerate(lines) if " BIND dn=" in ln]
        assert port == slapd.port and starttls and starttls[0] < bind[0] and \
            _tls_before_bind(lines), "\n".join(lines)
    agent.stop()


def _refused(ctx, slapd, st, cfg, what, uri, name):
    """An alert waits ("retry" with the lookup error naming uri), is
    neither dead-lettered nor sent, and slapd never saw a bind (the
    password was not sent through, or after, the refused TLS session)."""
    agent = R.start_agent(ctx, cfg, name=name)
    rule = "%s %s" % (what, token())
    _send(agent, [(rule, "CORP\\amorgan")])
    lines = R.wait_audit(agent, "retry", 2, timeout=15)
    details = [a.get("detail") or "" for a in R.outcomes(lines, "retry")]
    assert any("no directory server reachable" in d and uri in d for d in details), details
    assert R.dead_letters(agent) == [] and st.requests() == []
    assert _binds(slapd) == [], "slapd saw a bind through a refused TLS session"
    stderr = agent.stderr_bytes().decode("utf-8", "replace")
    assert "identity.ldap" in stderr and uri in stderr, agent.stderr_tail()
    agent.stop()
    return details


def test_wrong_ca_refused(ctx):
    """ca_file another CA: the TLS handshake fails, over LDAPS and over
    StartTLS (no fallback to a plaintext bind), and the alert waits."""
    slapd, st, cfg = _env(ctx)
    cfg["identity"]["ldap"]["ca_file"] = slapd.wrong_ca_file
    _refused(ctx, slapd, st, cfg, "wrong ca", slapd.tls_uri, "ldaps")
    cfg["identity"]["ldap"]["uris"] = [slapd.uri]
    _refused(ctx, slapd, st, cfg, "wrong ca starttls", slapd.uri, "starttls")


def test_wrong_hostname_refused(ctx):
    """slapd's certificate is for wrong.example (same CA): refused by the
    host name check, the alert waits."""
    slapd, st, cfg = _env(ctx, slapd=L.start_slapd(ctx, cert="wrong-name"))
    _refused(ctx, slapd, st, cfg, "wrong name", slapd.tls_uri, "ldaps")


def test_wrong_password_logged_once(ctx):
    """A wrong password: slapd refuses the bind several times (backoff,
    alerts retrying) but the agent logs "Invalid credentials" once; the
    alerts wait (never dead-lettered); ldap_bind_failures_total counts."""
    slapd, st, cfg = _env(ctx)
    cfg["identity"]["ldap"]["bind_password_file"] = slapd.wrong_password_file
    agent = R.start_agent(ctx, cfg)
    tok = token()
    _send(agent, [("badpw %d %s" % (n, tok), "CORP\\user%d" % n) for n in range(20, 25)])
    wait_until(lambda: len([b for b in _binds(slapd) if b[1] == 49]) >= 3, 15,
               "three refused binds at slapd")
    R.wait_audit(agent, "retry", 10)
    assert st.requests() == [] and R.dead_letters(agent) == []
    stderr = agent.stderr_bytes().decode("utf-8", "replace")
    lines = [ln for ln in stderr.splitlines() if "Invalid credentials" in ln]
    binds = [ln for ln in lines if "bind as %s" % L.SVC_DN in ln]
    assert len(binds) == 1 and slapd.tls_uri in binds[0], \
        "want one bind error line, got:\n%s" % "\n".join(lines)
    # Three attempts refused, ten retries: besides the error, at most the
    # resolver's first "no directory server reachable" warning and the
    # delivery side's (rate-limited) "not delivered yet" line name it.
    assert len(lines) <= 3, "the refusal is logged per attempt or alert:\n%s" % "\n".join(lines)
    assert agent.metric("ldap_bind_failures_total") >= 2
    assert L.SVC_PASSWORD not in stderr and L.WRONG_PASSWORD not in stderr
    agent.stop()


test_wrong_password_logged_once.timeout = 40


def test_slapd_stopped_then_restarted(ctx):
    """slapd stops mid-run: alerts for users not yet cached wait (retry),
    none dead-lettered; once slapd is back on the same ports every alert
    reaches SafeTitan exactly once."""
    slapd, st, cfg = _env(ctx)
    agent = R.start_agent(ctx, cfg)
    tok = token()
    _send(agent, [("before %s" % tok, "CORP\\user20")])
    R.wait_audit(agent, "dispatched")
    slapd.stop()
    during = [("during %d %s" % (n, tok), "CORP\\user%d" % n) for n in range(21, 31)]
    _send(agent, during)
    R.wait_audit(agent, "retry", len(during), timeout=15)
    assert len(st.requests()) == 1 and R.dead_letters(agent) == []
    time.sleep(t(1))
    slapd.start()
    R.wait_audit(agent, "dispatched", 1 + len(during), timeout=40)
    bodies = [json.loads(r["body"]) for r in st.requests()]
    rules = sorted(b["event"] for b in bodies)
    assert rules == sorted(["before %s" % tok] + [r for r, _ in during]), rules
    assert {(b["event"], b["email"]) for b in bodies} >= {
        (r, "user%s.mail@example.com" % u.split("user")[1]) for r, u in during}
    assert R.dead_letters(agent) == []
    assert agent.metric("ldap_connects_total") >= 2
    agent.stop()


test_slapd_stopped_then_restarted.timeout = 70


def test_slapd_paused_times_out_then_resolves(ctx):
    """slapd stopped with SIGSTOP (TCP accepted, no answer; timeout_s 1,
    connect_timeout_s 3): the LDAP lookups fail with "no answer in 1s" and
    wait, while an alert for a user of the static directory (order static,
    ldap) is still delivered at once: the delivery loop never waits for the
    hung server, not even while a reconnect hangs in its TLS handshake.
    After SIGCONT every alert is delivered."""
    slapd, st, cfg = _env(ctx, order=("static", "ldap"), timeout_s=1, connect_timeout_s=3)
    cfg["identity"]["static"] = {"file": R.USERS_CSV}
    agent = R.start_agent(ctx, cfg)
    tok = token()
    _send(agent, [("warm %s" % tok, "CORP\\user20")])
    R.wait_audit(agent, "dispatched")
    slapd.pause()
    try:
        slow = [("slow %d %s" % (n, tok), "CORP\\user%d" % n) for n in (21, 22, 23)]
        _send(agent, slow)
        lines = R.wait_audit(agent, "retry", 3, timeout=10)
        details = [a.get("detail") or "" for a in R.outcomes(lines, "retry")]
        assert any("no answer in 1s" in d and slapd.tls_uri in d for d in details), details
        assert len(st.requests()) == 1
        # The retries now reconnect, and the TLS handshake hangs for up to 3 s.
        time.sleep(t(1.2))
        t0 = time.monotonic()
        _send(agent, [("static %s" % tok, "bkhan@example.com")])
        R.wait_requests(st, 2, timeout=5)
        took = time.monotonic() - t0
        assert took < t(1.5), "a static lookup took %.1fs while slapd hung" % took
        assert ("static %s" % tok, "bilal.khan@example.com") in _delivered(st)
    finally:
        slapd.resume()
    R.wait_audit(agent, "dispatched", 5, timeout=30)
    assert {r for r, _ in _delivered(st)} == {"warm %s" % tok, "static %s" % tok} | {
        r for r, _ in slow}
    assert R.dead_letters(agent) == []
    agent.stop()


test_slapd_paused_times_out_then_resolves.timeout = 60


def test_lookups_of_one_user_share_one_search(ctx):
    """Twenty alerts about one user while slapd is paused (its first
    search in flight): the identity layer asks once and the other nineteen
    join that lookup (identity_coalesced_total 19), so slapd sees a single
    search for the user, and after SIGCONT all twenty are delivered with
    the email, each audited as resolved by ldap."""
    slapd, st, cfg = _env(ctx, timeout_s=20)
    agent = R.start_agent(ctx, cfg)
    tok = token()
    _send(agent, [("warm %s" % tok, "CORP\\user20")])
    R.wait_audit(agent, "dispatched")
    misses = agent.metric("identity_cache_misses_total")
    slapd.pause()
    try:
        _send(agent, [("same %d %s" % (n, tok), "CORP\\user21") for n in range(20)])
        agent.wait_metric("identity_cache_misses_total", misses + 20, timeout=10)
        assert agent.metric("identity_coalesced_total") == 19
    finally:
        slapd.resume()
    lines = R.wait_audit(agent, "dispatched", 21, timeout=20)
    dispatched = R.outcomes(lines, "dispatched")
    assert all(a.get("resolver") == "ldap" for a in dispatched
               if a["rule"].startswith("same")), dispatched
    assert [m for m in _searches(slapd) if "user21" in m] and \
        len([m for m in _searches(slapd) if "user21" in m]) == 1, _searches(slapd)
    assert len(st.requests()) == 21
    agent.stop()


class _HalfAnswerServer:
    """A plaintext LDAP server on 127.0.0.1 that accepts any simple bind,
    then answers each search with the first 6 bytes of a SearchResultDone
    and nothing more (a server that hangs mid-message)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    @staticmethod
    def _message(c):
        head = c.recv(2)
        if len(head) < 2:
            return None
        n = head[1]
        if n & 0x80:
            n = int.from_bytes(c.recv(n & 0x7f), "big")
        body = b""
        while len(body) < n:
            more = c.recv(n - len(body))
            if not more:
                return None
            body += more
        return body

    def _serve(self, c):
        try:
            while True:
                body = self._message(c)
                if body is None:
                    return
                msgid, op = body[2], body[3]  # INTEGER of one byte, then the op's tag
                if op == 0x60:  # BindRequest -> BindResponse success
                    c.sendall(bytes([0x30, 0x0c, 0x02, 0x01, msgid, 0x61, 0x07, 0x0a, 0x01, 0x00,
                                     0x04, 0x00, 0x04, 0x00]))
                elif op == 0x63:  # SearchRequest -> half a SearchResultDone
                    c.sendall(bytes([0x30, 0x0c, 0x02, 0x01, msgid, 0x65]))
        except OSError:
            return

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def close(self):
        for c in [self.sock] + self.conns:
            c.close()


def test_half_an_answer_does_not_stop_the_loop(ctx):
    """A directory server that sends half of a search's answer and then
    nothing: the agent reads what came without waiting for the rest (its
    connection is non-blocking), so the lookup fails at its timeout ("no
    answer in 1s") and is retried, and an alert for a user of the static
    directory is delivered meanwhile. A blocking read would hold the
    delivery loop, its timers and every other alert."""
    server = _HalfAnswerServer()
    try:
        _half_answer(ctx, server)
    finally:
        server.close()


def _half_answer(ctx, server):
    st = R.standin(ctx)
    cfg = R.live_config(ctx, st, order=["static", "ldap"], identity={"ldap": {
        "uris": ["ldap://127.0.0.1:%d" % server.port], "base_dn": L.BASE_DN,
        "bind_dn": "cn=svc-rtr,dc=example,dc=com",
        "bind_password_file": R.write_secret(ctx, "ldap-pw", "pw"),
        "insecure_plaintext": True, "timeout_s": 1, "connect_timeout_s": 2}})
    agent = R.start_agent(ctx, cfg)
    tok = token()
    _send(agent, [("half %s" % tok, "CORP\\user21")])
    wait_until(lambda: server.conns, t(5), "the agent to connect")
    time.sleep(t(0.3))  # the search is out, half answered
    t0 = time.monotonic()
    _send(agent, [("static %s" % tok, "bkhan@example.com")])
    R.wait_requests(st, 1, timeout=5)
    took = time.monotonic() - t0
    assert took < t(1.5), "a static lookup took %.1fs behind the half answer" % took
    lines = R.wait_audit(agent, "retry", 1, timeout=10)
    details = [a.get("detail") or "" for a in R.outcomes(lines, "retry")]
    assert any("no answer in 1s" in d for d in details), details
    assert R.dead_letters(agent) == []
    agent.stop()


def test_failover_to_second_uri(ctx):
    """uris: a closed port first, slapd second: resolved through the
    second; a third alert later still resolves."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    slapd, st, cfg = _env(ctx)
    cfg["identity"]["ldap"]["uris"] = ["ldaps://127.0.0.1:%d" % closed, slapd.tls_uri]
    agent = R.start_agent(ctx, cfg)
    tok = token()
    _send(agent, [("failover %s" % tok, "CORP\\amorgan"), ("failover2 %s" % tok, "CORP\\user20")])
    R.wait_audit(agent, "dispatched", 2)
    assert _delivered(st) == {("failover %s" % tok, "alex.morgan@example.com"),
                              ("failover2 %s" % tok, "user20.mail@example.com")}
    assert R.dead_letters(agent) == []
    agent.stop()


def test_search_references_are_not_chased(ctx):
    """A referral object under the base (AD answers a subtree search of the
    forest root with search references too): referrals are off, so the
    reference is neither followed (nothing connects to its URI) nor
    counted as a second match; a user that is not there is "no such user",
    not an error."""
    with socket.socket() as trap:
        trap.bind(("127.0.0.1", 0))
        trap.listen(8)
        trap.setblocking(False)
        slapd = L.start_slapd(ctx, referral_to="ldap://127.0.0.1:%d" % trap.getsockname()[1])
        slapd, st, cfg = _env(ctx, slapd=slapd)
        agent = R.start_agent(ctx, cfg)
        tok = token()
        _send(agent, [("ref sam %s" % tok, "amorgan"), ("ref mail %s" % tok,
                                                       "alex.morgan@example.com"),
                      ("ref ghost %s" % tok, "nobody@example.com")])
        R.wait_audit(agent, "dispatched", 2)
        R.wait_audit(agent, DEAD)
        assert _delivered(st) == {("ref sam %s" % tok, "alex.morgan@example.com"),
                                  ("ref mail %s" % tok, "alex.morgan@example.com")}
        dead = R.dead_letters(agent)
        assert len(dead) == 1 and "no such user" in dead[0]["detail"], dead
        try:
            trap.accept()[0].close()
            raise AssertionError("the agent followed the search reference")
        except BlockingIOError:
            pass
        agent.stop()


def test_idle_connection_closed_then_reopened(ctx):
    """idle_timeout_s 1: the connection is closed once idle (slapd logs
    its end), and the next lookup connects and binds again."""
    slapd, st, cfg = _env(ctx, idle_timeout_s=1)
    agent = R.start_agent(ctx, cfg)
    tok = token()
    _send(agent, [("idle 1 %s" % tok, "CORP\\user20")])
    R.wait_audit(agent, "dispatched")
    conn = list(_bound_conns(slapd))[0]
    wait_until(lambda: re.search(r"conn=%s fd=\d+ closed" % conn, slapd.log_text()), 6,
               "slapd to see the idle connection %s closed" % conn)
    _send(agent, [("idle 2 %s" % tok, "CORP\\user21")])
    R.wait_audit(agent, "dispatched", 2)
    assert len(_bound_conns(slapd)) == 2
    assert agent.metric("ldap_connects_total") == 2
    agent.stop()


def test_sigterm_while_slapd_hangs(ctx):
    """SIGTERM while slapd is stopped (SIGSTOP) with a search outstanding
    (timeout_s 30) on one agent and a connection attempt hanging in its TLS
    handshake (connect_timeout_s 20) on another: both exit within 5 s with
    status 0 and no sanitizer report; the alerts stay in the spool."""
    slapd, st, cfg = _env(ctx, timeout_s=30, connect_timeout_s=20)
    searching = R.start_agent(ctx, cfg, name="searching")
    tok = token()
    _send(searching, [("warm %s" % tok, "CORP\\user20")])
    R.wait_audit(searching, "dispatched")
    slapd.pause()
    try:
        _send(searching, [("hang search %s" % tok, "CORP\\user21")])
        connecting = R.start_agent(ctx, cfg, name="connecting")
        _send(connecting, [("hang connect %s" % tok, "CORP\\user22")])
        time.sleep(t(1))
        for agent in (searching, connecting):
            t0 = time.monotonic()
            agent.stop(timeout=5)
            took = time.monotonic() - t0
            assert took < t(5), "%s took %.1fs to stop" % (agent.dir, took)
    finally:
        slapd.resume()
    assert len(st.requests()) == 1


# ---------------------------------------------------------------- SASL EXTERNAL
# slapd with client_auth demands a client certificate of the test CA and
# maps the subject of slapd.client_cert_file to the service account, the
# only identity that may read the users.

def _sasl_section(slapd, cert="client", **kw):
    """ldap_section kw for SASL EXTERNAL with one of slapd's client
    certificates ("client", "wrong_ca_client" or "unmapped_client"):
    no bind_dn, no password."""
    return dict(kw, bind_dn=None, bind_password_file=None, sasl_external=True,
                client_certificate_file=getattr(slapd, cert + "_cert_file"),
                client_key_file=getattr(slapd, cert + "_key_file"))


def _whoami(slapd, cert, uri, starttls=False):
    """ldapwhoami -Y EXTERNAL with one of slapd's client certificates ->
    (exit status, output)."""
    env = dict(os.environ, LDAPTLS_CACERT=slapd.ca_file, LDAPTLS_REQCERT="demand",
               LDAPTLS_CERT=getattr(slapd, cert + "_cert_file"),
               LDAPTLS_KEY=getattr(slapd, cert + "_key_file"))
    p = subprocess.run([tool("ldapwhoami"), "-Y", "EXTERNAL", "-H", uri] +
                       (["-ZZ"] if starttls else []), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=t(10))
    return p.returncode, p.stdout.decode("utf-8", "replace")


def test_fixture_sasl_external(ctx):
    """The client_auth slapd, with ldapwhoami -Y EXTERNAL: the client
    certificate is the service account (LDAPS and StartTLS); one of the
    test CA for another subject is itself (and reads nothing); one of the
    other CA ends in the handshake; without a certificate even a simple
    bind with the right password is refused."""
    slapd = L.start_slapd(ctx, client_auth=True)
    want = "dn:" + L.SVC_DN
    for uri, starttls in ((slapd.tls_uri, False), (slapd.uri, True)):
        rc, out = _whoami(slapd, "client", uri, starttls)
        assert rc == 0 and want in out, "%s: %d %s" % (uri, rc, out)
    rc, out = _whoami(slapd, "unmapped_client", slapd.tls_uri)
    assert rc == 0 and "dn:" + L.UNMAPPED_DN in out, out
    for uri, starttls in ((slapd.tls_uri, False), (slapd.uri, True)):
        rc, out = _whoami(slapd, "wrong_ca_client", uri, starttls)
        assert rc != 0 and "dn:" not in out, "%s: a wrong CA's certificate: %s" % (uri, out)
    assert slapd.log_text().count("TLS negotiation failure") >= 2
    assert [dn for dn, _ in slapd.search(_filter("sam", "amorgan"))] == [U["amorgan"]["dn"]]
    p = subprocess.run([tool("ldapwhoami"), "-x", "-H", slapd.tls_uri, "-D", slapd.svc_dn, "-y",
                        slapd.password_file], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=t(10),
                       env=dict(os.environ, LDAPTLS_CACERT=slapd.ca_file))
    assert p.returncode != 0, "no client certificate, yet: %s" % p.stdout


def _sasl_bind_problems(conn_lines):
    """What is wrong with one bound connection's log lines for a SASL
    EXTERNAL bind as the client certificate, mapped to the service
    account, after TLS: a list of texts (empty when right)."""
    text = "\n".join(conn_lines)
    problems = []
    if not re.search(r' BIND dn="" method=163$', text, re.M):
        problems.append("no SASL bind (method=163)")
    if 'BIND authcid="%s"' % L.CLIENT_DN not in text:
        problems.append("authcid is not the certificate's subject %s" % L.CLIENT_DN)
    if 'BIND dn="%s" mech=EXTERNAL ' % L.SVC_DN not in text:
        problems.append("not mapped to %s with mech=EXTERNAL" % L.SVC_DN)
    if " RESULT tag=97 err=0 " not in text:
        problems.append("the bind did not succeed")
    if not _tls_before_bind(conn_lines):
        problems.append("no TLS before the bind")
    return problems


def test_sasl_external_over_ldaps_and_starttls(ctx):
    """sasl_external with the client certificate and key (no bind_dn, no
    password): an agent on LDAPS and one on an ldap:// URI (StartTLS)
    each resolve their alert and dispatch it with the email; each of their
    connections at slapd is a SASL EXTERNAL bind whose authcid is the
    certificate's subject, mapped to the service account, after TLS (and,
    on ldap://, the STARTTLS operation); slapd saw no simple bind."""
    slapd = L.start_slapd(ctx, client_auth=True)
    slapd, st, cfg = _env(ctx, slapd=slapd, **_sasl_section(slapd))
    tok = token()
    want = set()
    for name, uri in (("ldaps", slapd.tls_uri), ("starttls", slapd.uri)):
        cfg["identity"]["ldap"]["uris"] = [uri]
        agent = R.start_agent(ctx, cfg, name=name)
        rule = "sasl %s %s" % (name, tok)
        _send(agent, [(rule, "CORP\\amorgan")])
        lines = R.wait_audit(agent, "dispatched")
        want.add((rule, "alex.morgan@example.com"))
        assert _delivered(st) == want, _delivered(st)
        assert [a.get("resolver") for a in R.outcomes(lines, "dispatched")] == ["ldap"], lines
        stderr = agent.stderr_bytes().decode("utf-8", "replace")
        assert "connected to %s as the client certificate (SASL EXTERNAL)" % uri in stderr, \
            agent.stderr_tail()
        assert R.dead_letters(agent) == []
        agent.stop()
    conns = _bound_conns(slapd)
    assert {port for port, _ in conns.values()} == {slapd.tls_port, slapd.port}, conns
    problems = []
    for conn, (port, lines) in conns.items():
        for p in _sasl_bind_problems(lines):
            problems.append("conn %s (port %s): %s" % (conn, port, p))
        if port == slapd.port and not any(" STARTTLS" in ln for ln in lines):
            problems.append("conn %s on ldap:// without STARTTLS" % conn)
    assert not problems, "\n".join(problems) + "\n" + slapd.log_text()[-3000:]
    log = slapd.log_text()
    assert "method=128" not in log and "mech=SIMPLE" not in log, "slapd saw a simple bind"
    assert any("sAMAccountName=amorgan" in s for s in _searches(slapd))


def test_sasl_external_wrong_ca_certificate_refused(ctx):
    """sasl_external with a client certificate of another CA (same
    subject): slapd ends the TLS handshake, over LDAPS and over StartTLS;
    no bind reaches slapd, the alert waits (retry, never dead-lettered)
    and the agent logs the failed connection with the URI."""
    slapd = L.start_slapd(ctx, client_auth=True)
    slapd, st, cfg = _env(ctx, slapd=slapd, **_sasl_section(slapd, "wrong_ca_client"))
    for what, uri, name in (("wrong ca client", slapd.tls_uri, "ldaps"),
                            ("wrong ca client starttls", slapd.uri, "starttls")):
        failures = slapd.log_text().count("TLS negotiation failure")
        cfg["identity"]["ldap"]["uris"] = [uri]
        _refused(ctx, slapd, st, cfg, what, uri, name)
        assert slapd.log_text().count("TLS negotiation failure") > failures, \
            "%s: slapd did not refuse a handshake:\n%s" % (uri, slapd.log_text()[-2000:])
    assert "mech=EXTERNAL" not in slapd.log_text()


def test_sasl_external_unmapped_certificate_waits(ctx):
    """sasl_external with a client certificate of the test CA whose
    subject slapd maps to nothing: the bind succeeds as that subject, which
    may not read the base, so every search answers noSuchObject; the
    alerts wait (retry, the lookup error naming the URI, logged), never
    dead-lettered as "no such user" nor sent."""
    slapd = L.start_slapd(ctx, client_auth=True)
    slapd, st, cfg = _env(ctx, slapd=slapd, **_sasl_section(slapd, "unmapped_client"))
    agent = R.start_agent(ctx, cfg)
    tok = token()
    _send(agent, [("unmapped sam %s" % tok, "CORP\\amorgan"),
                  ("unmapped upn %s" % tok, "amorgan@corp.example.com")])
    lines = R.wait_audit(agent, "retry", 4, timeout=15)
    details = [a.get("detail") or "" for a in R.outcomes(lines, "retry")]
    assert all("No such object" in d and slapd.tls_uri in d for d in details), details
    assert {a["rule"] for a in R.outcomes(lines, "retry")} == {
        "unmapped sam %s" % tok, "unmapped upn %s" % tok}, lines
    assert R.dead_letters(agent) == [] and st.requests() == [] and not R.outcomes(lines, DEAD)
    log = slapd.log_text()
    assert 'BIND dn="%s" mech=EXTERNAL ' % L.UNMAPPED_DN in log and L.SVC_DN not in log, \
        log[-2000:]
    assert re.search(r"SEARCH RESULT tag=101 err=32 .*nentries=0", log), log[-2000:]
    stderr = agent.stderr_bytes().decode("utf-8", "replace")
    assert re.search(r"not delivered yet \(ldap: search on %s failed: No such object\)"
                     % re.escape(slapd.tls_uri), stderr), agent.stderr_tail()
    agent.stop()


def _sasl_check_cases(ctx, slapd):
    """(config name, ldap keys to change, the key check must name, its
    message) for test_check_sasl_external."""
    return [
        ("sasl-nocert.json", {"client_certificate_file": None, "client_key_file": None},
         "identity.ldap.client_certificate_file", "required with sasl_external"),
        ("sasl-nocert.json", {"client_certificate_file": None, "client_key_file": None},
         "identity.ldap.client_key_file", "required with sasl_external"),
        ("sasl-nokey.json", {"client_key_file": None}, "identity.ldap.client_key_file",
         "required with client_certificate_file"),
        ("sasl-and-dn.json", {"bind_dn": slapd.svc_dn, "bind_password_file": slapd.password_file},
         "identity.ldap.bind_dn", "sasl_external is set too"),
        ("sasl-missing.json", {"client_certificate_file": ctx.path("no-such-cert.pem")},
         "identity.ldap.client_certificate_file", ""),
        # Files that open but make no TLS context: what a start refuses.
        ("sasl-not-pem.json", {"client_certificate_file": slapd.password_file},
         "identity.ldap", "the TLS context does not load"),
        ("sasl-other-key.json", {"client_key_file": slapd.wrong_ca_client_key_file},
         "identity.ldap", "the TLS context does not load"),
    ]


def test_check_sasl_external(ctx):
    """check passes sasl_external with a client certificate and key, and
    check --probe binds with them (SASL EXTERNAL at slapd) and finds the
    email; sasl_external without a client certificate fails naming
    client_certificate_file and client_key_file, without the key naming
    client_key_file, with bind_dn too naming bind_dn, with a certificate
    file that does not exist naming it, with a certificate that is not PEM
    or a key that is not the certificate's (the TLS context a start makes
    does not load): exit 1, "test failed"."""
    slapd = L.start_slapd(ctx, client_auth=True)
    slapd, st, cfg = _env(ctx, slapd=slapd, **_sasl_section(slapd))
    cfg["spool"]["dir"] = ctx.path("spool")
    path = _write_config(ctx, "sasl.json", cfg)
    rc, err = run_agent("check", "-c", path)
    assert rc == 0 and "test is successful" in err, err[-2000:]
    rc, err = run_agent("check", "-c", path, "--probe", "CORP\\amorgan", timeout=30)
    assert rc == 0 and re.search(r"probe: identity: CORP\\{1,2}amorgan -> "
                                 r"alex\.morgan@example\.com \(", err), err[-2000:]
    assert 'BIND dn="%s" mech=EXTERNAL ' % L.SVC_DN in slapd.log_text()
    problems = []
    for name, kw, key, message in _sasl_check_cases(ctx, slapd):
        bad = json.loads(json.dumps(cfg))
        for k, v in kw.items():
            if v is None:
                bad["identity"]["ldap"].pop(k, None)
            else:
                bad["identity"]["ldap"][k] = v
        rc, err = run_agent("check", "-c", _write_config(ctx, name, bad))
        named = [ln for ln in err.splitlines() if key in ln and message in ln]
        if rc != 1 or not named or "test failed" not in err:
            problems.append("%s: exit %d, want 1 naming %s (%r):\n%s" % (
                name, rc, key, message, err[-800:]))
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- check

def _write_config(ctx, name, cfg):
    path = ctx.path(name)
    with open(path, "w") as f:
        json.dump(dict(cfg, listen=[{"proto": "udp", "address": "127.0.0.1:0"}]), f)
    return path


def test_check_ldap_section(ctx):
    """check passes a complete ldap section; fails naming the key for a
    URI that is not ldap[s]://, a URI with a DN part, no URI, no
    credential, a bind_dn without its password file, a password file or
    a ca_file that does not exist (run refuses the missing password file
    too); warns about insecure_plaintext."""
    slapd = L.start_slapd(ctx)
    st = R.standin(ctx)
    base = R.live_config(ctx, st, users=None, order=["ldap"],
                         identity={"ldap": L.ldap_section(slapd)})
    rc, err = run_agent("check", "-c", _write_config(ctx, "good.json", base))
    assert rc == 0 and "test is successful" in err, err[-2000:]

    def variant(name, **kw):
        cfg = json.loads(json.dumps(base))
        for k, v in kw.items():
            if v is None:
                cfg["identity"]["ldap"].pop(k, None)
            else:
                cfg["identity"]["ldap"][k] = v
        return run_agent("check", "-c", _write_config(ctx, name, cfg))

    cases = [
        ("http.json", {"uris": ["https://127.0.0.1:636"]}, "identity.ldap.uris[0]"),
        ("dn.json", {"uris": [slapd.tls_uri + "/dc=example,dc=com"]}, "identity.ldap.uris[0]"),
        ("nouris.json", {"uris": []}, "identity.ldap.uris"),
        ("nocred.json", {"bind_dn": None, "bind_password_file": None}, "no credential"),
        ("nopw.json", {"bind_password_file": None}, "identity.ldap.bind_password_file"),
        ("missingpw.json", {"bind_password_file": ctx.path("no-such-file")},
         "identity.ldap.bind_password_file"),
        ("badca.json", {"ca_file": ctx.path("no-such-ca.pem")}, "identity.ldap.ca_file"),
    ]
    problems = []
    for name, kw, want in cases:
        rc, err = variant(name, **kw)
        if rc != 1 or want not in err or "test failed" not in err:
            problems.append("%s: exit %d, want 1 naming %r:\n%s" % (name, rc, want, err[-800:]))
    path = ctx.path("missingpw.json")
    rc, err = run_agent("run", "-c", path)
    if rc != 1 or "identity.ldap.bind_password_file" not in err:
        problems.append("run with a missing password file: exit %d:\n%s" % (rc, err[-800:]))
    rc, err = variant("plain.json", uris=[slapd.uri], insecure_plaintext=True)
    if rc != 0 or "identity.ldap.insecure_plaintext" not in err:
        problems.append("insecure_plaintext: exit %d, no warning:\n%s" % (rc, err[-800:]))
    assert not problems, "\n".join(problems)


def test_check_probe_resolves_through_ldap(ctx):
    """check --probe CORP\\amorgan binds and searches slapd and prints the
    email; a user it lacks is "not found" (exit 1); a
    wrong password names the bind failure (exit 1)."""
    slapd, st, cfg = _env(ctx)
    cfg["spool"]["dir"] = ctx.path("spool")
    path = _write_config(ctx, "probe.json", cfg)
    rc, err = run_agent("check", "-c", path, "--probe", "CORP\\amorgan", timeout=30)
    assert rc == 0, err[-2000:]
    # The log escapes a backslash as two.
    assert re.search(r"probe: identity: CORP\\{1,2}amorgan -> alex\.morgan@example\.com \(",
                     err), err[-2000:]
    assert any("sAMAccountName=amorgan" in s for s in _searches(slapd))
    assert st.requests() == []
    rc, err = run_agent("check", "-c", path, "--probe", "CORP\\nobody", timeout=30)
    assert rc == 1 and re.search(r"probe: identity: CORP\\{1,2}nobody: not found", err) and \
        "no such user" in err, err[-2000:]
    cfg["identity"]["ldap"]["bind_password_file"] = slapd.wrong_password_file
    path = _write_config(ctx, "probe-wrong.json", cfg)
    rc, err = run_agent("check", "-c", path, "--probe", "CORP\\amorgan", timeout=30)
    assert rc == 1 and "Invalid credentials" in err, err[-2000:]


# Under valgrind (tests/integration/run.py): these start no agent (the
# fixture's own tests) or only short-lived check runs, which the ASan run
# covers; valgrind would only repeat process start-ups.
for _fn in (test_fixture_answers_the_filters, test_fixture_transport_and_lifecycle,
            test_fixture_sasl_external, test_check_ldap_section, test_check_sasl_external,
            test_check_probe_resolves_through_ldap):
    _fn.valgrind_skip = "no agent, or only check: covered by the ASan run"
# A timing test that mostly waits for timeouts; the non-blocking reads it
# relies on run under valgrind in test_half_an_answer_does_not_stop_the_loop.
test_slapd_paused_times_out_then_resolves.valgrind_skip = "waits for timeouts: its paths run " \
    "under valgrind in test_half_an_answer_does_not_stop_the_loop"
