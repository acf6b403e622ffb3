#!/usr/bin/env python3
"""Integration test runner: starts the real rtr-agent and real clients.

Discovers tests/integration/test_*.py and runs every function named test_*
(in file order) with a Ctx (harness.Ctx) and a per-test timeout. Prints
`PASS name`, `FAIL name: reason` or `SKIP name: reason` per test and closes
with `integration: N passed, N failed` (exit status 1 when anything failed).

  python3 tests/integration/run.py [-k SUBSTRING]... [--list] [--jobs N]

--jobs N runs the tests in N processes at once (test i in process i mod N),
each printing its own results when it ends, then the sum: for the slow runs
(valgrind), where the agent, not the machine, is the bottleneck.

Environment: RTR_AGENT, BUILD, SHARED, RTR_WRAPPER (e.g. "valgrind
--error-exitcode=99 --leak-check=full": prefixes the agent command; the
agent must still exit 0 after SIGTERM), RTR_TIMEOUT_SCALE, RTR_KEEP=1.
A test may set `fn.timeout = SECONDS` (default 30, scaled). Under valgrind,
a test that sets `fn.valgrind_skip = REASON` (or whose module sets
VALGRIND_SKIP = REASON) reports SKIP: one that only starts short-lived
commands (check, parse) or none of the agent at all, whose code the ASan
run covers, where valgrind would only repeat process start-ups.
"""
import argparse
import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# The run folder (certificates, per-test folders) must exist before harness
# is imported by the test modules.
RUNDIR = tempfile.mkdtemp(prefix="rtr-it-")
os.environ["RTR_IT_RUNDIR"] = RUNDIR

import harness  # noqa: E402


class Timeout(BaseException):
    """Raised in the test by SIGALRM; BaseException so tests can't swallow it."""


def on_alarm(signum, frame):
    raise Timeout()


def discover(selectors):
    tests = []
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        try:
            mod = importlib.import_module(fname[:-3])
        except Exception as e:  # noqa: BLE001 -- a broken module is one failing test
            def broken(ctx, e=e):
                raise AssertionError("cannot import: %s: %s" % (e.__class__.__name__, e))
            tests.append((fname[:-3] + ".<import>", broken))
            continue
        for name, fn in vars(mod).items():
            if name.startswith("test_") and callable(fn):
                full = "%s.%s" % (fname[:-3], name)
                if not selectors or any(s in full for s in selectors):
                    tests.append((full, fn))
    return tests


def reason_of(exc):
    """One line for the FAIL line, and the details below it."""
    text = str(exc) or exc.__class__.__name__
    first, _, rest = text.partition("\n")
    tb = traceback.extract_tb(exc.__traceback__)
    where = ""
    for fr in reversed(tb):
        if os.path.basename(fr.filename).startswith("test_"):
            where = " [%s:%d]" % (os.path.basename(fr.filename), fr.lineno)
            break
    if not isinstance(exc, AssertionError):
        first = "%s: %s" % (exc.__class__.__name__, first)
    return first + where, rest


def valgrind_skip(fn):
    """Why fn does not run under valgrind, or None."""
    if not harness.UNDER_VALGRIND:
        return None
    return getattr(fn, "valgrind_skip", None) or getattr(sys.modules.get(fn.__module__),
                                                         "VALGRIND_SKIP", None)


def run_one(name, fn):
    skip = valgrind_skip(fn)
    if skip:
        return "SKIP", skip, ""
    ctx = harness.Ctx(name)
    limit = harness.t(getattr(fn, "timeout", 30))
    status, reason, details = "PASS", "", ""
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        fn(ctx)
    except harness.Skip as e:
        status, reason = "SKIP", str(e)
    except Timeout:
        status, reason = "FAIL", "timed out after %.0fs" % limit
    except Exception as e:  # noqa: BLE001 -- any error is a failure of this test
        status = "FAIL"
        reason, details = reason_of(e)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        signal.setitimer(signal.ITIMER_REAL, harness.t(60))
        errors = ctx.close()
    except Timeout:
        errors = ["cleanup timed out"]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if errors and status != "FAIL":
        status = "FAIL"
        reason, _, details = errors[0].partition("\n")
        reason = "at agent stop: " + reason
        details = "\n".join([details] + errors[1:])
    elif errors:
        details = "\n".join([details, "also at agent stop:"] + errors)
    if status == "FAIL" or harness.KEEP:
        details = (details + "\n" if details else "") + "test folder kept: " + ctx.dir
    else:
        shutil.rmtree(ctx.dir, ignore_errors=True)
    return status, reason, details


