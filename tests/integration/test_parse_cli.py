"""`rtr-agent parse` (design.md "parse output"), run as a command."""
import glob
import os
import subprocess

from harness import AGENT, SHARED, WRAPPER, Skip, check_json_line, octet, t

# Under valgrind (tests/integration/run.py).
VALGRIND_SKIP = ("only short-lived parse runs: the ASan run covers them; valgrind would only "
                 "repeat process start-ups")

# file -> per line: (syslog format, payload kind, vendor, hostname)
SAMPLES = {
    "dtex.log": [("rfc3164", "cef", "Dtex", "dtex-intercept"),
                 ("rfc3164", "cef", "Dtex", "dtex-intercept"),
                 ("rfc5424", "leef", "Dtex", "dtex-intercept")],
    "logpoint.log": [("rfc5424", "cef", "Logpoint", "logpoint01")],
    "logrhythm.log": [("rfc3164", None, None, "LR-DP01")],
    "noise.log": [("rfc3164", None, None, "web01"), ("rfc5424", "cef", "Cisco", "fw01")],
    "qradar.log": [("rfc3164", "leef", "IBM", "qradar-con"),
                   ("rfc5424", "leef", "IBM", "qradar-con")],
    "securonix.log": [("rfc5424", "cef", "Securonix", "snypr-console")],
    "sentinel.log": [("rfc5424", "cef", "Microsoft", "sentinel-relay")],
    "splunk.log": [("rfc5424", "cef", "Splunk", "splunk-sh01"),
                   ("rfc3164", None, None, "splunk-hf01")],
}


def parse(args, data=None, check=True):
    p = subprocess.run(WRAPPER + [AGENT, "parse"] + args, input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=t(20))
    if check:
        assert p.returncode == 0, "rtr-agent parse %s exited %d: %s" % (
            " ".join(args), p.returncode, p.stderr.decode(errors="replace")[-500:])
    return p


def objects(out, where):
    assert out.endswith(b"\n") or not out, "%s: output does not end with a newline" % where
    return [check_json_line(line, "%s line %d" % (where, i + 1))
            for i, line in enumerate(out.split(b"\n")[:-1])]


def _samples_dir():
    d = os.path.join(SHARED, "samples")
    if not os.path.isdir(d):
        raise Skip("no samples at %s (set SHARED)" % d)
    return d


def _check_sample(name, objs):
    want = SAMPLES[name]
    assert len(objs) == len(want), "%s: %d objects for %d lines" % (name, len(objs), len(want))
    for i, (obj, (fmt, kind, vendor, host)) in enumerate(zip(objs, want)):
        where = "%s line %d" % (name, i + 1)
        s = obj.get("syslog") or {}
        assert s.get("format") == fmt, "%s: format %r, want %s" % (where, s.get("format"), fmt)
        assert s.get("hostname") == host, "%s: hostname %r, want %s" % (
            where, s.get("hostname"), host)
        assert "error" not in obj, "%s: error %r" % (where, obj["error"])
        for k in ("cef", "leef"):
            if k == kind:
                got = (obj.get(k) or {}).get("vendor")
                assert got == vendor, "%s: %s.vendor %r, want %s" % (where, k, got, vendor)
                assert isinstance(obj[k].get("ext"), dict) and obj[k]["ext"], \
                    "%s: %s.ext empty" % (where, k)
            else:
                assert k not in obj, "%s: unexpected %s object" % (where, k)
        assert "source" not in obj and "transport" not in obj, "%s: tap-only keys in parse" % where


def test_parse_samples(ctx):
    d = _samples_dir()
    names = sorted(os.path.basename(f) for f in glob.glob(os.path.join(d, "*.log")))
    assert set(names) == set(SAMPLES), "samples changed: %s (update SAMPLES)" % names
    for name in names:
        p = parse([os.path.join(d, name)])
        _check_sample(name, objects(p.stdout, name))


def test_parse_sample_details(ctx):
    d = _samples_dir()
    splunk = objects(parse([os.path.join(d, "splunk.log")]).stdout, "splunk.log")[0]
    s = splunk["syslog"]
    assert (s["pri"], s["facility"], s["severity"], s["version"], s["app"]) == (
        134, 16, 6, 1, "splunkd"), s
    assert s["procid"] is None and s["msgid"] is None, s
    assert splunk["cef"]["ext"]["suser"] == "EXAMPLE\\amorgan", splunk["cef"]["ext"]
    assert splunk["msg"].startswith("CEF:0|Splunk|"), splunk["msg"]
    q = objects(parse([os.path.join(d, "qradar.log")]).stdout, "qradar.log")
    assert q[0]["leef"]["version"] == "1.0" and q[1]["leef"]["version"] == "2.0", q
    assert q[0]["leef"]["ext"]["usrName"].startswith("S-1-5-21-"), q[0]["leef"]["ext"]
    assert q[1]["leef"]["ext"]["usrName"].startswith("jsato_partner"), q[1]["leef"]["ext"]


def test_parse_stdin_and_several_files(ctx):
    d = _samples_dir()
    files = [os.path.join(d, n) for n in ("splunk.log", "qradar.log", "noise.log")]
    together = objects(parse(files).stdout, "three files")
    assert len(together) == 6, "%d objects from 3 files of 6 lines" % len(together)
    with open(files[0], "rb") as f:
        data = f.read()
    _check_sample("splunk.log", objects(parse([], data=data).stdout, "stdin"))


def test_parse_octet_framing_embedded_lf(ctx):
    f1 = b"<13>1 2026-11-23T10:00:00Z h app - - - first line\nsecond line\r\nthird"
    f2 = b"<14>Nov 23 10:00:00 h app: CEF:0|V|P|1|2|N|3|msg=multi\\nline k=v"
    p = parse(["--framing", "octet"], data=octet(f1) + octet(f2))
    objs = objects(p.stdout, "octet")
    assert len(objs) == 2, "want 2 objects, got %d: %s" % (len(objs), objs)
    assert objs[0]["msg"] == "first line\nsecond line\r\nthird", objs[0]["msg"]
    assert objs[1]["cef"]["ext"]["msg"] == "multi\nline", objs[1]["cef"]
    lf = objects(parse(["--framing", "lf"], data=f1 + b"\n").stdout, "lf")
    assert len(lf) == 3, "lf framing: want 3 objects for 3 lines, got %d" % len(lf)


def test_parse_bad_bytes_escaped(ctx):
    data = (b"<13>Nov 23 10:00:00 h app: ctl\x01\x1b[0m bad\xff\xc0\xaf end\n"
            b"CEF:0|only|three\n"
            b"\x01\x02garbage\xfe\n"
            b"<999999999999>1 broken\n")
    objs = objects(parse([], data=data).stdout, "bad bytes")
    assert len(objs) == 4, "want 4 objects, got %d" % len(objs)
    assert "ctl\x01\x1b[0m bad" in objs[0]["msg"], objs[0]["msg"]
    assert (objs[1].get("error") or "").lower().startswith("cef"), objs[1]


def test_parse_unreadable_file(ctx):
    p = parse([ctx.path("does-not-exist.log")], check=False)
    assert p.returncode != 0, "parse of a missing file exited 0"
    assert b"does-not-exist.log" in p.stderr, "error does not name the file: %r" % p.stderr
