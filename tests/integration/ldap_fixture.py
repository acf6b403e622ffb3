"""A private OpenLDAP slapd for the LDAP resolver's tests (issue 14): an
Active Directory-like directory (data/ldap/ad-lite.schema) on 127.0.0.1,
one per test, in the test's folder. Not a test module (run.py collects only
test_*.py).

Each Slapd has its own slapd.conf (data/ldap/slapd.conf.in), an mdb
database filled with slapadd before the first start, and listens on
ldap://127.0.0.1:PORT (StartTLS offered) and ldaps://127.0.0.1:TLS_PORT
with a server certificate from the harness's test CA (harness.certs():
localhost, 127.0.0.1, ::1) or, with cert="wrong-name", one of the same CA
for wrong.example only. With client_auth=True it also demands a client
certificate of the test CA (TLSVerifyClient demand) and maps the subject
of Slapd.client_cert_file to the service account (authz-regexp), for SASL
EXTERNAL binds. It runs as the current user; the system slapd, its
configuration and /var/lib/ldap are never used.

API:
  need_slapd()                     Skip unless slapd, slapadd and ldapsearch are installed
  start_slapd(ctx, cert="server", name="slapd", referral_to=None, plain_users=0,
              client_auth=False)
                                   -> a started Slapd, stopped when the test ends;
                                   referral_to=URI adds a referral object (search
                                   references in every subtree search of the base);
                                   plain_users=N adds N users bench0.. (see plain_user)
                                   and indexes the attributes the filters ask for;
                                   client_auth=True: client certificates demanded,
                                   the one below mapped to svc_dn
  Slapd.start() / stop() / restart()   same ports, same data
  Slapd.pause() / resume()         SIGSTOP / SIGCONT: a server that accepts TCP
                                   connections (the kernel does) but never answers
  Slapd.uri / tls_uri              "ldap://127.0.0.1:P" / "ldaps://127.0.0.1:P2"
  Slapd.port / tls_port
  Slapd.svc_dn, password_file      the service account and its password (no newline)
  Slapd.wrong_password_file        a password slapd refuses for svc_dn
  Slapd.ca_file                    the CA that signed the server certificate
  Slapd.wrong_ca_file              another CA (verification must fail)
  Slapd.client_cert_file, client_key_file
                                   with client_auth: a client certificate of the test
                                   CA for CLIENT_DN, which slapd maps to svc_dn
  Slapd.wrong_ca_client_cert_file, wrong_ca_client_key_file
                                   the same subject from the wrong CA (handshake refused)
  Slapd.unmapped_client_cert_file, unmapped_client_key_file
                                   a test CA certificate for UNMAPPED_DN: accepted,
                                   but its SASL EXTERNAL identity is itself (reads nothing)
  Slapd.search(filter, ...)        ldapsearch (-x, verified TLS; with client_auth, the
                                   client certificate too) -> [(dn, {attr: [values]})]
  Slapd.log_text()                 slapd's own log (-d stats: connections, binds, searches)
  Slapd.plain_users                [plain_user(n) for each n < plain_users]
  plain_user(n)                    user bench<n> of corp, as a USERS value
  ldap_section(slapd, **kw)        -> an identity.ldap config section for slapd (kw override)
  BASE_DN, CORP_DN, EMEA_DN, SVC_DN, CLIENT_DN, UNMAPPED_DN, USERS (by key),
  sid_binary(), guid_binary()
"""
import base64
import hashlib
import os
import signal
import socket
import string
import subprocess
import time
import uuid

import harness
from harness import Skip, free_port, t, tool, wait_until

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "ldap")
BASE_DN = "dc=example,dc=com"
CORP_DN = "dc=corp," + BASE_DN
EMEA_DN = "dc=emea," + BASE_DN
SVC_DN = "cn=svc-rtr," + BASE_DN
ROOT_DN = "cn=admin," + BASE_DN
# The subjects of the client certificates (as slapd writes them, RFC 4514
# order) and the openssl -subj making each.
CLIENT_DN = "cn=rtr-agent,ou=services,o=example"
UNMAPPED_DN = "cn=stranger,ou=services,o=example"
_CLIENT_SUBJ = {CLIENT_DN: "/O=example/OU=services/CN=rtr-agent",
                UNMAPPED_DN: "/O=example/OU=services/CN=stranger"}
