"""What the agent runs as (issue 12, item 1). Started as root with "user",
it binds (a port below 1024 too) and reads its keys as root, then runs as
that user with no capability left, no_new_privs set and not dumpable, and
creates its files as that user. Started as root without "user", run and
check say so loudly. Started unprivileged with an ambient capability (what
systemd's AmbientCapabilities=CAP_NET_BIND_SERVICE gives), it clears it once
bound. These need root (CI runs as root); elsewhere they are skipped."""
import json
import os
import shutil
import socket
import tempfile

import response_env as env
from harness import AGENT, WRAPPER, Skip, run_agent, tcp_connect, tool, wait_until

NOBODY = 65534
ZERO_CAPS = "0000000000000000"


def _need_root():
    if os.geteuid() != 0:
        raise Skip("needs root to start the agent as root (CI runs as root)")


def _low_port():
    """A TCP port below 1024 that 127.0.0.1 has free (only root may bind it)."""
    for port in range(700, 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise Skip("no free TCP port in 700..999 on 127.0.0.1")


def _status(pid):
    """/proc/PID/status as a dict of its fields."""
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


class _Folder:
    """A folder the dropped-to user owns (the test's own folder is root's,
    0700): port files, the audit log and the agent's stderr go there."""

    def __init__(self, ctx):
        self.dir = tempfile.mkdtemp(prefix="rtr-it-privilege-")
        os.chown(self.dir, NOBODY, NOBODY)
        self.ctx = ctx

    def path(self, name):
        return os.path.join(self.dir, name)

    def start(self, cfg, prefix=()):
        """Starts `run` on cfg (through prefix, e.g. setpriv); returns the
        process once its listener's port file is there."""
        path = self.path("rtr-agent.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        os.chmod(path, 0o644)
        self.stderr = self.path("stderr.log")
        with open(self.stderr, "wb") as err:
            proc = self.ctx.spawn(list(prefix) + WRAPPER + [AGENT, "run", "-c", path],
                                  stdout=err, stderr=err)

        def ready():
            if proc.poll() is not None:
                raise AssertionError("the agent exited %d:\n%s" % (proc.returncode, self.log()))
            return os.path.exists(self.path("tcp.port"))
        wait_until(ready, 20, "the agent's port file")
        return proc

    def log(self):
        with open(self.stderr, errors="replace") as f:
            return f.read()[-3000:]

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def _config(folder, port, **kw):
    directory = folder.path("users.csv")
    with open(directory, "w") as f:
        f.write("alice@example.com,alice@mail.example.com\n")
    cfg = {"listen": [{"proto": "tcp", "address": "127.0.0.1:%d" % port,
                       "port_file": folder.path("tcp.port")}],
           "workers": 2, "mappings": [env.MAPPINGS],
           "identity": {"static": {"file": directory}},
           "audit": {"file": folder.path("audit.jsonl")}}
    if UNDER_VALGRIND:
        cfg["limits"] = {"regex_jit": False}
    cfg.update(kw)
    return cfg


UNDER_VALGRIND = any("valgrind" in w for w in WRAPPER)


def test_root_drops_to_user(ctx):
    """As root with "user": "nobody": a port below 1024 is bound and an
    audit hash key only root may read is read, then every id is nobody's,
    every capability set is empty, no_new_privs is set, /proc/PID is root's
    (not dumpable), and the audit log and port file are nobody's; an alert
    is still decided and audited."""
    _need_root()
    folder = _Folder(ctx)
    try:
        key = ctx.path("audit.key")  # in root's 0700 test folder, mode 0600
        with open(key, "w") as f:
            f.write("k" * 32)
        os.chmod(key, 0o600)
        port = _low_port()
        cfg = _config(folder, port, user="nobody")
        cfg["audit"]["hash_key_file"] = key
        proc = folder.start(cfg)
        pid = proc.pid  # valgrind and setpriv run the agent in their own process
        status = _status(pid)
        assert status["Uid"].split() == [str(NOBODY)] * 4, status["Uid"]
        assert status["Gid"].split() == [str(NOBODY)] * 4, status["Gid"]
        assert status["Groups"].split() == [str(NOBODY)], status["Groups"]
        for caps in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert status[caps] == ZERO_CAPS, "%s is %s" % (caps, status[caps])
        assert status["NoNewPrivs"] == "1", status["NoNewPrivs"]
        assert os.stat("/proc/%d/environ" % pid).st_uid == 0, \
            "/proc/PID is not root's: the process is still dumpable"
        assert os.stat(folder.path("tcp.port")).st_uid == NOBODY
        assert os.stat(folder.path("audit.jsonl")).st_uid == NOBODY
        assert "running as uid %d gid %d, without capabilities" % (NOBODY, NOBODY) in folder.log()

        with tcp_connect(port) as s:
            s.sendall(env.cef("USB Rule", "alice@example.com") + b"\n")

        def audited():
            with open(folder.path("audit.jsonl")) as f:
                return [json.loads(line) for line in f if line.endswith("\n")]
        lines = wait_until(audited, 10, "the alert's audit line")
        assert lines[0]["outcome"] == "would-dispatch", lines
        assert lines[0]["user"] != "alice@example.com", "the user was not hashed with the key"
        proc.terminate()
        assert proc.wait(30) == 0, folder.log()
    finally:
        folder.close()


def test_root_without_user_warns(ctx):
    """As root without "user": run and check both warn in capitals."""
    _need_root()
    folder = _Folder(ctx)
    try:
        cfg = _config(folder, 0)
        proc = folder.start(cfg)
        proc.terminate()
        proc.wait(30)
        assert "RUNNING AS ROOT with every capability" in folder.log(), folder.log()
        rc, err = run_agent("check", "-c", folder.path("rtr-agent.json"))
        assert rc == 0 and "RUNNING AS ROOT" in err, err[-2000:]
    finally:
        folder.close()


def test_unknown_user_refused(ctx):
    """A user or group that does not exist fails check and run, naming it."""
    _need_root()
    folder = _Folder(ctx)
    try:
        path = folder.path("rtr-agent.json")
        for extra, said in (({"user": "no-such-user-rtr"}, 'user: "no-such-user-rtr": no such'),
                            ({"user": "nobody", "group": "no-such-group-rtr"},
                             'group: "no-such-group-rtr": no such')):
            with open(path, "w") as f:
                json.dump(_config(folder, 0, **extra), f)
            for command in ("check", "run"):
                rc, err = run_agent(command, "-c", path)
                assert rc != 0 and said in err, "%s: %s" % (command, err[-2000:])
    finally:
        folder.close()


def test_ambient_capability_cleared_after_bind(ctx):
    """Started as nobody with CAP_NET_BIND_SERVICE in its ambient set (as
    systemd's AmbientCapabilities gives it), the agent binds a port below
    1024 and then holds no capability at all; "user" naming someone else
    is refused (only root can switch)."""
    _need_root()
    setpriv = tool("setpriv")
    folder = _Folder(ctx)
    try:
        port = _low_port()
        prefix = [setpriv, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
                  "--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service"]
        proc = folder.start(_config(folder, port), prefix=prefix)
        status = _status(proc.pid)
        assert status["Uid"].split() == [str(NOBODY)] * 4, status["Uid"]
        for caps in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            assert status[caps] == ZERO_CAPS, "%s is %s" % (caps, status[caps])
        assert status["NoNewPrivs"] == "1", status["NoNewPrivs"]
        with tcp_connect(port):
            pass
        proc.terminate()
        assert proc.wait(30) == 0, folder.log()

        path = folder.path("other.json")
        with open(path, "w") as f:
            json.dump(_config(folder, 0, user="daemon"), f)
        os.chmod(path, 0o644)
        p = ctx.run([setpriv, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
                    + WRAPPER + [AGENT, "check", "-c", path], check=False)
        err = p.stderr.decode(errors="replace")
        assert p.returncode != 0 and "not root: it cannot switch to uid" in err, err[-2000:]
    finally:
        folder.close()


def test_root_only_tls_key_frozen_not_failing(ctx):
    """A TLS key only root may read, started as root with "user": the
    listener works, the log says a SIGHUP will not read its files again,
    and a SIGHUP then succeeds (it is no reload failure every logrotate)."""
    _need_root()
    from harness import certs
    import signal
    import time
    folder = _Folder(ctx)
    try:
        c = certs()
        key = ctx.path("server.key")  # root's 0700 folder: nobody cannot read it
        shutil.copy(c["server.key"], key)
        os.chmod(key, 0o600)
        cfg = _config(folder, _low_port(), user="nobody")
        cfg["listen"][0].update({"proto": "tls", "cert": c["server.pem"], "key": key,
                                 "client_ca": c["ca.pem"]})
        cfg["status"] = {"address": "127.0.0.1:0", "port_file": folder.path("status.port")}
        proc = folder.start(cfg)
        wait_until(lambda: "a SIGHUP will not read this listener's TLS files again" in
                   folder.log(), 10, "the warning about the unreadable key")
        os.kill(proc.pid, signal.SIGHUP)
        wait_until(lambda: "SIGHUP: reload complete" in folder.log(), 10,
                   "a complete reload:\n" + folder.log())
        time.sleep(0.2)
        assert "reload incomplete" not in folder.log(), folder.log()
        proc.terminate()
        assert proc.wait(30) == 0, folder.log()
    finally:
        folder.close()
