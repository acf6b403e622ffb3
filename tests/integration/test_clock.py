"""Clock steps (issue 10, item 5): the real agent in direct mode, its wall
clock stepped by libfaketime (Debian `faketime`) while it runs or between
two runs on one spool, the monotonic and boot clocks left alone
(FAKETIME_DONT_FAKE_MONOTONIC=1), as when an operator or NTP steps the
clock.

- steps while it runs: an alert delivered, then the wall clock an hour
  ahead, then an hour behind, each time the same frame again: every repeat
  is audited "duplicate" and never spooled or sent (a window on the wall
  clock expires at the forward step and re-sends at the backward one).
- a restart after a step: an alert delivered and the agent stopped; a new
  agent on the same spool an hour ahead, then another an hour behind: the
  window refilled from the spool still holds the alert (its age comes from
  the boot clock, not the stepped wall clock), so the repeat is a duplicate.
- Retry-After as an HTTP-date from a SafeTitan whose clock is an hour
  behind, then one an hour ahead of the agent's: measured from the
  response's Date header, the pause is what the server asked for (from the
  agent's own clock it would be none, then the retry_max_s cap).
The stand-in's clock is never stepped; with the agent an hour behind, its
certificate would not be valid yet, which is fine: nothing may be sent."""
import os

import harness
from harness import t, token, tool
import response_env as R

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
BKHAN = "bkhan@example.com"  # users.csv


class WallClock:
    """The agent's wall clock offset, read by libfaketime at every call
    (FAKETIME_NO_CACHE), written here."""

    def __init__(self, ctx):
        if harness.UNDER_VALGRIND:
            # Each clock call reads the offset file (FAKETIME_NO_CACHE): under
            # valgrind a run takes minutes. The clock arithmetic runs natively
            # and under ASan; valgrind checks the same code in every live test.
            raise harness.Skip("libfaketime under valgrind takes minutes")
        if not os.path.exists(FAKETIME_LIB):
            tool("faketime")  # skips with the package's name when missing
            raise AssertionError("libfaketime is installed but %s is not there" % FAKETIME_LIB)
        self.path = ctx.path("faketime")
        self.step("+0")

    def step(self, offset):
        """offset: libfaketime's relative form ("+1h", "-1h", "+0")."""
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(offset + "\n")
        os.replace(tmp, self.path)

    def env(self):
        # A sanitizer build wants its runtime first among the loaded
        # libraries; libfaketime, preloaded, comes before it (and intercepts
        # only the clock functions, which ASan leaves alone).
        asan = os.environ.get("ASAN_OPTIONS", "")
        return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": self.path,
                "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}


def _config(ctx, st):
    return R.live_config(ctx, st, spool={"dir": ctx.path("spool")},
                         dispatch={"dedup_window_s": 600})


def _repeat_is_duplicate(agent, frame, n, what):
    """Sends frame again: it must be the n-th duplicate, never spooled."""
    spooled = len(R.outcomes(R.audit(agent), "spooled"))
    R.send_tcp(agent, [frame])
    lines = R.wait_audit(agent, "duplicate", n)
    lines = R.audit(agent)
    assert len(R.outcomes(lines, "spooled")) == spooled, \
        "%s: the repeat was spooled to be sent again:\n%s" % (what, lines[-3:])


def test_steps_while_running(ctx):
    """Wall clock +1 h, then -1 h, while the agent runs: the repeats inside
    the window stay duplicates and nothing is sent twice."""
    clock = WallClock(ctx)
    st = R.standin(ctx)
    agent = R.start_agent(ctx, _config(ctx, st), env=clock.env())
    frame = R.splunk_kv("clock step %s" % token(), BKHAN)
    R.send_tcp(agent, [frame])
    R.wait_audit(agent, "dispatched")
    clock.step("+1h")
    _repeat_is_duplicate(agent, frame, 1, "an hour ahead")
    clock.step("-1h")
    _repeat_is_duplicate(agent, frame, 2, "an hour behind")
    clock.step("+0")
    _repeat_is_duplicate(agent, frame, 3, "back in step")
    assert len(R.quiet(st, t(1.0))) == 1, "the alert was sent more than once"
    assert agent.metric('alerts_total{outcome="duplicate"}') == 3
    agent.stop()


def test_restart_after_step(ctx):
    """An alert delivered, the agent stopped; a new start on the same spool
    an hour ahead, then one an hour behind: the refilled window still holds
    the alert each time."""
    clock = WallClock(ctx)
    st = R.standin(ctx)
    cfg = _config(ctx, st)
    frame = R.splunk_kv("clock restart %s" % token(), BKHAN)
    agent = R.start_agent(ctx, cfg, env=clock.env(), name="first")
    R.send_tcp(agent, [frame])
    R.wait_audit(agent, "dispatched")
    agent.stop()
    for offset, name in (("+1h", "ahead"), ("-1h", "behind")):
        clock.step(offset)
        agent = R.start_agent(ctx, cfg, env=clock.env(), name=name)
        _repeat_is_duplicate(agent, frame, 1, "restarted %s" % offset)
        agent.stop()
    assert len(R.quiet(st, t(1.0))) == 1, "the alert was sent more than once"


def test_retry_after_date_from_server_clock(ctx):
    """503 with Retry-After 4 s after the response's Date, from a server an
    hour behind and then one an hour ahead: each retry comes about 4 s
    later (retry_min_s 1 would retry within 1 s; retry_max_s is 30). The
    Date header has whole seconds: 3 to 4 s."""
    st = R.standin(ctx)
    st.script([{"status": 503, "clock_offset": -3600, "retry_after_in": 4},
               {"status": 503, "clock_offset": 3600, "retry_after_in": 4}])
    agent = R.start_agent(ctx, R.live_config(ctx, st, dispatch={"retry_max_s": 30}))
    R.send_tcp(agent, [R.splunk_kv("server clock %s" % token(), BKHAN)])
    reqs = R.wait_requests(st, 3, timeout=t(20))
    for (a, b), what in zip((reqs[0:2], reqs[1:3]), ("an hour behind", "an hour ahead")):
        waited = b["time"] - a["time"]
        assert 2.8 <= waited <= 4.0 + t(2.0), \
            "server %s: retried after %.1f s, want about 4 s" % (what, waited)
    R.wait_audit(agent, "dispatched")
    agent.stop()