SVC_PASSWORD = "svc-SECRET-Lq7Wm2Rx9Tz4"
WRONG_PASSWORD = "not-the-password-8Hd3"
ROOT_PASSWORD = "root-SECRET-Vb6Nc1"

CORP_SID = "S-1-5-21-1004336348-1177238915-682003330-"
EMEA_SID = "S-1-5-21-3623811015-3361044348-30300820-"


def sid_binary(sid):
    """AD's binary objectSid of "S-R-A-S1-...": revision, count, 48-bit
    big-endian authority, little-endian 32-bit sub-authorities."""
    parts = sid.split("-")
    assert parts[0] == "S" and len(parts) >= 4, sid
    rev, auth, subs = int(parts[1]), int(parts[2]), [int(p) for p in parts[3:]]
    return (bytes([rev, len(subs)]) + auth.to_bytes(6, "big")
            + b"".join(s.to_bytes(4, "little") for s in subs))


def guid_binary(guid):
    """AD's objectGUID bytes: the first three groups byte-reversed."""
    return uuid.UUID(guid).bytes_le


def _user(key, base, cn, sam, mail=None, upn=None, rid=None, guid=None, uac=512, **more):
    attrs = {"objectClass": ["user"], "objectCategory": ["person"], "cn": [cn],
             "sAMAccountName": [sam], "userAccountControl": [str(uac)]}
    if upn:
        attrs["userPrincipalName"] = [upn]
    if mail:
        attrs["mail"] = [mail]
    sid = (CORP_SID if base == CORP_DN else EMEA_SID) + str(rid)
    guid = guid or "00000000-0000-4000-8000-%012d" % rid
    attrs["objectSid"] = [sid_binary(sid)]
    attrs["objectGUID"] = [guid_binary(guid)]
    for k, v in more.items():
        attrs[k] = v if isinstance(v, list) else [v]
    return key, {"dn": "cn=%s,ou=Users,%s" % (cn, base), "attrs": attrs, "sid": sid,
                 "guid": guid, "mail": mail, "upn": upn, "sam": sam}


# The directory of /tmp/w/ldap-spec.md. key -> {"dn", "attrs", "sid", "guid",
# "mail", "upn", "sam"}.
USERS = dict([
    _user("amorgan", CORP_DN, "Alex Morgan", "amorgan", "alex.morgan@example.com",
          "amorgan@corp.example.com", rid=1109, guid="7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f70",
          employeeID="2044",
          proxyAddresses=["SMTP:alex.morgan@example.com", "smtp:amorgan@legacy.example.com"]),
    _user("guest", CORP_DN, "Jun Sato (guest)", "jsato_partner", "jsato@partner.example",
          "jsato_partner.example#EXT#@example.onmicrosoft.com", rid=1201),
    _user("eoneil", CORP_DN, "Eimear O'Neil", "eoneil", "eimear.oneil@example.com",
          "e.o'neil@corp.example.com", rid=1202),
    _user("star", CORP_DN, "Star Paren", "star*(paren)", "star@example.com",
          "star.paren@corp.example.com", rid=1203),
    # What "star*(paren)" would also find if '*' reached the server unescaped.
    _user("star_decoy", CORP_DN, "Star Decoy", "starX(paren)", "star.decoy@example.com",
          "star.decoy@corp.example.com", rid=1204),
    _user("zoe", CORP_DN, "Zo\u00eb M\u00fcller", "zo\u00eb", "zoe.mueller@example.com",
          "zo\u00eb.m\u00fcller@corp.example.com", rid=1205),
    _user("jdoe_corp", CORP_DN, "John Doe", "jdoe", "john.doe@example.com",
          "jdoe@corp.example.com", rid=1206),
    _user("jdoe_emea", EMEA_DN, "Jane Doe", "jdoe", "jane.doe@emea.example.com",
          "jdoe@emea.example.com", rid=2206),
    _user("former", CORP_DN, "Former Employee", "former", "former@example.com",
          "former@corp.example.com", rid=1207, uac=514),
    _user("nomail", CORP_DN, "No Mail", "nomail", None, "nomail@corp.example.com", rid=1208),
])
for _n in range(20, 40):  # plain users for counts and outages
    USERS.update([_user("user%d" % _n, CORP_DN, "User %d" % _n, "user%d" % _n,
                        "user%d.mail@example.com" % _n, "user%d@corp.example.com" % _n,
                        rid=1300 + _n)])



