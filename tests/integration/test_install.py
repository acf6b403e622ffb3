"""Set-up and install (issue 13, items 1 and 2).

`make install` into a staging folder (DESTDIR), from the build under test
(`make -o` it: install must not build anything else): the unit's ExecStart and
every path of the installed config and logrotate snippet follow PREFIX,
SYSCONFDIR and LOCALSTATEDIR; `systemd-analyze verify --root` passes on a
throwaway root made of the staged tree plus the host's targets and kill (what
the unit needs besides itself); the unit loads each credential the config
names from SYSCONFDIR/rtr-agent/credentials/NAME, and the staged binary passes
`check --credentials-from` that folder on the staged config once the files an
operator adds (systemd/README.md, "Installing") are there, as before the first
start; the logrotate snippet parses and really rotates, signalling the agent
once; uninstall leaves only the config.

The dependency scripts: `.ci/install-deps` (what `make run` calls, alone)
lists no test peer; `.ci/install-test-deps`, run against fake dpkg-query,
apt-get and systemctl, refuses to replace another system logger, holds
services back with policy-rc.d while apt-get runs and restores the one that
was there (also when apt-get fails), and disables an rsyslog it installed.
What is not tested: a real apt-get on a host running syslog-ng."""
import filecmp
import glob
import json
import os
import re
import shutil
import stat
import subprocess
import sys

from harness import AGENT, ROOT, WRAPPER, systemd_verify_root, t, tool

# Under valgrind (tests/integration/run.py).
VALGRIND_SKIP = ("install scripts and short-lived check runs: the ASan run covers them; "
                 "valgrind would only repeat process start-ups")

DEFAULT_PATHS = ("/usr/local/", "/etc/rtr-agent", "/var/lib/rtr-agent", "/var/log/rtr-agent")
MAPPING_FILES = sorted(glob.glob(os.path.join(ROOT, "mappings", "*.json")))
# What the unit's LoadCredential= lines load, by credential name.
CREDENTIALS = ("tls-key", "graph-client-secret", "safetitan-api-key")
RUN_CREDENTIALS = "/run/credentials/rtr-agent.service/"
TEST_PEERS = ("rsyslog", "rsyslog-openssl", "rsyslog-relp", "valgrind", "clang", "faketime",
              "python3", "systemd", "logrotate", "openssl", "iproute2")
NO_MAKE_ENV = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "PREFIX", "SYSCONFDIR",
               "LOCALSTATEDIR", "DESTDIR", "BUILD", "SANITIZER")


def make(*args):
    """`make -C ROOT args` without what an outer `make check` passes down;
    returns its output. The agent under test counts as up to date (-o), so
    install copies it as it is."""
    env = {k: v for k, v in os.environ.items() if k not in NO_MAKE_ENV}
    argv = [tool("make"), "-C", ROOT, "-o", AGENT, "BUILD=" + os.path.dirname(AGENT)]
    p = subprocess.run(argv + list(args), env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=t(120))
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, "make %s exited %d:\n%s" % (" ".join(args), p.returncode, out[-3000:])
    return out


def install(ctx, name, *variables):
    """Stages `make install` with variables (NAME=value) in a new folder."""
    stage = ctx.path(name)
    mtime = os.stat(AGENT).st_mtime_ns
    make("install", "DESTDIR=" + stage, *variables)
    assert os.stat(AGENT).st_mtime_ns == mtime, "make install rebuilt " + AGENT
    return stage


def read(path):
    with open(path) as f:
        return f.read()


def unit_lines(text, key):
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


