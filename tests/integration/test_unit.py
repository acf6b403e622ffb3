"""The systemd unit (systemd/rtr-agent.service), checked offline with
systemd-analyze (no running systemd needed): `verify` accepts it without a
warning, `security --offline=true` rates its exposure at most 1.6, and the
directives that guard against regressions are there (LimitCORE=0,
MemoryMax= above MemoryHigh=, TasksMax=, capset allowed for the agent's own
privilege drop). Each systemd-analyze check first shows that it can fail on
this systemd: a broken copy of the unit must be caught."""
import os
import re
import subprocess

from harness import AGENT, ROOT, t, tool

UNIT = os.path.join(ROOT, "systemd", "rtr-agent.service")
MAX_EXPOSURE = 1.6
EXPOSURE = re.compile(r"Overall exposure level for rtr-agent\.service: (\d+\.\d)")


def unit_text():
    with open(UNIT) as f:
        return f.read()


def unit_copy(ctx, name, text=None):
    """A copy of the unit named rtr-agent.service in its own folder, its
    ExecStart and ExecReload (check) on the built agent: verify wants the
    binary to exist, and the installed path (/usr/local/bin) does not here."""
    text = unit_text() if text is None else text
    text, n = re.subn(r"^(ExecStart=|ExecReload=)\S+/rtr-agent ", r"\g<1>%s " % AGENT, text,
                      flags=re.M)
    assert n == 2, "%s: want ExecStart= and ExecReload= running rtr-agent, found %d" % (UNIT, n)
    folder = ctx.path(name)
    os.makedirs(folder)
    path = os.path.join(folder, "rtr-agent.service")
    with open(path, "w") as f:
        f.write(text)
    return path


def analyze(*args):
    """Runs systemd-analyze; returns (exit status, stdout and stderr text)."""
    env = dict(os.environ, SYSTEMD_PAGER="", SYSTEMD_COLORS="0")
    p = subprocess.run([tool("systemd-analyze")] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                       timeout=t(60))
    return p.returncode, p.stdout.decode("utf-8", "replace")


def verify_problems(path):
    """What `systemd-analyze verify` says about the unit at path: its exit
    status and its lines naming the unit (on a host with systemd running,
    lines about other units are not this test's business)."""
    rc, out = analyze("verify", "--man=no", path)
    mine = [line for line in out.splitlines() if path in line or "rtr-agent.service" in line]
    return rc, mine, out


def exposure(path):
    """(exit status at the threshold, the overall exposure, the output)."""
    rc, out = analyze("security", "--offline=true",
                      "--threshold=%d" % round(MAX_EXPOSURE * 10), path)
    m = EXPOSURE.search(out)
    assert m, "no \"Overall exposure level\" line from systemd-analyze security:\n" + out[-3000:]
    return rc, float(m.group(1)), out


def service_settings():
    """{key: [values in order]} of the unit's [Service] section."""
    settings, section = {}, None
    for line in unit_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def bytes_of(value):
    m = re.fullmatch(r"(\d+)([KMGT]?)", value)
    assert m, "not a byte size: %r" % value
    return int(m.group(1)) << (10 * " KMGT".index(m.group(2) or " "))


def test_unit_verifies(ctx):
    _, mine, out = verify_problems(unit_copy(ctx, "broken", unit_text().replace(
        "\nUMask=0077\n", "\nUMask=0077\nMemoryMax=lots\n")))
    assert any("lots" in line for line in mine), \
        "verify did not catch an invalid MemoryMax= (the check could not fail):\n" + out[-2000:]
    rc, mine, out = verify_problems(unit_copy(ctx, "shipped"))
    assert rc == 0 and not mine, "systemd-analyze verify (exit %d):\n%s" % (rc, out[-3000:])


def test_unit_security_exposure(ctx):
    bare = re.sub(r"^(Protect|Private|Restrict|SystemCall|Capability|NoNewPrivileges|"
                  r"DynamicUser)\S*=.*$", "", unit_text(), flags=re.M)
    rc, level, _ = exposure(unit_copy(ctx, "bare", bare))
    assert rc != 0 and level > MAX_EXPOSURE, "the unit without its hardening rates %.1f " \
        "(exit %d): the check could not fail" % (level, rc)
    rc, level, out = exposure(unit_copy(ctx, "shipped"))
    warnings = [line for line in out.splitlines() if re.search(r"rtr-agent\.service:\d+:", line)]
    assert not warnings, "systemd-analyze security warns:\n" + "\n".join(warnings)
    assert rc == 0 and level <= MAX_EXPOSURE, \
        "exposure %.1f (exit %d), want at most %.1f:\n%s" % (level, rc, MAX_EXPOSURE, out[-4000:])


def test_unit_limits_and_filter(ctx):
    settings = service_settings()
    assert settings.get("LimitCORE") == ["0"], "want LimitCORE=0 (a core would hold the " \
        "secrets): %r" % settings.get("LimitCORE")
    for key in ("MemoryHigh", "MemoryMax", "TasksMax"):
        assert len(settings.get(key, [])) == 1, "want one %s= line: %r" % (key, settings.get(key))
    high, cap = bytes_of(settings["MemoryHigh"][0]), bytes_of(settings["MemoryMax"][0])
    assert 0 < high < cap, "MemoryHigh=%s must be below MemoryMax=%s" % (
        settings["MemoryHigh"][0], settings["MemoryMax"][0])
    assert int(settings["TasksMax"][0]) >= 256 + 3, \
        "TasksMax=%s: workers alone may be 256" % settings["TasksMax"][0]
    # The agent drops its capabilities with capset, which @privileged holds:
    # denied (SystemCallErrorNumber=EPERM), the drop would fail.
    filters = settings.get("SystemCallFilter", [])
    denies = [i for i, f in enumerate(filters)
              if f.startswith("~") and "@privileged" in f.lstrip("~").split()]
    if denies:
        after = [w for f in filters[denies[-1] + 1:] if not f.startswith("~") for w in f.split()]
        assert "capset" in after, "SystemCallFilter= denies @privileged and does not allow " \
            "capset again after it: %r" % filters
