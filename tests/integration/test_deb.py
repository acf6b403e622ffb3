"""The Debian package (issue 13, item 3).

`make deb` builds it from the tree (dpkg-buildpackage on a copy, with
systemd/debian as its debian/). It goes to build/deb whatever build is under
test, so the valgrind and sanitizer runs of the suite check the package the
plain run built (make builds it again when a file it is made from, or the
git commit, changed). The package, unpacked with `dpkg -x` into a throwaway
root:
- is version RTR_VERSION, and so is the top of systemd/debian/changelog;
- holds the binary (it runs `version` from there), the unit (once: the
  Makefile installs it, dh_installsystemd only writes the scripts), the
  config and the logrotate snippet (both conffiles), the mappings and the man
  pages; nothing under /var (the unit's StateDirectory= and LogsDirectory=
  make those) nor /usr/local;
- has maintainer scripts that create nothing (no user, folder or
  ownership: DynamicUser= and systemd do that), and a postinst that, run
  with stand-in deb-systemd-helper and deb-systemd-invoke, does not enable
  the service on a first install but keeps it enabled on an upgrade;
- passes `systemd-analyze verify --root` (and fails it without the binary);
- has no lintian tag (with --display-info --pedantic --display-experimental)
  but those systemd/debian/rtr-agent.lintian-overrides explains, each of
  them still reported (an unused override is a tag too).
Skips where dpkg-buildpackage, dh or lintian is missing (.ci/install-test-deps
installs them)."""
import filecmp
import glob
import gzip
import os
import re
import subprocess

from harness import ROOT, systemd_verify_root, t, tool

DEB_DIR = os.path.join(ROOT, "build", "deb")
NO_MAKE_ENV = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DEBDIR")
CONFFILES = ["/etc/logrotate.d/rtr-agent", "/etc/rtr-agent/rtr-agent.json"]
# What a maintainer script would run or name to make what systemd makes.
CREATES = re.compile(r"\b(mkdir|install\s+-d|adduser|useradd|addgroup|groupadd|chown|chmod|"
                     r"systemd-tmpfiles|systemd-sysusers)\b|/var/(lib|log)/")


def rtr_version():
    with open(os.path.join(ROOT, "agent", "core", "version.h")) as f:
        return re.search(r'^#define RTR_VERSION "([^"]+)"$', f.read(), re.M).group(1)


def output(argv, **kw):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=t(kw.pop("timeout", 60)), **kw)
    out = p.stdout.decode("utf-8", "replace")
    return p.returncode, out


def build_deb():
    """`make deb` into DEB_DIR; returns the package's path."""
    for name in ("dpkg-buildpackage", "dh", "dpkg-deb", "lintian", "systemd-analyze"):
        tool(name)
    env = {k: v for k, v in os.environ.items() if k not in NO_MAKE_ENV}
    rc, out = output([tool("make"), "-C", ROOT, "deb", "DEBDIR=" + DEB_DIR], env=env,
                     timeout=600)
    assert rc == 0, "make deb exited %d:\n%s" % (rc, out[-4000:])
    rc, arch = output(["dpkg", "--print-architecture"])
    deb = os.path.join(DEB_DIR, "rtr-agent_%s_%s.deb" % (rtr_version(), arch.strip()))
    assert os.path.exists(deb), "make deb made no %s:\n%s" % (deb, out[-2000:])
    return deb


def test_deb_changelog_is_rtr_version(ctx):
    with open(os.path.join(ROOT, "systemd", "debian", "changelog")) as f:
        top = f.readline()
    m = re.match(r"rtr-agent \(([^)]+)\) ", top)
    assert m and m.group(1) == rtr_version(), \
        "systemd/debian/changelog starts %r, RTR_VERSION is %s" % (top, rtr_version())


def test_deb_package(ctx):
    deb = build_deb()
    control = ctx.path("control")
    ctx.run([tool("dpkg-deb"), "-e", deb, control])
    check_control(control)
    check_maintainer_scripts(ctx, control)
    listing = ctx.run([tool("dpkg-deb"), "-c", deb]).stdout.decode()
    paths = [line.split(None, 5)[5].split(" -> ")[0].lstrip(".") for line in listing.splitlines()]
    stray = [p for p in paths if p.startswith(("/var/", "/usr/local/"))]
    assert not stray, "the package holds %r (systemd makes /var/lib/rtr-agent and " \
        "/var/log/rtr-agent at start)" % stray
    units = [p for p in paths if p.endswith("/systemd/system/rtr-agent.service")]
    assert units == ["/lib/systemd/system/rtr-agent.service"], "the unit: %r" % units
    root = ctx.path("root")
    ctx.run([tool("dpkg"), "-x", deb, root])
    check_files(root)
    check_verify(ctx, root)
    check_lintian(deb)


test_deb_package.timeout = 900


def check_control(control):
    with open(os.path.join(control, "control")) as f:
        fields = dict(re.findall(r"^([\w-]+): (.*)$", f.read(), re.M))
    assert fields.get("Version") == rtr_version(), "Version: %r" % fields.get("Version")
    depends = fields.get("Depends", "")
    for lib in ("libevent", "libpcre2-8", "libjson-c", "libcurl", "libssl"):
        assert lib in depends, "Depends: lacks %s: %r" % (lib, depends)
    with open(os.path.join(control, "conffiles")) as f:
        conffiles = sorted(f.read().split())
    assert conffiles == CONFFILES, "conffiles: %r" % conffiles


