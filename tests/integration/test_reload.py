"""SIGHUP as systemd sees it (issue 13 item 12): the agent sends RELOADING=1
with MONOTONIC_USEC on $NOTIFY_SOCKET, then READY=1 with STATUS=reloaded, or
STATUS=reload failed when a part did not load; and a SIGHUP reads the TLS
listeners' certificates and keys again (a renewed certificate needs no
restart; one that does not load keeps the running one)."""
import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import response_env as env
from harness import certs, listener, t, tls_connect, tool, wait_until


class _Manager:
    """A stand-in for systemd's notify socket: a datagram socket whose path
    the agent gets as NOTIFY_SOCKET."""

    def __init__(self, ctx):
        self.path = ctx.path("notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def next(self, timeout=10):
        """The next datagram, as {"KEY": "value"}."""
        self.sock.settimeout(t(timeout))
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.split("\n") if line)

    def close(self):
        self.sock.close()


def _mappings(ctx, good=True):
    """A mapping folder whose one file loads, or not."""
    folder = ctx.path("mappings.d")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "m.json")
    if good:
        shutil.copy(os.path.join(os.path.dirname(env.MAPPINGS), "splunk.json"), path)
    else:
        with open(path, "w") as f:
            f.write("{ not json")
    return os.path.join(folder, "*.json")


def test_reload_notifies_the_manager(ctx):
    """READY=1 at start; each SIGHUP: RELOADING=1 with a MONOTONIC_USEC
    within a few seconds of now, then READY=1 with STATUS=reloaded, or
    STATUS=reload failed when a mapping file stopped loading (the running
    mappings stay: an alert is still decided); STOPPING=1 at the stop."""
    manager = _Manager(ctx)
    try:
        agent = ctx.agent([listener("tcp")], env={"NOTIFY_SOCKET": manager.path},
                          extra={"mappings": [_mappings(ctx)]})
        assert manager.next().get("READY") == "1"
        for good, status in ((True, "reloaded"), (False, "reload failed")):
            _mappings(ctx, good)
            before = time.monotonic()
            os.kill(agent.proc.pid, signal.SIGHUP)
            reloading = manager.next()
            assert reloading.get("RELOADING") == "1", reloading
            usec = int(reloading["MONOTONIC_USEC"])
            assert before - 1 <= usec / 1e6 <= time.monotonic() + 1, \
                "MONOTONIC_USEC %d is not CLOCK_MONOTONIC now (%.3f s)" % (usec, before)
            ready = manager.next()
            assert ready.get("READY") == "1" and ready.get("STATUS", "").startswith(status), ready
        env.send_tcp(agent, [env.cef("USB Rule", "someone@example.com")])
        agent.wait_metric("decisions_total", 1)
        agent.stop()
        assert manager.next().get("STOPPING") == "1"
    finally:
        manager.close()


def _server_cert(ctx, name):
    """A server certificate for localhost from the test CA (as certs()
    makes them), with its own key; returns (pem, key) paths."""
    openssl, c = tool("openssl"), certs()
    pem, key, csr = (ctx.path(name + ext) for ext in (".pem", ".key", ".csr"))
    subprocess.run([openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    subprocess.run([openssl, "x509", "-req", "-in", csr, "-CA", c["ca.pem"], "-CAkey", c["ca.key"],
                    "-CAcreateserial", "-out", pem, "-days", "30", "-extfile", c["server.ext"]],
                   check=True, capture_output=True)
    return pem, key


def _fingerprint(pem_path):
    with open(pem_path) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def _presented(agent):
    with tls_connect(agent.port("tls")) as s:
        return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def test_sighup_reloads_tls_certificate(ctx):
    """The listener's certificate file replaced by a renewed one: after a
    SIGHUP new connections get the new one, while a connection opened
    before goes on (a message sent on it after the reload is received). A
    replacement that does not load (a key of another certificate) keeps
    the running certificate and counts a failed reload."""
    c = certs()
    pem, key = ctx.path("live.pem"), ctx.path("live.key")
    shutil.copy(c["server.pem"], pem)
    shutil.copy(c["server.key"], key)
    agent = ctx.agent([listener("tls", cert=pem, key=key, client_ca=c["ca.pem"])])
    assert _presented(agent) == _fingerprint(c["server.pem"])
    old = tls_connect(agent.port("tls"))
    renewed_pem, renewed_key = _server_cert(ctx, "renewed")
    shutil.copy(renewed_pem, pem)
    shutil.copy(renewed_key, key)
    os.kill(agent.proc.pid, signal.SIGHUP)
    agent.wait_metric('reloads_total{result="success"}', 1)
    assert _presented(agent) == _fingerprint(renewed_pem), "a new connection got the old cert"
    old.sendall(b"<13>Oct  2 09:13:06 host app: after the reload\n")
    old.close()
    agent.wait_tap(lambda m: m.get("msg") == "after the reload", 1, 10,
                   what="the message sent on the connection opened before the reload")

    shutil.copy(c["client.key"], key)  # does not match the certificate
    os.kill(agent.proc.pid, signal.SIGHUP)
    agent.wait_metric('reloads_total{result="failure"}', 1)
    assert _presented(agent) == _fingerprint(renewed_pem), "a failed reload changed the cert"
    wait_until(lambda: b"did not load again" in agent.stderr_bytes(), 5, "the reload's error")
    agent.stop()