def check_staged(stage, bindir, sysconfdir, datadir, localstatedir):
    """What the unit, config and snippet of a staged install say, against
    the directories they should name; returns (unit, config, snippet) text."""
    binary = stage + bindir + "/rtr-agent"
    assert filecmp.cmp(binary, AGENT, shallow=False), "%s is not the agent under test" % binary
    config_path = sysconfdir + "/rtr-agent/rtr-agent.json"
    unit = read(glob.glob(stage + "/**/systemd/system/rtr-agent.service", recursive=True)[0])
    assert unit_lines(unit, "ExecStart") == ["%s/rtr-agent run -c %s" % (bindir, config_path)], \
        "ExecStart: %r" % unit_lines(unit, "ExecStart")
    # Each source is the folder check --credentials-from reads, plus the name.
    loaded = [tuple(cred.split(":", 1)) for cred in unit_lines(unit, "LoadCredential")]
    want = [(name, "%s/rtr-agent/credentials/%s" % (sysconfdir, name)) for name in CREDENTIALS]
    assert loaded == want, "LoadCredential= lines: %r, want %r" % (loaded, want)
    config = read(stage + config_path)
    named = set(re.findall(re.escape(RUN_CREDENTIALS) + r'([^"/]+)"', config))
    assert named == set(CREDENTIALS), \
        "the config names the credentials %r, the unit loads %r" % (sorted(named), CREDENTIALS)
    mappings = re.search(r'"mappings": \[("[^"]*")\]', config)
    assert mappings and json.loads(mappings.group(1)) == datadir + "/mappings/*.json", \
        "installed config's mappings: %s" % (mappings and mappings.group(0))
    staged = sorted(os.path.basename(p) for p in glob.glob(stage + datadir + "/mappings/*.json"))
    assert staged == [os.path.basename(p) for p in MAPPING_FILES], "staged mappings: %r" % staged
    policies = sorted(os.path.basename(p)
                      for p in glob.glob(stage + datadir + "/mappings/policies/*.json"))
    assert policies == ["insider-threat.json"], "staged example policies: %r" % policies
    assert '"dir": "%s/lib/rtr-agent/spool"' % localstatedir in config, "spool.dir not rewritten"
    assert '"file": "%s/log/rtr-agent/audit.jsonl"' % localstatedir in config, \
        "audit.file not rewritten"
    snippet = read(stage + sysconfdir + "/logrotate.d/rtr-agent")
    want = "%s/log/rtr-agent/*.jsonl %s/lib/rtr-agent/spool/dead-letter.jsonl {" % (
        localstatedir, localstatedir)
    assert want in snippet.splitlines(), \
        "logrotate snippet does not rotate %r:\n%s" % (want, snippet)
    return unit, config, snippet


def verify_root(ctx, stage, name, without=None):
    """systemd_verify_root on the staged tree; returns (exit status, lines
    naming the unit, whole output)."""
    rc, out = systemd_verify_root(ctx, stage, name, without)
    return rc, [line for line in out.splitlines() if "rtr-agent" in line], out


def assert_verifies(ctx, stage, bindir):
    rc, mine, out = verify_root(ctx, stage, "root-no-binary", without=bindir + "/rtr-agent")
    assert rc != 0 and any(bindir + "/rtr-agent" in line for line in mine), \
        "verify did not miss the binary (the check could not fail):\n" + out[-2000:]
    rc, mine, out = verify_root(ctx, stage, "root")
    assert rc == 0 and not mine, \
        "systemd-analyze verify --root (exit %d):\n%s" % (rc, out[-3000:])