def plain_user(n):
    """User bench<n> of corp (sAMAccountName bench<n>, mail
    bench<n>.mail@example.com): what plain_users=N adds, for the benchmark's
    lookups on a cache miss (one distinct user per alert)."""
    return _user("bench%d" % n, CORP_DN, "Bench %d" % n, "bench%d" % n,
                 "bench%d.mail@example.com" % n, "bench%d@corp.example.com" % n,
                 rid=100000 + n)[1]


GROUP = {"dn": "cn=admins,ou=Groups," + CORP_DN,
         "attrs": {"objectClass": ["group"], "objectCategory": ["group"], "cn": ["admins"],
                   "sAMAccountName": ["admins"], "mail": ["admins@example.com"],
                   "objectSid": [sid_binary(CORP_SID + "1500")]}}


def _ssha(password):
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _ldif_value(attr, value):
    """attr: value, or attr:: base64 where LDIF (RFC 2849) needs it: bytes,
    non-ASCII text, a leading space, ':' or '<', a trailing space."""
    raw = value if isinstance(value, bytes) else value.encode("utf-8")
    safe = (raw and all(0x20 <= b < 0x7f for b in raw) and raw[:1] not in (b" ", b":", b"<")
            and not raw.endswith(b" "))
    if safe:
        return "%s: %s" % (attr, raw.decode())
    return "%s:: %s" % (attr, base64.b64encode(raw).decode())


def directory_ldif(referral_to=None, plain_users=()):
    """The whole directory as LDIF for slapadd; with referral_to (a URI),
    also dc=ref under the base: a referral object, which a subtree search
    of the base answers with a search reference to that URI (as AD does
    for its application partitions); plain_users (plain_user values) too."""
    entries = [
        (BASE_DN, {"objectClass": ["dcObject", "organization"], "dc": ["example"],
                   "o": ["example"]}),
        (SVC_DN, {"objectClass": ["applicationProcess", "simpleSecurityObject"],
                  "cn": ["svc-rtr"], "userPassword": [_ssha(SVC_PASSWORD)]}),
    ]
    for dn, dc in ((CORP_DN, "corp"), (EMEA_DN, "emea")):
        entries.append((dn, {"objectClass": ["dcObject", "organization"], "dc": [dc],
                             "o": [dc]}))
        entries.append(("ou=Users," + dn, {"objectClass": ["organizationalUnit"],
                                           "ou": ["Users"]}))
    entries.append(("ou=Groups," + CORP_DN, {"objectClass": ["organizationalUnit"],
                                             "ou": ["Groups"]}))
    entries += [(u["dn"], u["attrs"]) for u in USERS.values()]
    entries += [(u["dn"], u["attrs"]) for u in plain_users]
    entries.append((GROUP["dn"], GROUP["attrs"]))
    if referral_to:
        entries.append(("dc=ref," + BASE_DN, {"objectClass": ["referral", "extensibleObject"],
                                              "dc": ["ref"],
                                              "ref": ["%s/dc=ref,%s" % (referral_to, BASE_DN)]}))
    out = []
    for dn, attrs in entries:
        out.append(_ldif_value("dn", dn))
        for attr, values in attrs.items():
            out += [_ldif_value(attr, v) for v in values]
        out.append("")
    return "\n".join(out) + "\n"