def failure_reports(out, max_lines=12):
    """Each FAIL line of a shard's output with the first lines of its details."""
    reports, lines = [], out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("FAIL "):
            details = []
            for more in lines[i + 1:]:
                if not more.startswith("    ") or len(details) == max_lines:
                    break
                details.append(more)
            reports.append("\n".join([line] + details))
    return reports


def run_jobs(args):
    """--jobs: one child per shard; their outputs in shard order, then the sum."""
    start = time.monotonic()
    base = [sys.executable, os.path.abspath(__file__)] + [a for k in args.k for a in ("-k", k)]
    children = [subprocess.Popen(base + ["--shard", "%d/%d" % (i, args.jobs)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                for i in range(args.jobs)]
    passed = failed = 0
    failures = []
    for child in children:
        out = child.communicate()[0].decode("utf-8", "replace")
        print(out, end="", flush=True)
        failures += failure_reports(out)
        m = re.search(r"^integration: (\d+) passed, (\d+) failed$", out, re.M)
        if m is None or child.returncode not in (0, 1):
            failed += 1
            print("FAIL shard: exit status %d, no summary line" % child.returncode)
        else:
            passed, failed = passed + int(m.group(1)), failed + int(m.group(2))
    shutil.rmtree(RUNDIR, ignore_errors=True)
    # Again at the end: a CI log keeps only its tail, and the shards' outputs
    # are long.
    for report in failures:
        print(report)
    print("integration: %d processes, wall time %.1fs" % (args.jobs, time.monotonic() - start))
    print("integration: %d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-k", action="append", default=[], metavar="SUBSTRING",
                    help="run only tests whose module.function name contains it (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    ap.add_argument("--jobs", type=int, default=1, help="processes running tests at once")
    ap.add_argument("--shard", default=None, help=argparse.SUPPRESS)  # "I/N", for --jobs
    args = ap.parse_args()
    if args.jobs > 1 and not args.list:
        return run_jobs(args)
    tests = discover(args.k)
    if args.shard:
        i, n = (int(x) for x in args.shard.split("/"))
        tests = tests[i::n]
    if args.list:
        for name, _ in tests:
            print(name)
        return 0
    print("agent: %s%s" % (" ".join(harness.WRAPPER) + " " if harness.WRAPPER else "",
                           harness.AGENT), flush=True)
    if not os.access(harness.AGENT, os.X_OK):
        print("FAIL setup: agent binary %s is missing (run make, or set RTR_AGENT)" % harness.AGENT)
        print("integration: 0 passed, 1 failed")
        return 1
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    skipped = []
    start = time.monotonic()
    for name, fn in tests:
        t0 = time.monotonic()
        status, reason, details = run_one(name, fn)
        counts[status] += 1
        took = time.monotonic() - t0
        if status == "PASS":
            print("PASS %s (%.1fs)" % (name, took), flush=True)
        else:
            print("%s %s: %s (%.1fs)" % (status, name, reason, took), flush=True)
            if status == "SKIP":
                skipped.append(name)
            if details.strip():
                print("    " + details.strip().replace("\n", "\n    "), flush=True)
    if not counts["FAIL"] and not harness.KEEP:
        shutil.rmtree(RUNDIR, ignore_errors=True)
    if skipped:
        print("integration: %d skipped: %s" % (len(skipped), ", ".join(skipped)))
    print("integration: wall time %.1fs" % (time.monotonic() - start))
    print("integration: %d passed, %d failed" % (counts["PASS"], counts["FAIL"]), flush=True)
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
