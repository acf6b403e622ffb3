"""The files the agent writes (issue 12, item 9): the audit log and the
dead-letter file refuse a symbolic link where the file goes, the tap file is
created 0600, a spool folder another user could write to is refused."""
import json
import os
import stat

import response_env as env
from harness import listener, run_agent


def _config(ctx, name, **kw):
    cfg = env.live_config(ctx, **kw)
    cfg["listen"] = [listener("udp")]
    cfg["spool"]["dir"] = ctx.path("spool")
    path = ctx.path(name)
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def test_symlink_instead_of_audit_or_dead_letter_refused(ctx):
    """A symbolic link where the audit log or the dead-letter file goes (to
    a file the agent could write: what an attacker would plant) is refused
    by check and run, naming the key; the file it points at is left alone."""
    target = ctx.path("elsewhere.txt")
    with open(target, "w") as f:
        f.write("untouched\n")
    for key, kw, spool, commands in (
            ("audit.file", {"audit": ctx.path("audit.jsonl")}, {}, ("check", "run")),
            ("spool.dead_letter", {"audit": None}, {"dead_letter": ctx.path("dead.jsonl")},
             ("check", "run"))):
        link = kw["audit"] or spool["dead_letter"]
        os.symlink(target, link)
        path = _config(ctx, key + ".json", spool=spool, **kw)
        for command in commands:
            rc, err = run_agent(command, "-c", path)
            assert rc == 1, "%s with %s a symbolic link exited %d:\n%s" % (
                command, key, rc, err[-2000:])
            assert "%s: %s: cannot open" % (key, link) in err and "symbolic link" in err, \
                "%s did not say that %s is a symbolic link:\n%s" % (command, key, err[-2000:])
        os.unlink(link)
    with open(target) as f:
        assert f.read() == "untouched\n", "the file behind the link was written"


def test_tap_file_created_0600(ctx):
    """Tap lines hold whole messages: the file is created for the agent's
    user alone (whatever the umask lets through)."""
    agent = ctx.agent([listener("udp")])
    mode = stat.S_IMODE(os.stat(agent.tap_path).st_mode)
    agent.stop()
    assert mode == 0o600, "the tap file was created %04o" % mode


def test_spool_folder_others_may_write_refused(ctx):
    """A spool folder its group or every user may write to, or another user
    owns (they could plant alerts), is refused at start, saying why."""
    path = _config(ctx, "spool.json")
    spool = ctx.path("spool")
    os.mkdir(spool)
    for mode, who in ((0o777, "every user"), (0o770, "its group")):
        os.chmod(spool, mode)
        rc, err = run_agent("run", "-c", path)
        assert rc == 1, "the agent started with a spool folder of mode %04o:\n%s" % (
            mode, err[-2000:])
        assert "spool.dir: %s: writable by %s" % (spool, who) in err, err[-2000:]
    if os.geteuid() == 0:  # a folder another user owns (only root can give it away)
        os.chmod(spool, 0o700)
        os.chown(spool, 65534, 65534)
        rc, err = run_agent("run", "-c", path)
        assert rc == 1 and "spool.dir: %s: owned by uid 65534" % spool in err, err[-2000:]