def need_slapd():
    for name in ("slapd", "slapadd", "ldapsearch"):
        tool(name)
    if not os.path.exists("/usr/lib/ldap/back_mdb.so"):
        raise Skip("slapd's back_mdb module is not in /usr/lib/ldap")


_wrong_name = {}


def wrong_name_cert():
    """(cert, key): a server certificate of the test CA for wrong.example
    only (made once per run next to harness.certs()'s files)."""
    if _wrong_name:
        return _wrong_name["pem"], _wrong_name["key"]
    c = harness.certs()
    d = os.path.dirname(c["ca.pem"])
    pem, key = os.path.join(d, "ldap-wrong-name.pem"), os.path.join(d, "ldap-wrong-name.key")
    ext = os.path.join(d, "ldap-wrong-name.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:wrong.example\nextendedKeyUsage=serverAuth\n"
                "basicConstraints=CA:FALSE\n")
    csr = os.path.join(d, "ldap-wrong-name.csr")
    for argv in (["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", key, "-out", csr, "-subj", "/CN=wrong.example"],
                 ["x509", "-req", "-in", csr, "-CA", c["ca.pem"], "-CAkey", c["ca.key"],
                  "-CAcreateserial", "-out", pem, "-days", "30", "-extfile", ext]):
        p = subprocess.run([tool("openssl")] + argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        assert p.returncode == 0, p.stdout.decode("utf-8", "replace")
    _wrong_name.update(pem=pem, key=key)
    return pem, key


def _client_cert(d, name, subject_dn, ca):
    """(cert, key): a TLS client certificate for subject_dn signed by ca
    ("ca" or "other-ca" of harness.certs()), made in d."""
    c = harness.certs()
    pem, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    csr, ext = os.path.join(d, name + ".csr"), os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")
    for argv in (["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", key, "-out", csr, "-subj", _CLIENT_SUBJ[subject_dn]],
                 ["x509", "-req", "-in", csr, "-CA", c[ca + ".pem"], "-CAkey", c[ca + ".key"],
                  "-CAcreateserial", "-CAserial", os.path.join(d, name + ".srl"), "-out", pem,
                  "-days", "30", "-extfile", ext]):
        p = subprocess.run([tool("openssl")] + argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        assert p.returncode == 0, p.stdout.decode("utf-8", "replace")
    return pem, key


def _write(path, text, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def parse_ldif(text):
    """ldapsearch -LLL output (unwrapped) -> [(dn, {attr: [str or bytes]})];
    base64 values are decoded to text when they are UTF-8, else bytes."""
    out = []
    for block in text.strip().split("\n\n"):
        lines = [ln for ln in block.split("\n") if ln and not ln.startswith("#")]
        if not lines:
            continue
        dn, attrs = None, {}
        for ln in lines:
            attr, _, value = ln.partition(":")
            if value.startswith(":"):
                raw = base64.b64decode(value[1:].strip())
                try:
                    value = raw.decode("utf-8")
                    if any(ord(ch) < 0x20 for ch in value):
                        value = raw
                except UnicodeDecodeError:
                    value = raw
            else:
                value = value[1:]
            if attr == "dn":
                dn = value
            else:
                attrs.setdefault(attr, []).append(value)
        out.append((dn, attrs))
    return out


class _Handle:
    """What harness.Ctx.close stops: the Slapd (resumed first if paused)."""

    def __init__(self, slapd):
        self.slapd = slapd

    def poll(self):
        return None if self.slapd.running() else 0

    def terminate(self):
        self.slapd.stop()

    kill = terminate

    def wait(self, timeout=None):
        return 0


class Slapd:
    def __init__(self, ctx, cert="server", name="slapd", referral_to=None, plain_users=0,
                 client_auth=False):
        need_slapd()
        self.ctx = ctx
        self.dir = ctx.path(name)
        os.makedirs(os.path.join(self.dir, "db"))
        c = harness.certs()
        self.ca_file = c["ca.pem"]
        self.wrong_ca_file = c["other-ca.pem"]
        if cert == "server":
            self.cert_file, self.key_file = c["server.pem"], c["server.key"]
        elif cert == "wrong-name":
            self.cert_file, self.key_file = wrong_name_cert()
        else:
            raise ValueError(cert)
        self.svc_dn = SVC_DN
        self.base_dn = BASE_DN
        self.password_file = _write(os.path.join(self.dir, "svc-password"), SVC_PASSWORD)
        self.wrong_password_file = _write(os.path.join(self.dir, "wrong-password"),
                                          WRONG_PASSWORD)
        self.client_cert_file = self.client_key_file = None
        client_auth_conf = ""
        if client_auth:
            self.client_cert_file, self.client_key_file = _client_cert(
                self.dir, "client", CLIENT_DN, "ca")
            self.wrong_ca_client_cert_file, self.wrong_ca_client_key_file = _client_cert(
                self.dir, "wrong-ca-client", CLIENT_DN, "other-ca")
            self.unmapped_client_cert_file, self.unmapped_client_key_file = _client_cert(
                self.dir, "unmapped-client", UNMAPPED_DN, "ca")
            client_auth_conf = ('TLSVerifyClient demand\nauthz-regexp "^%s$" "%s"'
                                % (CLIENT_DN, SVC_DN))
        self.conf = os.path.join(self.dir, "slapd.conf")
        with open(os.path.join(DATA, "slapd.conf.in")) as f:
            conf = string.Template(f.read()).substitute(
                dir=self.dir, schema=os.path.join(DATA, "ad-lite.schema"), ca=self.ca_file,
                cert=self.cert_file, key=self.key_file, suffix=BASE_DN, rootdn=ROOT_DN,
                rootpw=_ssha(ROOT_PASSWORD), svc_dn=SVC_DN, client_auth=client_auth_conf)
        self.plain_users = [plain_user(n) for n in range(plain_users)]
        if plain_users:
            # As AD indexes them: unindexed, each search would read every
            # entry and the benchmark would measure slapd's scan.
            conf += ("index objectClass,objectCategory eq\n"
                     "index sAMAccountName,userPrincipalName,mail,proxyAddresses,"
                     "objectSid,objectGUID,employeeID eq\n")
        _write(self.conf, conf)
        ldif = _write(os.path.join(self.dir, "directory.ldif"),
                      directory_ldif(referral_to, self.plain_users))
        p = subprocess.run([tool("slapadd"), "-q", "-f", self.conf, "-l", ldif],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        assert p.returncode == 0, "slapadd failed:\n%s" % p.stdout.decode("utf-8", "replace")
        self.log_path = os.path.join(self.dir, "slapd.log")
        self.proc = None
        self.paused = False
        self.port = self.tls_port = None
        ctx._procs.append(_Handle(self))

    @property
    def uri(self):
        return "ldap://127.0.0.1:%d" % self.port

    @property
    def tls_uri(self):
        return "ldaps://127.0.0.1:%d" % self.tls_port

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=10):
        """Starts slapd (on new free ports the first time, the same ports
        after) and waits until both listeners accept."""
        assert not self.running(), "slapd is already running"
        first = self.port is None
        for attempt in range(5):
            if first:
                self.port, self.tls_port = free_port(), free_port()
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [tool("slapd"), "-f", self.conf, "-h", "%s/ %s/" % (self.uri, self.tls_uri),
                 "-d", "stats"], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            log.close()
            try:
                wait_until(self._listening, timeout, "slapd listening on %d and %d"
                           % (self.port, self.tls_port))
                return self
            except AssertionError:
                if self.proc.poll() is None:
                    self.proc.kill()
                self.proc.wait()
                # A port taken between free_port() and slapd's bind: try others
                # (first start only: a restart must keep its ports).
                if not first or "Address already in use" not in self.log_text() or attempt == 4:
                    raise AssertionError("slapd did not start (status %s):\n%s"
                                         % (self.proc.returncode, self.log_text()[-3000:]))
        return self

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError("slapd exited with %s" % self.proc.returncode)
        for port in (self.port, self.tls_port):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return False
        return True

    def stop(self):
        if not self.running():
            return
        self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(t(10))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        self.stop()
        # Its listening sockets are gone with the process, but give a port a
        # moment should the kernel still hold it.
        deadline = time.monotonic() + t(5)
        while True:
            try:
                return self.start()
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def pause(self):
        """SIGSTOP, and back once every thread of slapd is stopped: the
        signal is only pending when kill(2) returns, and a thread busy on
        another core could still answer a request sent right after."""
        assert self.running()
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True
        tasks = "/proc/%d/task" % self.proc.pid

        def stopped():
            states = []
            for tid in os.listdir(tasks):
                try:
                    with open("%s/%s/stat" % (tasks, tid)) as f:
                        states.append(f.read().rsplit(")", 1)[1].split()[0])
                except FileNotFoundError:
                    continue
            return states and all(st in ("T", "t") for st in states)
        wait_until(stopped, 5, "slapd's threads to stop")

    def resume(self):
        if self.paused and self.running():
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def search(self, filt, base=BASE_DN, attrs=(), bind="svc", uri=None, starttls=False,
               ca_file=None, check=True, timeout=20):
        """ldapsearch -x -LLL with TLS verified against ca_file (the test CA
        by default). bind: "svc", "root" or None (anonymous). Returns
        [(dn, {attr: [values]})], or (exit status, stderr) when check is
        False and ldapsearch failed. Raises subprocess.TimeoutExpired after
        timeout seconds (a paused slapd; not scaled: no agent is involved)."""
        argv = [tool("ldapsearch"), "-x", "-LLL", "-o", "ldif-wrap=no", "-o", "nettimeout=5",
                "-H", uri or self.tls_uri, "-b", base]
        if starttls:
            argv.append("-ZZ")
        if bind == "svc":
            argv += ["-D", SVC_DN, "-y", self.password_file]
        elif bind == "root":
            argv += ["-D", ROOT_DN, "-w", ROOT_PASSWORD]
        argv += [filt] + list(attrs)
        env = dict(os.environ, LDAPTLS_CACERT=ca_file or self.ca_file, LDAPTLS_REQCERT="demand")
        env.pop("LDAPTLS_CERT", None)
        env.pop("LDAPTLS_KEY", None)
        if self.client_cert_file:
            env.update(LDAPTLS_CERT=self.client_cert_file, LDAPTLS_KEY=self.client_key_file)
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, timeout=timeout)
        err = p.stderr.decode("utf-8", "replace")
        if p.returncode not in (0, 32):  # 32: noSuchObject (base not visible)
            if check:
                raise AssertionError("ldapsearch %s exited %d: %s" % (filt, p.returncode, err))
            return p.returncode, err
        return parse_ldif(p.stdout.decode("utf-8", "replace"))


def start_slapd(ctx, cert="server", name="slapd", referral_to=None, plain_users=0,
                client_auth=False):
    return Slapd(ctx, cert=cert, name=name, referral_to=referral_to, plain_users=plain_users,
                 client_auth=client_auth).start()


def ldap_section(slapd, **kw):
    """identity.ldap for slapd: LDAPS, the service account, the test CA,
    the corp and emea domains, short timeouts. kw overrides keys (None
    removes one)."""
    sec = {"uris": [slapd.tls_uri], "base_dn": BASE_DN,
           "domains": {"CORP": CORP_DN, "EMEA": EMEA_DN},
           "bind_dn": slapd.svc_dn, "bind_password_file": slapd.password_file,
           "ca_file": slapd.ca_file, "connect_timeout_s": 2, "timeout_s": 2}
    for k, v in kw.items():
        if v is None:
            sec.pop(k, None)
        else:
            sec[k] = v
    return sec
