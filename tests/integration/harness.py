"""Helpers for the integration tests: they start the real rtr-agent binary on
127.0.0.1 (port 0 + port files), drive real clients (logger, openssl
s_client, rsyslogd) against it and read what it saw through --tap and the
status endpoint.

Every test function receives a Ctx: a private temporary folder plus the
processes the test started, all of which are stopped when the test ends.
Stopping an agent always asserts a clean exit (status 0 after SIGTERM, no
sanitizer or valgrind report), so a leak or a crash at shutdown fails the
test that caused it.

Environment: RTR_AGENT (binary; default $BUILD/rtr-agent or build/rtr-agent),
SHARED (../shared), RTR_WRAPPER (a command prefix such as
"valgrind --error-exitcode=99 --leak-check=full"), RTR_TIMEOUT_SCALE
(multiplies every wait; 10 by default under valgrind), RTR_KEEP=1 (keep the
temporary folders of passing tests too).
"""
import glob
import http.client
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
AGENT = os.path.abspath(os.environ.get("RTR_AGENT") or os.path.join(BUILD, "rtr-agent"))
SHARED = os.path.abspath(os.path.join(ROOT, os.environ.get("SHARED", "../shared")))
WRAPPER = shlex.split(os.environ.get("RTR_WRAPPER", ""))
UNDER_VALGRIND = any("valgrind" in w for w in WRAPPER)
_default_scale = 10.0 if UNDER_VALGRIND else 1.0
SCALE = float(os.environ.get("RTR_TIMEOUT_SCALE", _default_scale))
# An ASan build of the agent reads LeakSanitizer's suppressions (a bounded
# leak of libldap's, tests/lsan.supp) from here, whatever else is set.
os.environ["LSAN_OPTIONS"] = ":".join(
    o for o in (os.environ.get("LSAN_OPTIONS"),
                "suppressions=" + os.path.join(ROOT, "tests", "lsan.supp"),
                "print_suppressions=0") if o)
KEEP = os.environ.get("RTR_KEEP") == "1"

# What a sanitizer or valgrind prints when it found something.
REPORT = re.compile(rb"(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                    rb"UndefinedBehaviorSanitizer|ThreadSanitizer|"
                    rb"==\d+== (Invalid (read|write|free)|Conditional jump|Syscall param|"
                    rb"Mismatched free|Source and destination overlap)|"
                    rb"definitely lost: [1-9]|indirectly lost: [1-9]|ERROR SUMMARY: [1-9])")


