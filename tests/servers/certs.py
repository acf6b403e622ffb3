#!/usr/bin/env python3
"""Test certificates made with the openssl CLI: a CA and server certificates
it signs (EC P-256, SHA-256, a few days of validity).

    make_ca(dir)                 -> dir/ca.pem (its key beside it: dir/ca.key)
    make_cert(dir, ca, name)     -> (dir/name.pem, dir/name.key) for
                                    127.0.0.1 and localhost
    make_cert(dir, ca, "wrong", hosts=("wrong.example",))
                                 -> a certificate for another host

Both are cached per folder: a file already made (for the same hosts, and
valid for at least another hour) is reused, so a test run makes each once,
even when several processes ask at the same time (a lock file serialises
them, and files appear by rename, whole). `make_ca(dir, name="other-ca")`
makes a second, untrusted CA.

CLI: python3 tests/servers/certs.py DIR
     writes DIR/ca.pem, DIR/server.pem, DIR/server.key, DIR/wrong.pem and
     DIR/wrong.key (and the CA's key, DIR/ca.key); prints nothing.
"""
import contextlib
import fcntl
import hashlib
import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading

DAYS = 7
KEY_ARGS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
# Our own minimal config: the machine's openssl.cnf may add extensions or ask
# for fields we do not want.
CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""
SERVER_EXT = """\
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
subjectAltName = %s
"""

_mutex = threading.Lock()  # the flock below serialises processes, this threads
_checked = set()           # (file, tag) this process already found valid


def _openssl():
    path = shutil.which("openssl")
    if not path:
        raise RuntimeError("certs: openssl not found in PATH")
    return path


def _run(args, cwd):
    p = subprocess.run([_openssl()] + args, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    if p.returncode:
        raise RuntimeError("certs: openssl %s failed:\n%s"
                           % (" ".join(args), p.stdout.decode("utf-8", "replace")))


@contextlib.contextmanager
def _locked(d):
    os.makedirs(d, exist_ok=True)
    with _mutex, open(os.path.join(d, ".certs.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _fresh(pem, key, tag_file=None, tag=None):
    """The pair exists, matches tag (the hosts it was made for) and stays
    valid for at least another hour."""
    if (pem, tag) in _checked:
        return True
    if not (os.path.exists(pem) and os.path.exists(key)):
        return False
    if tag_file is not None:
        try:
            with open(tag_file) as f:
                if f.read() != tag:
                    return False
        except OSError:
            return False
    p = subprocess.run([_openssl(), "x509", "-in", pem, "-noout", "-checkend", "3600"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    if p.returncode:
        return False
    _checked.add((pem, tag))
    return True


def _install(tmp, d, names):
    """Moves the files made in tmp into d, each by one rename."""
    for n in names:
        os.replace(os.path.join(tmp, n), os.path.join(d, n))


def _key_of(ca_pem):
    base = ca_pem[:-4] if ca_pem.endswith(".pem") else ca_pem
    return base + ".key"


def make_ca(d, name="ca"):
    """A self-signed CA in d/NAME.pem and d/NAME.key; returns the PEM path."""
    d = os.path.abspath(d)
    pem, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    with _locked(d):
        if _fresh(pem, key):
            return pem
        tmp = tempfile.mkdtemp(prefix=".certs-", dir=d)
        try:
            with open(os.path.join(tmp, "req.cnf"), "w") as f:
                f.write(CONFIG)
            _run(["req", "-x509", "-config", "req.cnf", "-extensions", "v3_ca"] + KEY_ARGS +
                 ["-keyout", name + ".key", "-out", name + ".pem", "-days", str(DAYS),
                  "-subj", "/CN=rtr-agent test %s" % name, "-sha256"], tmp)
            _install(tmp, d, [name + ".key", name + ".pem"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return pem


def _san(hosts):
    out = []
    for h in hosts:
        try:
            ipaddress.ip_address(h)
            out.append("IP:" + h)
        except ValueError:
            out.append("DNS:" + h)
    return ",".join(out)


def make_cert(d, ca, name, hosts=("127.0.0.1", "localhost")):
    """A server certificate for hosts signed by the CA ca (a PEM path from
    make_ca, its key beside it). Returns (d/NAME.pem, d/NAME.key)."""
    d = os.path.abspath(d)
    hosts = tuple(hosts)
    if not hosts:
        raise ValueError("certs: make_cert needs at least one host")
    pem, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    tag_file = os.path.join(d, name + ".hosts")
    # The CA's own bytes are in the tag: a CA made anew means new certificates.
    with open(ca, "rb") as f:
        tag = "%s\n%s\n" % (hashlib.sha256(f.read()).hexdigest(), ",".join(hosts))
    with _locked(d):
        if _fresh(pem, key, tag_file, tag):
            return pem, key
        tmp = tempfile.mkdtemp(prefix=".certs-", dir=d)
        try:
            with open(os.path.join(tmp, "req.cnf"), "w") as f:
                f.write(CONFIG)
            with open(os.path.join(tmp, "ext.cnf"), "w") as f:
                f.write(SERVER_EXT % _san(hosts))
            with open(os.path.join(tmp, name + ".hosts"), "w") as f:
                f.write(tag)
            _run(["req", "-new", "-config", "req.cnf"] + KEY_ARGS +
                 ["-keyout", name + ".key", "-out", "req.csr", "-subj", "/CN=" + hosts[0]], tmp)
            # A random serial, no .srl file: nothing shared between makers.
            _run(["x509", "-req", "-in", "req.csr", "-CA", os.path.abspath(ca),
                  "-CAkey", _key_of(os.path.abspath(ca)), "-set_serial",
                  "0x" + secrets.token_hex(16), "-days", str(DAYS), "-sha256",
                  "-extfile", "ext.cnf", "-out", name + ".pem"], tmp)
            _install(tmp, d, [name + ".key", name + ".pem", name + ".hosts"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return pem, key


def make_all(d):
    """The CLI's set: ca.pem, server.pem/.key (127.0.0.1, localhost) and
    wrong.pem/.key (wrong.example). Returns {name: path}."""
    ca = make_ca(d)
    server = make_cert(d, ca, "server")
    wrong = make_cert(d, ca, "wrong", hosts=("wrong.example",))
    return {"ca": ca, "server": server[0], "server_key": server[1],
            "wrong": wrong[0], "wrong_key": wrong[1]}


def main(argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        sys.stderr.write("usage: certs.py DIR\n")
        return 2
    try:
        make_all(argv[1])
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        sys.stderr.write("%s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
