"""The man pages (issue 13 item 4): rtr-agent(8) names every command of the
usage, rtr-agent.json(5) every configuration key (its KEYS section is built
from the loader's tables, the same ones systemd/README.md's reference is
checked against), both render without a groff warning; `rtr-agent version`
names the git commit of a build from git."""
import os
import re
import subprocess

from harness import AGENT, BUILD, ROOT, Skip, tool

MAN = os.path.join(BUILD, "man")


def _page(name):
    path = os.path.join(MAN, name)
    assert os.path.exists(path), "%s is missing (make man builds it)" % path
    with open(path) as f:
        return path, f.read()


def test_json5_names_every_key(ctx):
    """Every key of systemd/README.md's reference is a .B line of KEYS, in
    the same order, and nothing else is; @KEYS@ is gone."""
    _, text = _page("rtr-agent.json.5")
    with open(os.path.join(ROOT, "systemd", "README.md")) as f:
        readme = re.findall(r"^\| `([^`]+)` \| [^|]+ \| [^|]+ \| ", f.read(), re.M)
    keys = re.findall(r"^\.TP\n\.B (\S+)$", text, re.M)
    assert "@KEYS@" not in text
    assert readme and keys == readme, "man page keys differ from the README reference:\n%s" % (
        sorted(set(keys) ^ set(readme)))


def test_agent8_names_every_command(ctx):
    """Each command of `rtr-agent help` has its own entry under COMMANDS."""
    _, text = _page("rtr-agent.8")
    usage = subprocess.run([AGENT, "help"], stdout=subprocess.PIPE, check=True).stdout.decode()
    commands = re.findall(r"rtr-agent (\w+)", usage)
    assert {"run", "check", "replay", "parse", "version"} <= set(commands), usage
    section = text.split(".SH COMMANDS", 1)[1].split(".SH ", 1)[0]
    for command in set(commands):
        assert re.search(r"^\.TP\n\.B %s$" % command, section, re.M), \
            "rtr-agent.8 has no COMMANDS entry for %s" % command
    for option in re.findall(r"(--[a-z-]+)", usage):
        assert option.replace("-", "\\-") in text, "rtr-agent.8 does not mention %s" % option


def test_pages_render_without_warnings(ctx):
    """groff -man -ww: no warning about either page (a roff mistake, such
    as a key doc starting with a dot, would show here)."""
    groff = tool("groff")
    for name in ("rtr-agent.8", "rtr-agent.json.5"):
        path, _ = _page(name)
        p = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        out = p.stdout.decode("utf-8", "replace")
        assert p.returncode == 0 and not out.strip(), "%s:\n%s" % (name, out)


def test_version_names_the_commit(ctx):
    """Built from git, the first line of `version` carries the commit the
    tree is at (with -dirty when it had local changes)."""
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              check=True).stdout.decode().strip()
    except (OSError, subprocess.CalledProcessError):
        raise Skip("not a git checkout: the build names no commit")
    line = subprocess.run([AGENT, "version"], stdout=subprocess.PIPE,
                          check=True).stdout.decode().splitlines()[0]
    assert re.match(r"^rtr-agent \d+\.\d+\.\d+ \(git %s(-dirty)?\)$" % head, line), \
        "version says %r, HEAD is %s (rebuild after committing?)" % (line, head)