def check_as_operator(ctx, stage, bindir, sysconfdir, localstatedir):
    """The staged binary checks the staged config as systemd/README.md says
    to before the first start (`check --credentials-from
    SYSCONFDIR/rtr-agent/credentials`), its absolute paths but the
    credentials' moved into the staging folder, once the operator's files of
    "Installing" and the folders systemd makes at start are there."""
    etc = stage + sysconfdir + "/rtr-agent"
    creds = etc + "/credentials"
    os.makedirs(os.path.join(etc, "tls"))
    os.makedirs(creds)
    os.chmod(creds, 0o700)
    ctx.run([tool("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", creds + "/tls-key",
             "-out", etc + "/tls/server.pem", "-days", "2", "-subj", "/CN=relay"])
    shutil.copy(etc + "/tls/server.pem", etc + "/tls/clients-ca.pem")
    shutil.copy(os.path.join(ROOT, "systemd", "users.example.csv"), etc + "/users.csv")
    for name in ("graph-client-secret", "safetitan-api-key"):
        with open(creds + "/" + name, "w") as f:
            f.write(name + "-value\n")
    for name in CREDENTIALS:
        os.chmod(creds + "/" + name, 0o600)
    for d in ("lib", "log"):
        os.makedirs(stage + localstatedir + "/" + d + "/rtr-agent", mode=0o700)
    config = read(etc + "/rtr-agent.json")
    # The credentials stay under /run/credentials/: --credentials-from maps them.
    moved = re.sub(r'"/(?!run/credentials/)(?=[a-z])', '"%s/' % stage, config)
    assert '"%stls-key"' % RUN_CREDENTIALS in moved, "the TLS key is no credential:\n" + moved
    checked = etc + "/staged-check.json"
    with open(checked, "w") as f:
        f.write(moved)
    p = subprocess.run(WRAPPER + [stage + bindir + "/rtr-agent", "check", "--strict",
                                  "--credentials-from", creds, "-c", checked],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=t(30))
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0 and "test is successful" in out, "check (exit %d):\n%s" % (
        p.returncode, out[-3000:])
    assert "are checked as %s/NAME" % creds in out, "--credentials-from not taken:\n" + out[-2000:]
    # The README's modes, the secrets filled in: --strict passes, so no
    # warning (as root neither: --credentials-from reads for the unit).
    warnings = [line for line in out.splitlines() if " warning: " in line]
    assert not warnings, "check warned:\n" + "\n".join(warnings)
    counted = re.search(r"(\d+) mappings from (\d+) files", out)
    assert counted and int(counted.group(1)) > 0 and int(counted.group(2)) == len(MAPPING_FILES), \
        "check did not load the staged mappings:\n" + out[-2000:]


def test_install_prefix_usr(ctx):
    stage = install(ctx, "stage", "PREFIX=/usr")
    unit, config, _ = check_staged(stage, "/usr/bin", "/etc", "/usr/share/rtr-agent", "/var")
    assert os.path.exists(stage + "/usr/lib/systemd/system/rtr-agent.service")
    for page in ("man8/rtr-agent.8", "man5/rtr-agent.json.5"):
        assert os.path.exists(stage + "/usr/share/man/" + page), "%s not installed" % page
    assert "/usr/local" not in unit and "/usr/local" not in config, \
        "a /usr/local path is left: " + ", ".join(
            line.strip() for line in (unit + config).splitlines() if "/usr/local" in line)
    assert_verifies(ctx, stage, "/usr/bin")
    check_as_operator(ctx, stage, "/usr/bin", "/etc", "/var")
    p = ctx.run([tool("logrotate"), "-d", "-s", ctx.path("logrotate.state"),
                 stage + "/etc/logrotate.d/rtr-agent"], check=False)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert p.returncode == 0 and "error" not in out, "logrotate -d (exit %d):\n%s" % (
        p.returncode, out[-2000:])


def test_install_default_prefix(ctx):
    stage = install(ctx, "stage")
    check_staged(stage, "/usr/local/bin", "/etc", "/usr/local/share/rtr-agent", "/var")
    assert os.path.exists(stage + "/usr/local/lib/systemd/system/rtr-agent.service")
    assert_verifies(ctx, stage, "/usr/local/bin")
    check_as_operator(ctx, stage, "/usr/local/bin", "/etc", "/var")
    # A logrotate snippet the admin changed stays at uninstall.
    with open(stage + "/etc/logrotate.d/rtr-agent", "a") as f:
        f.write("# rotated daily here\n")
    out = make("uninstall", "DESTDIR=" + stage)
    assert os.path.exists(stage + "/etc/logrotate.d/rtr-agent") and "kept" in out, \
        "uninstall removed a changed logrotate snippet:\n" + out[-2000:]
    assert not os.path.exists(stage + "/usr/local/bin/rtr-agent"), "uninstall left the agent"


def test_install_other_dirs_and_uninstall(ctx):
    """Every path follows other directories (no default one is left), the
    snippet rotates for real, and uninstall removes all but the config."""
    state = ctx.path("state")
    dirs = ("PREFIX=/opt/rtr", "SYSCONFDIR=/etc/opt/rtr", "LOCALSTATEDIR=" + state)
    stage = install(ctx, "stage", *dirs)
    unit, config, snippet = check_staged(stage, "/opt/rtr/bin", "/etc/opt/rtr",
                                         "/opt/rtr/share/rtr-agent", state)
    for name, text in (("unit", unit), ("config", config), ("logrotate snippet", snippet)):
        left = [line.strip() for line in text.splitlines()
                if any(re.search(r"(^|[^\w./-])" + re.escape(d), line) for d in DEFAULT_PATHS)]
        assert not left, "the installed %s names a default path:\n%s" % (name, "\n".join(left))
    assert not unit_lines(unit, "ConfigurationDirectory"), \
        "ConfigurationDirectory= (/etc only) left with SYSCONFDIR=/etc/opt/rtr"
    check_as_operator(ctx, stage, "/opt/rtr/bin", "/etc/opt/rtr", state)
    rotate_for_real(ctx, stage + "/etc/opt/rtr/logrotate.d/rtr-agent", state)

    # The admin's copies stay: a second install keeps them.
    with open(stage + "/etc/opt/rtr/rtr-agent/rtr-agent.json", "a") as f:
        f.write("// edited\n")
    install_again = make("install", "DESTDIR=" + stage, *dirs)
    assert read(stage + "/etc/opt/rtr/rtr-agent/rtr-agent.json").endswith("// edited\n"), \
        "install overwrote the config:\n" + install_again[-2000:]
    make("uninstall", "DESTDIR=" + stage, *dirs)
    left = sorted(os.path.relpath(os.path.join(d, f), stage)
                  for d, _, files in os.walk(stage) for f in files)
    assert "etc/opt/rtr/rtr-agent/rtr-agent.json" in left, "uninstall removed the config"
    stray = [p for p in left if not p.startswith(("etc/opt/rtr/rtr-agent/",
                                                  state.lstrip("/") + "/"))]
    assert not stray, "uninstall left %r" % stray


def rotate_for_real(ctx, snippet, state):
    """logrotate -f with the installed snippet on files where it says they
    are, with a stand-in systemctl: both files renamed (not copied, none
    created in their place: the agent makes its own), one HUP to the main
    process while the service is active, none (and no error) while not."""
    logrotate = tool("logrotate")
    audit = state + "/log/rtr-agent/audit.jsonl"
    dead = state + "/lib/rtr-agent/spool/dead-letter.jsonl"
    for path in (audit, dead):
        os.makedirs(os.path.dirname(path), mode=0o700)
    bin_dir = ctx.path("fake-bin")
    os.makedirs(bin_dir)
    calls = ctx.path("systemctl.calls")
    with open(os.path.join(bin_dir, "systemctl"), "w") as f:
        f.write('#!/bin/sh\necho "$*" >> %s\n'
                'case "$*" in *is-active*) exit "$ACTIVE_EXIT" ;; esac\n' % calls)
    os.chmod(os.path.join(bin_dir, "systemctl"), 0o755)
    for active, want_calls in ((0, ["--quiet is-active rtr-agent.service",
                                    "kill --kill-whom=main --signal=HUP rtr-agent.service"]),
                               (3, ["--quiet is-active rtr-agent.service"])):
        for path in (audit, dead):
            with open(path, "w") as f:
                f.write('{"n": %d}\n' % active)
        if os.path.exists(calls):
            os.unlink(calls)
        env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"],
                   ACTIVE_EXIT=str(active))
        p = subprocess.run([logrotate, "-f", "-s", ctx.path("logrotate.state"), snippet], env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=t(30))
        out = p.stdout.decode("utf-8", "replace")
        assert p.returncode == 0, "logrotate -f (exit %d):\n%s" % (p.returncode, out)
        for path in (audit, dead):
            assert not os.path.exists(path), "%s was created again by logrotate" % path
            assert read(path + ".1") == '{"n": %d}\n' % active, "%s.1: not the rotated file" % path
        got = read(calls).splitlines() if os.path.exists(calls) else []
        assert got == want_calls, "systemctl calls with is-active exiting %d: %r" % (active, got)