def json_lines(path, what):
    """The complete JSON lines of path so far (an unterminated last line is
    still being written), each checked with check_json_line; [] while the
    file does not exist."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    end = data.rfind(b"\n")
    if end < 0:
        return []
    return [check_json_line(raw, "%s line %d" % (what, i + 1))
            for i, raw in enumerate(data[:end].split(b"\n"))]


def sample_decisions():
    """(sorted [(rule, user, email)] of every non-null decision in
    ../shared/samples/expected.jsonl, the non-empty sample lines of every
    *.log there in file order)."""
    samples = os.path.join(SHARED, "samples")
    want = []
    with open(os.path.join(samples, "expected.jsonl")) as f:
        for line in f:
            d = json.loads(line)["decision"]
            if d is not None:
                want.append((d["rule"], d["user"], d["email"]))
    lines = []
    for path in sorted(glob.glob(os.path.join(samples, "*.log"))):
        with open(path, "rb") as f:
            lines += [raw for raw in f.read().split(b"\n") if raw.strip()]
    return sorted(want), lines


def for_wrapper(cfg):
    """cfg, adjusted to the wrapper the agent runs under: valgrind cannot
    follow PCRE2's JIT code, which reads whole words past a subject's end
    (harmless; memcheck reports it), so under valgrind mapping regexes run
    in the interpreter (limits.regex_jit false). The ASan runs cover JIT."""
    if UNDER_VALGRIND:
        cfg.setdefault("limits", {}).setdefault("regex_jit", False)
    return cfg


class Skip(Exception):
    """Raised by a test that cannot run here; the reason is printed."""


def t(seconds):
    """A wait of `seconds`, scaled for slow builds (valgrind)."""
    return seconds * SCALE


def wait_until(cond, timeout, what, interval=0.05):
    """Polls cond() until it returns a true value (returned) or fails with `what`."""
    deadline = time.monotonic() + t(timeout)
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (t(timeout), what))
        time.sleep(interval)


def run_agent(*args, timeout=20):
    """Runs rtr-agent with args (a command that ends on its own: check, a
    start that fails); returns (exit status, stderr text). Fails on a
    sanitizer or valgrind report."""
    p = subprocess.run(WRAPPER + [AGENT] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=t(timeout))
    err = p.stderr.decode("utf-8", "replace")
    found = REPORT.search(p.stderr)
    assert not found, "sanitizer/valgrind report (%r):\n%s" % (found.group(0), err[-3000:])
    return p.returncode, err


def token():
    """A random marker so a test only ever counts its own messages."""
    return "%08x" % random.getrandbits(32)


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A TCP port that was free a moment ago (for peers that cannot use port 0)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def tool(name):
    path = shutil.which(name) or (os.path.exists("/usr/sbin/" + name) and "/usr/sbin/" + name)
    if not path:
        raise Skip("%s is not installed (.ci/install-test-deps installs it)" % name)
    return path


# ---------------------------------------------------------------- the agent

def listener(proto, **kw):
    """A listen entry on 127.0.0.1 port 0 (override with address=...)."""
    d = {"proto": proto, "address": "127.0.0.1:0"}
    d.update(kw)
    return d


def tls_listener(certs, verify=True, **kw):
    d = listener("tls", cert=certs["server.pem"], key=certs["server.key"])
    if verify:
        d["client_ca"] = certs["ca.pem"]
    d.update(kw)
    return d


class Agent:
    """One `rtr-agent run` process with a tap and a status endpoint."""

    def __init__(self, ctx, listen, limits=None, workers=2, extra=None, name="agent"):
        self.ctx = ctx
        self.dir = os.path.join(ctx.dir, name)
        os.makedirs(self.dir)
        cfg = {"listen": [], "workers": workers,
               "status": {"address": "127.0.0.1:0", "port_file": "status.port"}}
        for i, entry in enumerate(listen):
            entry = dict(entry)
            entry.setdefault("port_file", "listen%d-%s.port" % (i, entry["proto"]))
            cfg["listen"].append(entry)
        if limits:
            cfg["limits"] = limits
        if extra:
            cfg.update(extra)
        self.config = for_wrapper(cfg)
        self.config_path = os.path.join(self.dir, "rtr-agent.json")
        with open(self.config_path, "w") as f:
            json.dump(cfg, f, indent=2)
        self.tap_path = os.path.join(self.dir, "tap.jsonl")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self._tap_off = 0
        self._tap = []
        self.proc = None
        self.returncode = None
        self.stopped = False

    def start(self, timeout=10, env=None):
        """env: extra environment variables for the agent."""
        if not os.access(AGENT, os.X_OK):
            raise AssertionError("agent binary %s is missing (run make)" % AGENT)
        argv = WRAPPER + [AGENT, "run", "-c", self.config_path, "--tap", self.tap_path]
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=self.dir, stdin=subprocess.DEVNULL,
                                     stdout=self._err, stderr=self._err,
                                     env=dict(os.environ, **env) if env else None)
        self.ctx._agents.append(self)
        files = [e["port_file"] for e in self.config["listen"]] + ["status.port"]
        self.ports = [self._wait_port(f, timeout) for f in files]
        self.status_port = self.ports.pop()
        return self

    def _wait_port(self, name, timeout):
        path = os.path.join(self.dir, name)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("agent exited with status %s during start-up:\n%s"
                                     % (self.proc.returncode, self.stderr_tail()))
            try:
                with open(path) as f:
                    text = f.read()
            except FileNotFoundError:
                return None
            if not text.endswith("\n"):
                return None  # written atomically, so this should not happen; wait anyway
            port = int(text.strip())
            assert 0 < port < 65536, "port file %s holds %r" % (name, text)
            return port
        try:
            return wait_until(ready, timeout, "port file %s" % name)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.stderr_tail()))

    def port(self, proto, nth=0):
        found = [p for e, p in zip(self.config["listen"], self.ports) if e["proto"] == proto]
        return found[nth]

    def stderr_bytes(self):
        with open(self.stderr_path, "rb") as f:
            return f.read()

    def stderr_tail(self, n=25):
        lines = self.stderr_bytes().decode("utf-8", "replace").splitlines()
        return "--- agent stderr (last %d of %d lines, %s):\n%s" % (
            min(n, len(lines)), len(lines), self.stderr_path, "\n".join(lines[-n:]))

    def alive(self):
        return self.proc.poll() is None

    def assert_alive(self):
        if not self.alive():
            raise AssertionError("agent died (status %s)\n%s" % (self.proc.returncode,
                                                                   self.stderr_tail()))

    # -- tap
    def tap(self):
        """Every complete tap line so far, as dicts. Fails on any line that is
        not strict UTF-8, holds a raw control character or is not a JSON object."""
        try:
            with open(self.tap_path, "rb") as f:
                f.seek(self._tap_off)
                data = f.read()
        except FileNotFoundError:
            return list(self._tap)
        end = data.rfind(b"\n")
        if end >= 0:
            for raw in data[:end].split(b"\n"):
                self._tap.append(check_json_line(raw, "tap line %d" % (len(self._tap) + 1)))
            self._tap_off += end + 1
        return list(self._tap)

    def tap_partial(self):
        """Bytes after the last newline of the tap (must be empty once stopped)."""
        if not os.path.exists(self.tap_path):
            return b""
        with open(self.tap_path, "rb") as f:
            f.seek(self._tap_off)
            return f.read()

    def wait_tap(self, pred, count, timeout=10, what=None):
        """Waits until at least count tap lines satisfy pred; returns them."""
        got = []

        def enough():
            nonlocal got
            self.assert_alive()
            got = [m for m in self.tap() if pred(m)]
            return len(got) >= count
        try:
            wait_until(enough, timeout, what or "%d tap lines" % count)
        except AssertionError as e:
            raise AssertionError("%s (have %d)" % (e, len(got)))
        return got

    def with_text(self, text):
        return [m for m in self.tap() if text in (m.get("msg") or "")]

    # -- status endpoint
    def http_get(self, path, timeout=5):
        conn = http.client.HTTPConnection("127.0.0.1", self.status_port, timeout=t(timeout))
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def metrics(self):
        status, body = self.http_get("/metrics")
        assert status == 200, "GET /metrics answered %d" % status
        return parse_metrics(body)

    def metric(self, name):
        m = self.metrics()
        key = "rtr_agent_" + name
        assert key in m, "/metrics has no %s" % key
        return m[key]

    def wait_metric(self, name, minimum, timeout=5):
        """Waits until counter name >= minimum; returns its value."""
        last = [None]

        def ok():
            last[0] = self.metric(name)
            return last[0] >= minimum
        try:
            wait_until(ok, timeout, "rtr_agent_%s >= %d" % (name, minimum), interval=0.1)
        except AssertionError as e:
            raise AssertionError("%s (it is %s)" % (e, last[0]))
        return last[0]

    # -- stop
    def stop(self, timeout=15, signalled=False):
        """SIGTERM; asserts exit status 0 and no sanitizer/valgrind report.
        signalled: the test sent the SIGTERM itself (a second one would mean
        "exit now"), so only wait for the exit and check it."""
        if self.stopped:
            return
        self.stopped = True
        try:
            if self.proc.poll() is None or signalled:
                if not signalled:
                    self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(t(timeout))
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                    raise AssertionError("agent did not exit within %.0fs of SIGTERM\n%s"
                                         % (t(timeout), self.stderr_tail()))
            else:
                raise AssertionError("agent had already exited (status %s) before SIGTERM\n%s"
                                     % (self.proc.returncode, self.stderr_tail()))
        finally:
            self._err.close()
        self.returncode = self.proc.returncode
        err = self.stderr_bytes()
        found = REPORT.search(err)
        if found:
            raise AssertionError("sanitizer/valgrind report in agent stderr (%r)\n%s"
                                 % (found.group(0), self.stderr_tail(60)))
        if self.returncode != 0:
            raise AssertionError("agent exited with status %d after SIGTERM (expected 0)\n%s"
                                 % (self.returncode, self.stderr_tail()))
        self.tap()
        rest = self.tap_partial()
        if rest:
            raise AssertionError("tap ends with an incomplete line after exit: %r" % rest[:200])


def check_json_line(raw, where):
    try:
        text = raw.decode("utf-8", "strict")
    except UnicodeDecodeError as e:
        raise AssertionError("%s is not valid UTF-8 (%s): %r" % (where, e, raw[:300]))
    bad = [c for c in text if ord(c) < 0x20]
    if bad:
        raise AssertionError("%s holds raw control characters %r: %r" % (where, bad[:5], raw[:300]))
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise AssertionError("%s is not JSON (%s): %r" % (where, e, raw[:300]))
    if not isinstance(obj, dict):
        raise AssertionError("%s is not a JSON object: %r" % (where, raw[:300]))
    return obj


def parse_metrics(body):
    out = {}
    for line in body.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        # A label value may hold spaces (a mapping's name): the value is
        # the last field.
        parts = line.rsplit(None, 1)
        name = parts[0]
        try:
            value = float(parts[1])
        except (IndexError, ValueError):
            raise AssertionError("bad metrics line %r" % line)
        out[name] = value
        base = name.split("{", 1)[0]
        if base != name:
            out[base] = out.get(base, 0) + value
    return out


def stats_counters():
    """Counter names from agent/core/stats.h (the metrics contract)."""
    with open(os.path.join(ROOT, "agent", "core", "stats.h")) as f:
        return re.findall(r"^\s*X\((\w+),", f.read(), re.M)


def syslog(m, field):
    return (m.get("syslog") or {}).get(field)


# ------------------------------------------------------------ sequence checks

def logger_lines(n, tok, start=0):
    """n stdin lines for logger: "seq=N run=TOKEN"."""
    return b"".join(b"seq=%05d run=%s\n" % (i, tok.encode()) for i in range(start, start + n))


def seq_messages(msgs, tok):
    """[(seq, message)] of messages whose msg carries "seq=N run=tok"."""
    pat = re.compile(r"seq=(\d+) run=" + re.escape(tok) + r"\b")
    out = []
    for m in msgs:
        found = pat.search(m.get("msg") or "")
        if found:
            out.append((int(found.group(1)), m))
    return out


def check_sequence(msgs, tok, n, ordered=True, what="messages"):
    """Asserts that seq 0..n-1 each arrived exactly once (and in order per
    source connection when ordered)."""
    seqs = seq_messages(msgs, tok)
    got = [s for s, _ in seqs]
    missing = sorted(set(range(n)) - set(got))
    dups = sorted({s for s in got if got.count(s) > 1}) if len(got) != len(set(got)) else []
    problems = []
    if missing:
        problems.append("%d of %d %s missing (first: %s)" % (len(missing), n, what, missing[:10]))
    if dups:
        problems.append("duplicates: %s" % dups[:10])
    extra = sorted(s for s in set(got) if s >= n)
    if extra:
        problems.append("unexpected sequence numbers %s" % extra[:10])
    if ordered:
        by_source = {}
        for s, m in seqs:
            by_source.setdefault(m.get("source"), []).append(s)
        for src, ss in by_source.items():
            if ss != sorted(ss):
                first = next(i for i in range(1, len(ss)) if ss[i] < ss[i - 1])
                problems.append("out of order from %s at position %d: ...%s..."
                                % (src, first, ss[max(0, first - 3):first + 3]))
    assert not problems, "; ".join(problems)
    return seqs


# ------------------------------------------------------------------ sockets

def tcp_connect(port, host="127.0.0.1", timeout=5):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(t(timeout))
    s.connect((host, port))
    return s


def tls_connect(port, cert="client", host="127.0.0.1", timeout=5, session=None, context=None,
                max_version=None):
    """A TLS connection (Python's ssl) that verifies the agent as "localhost",
    with a client certificate ("client", "wrong-client" or None). Pass the
    context and session of an earlier connection to resume it."""
    c = certs()
    if context is None:
        context = ssl.create_default_context(cafile=c["ca.pem"])
        if cert:
            context.load_cert_chain(c[cert + ".pem"], c[cert + ".key"])
        if max_version is not None:
            context.maximum_version = max_version
    s = tcp_connect(port, host, timeout)
    try:
        return context.wrap_socket(s, server_hostname="localhost", session=session)
    except BaseException:
        s.close()
        raise


def udp_send(port, payloads, host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        for p in payloads:
            s.sendto(p, (host, port))


def wait_closed(sock, timeout=5):
    """Reads until the peer closes; returns (closed?, bytes received).
    A reset counts as closed."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + t(timeout)
    got = b""
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True, got
        if not data:
            return True, got
        got += data
    return False, got


def rfc3164(text, app="itest", host="itest-host", pri=13):
    return ("<%d>Nov 23 10:00:00 %s %s: %s" % (pri, host, app, text)).encode()


def octet(frame):
    return b"%d %s" % (len(frame), frame)


# ------------------------------------------------------------- certificates

_certs = {}


def certs():
    """A CA, a server cert (localhost, 127.0.0.1, ::1), a client cert, and a
    client cert from another CA: made once per run with the openssl CLI.
    Returns {file name: absolute path}."""
    if _certs:
        return _certs
    openssl = tool("openssl")
    d = os.environ.get("RTR_IT_RUNDIR") or tempfile.mkdtemp(prefix="rtr-it-run-")
    d = os.path.join(d, "certs")
    os.makedirs(d, exist_ok=True)

    def run(*args):
        p = subprocess.run([openssl] + list(args), cwd=d, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        if p.returncode:
            raise AssertionError("openssl %s failed:\n%s" % (" ".join(args),
                                                              p.stdout.decode(errors="replace")))
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        run("req", "-x509", *key, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "30",
            "-subj", "/CN=rtr-agent test %s" % ca,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
                "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("subjectAltName=DNS:client.test\n"
                "extendedKeyUsage=clientAuth,serverAuth\nbasicConstraints=CA:FALSE\n")
    for name, ca, ext, cn in (("server", "ca", "server.ext", "localhost"),
                              ("client", "ca", "client.ext", "client.test"),
                              ("wrong-client", "other-ca", "client.ext", "client.test")):
        run("req", *key, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
        run("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".pem", "-days", "30", "-extfile", ext)
    for f in os.listdir(d):
        _certs[f] = os.path.join(d, f)
    return _certs


def systemd_verify_root(ctx, tree, name, without=None):
    """`systemd-analyze verify --root` of rtr-agent.service in a copy of tree
    (a staged install or an unpacked package) made whole enough to load it:
    /bin, /sbin and /lib as links into /usr where tree has none, the host's
    *.target units and kill (the unit's ExecReload=); the file `without`
    (a path inside tree) left out. Returns (exit status, output)."""
    root = ctx.path(name)
    shutil.copytree(tree, root, symlinks=True)
    for d in ("bin", "sbin", "lib"):
        os.makedirs(os.path.join(root, "usr", d), exist_ok=True)
        if not os.path.lexists(os.path.join(root, d)):
            os.symlink("usr/" + d, os.path.join(root, d))
    units = os.path.join(root, "usr", "lib", "systemd", "system")
    os.makedirs(units, exist_ok=True)
    for host_units in ("/usr/lib/systemd/system", "/lib/systemd/system"):
        for target in glob.glob(host_units + "/*.target"):
            if not os.path.exists(os.path.join(units, os.path.basename(target))):
                shutil.copy(target, units)
    shutil.copy(tool("kill"), os.path.join(root, "usr", "bin", "kill"))
    if without:
        os.unlink(root + without)
    p = subprocess.run([tool("systemd-analyze"), "verify", "--man=no", "--root=" + root,
                        "rtr-agent.service"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=t(60),
                       env=dict(os.environ, SYSTEMD_PAGER="", SYSTEMD_COLORS="0"))
    return p.returncode, p.stdout.decode("utf-8", "replace")


# ------------------------------------------------------------------ rsyslog

RSYSLOG_MODULE_DIRS = ("/usr/lib/x86_64-linux-gnu/rsyslog", "/usr/lib/aarch64-linux-gnu/rsyslog",
                       "/usr/lib/rsyslog")


def _rsyslog_module(so, package):
    """Skips the test when rsyslog's module `so` is not installed."""
    for d in RSYSLOG_MODULE_DIRS:
        if os.path.exists(os.path.join(d, so)):
            return
    raise Skip("rsyslog's %s (%s) is not installed" % (so, package))


def _rsyslog_spawn(ctx, d, conf, port):
    """Writes conf to d/rsyslog.conf, runs rsyslogd in the foreground with
    it (no pid file outside d, no system path) and waits until its imtcp on
    127.0.0.1:port accepts. Returns (process, log path)."""
    rsyslogd = tool("rsyslogd")
    conf_path = os.path.join(d, "rsyslog.conf")
    with open(conf_path, "w") as f:
        f.write(conf)
    log_path = os.path.join(d, "rsyslogd.log")
    log = open(log_path, "ab")
    argv = [rsyslogd, "-n", "-C", "-f", conf_path, "-i", os.path.join(d, "rsyslogd.pid")]
    proc = ctx.spawn(argv, cwd=d, stdout=log, stderr=log)
    log.close()

    def listening():
        if proc.poll() is not None:
            with open(log_path, errors="replace") as f:
                raise AssertionError("rsyslogd exited with %s:\n%s" % (proc.returncode, f.read()))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_until(listening, 10, "rsyslogd's imtcp on port %d" % port)
    return proc, log_path


def start_rsyslog(ctx, agent_port, framing, certs_, authmode="x509/name", client_cert=True,
                  template=None, name="rsyslog"):
    """rsyslogd in the foreground with its own config in the test folder:
    imtcp on a free 127.0.0.1 port -> omfwd over TLS (ossl) to the agent.
    Returns the imtcp port. Touches no system path."""
    _rsyslog_module("lmnsd_ossl.so", "rsyslog-openssl")
    d = os.path.join(ctx.dir, name)
    os.makedirs(os.path.join(d, "work"))
    port = free_port()
    glob = ['workDirectory="%s"' % os.path.join(d, "work"), 'maxMessageSize="64k"',
            'DefaultNetstreamDriverCAFile="%s"' % certs_["ca.pem"]]
    if client_cert:
        glob += ['DefaultNetstreamDriverCertFile="%s"' % certs_["client.pem"],
                 'DefaultNetstreamDriverKeyFile="%s"' % certs_["client.key"]]
    tpl = template or ("RSYSLOG_SyslogProtocol23Format" if framing == "octet-counted"
                       else "RSYSLOG_ForwardFormat")
    peers = ' StreamDriverPermittedPeers="localhost"' if authmode == "x509/name" else ""
    conf = """
global(%s)
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="fwd")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp"
         StreamDriver="ossl" StreamDriverMode="1" StreamDriverAuthMode="%s"%s
         TCP_Framing="%s" template="%s"
         queue.type="LinkedList" queue.size="10000" queue.saveOnShutdown="off"
         action.resumeRetryCount="-1" action.resumeInterval="1")
}
""" % ("\n       ".join(glob), port, agent_port, authmode, peers, framing, tpl)
    proc, log = _rsyslog_spawn(ctx, d, conf, port)
    return port, proc, log


class Relay:
    """A private rsyslogd that takes LF-framed syslog on imtcp
    (127.0.0.1:.port) and forwards each message verbatim (%rawmsg%) to the
    agent through a disk-assisted action queue that retries forever, as a
    SIEM forwarder does: omrelp (at-least-once: a message leaves the queue
    when the agent answers it) or omfwd over TCP (octet-counted; a message
    leaves the queue once the kernel took it). impstats writes the queue's
    size to .stats_path every second. With tls_certs (certs()), omrelp
    speaks TLS, checks the agent's name (localhost) and presents the client
    certificate."""

    def __init__(self, ctx, agent_port, action, name, queue_size, window, tls_certs=None):
        if action == "omrelp":
            _rsyslog_module("omrelp.so", "rsyslog-relp")
        _rsyslog_module("impstats.so", "rsyslog")
        self.dir = os.path.join(ctx.dir, name)
        self.work = os.path.join(self.dir, "work")
        os.makedirs(self.work)
        self.port = free_port()
        self.stats_path = os.path.join(self.dir, "impstats.json")
        if action == "omrelp":
            out = 'type="omrelp" windowSize="%d" timeout="5"' % window
            if tls_certs:
                out += ('\n         tls="on" tls.caCert="%s" tls.myCert="%s" tls.myPrivKey="%s"'
                        '\n         tls.authMode="name" tls.permittedPeer=["localhost"]'
                        % (tls_certs["ca.pem"], tls_certs["client.pem"],
                           tls_certs["client.key"]))
        else:
            out = 'type="omfwd" protocol="tcp" TCP_Framing="octet-counted"'
        conf = """
global(workDirectory="%s" maxMessageSize="64k")
module(load="impstats" interval="1" format="json" log.syslog="off" log.file="%s")
module(load="imtcp")
%s
template(name="rtr_raw" type="string" string="%%rawmsg%%")
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="fwd")
ruleset(name="fwd") {
  action(name="to_agent" %s target="127.0.0.1" port="%d" template="rtr_raw"
         queue.type="LinkedList" queue.filename="to_agent" queue.size="%d"
         queue.maxDiskSpace="1g" queue.saveOnShutdown="on"
         action.resumeRetryCount="-1" action.resumeInterval="1")
}
""" % (self.work, self.stats_path, 'module(load="omrelp")' if action == "omrelp" else "",
            self.port, out, agent_port, queue_size)
        self.proc, self.log_path = _rsyslog_spawn(ctx, self.dir, conf, self.port)

    def queued(self):
        """The messages rsyslog's action queue (memory and disk parts) held
        at its latest impstats report; 0 before the first."""
        latest = {}
        try:
            with open(self.stats_path, errors="replace") as f:
                for line in f:
                    start = line.find("{")
                    if start < 0:
                        continue
                    try:
                        rec = json.loads(line[start:])
                    except ValueError:
                        continue  # a line being written
                    if rec.get("origin") == "core.queue" and rec.get("name", "").startswith(
                            "to_agent"):
                        latest[rec["name"]] = rec.get("size", 0)
        except FileNotFoundError:
            return 0
        return sum(latest.values())

    def log_tail(self, n=3000):
        with open(self.log_path, errors="replace") as f:
            return "--- rsyslogd output (%s):\n%s" % (self.log_path, f.read()[-n:])


def start_relay(ctx, agent_port, action="omrelp", name="rsyslog", queue_size=100000,
                window=128, tls_certs=None):
    """A started Relay (see there) forwarding to agent_port with `action`
    ("omrelp" or "omfwd"); omrelp keeps up to `window` messages unanswered
    and, with tls_certs, speaks TLS."""
    return Relay(ctx, agent_port, action, name, queue_size, window, tls_certs)


# ---------------------------------------------------------------- test context

class Ctx:
    """Per-test state: a temporary folder and every process started."""

    def __init__(self, name):
        base = os.environ.get("RTR_IT_RUNDIR") or None
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=base)
        self.name = name
        self._agents = []
        self._procs = []

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def agent(self, listen, env=None, **kw):
        """Starts an agent (see Agent) and waits for its port files."""
        name = kw.pop("name", "agent%d" % len(self._agents))
        return Agent(self, listen, name=name, **kw).start(env=env)

    def spawn(self, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(argv, **kw)
        self._procs.append(p)
        return p

    def run(self, argv, input=None, timeout=30, check=True):
        """Runs a client to completion; returns CompletedProcess (bytes)."""
        p = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=t(timeout))
        if check and p.returncode != 0:
            raise AssertionError("%s exited %d: %s" % (" ".join(map(str, argv)), p.returncode,
                                                       p.stderr.decode(errors="replace")[-2000:]))
        return p

    def close(self):
        """Stops every agent (collecting errors) and helper process."""
        errors = []
        for p in self._procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for a in self._agents:
            try:
                a.stop()
            except AssertionError as e:
                errors.append(str(e))
        return errors