def check_maintainer_scripts(ctx, control):
    for name in ("preinst", "postinst", "prerm", "postrm"):
        path = os.path.join(control, name)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for n, line in enumerate(f, 1):
                found = CREATES.search(line)
                assert not found, "%s:%d makes what systemd makes (%r): %s" % (
                    name, n, found.group(0), line.strip())
    postinst = os.path.join(control, "postinst")
    first = run_postinst(ctx, postinst, "first", installed_before=False)
    assert not [c for c in first if c.startswith("deb-systemd-helper enable")], \
        "a first install enables the service: %r" % first
    upgrade = run_postinst(ctx, postinst, "upgrade", installed_before=True, old_version="0.0.1")
    assert "deb-systemd-helper enable rtr-agent.service" in upgrade, \
        "an upgrade does not keep the service enabled: %r" % upgrade


def run_postinst(ctx, postinst, name, installed_before, old_version=None):
    """postinst configure with stand-ins for what it calls; returns their
    calls. deb-systemd-helper answers as on a host where the service was
    enabled (was-enabled), and had been installed before or not."""
    bin_dir = ctx.path("fake-" + name)
    os.makedirs(bin_dir)
    calls = os.path.join(bin_dir, "calls")
    helper = ('#!/bin/sh\necho "$(basename "$0") $*" >> %s\n'
              'case "$*" in *debian-installed*) exit %d ;; esac\nexit 0\n'
              % (calls, 0 if installed_before else 1))
    for stand_in in ("deb-systemd-helper", "deb-systemd-invoke", "systemctl"):
        with open(os.path.join(bin_dir, stand_in), "w") as f:
            f.write(helper)
        os.chmod(os.path.join(bin_dir, stand_in), 0o755)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"])
    env.pop("DPKG_ROOT", None)
    argv = ["sh", postinst, "configure"] + ([old_version] if old_version else [])
    p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=t(30))
    assert p.returncode == 0, "postinst %s exited %d: %s" % (" ".join(argv[2:]), p.returncode,
                                                            p.stdout.decode(errors="replace"))
    with open(calls) as f:
        return [line.replace("--quiet ", "").strip() for line in f]


def check_files(root):
    binary = root + "/usr/bin/rtr-agent"
    assert os.access(binary, os.X_OK), "no executable /usr/bin/rtr-agent"
    rc, out = output([binary, "version"])
    rc_git, commit = output(["git", "-C", ROOT, "describe", "--always", "--dirty", "--abbrev=12"])
    want = "rtr-agent " + rtr_version() + (" (git %s)" % commit.strip() if rc_git == 0 else "")
    assert rc == 0 and out.splitlines()[0] == want, \
        "the packaged binary's version (exit %d): %r, want %r" % (rc, out[:200], want)

    with open(root + "/lib/systemd/system/rtr-agent.service") as f:
        unit = f.read()
    assert "\nExecStart=/usr/bin/rtr-agent run -c /etc/rtr-agent/rtr-agent.json\n" in unit, \
        "the unit's ExecStart: %r" % re.findall(r"^ExecStart=.*", unit, re.M)
    with open(root + "/etc/rtr-agent/rtr-agent.json") as f:
        config = f.read()
    assert '"mappings": ["/usr/share/rtr-agent/mappings/*.json"]' in config, \
        "the config's mappings: %r" % re.findall(r'"mappings".*', config)
    assert os.path.exists(root + "/etc/logrotate.d/rtr-agent"), "no logrotate snippet"

    shipped = sorted(glob.glob(os.path.join(ROOT, "mappings", "*.json")))
    packaged = sorted(glob.glob(root + "/usr/share/rtr-agent/mappings/*.json"))
    assert [os.path.basename(p) for p in packaged] == [os.path.basename(p) for p in shipped], \
        "packaged mappings: %r" % packaged
    for mine, theirs in zip(shipped, packaged):
        assert filecmp.cmp(mine, theirs, shallow=False), "%s differs from the tree's" % theirs

    for page, title, section in (("man8/rtr-agent.8.gz", "RTR-AGENT", 8),
                                 ("man5/rtr-agent.json.5.gz", "RTR-AGENT.JSON", 5)):
        with gzip.open(root + "/usr/share/man/" + page, "rt") as f:
            text = f.read()
        assert re.search(r'^\.TH "?%s"? %d ' % (re.escape(title), section), text, re.M), \
            "%s: no .TH %s %d" % (page, title, section)
    for doc in ("copyright", "changelog.gz"):
        assert os.path.exists(root + "/usr/share/doc/rtr-agent/" + doc), "no %s" % doc


def check_verify(ctx, root):
    rc, out = systemd_verify_root(ctx, root, "verify-no-binary", without="/usr/bin/rtr-agent")
    assert rc != 0 and "/usr/bin/rtr-agent" in out, \
        "verify did not miss the binary (the check could not fail):\n" + out[-2000:]
    rc, out = systemd_verify_root(ctx, root, "verify")
    assert rc == 0 and "rtr-agent" not in out, \
        "systemd-analyze verify --root (exit %d):\n%s" % (rc, out[-3000:])


def check_lintian(deb):
    p = subprocess.run([tool("lintian"), "--display-info", "--pedantic", "--display-experimental",
                        "--show-overrides", deb], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=t(300))
    out = p.stdout.decode("utf-8", "replace")
    tags = [line for line in out.splitlines() if re.match(r"[EWIPX]: ", line)]
    assert p.returncode == 0 and not tags, "lintian (exit %d), tags not overridden:\n%s" % (
        p.returncode, "\n".join(tags) or p.stderr.decode("utf-8", "replace")[-2000:])
    overridden = [line for line in out.splitlines() if line.startswith("O: rtr-agent: ")]
    with open(os.path.join(ROOT, "systemd", "debian", "rtr-agent.lintian-overrides")) as f:
        wanted = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    assert len(overridden) == len(wanted), \
        "lintian used %d of the %d overrides:\n%s" % (len(overridden), len(wanted), out[-2000:])