# ---------------------------------------------------------------- dependency scripts

def script_list(name):
    p = subprocess.run([os.path.join(ROOT, ".ci", name), "--list"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=t(10))
    assert p.returncode == 0, "%s --list: %s" % (name, p.stdout)
    return p.stdout.decode().split()


def test_deps_run_installs_no_test_peer(ctx):
    runtime, tests = script_list("install-deps"), script_list("install-test-deps")
    assert "libevent-dev" in runtime and "build-essential" in runtime, runtime
    peers = [p for p in runtime if p in TEST_PEERS or p.startswith(("rsyslog", "clang", "syslog"))]
    assert not peers, ".ci/install-deps (make run) installs test peers: %r" % peers
    assert not set(runtime) & set(tests), "in both scripts: %r" % sorted(set(runtime) & set(tests))
    missing = [p for p in TEST_PEERS if p not in tests]
    assert not missing, ".ci/install-test-deps lacks %r" % missing
    run = make("-n", "run")
    check = make("-n", "check")
    assert ".ci/install-test-deps" in check and ".ci/install-deps" in check, check[-2000:]
    assert ".ci/install-deps" in run and "install-test-deps" not in run, \
        "make run calls the test dependencies:\n" + run[-2000:]
    assert re.search(r"make -j\S*nproc", run), \
        "make run does not build with -j$(nproc):\n" + run[-2000:]


FAKE_DPKG_QUERY = r'''#!/usr/bin/env python3
# dpkg-query -W [-f=FORMAT] [PACKAGE...] answered from the JSON file $FAKE_DPKG.
import json, os, re, sys
db = json.load(open(os.environ["FAKE_DPKG"]))
fmt, names = "${Package}\t${Version}\n", []
for a in sys.argv[1:]:
    if a.startswith("-f="):
        fmt = a[3:]
    elif not a.startswith("-"):
        names.append(a)
fmt = fmt.replace("\\n", "\n")
rc = 0
for name in names or sorted(db):
    if name not in db:
        sys.stderr.write("dpkg-query: no packages found matching %s\n" % name)
        rc = 1
        continue
    status = db[name].get("status", "install ok installed")
    abbrev = {"install ok installed": "ii ", "deinstall ok config-files": "rc ",
              "install ok unpacked": "iU "}[status]
    fields = {"Package": name, "Status": status, "db:Status-Abbrev": abbrev,
              "Provides": db[name].get("provides", "")}
    sys.stdout.write(re.sub(r"\$\{([^}]+)\}", lambda m: fields[m.group(1)], fmt))
sys.exit(rc)
'''

FAKE_APT_GET = r'''#!/bin/sh
# Records each call and what policy-rc.d answered then; "install" marks the
# packages installed in $FAKE_DPKG and exits $FAKE_APT_EXIT.
policy="$DPKG_ROOT/usr/sbin/policy-rc.d"
if [ -x "$policy" ]; then "$policy" rsyslog start; answer=$?; else answer=none; fi
echo "$* | policy-rc.d: $answer" >> "$FAKE_LOG"
[ "$1" = install ] || exit 0
shift 3
python3 - "$@" <<'EOF'
import json, os, sys
path = os.environ["FAKE_DPKG"]
db = json.load(open(path))
for name in sys.argv[1:]:
    db.setdefault(name, {})["status"] = "install ok installed"
json.dump(db, open(path, "w"))
EOF
exit "${FAKE_APT_EXIT:-0}"
'''


class FakeSystem:
    """A PATH with fake dpkg-query, apt-get, systemctl and sudo, and a
    DPKG_ROOT for policy-rc.d, so .ci/install-test-deps runs for real
    without touching this machine."""

    def __init__(self, ctx, name, installed, others=None, policy=None):
        self.dir = ctx.path(name)
        self.bin = os.path.join(self.dir, "bin")
        self.root = os.path.join(self.dir, "root")
        self.log = os.path.join(self.dir, "calls.log")
        self.db = os.path.join(self.dir, "dpkg.json")
        os.makedirs(self.bin)
        os.makedirs(os.path.join(self.root, "usr", "sbin"))
        db = {name: {} for name in installed}
        db.update(others or {})
        with open(self.db, "w") as f:
            json.dump(db, f)
        for tool_name, text in (("dpkg-query", FAKE_DPKG_QUERY), ("apt-get", FAKE_APT_GET),
                                ("systemctl", '#!/bin/sh\necho "systemctl $*" >> "$FAKE_LOG"\n'),
                                ("sudo", '#!/bin/sh\nexec "$@"\n')):
            path = os.path.join(self.bin, tool_name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)
        self.policy = os.path.join(self.root, "usr", "sbin", "policy-rc.d")
        if policy is not None:
            with open(self.policy, "w") as f:
                f.write(policy)
            os.chmod(self.policy, 0o755)

    def run(self, apt_exit=0, **env):
        full = dict(os.environ, PATH=self.bin + os.pathsep + os.path.dirname(sys.executable) +
                    os.pathsep + os.environ["PATH"], DPKG_ROOT=self.root, FAKE_DPKG=self.db,
                    FAKE_LOG=self.log, FAKE_APT_EXIT=str(apt_exit), **env)
        p = subprocess.run([os.path.join(ROOT, ".ci", "install-test-deps")], env=full,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=t(30))
        calls = read(self.log).splitlines() if os.path.exists(self.log) else []
        return p.returncode, p.stdout.decode("utf-8", "replace"), calls


def test_deps_refuse_to_replace_a_system_logger(ctx):
    others = [p for p in script_list("install-test-deps") if not p.startswith("rsyslog")]
    syslog_ng = {"syslog-ng-core": {"provides": "linux-kernel-log-daemon, system-log-daemon"}}
    fake = FakeSystem(ctx, "syslog-ng", others, syslog_ng)
    rc, out, calls = fake.run()
    assert rc != 0 and "syslog-ng-core" in out and "RTR_NO_RSYSLOG=1" in out, \
        "no refusal (exit %d):\n%s" % (rc, out)
    assert not calls and not os.path.exists(fake.policy), "it went on: %r" % calls
    # Without rsyslog it installs the rest and leaves the logger alone.
    fake = FakeSystem(ctx, "without-rsyslog", others[1:], syslog_ng)
    rc, out, calls = fake.run(RTR_NO_RSYSLOG="1")
    installs = [c for c in calls if c.startswith("install")]
    assert rc == 0 and len(installs) == 1 and others[0] in installs[0].split() \
        and "rsyslog" not in installs[0], "RTR_NO_RSYSLOG=1 (exit %d): %r\n%s" % (rc, calls, out)
    # A logger removed but for its configuration files is no conflict.
    removed = {"syslog-ng-core": dict(syslog_ng["syslog-ng-core"],
                                      status="deinstall ok config-files")}
    fake = FakeSystem(ctx, "removed-syslog-ng", others, removed)
    rc, out, calls = fake.run()
    assert rc == 0 and any("rsyslog" in c for c in calls), "exit %d: %r\n%s" % (rc, calls, out)


def test_deps_start_no_service(ctx):
    others = [p for p in script_list("install-test-deps") if not p.startswith("rsyslog")]
    docker_policy = "#!/bin/sh\n# the image's own\nexit 101\n"
    # apt-get failing: the policy-rc.d that was there comes back unchanged.
    fake = FakeSystem(ctx, "failing", others, policy=docker_policy)
    rc, out, calls = fake.run(apt_exit=100)
    installs = [c for c in calls if c.startswith("install")]
    assert rc != 0, "apt-get failed and the script exited 0:\n" + out
    assert installs and installs[0].endswith("policy-rc.d: 101"), \
        "policy-rc.d did not answer 101 during apt-get install: %r" % calls
    assert read(fake.policy) == docker_policy and os.stat(fake.policy).st_mode & stat.S_IXUSR, \
        "the previous policy-rc.d was not restored: %r" % read(fake.policy)
    assert not os.path.exists(fake.policy + ".rtr-agent-saved")
    # None before: none after; the rsyslog it installed is disabled.
    fake = FakeSystem(ctx, "fresh", [p for p in others if p != "prometheus"])
    rc, out, calls = fake.run()
    installs = [c for c in calls if c.startswith("install")]
    assert rc == 0 and installs and installs[0].endswith("policy-rc.d: 101"), \
        "exit %d: %r\n%s" % (rc, calls, out)
    assert not os.path.lexists(fake.policy), "policy-rc.d left behind"
    assert "systemctl disable --quiet rsyslog.service" in calls, \
        "the rsyslog it installed is not disabled: %r" % calls
    assert "systemctl disable --quiet prometheus.service" in calls, \
        "the prometheus it installed is not disabled: %r" % calls
    # A symbolic link (policy-rcd-declarative's alternative), even dangling, comes back.
    fake = FakeSystem(ctx, "symlink", others)
    os.symlink("../../etc/alternatives/policy-rc.d", fake.policy)  # inside the fake root
    rc, out, calls = fake.run()
    assert rc == 0 and os.readlink(fake.policy) == "../../etc/alternatives/policy-rc.d", \
        "exit %d, policy-rc.d: %r\n%s" % (rc, os.path.lexists(fake.policy), out)
    # rsyslog there already (the host's logger): left as it is.
    fake = FakeSystem(ctx, "has-rsyslog", others[1:] + ["rsyslog"],
                      {"rsyslog": {"provides": "linux-kernel-log-daemon, system-log-daemon"}})
    rc, out, calls = fake.run()
    assert rc == 0 and not any(c.startswith("systemctl") for c in calls), \
        "exit %d: %r\n%s" % (rc, calls, out)
