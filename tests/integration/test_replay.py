"""`rtr-agent replay` (agent/cmd/replay.h) with the shipped mappings over
../shared/samples: every decision expected.jsonl lists and nothing else;
variants of each source's layout and look-alikes that must not decide;
--explain, and that a message cannot forge it; a catastrophic regex that
hits the PCRE2 limit; texts over the decision cap and users with control
characters; an unresolved user; a directory with a BOM; one mapping file
matched twice, the config matched as a mapping file, non-JSON syntax;
stdin; an unreadable input; cut lines counted per input across a read
error; RFC 6587 octet-counted input (--framing octet)."""
import glob
import json
import os
import re
import socket
import subprocess

from harness import (AGENT, REPORT, ROOT, SHARED, WRAPPER, Skip, check_json_line, for_wrapper,
                     t)

MAPPINGS = os.path.join(ROOT, "mappings")


def _samples():
    d = os.path.join(SHARED, "samples")
    if not os.path.isfile(os.path.join(d, "expected.jsonl")):
        raise Skip("no samples at %s (set SHARED)" % d)
    return d


def strip_comments(text):
    """JSON with // and /* */ comments (as the agent reads it) -> plain JSON."""
    out, i, in_str = [], 0, False
    while i < len(text):
        c = text[i]
        if in_str:
            out.append(text[i:i + 2] if c == "\\" else c)
            i += 2 if c == "\\" else 1
            in_str = c != '"'
            continue
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = len(text) if i < 0 else i
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 2
        else:
            in_str = c == '"'
            out.append(c)
            i += 1
    return "".join(out)


def shipped_mappings():
    """[(name, file basename, mapping)] in load order (files sorted by name)."""
    out = []
    for path in sorted(glob.glob(os.path.join(MAPPINGS, "*.json"))):
        with open(path) as f:
            doc = json.loads(strip_comments(f.read()))
        out += [(m["name"], os.path.basename(path), m) for m in doc["mappings"]]
    return out


def write_config(ctx, name="replay.json", mappings=None, users=None, extra=None):
    """A config for replay in ctx's folder: the shipped mappings and the
    samples' directory unless told otherwise. Returns its path."""
    cfg = {"listen": [{"proto": "udp", "address": "127.0.0.1:0"}],
           "mappings": mappings or [os.path.join(MAPPINGS, "*.json")],
           "identity": {"static": {"file": users or os.path.join(_samples(), "users.csv")}},
           "dispatch": {"mode": "dry-run"}}
    cfg.update(extra or {})
    for_wrapper(cfg)
    path = ctx.path(name)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return path


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z |^rtr-agent ")


def replay(config, inputs, explain=False, data=None, expect_rc=0, timeout=20, expect=None):
    """Runs replay --dry-run (with --expect FILE when expect is set);
    returns (decisions, explain text lines, stderr). Explanations come on
    stderr; stdout must hold JSON lines only."""
    argv = WRAPPER + [AGENT, "replay", "-c", config, "--dry-run"]
    argv += ["--explain"] if explain else []
    argv += ["--expect", expect] if expect else []
    p = subprocess.run(argv + list(inputs), input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=t(timeout))
    err = p.stderr.decode("utf-8", "replace")
    found = REPORT.search(p.stderr)
    assert not found, "sanitizer/valgrind report (%r):\n%s" % (found.group(0), err[-3000:])
    assert p.returncode == expect_rc, "replay exited %d, want %d:\n%s" % (
        p.returncode, expect_rc, err[-2000:])
    assert p.stdout.endswith(b"\n") or not p.stdout, "replay output does not end with a newline"
    decisions = [check_json_line(raw, "replay output line %d" % (i + 1))
                 for i, raw in enumerate(p.stdout.split(b"\n")[:-1])]
    text = [line for line in p.stderr.decode("utf-8", "strict").split("\n")[:-1]
            if not LOG_LINE.match(line)]
    assert explain or not text, "replay without --explain explained: %r" % text[:5]
    for d in decisions:
        missing = {"input_file", "input_line", "mapping", "rule", "user", "email", "event",
                   "outcome"} - set(d)
        assert not missing, "decision lacks %s: %s" % (sorted(missing), d)
    return decisions, text, err


def explain_blocks(text):
    """--explain text -> {(input basename, line): [(mapping, file, why)] plus
    "-> ..." lines as (None, None, line)}."""
    blocks, cur = {}, None
    head = re.compile(r"^(.*):(\d+): ")
    tried = re.compile(r"^  (\S+) \(([^)]*)\): (.*)$")
    for line in text:
        if line.startswith("  -> ") and cur is not None:
            cur.append((None, None, line.strip()))
        elif line.startswith("  ") and cur is not None:
            m = tried.match(line)
            assert m, "explain line is not '  <mapping> (<file>): <why>': %r" % line
            cur.append((m.group(1), os.path.basename(m.group(2)), m.group(3)))
        else:
            m = head.match(line)
            assert m, "explain line is not 'FILE:LINE: <line>': %r" % line
            cur = blocks.setdefault((os.path.basename(m.group(1)), int(m.group(2))), [])
    return blocks


def test_replay_samples_decide_as_expected(ctx):
    """Every sample, all files in one run: exactly the decisions of
    expected.jsonl (rule, user, email, would-dispatch), each by a mapping
    of that source, and nothing for the lines it says decide nothing."""
    d = _samples()
    with open(os.path.join(d, "expected.jsonl")) as f:
        expected = [json.loads(line) for line in f if line.strip()]
    logs = sorted(glob.glob(os.path.join(d, "*.log")))
    listed = {e["file"] for e in expected}
    assert listed == {os.path.basename(p) for p in logs}, \
        "expected.jsonl covers %s, the samples are %s" % (sorted(listed), logs)
    decisions, _, err = replay(write_config(ctx), logs)
    got = {}
    for dec in decisions:
        key = (os.path.basename(dec["input_file"]), dec["input_line"])
        assert key not in got, "two decisions for %s:%d: %s, %s" % (key + (got.get(key), dec))
        got[key] = dec
    problems = []
    for e in expected:
        key = (e["file"], e["line"])
        dec, want = got.pop(key, None), e["decision"]
        where = "%s:%d" % key
        if want is None:
            if dec is not None:
                problems.append("%s: want no decision, got %s" % (where, dec))
            continue
        if dec is None:
            problems.append("%s: no decision, want %s" % (where, want))
            continue
        for k in ("rule", "user", "email"):
            if dec[k] != want[k]:
                problems.append("%s: %s %r, want %r" % (where, k, dec[k], want[k]))
        if dec["event"] != want["rule"]:
            problems.append("%s: event %r, want the rule %r" % (where, dec["event"], want["rule"]))
        if dec["outcome"] != "would-dispatch":
            problems.append("%s: outcome %r, want would-dispatch" % (where, dec["outcome"]))
        source = e["file"][:-len(".log")]
        if not dec["mapping"].startswith(source + "-"):
            problems.append("%s: decided by %r, not a %s mapping" % (where, dec["mapping"], source))
    for key, dec in sorted(got.items()):
        problems.append("%s:%d: unexpected decision %s" % (key + (dec,)))
    assert not problems, "\n".join(problems) + "\n--- stderr:\n" + err[-2000:]


# Variants the samples do not cover: (line, (mapping, rule, user) or None).
VARIANTS = [
    # Splunk CEF: no search_name label -> the CEF name; full key names; duser.
    (r"CEF:0|Splunk|Enterprise Security|7.3|notable|Name Only|5|sourceUserName=EXAMPLE\\amorgan",
     ("splunk-es-cef", "Name Only", "EXAMPLE\\amorgan")),
    (r"CEF:0|Splunk|ES|7.3|notable|N|5|cs3Label=search_name cs3=Labelled duser=bkhan@example.com",
     ("splunk-es-cef", "Labelled", "bkhan@example.com")),
    (r"CEF:0|Splunk|ES|7.3|notable|N|5|destinationUserName=bkhan@example.com",
     ("splunk-es-cef", "N", "bkhan@example.com")),
    # A rule but no user: nothing to act on.
    (r"CEF:0|Splunk|ES|7.3|notable|No User|5|cs1Label=search_name cs1=x", None),
    # Splunk key=value: unquoted values, src_user is not user, empty user.
    (r"<13>Oct  2 09:13:05 hf search_name=Unquoted_Rule user=amorgan src_user=other urgency=low",
     ("splunk-es-kv", "Unquoted_Rule", "amorgan")),
    (r'<13>Oct  2 09:13:05 hf search_name="Q R" src_user=first urgency=high user=second',
     ("splunk-es-kv", "Q R", "second")),
    (r'<13>Oct  2 09:13:05 hf urgency="high" search_name="Q R" user="" src_user="EXAMPLE\bkhan"',
     ("splunk-es-kv", "Q R", "EXAMPLE\\bkhan")),
    (r'search_name="Q R" urgency=high', None),
    # Keys are read only as keys, never inside a quoted value.
    (r'<13>Oct  2 09:13:05 hf search_name="Brute force user=evil" user="real" urgency=high',
     ("splunk-es-kv", "Brute force user=evil", "real")),
    (r'<13>Oct  2 09:13:05 hf search_name="R" src_user="a user=evil" urgency=high',
     ("splunk-es-kv", "R", "a user=evil")),
    (r'<13>Oct  2 09:13:05 hf note="x search_name=Fake" user=bob urgency=high', None),
    (r'<13>Oct  2 09:13:05 hf search_name="Rule urgency=high" user=bob', None),
    (r'<13>Oct  2 09:13:05 hf search_name="Unclosed user=bob urgency=high', None),
    # Without urgency= it is not an ES notable: other products write
    # search_name= and user= too; prose before the pairs is not a notable.
    (r"<13>Oct  2 09:13:05 hf search_name=Unquoted_Rule user=amorgan src_user=other", None),
    ("<14>Oct  2 10:00:00 app01 reportsvc[22]: saved report search_name=quarterly user=bob",
     None),
    ('<14>Oct  2 10:00:00 gl01 gitlab: audit search_name="My issues" user=alice@example.com',
     None),
    ("<14>Oct  2 10:00:00 app01 reportsvc[22]: saved report search_name=q user=bob urgency=low",
     None),
    # Splunk's stash layout: a time, then comma-separated key=value pairs.
    ('<13>Oct  2 09:13:05 hf 1791018785, search_name="Stash Rule", user=amorgan, '
     'urgency="medium", count="2"', ("splunk-es-kv", "Stash Rule", "amorgan")),
    ('<13>Oct  2 09:13:05 hf 10/02/2026 09:13:05 +0000, search_name="Stash Rule", urgency=low, '
     'user=amorgan', ("splunk-es-kv", "Stash Rule", "amorgan")),
    (r'<13>Oct  2 09:13:05 hf 1791018785, search_name="Stash Rule", user=amorgan, count="2"', None),
    # Another CEF vendor carrying Splunk-looking fields decides nothing.
    (r"CEF:0|Acme|Box|1|1|Thing|5|cs1Label=search_name cs1=x suser=bob msg=search_name\=x",
     None),
    # LogRhythm: empty login -> account; a value at the end of the line; no AIE.
    (r"<13>Oct 02 09:14:10 LR EVID:1000541 AIE: Rule Two | login= | account=EXAMPLE\cdiaz | x=1",
     ("logrhythm-aie", "Rule Two", "EXAMPLE\\cdiaz")),
    (r"<13>Oct 02 09:14:10 LR EVID:1 AIE: Last | account=bob",
     ("logrhythm-aie", "Last", "bob")),
    (r"<13>Oct 02 09:14:10 LR EVID:1000541 Some event | login=bob", None),
    # LogRhythm: EVID:<digits> starts the message, nothing else is an AIE alarm.
    ("<13>Oct 02 09:14:10 LR forwarded EVID:42 AIE: is not logrhythm | login=mallory", None),
    ("<13>Oct 02 09:14:10 LR XEVID:42 AIE: Rule | login=mallory", None),
    ("<13>Oct 02 09:14:10 LR EVID:abc AIE: Rule | login=mallory", None),
    ("<13>Oct 02 09:14:10 LR EVID: AIE: Rule | login=mallory", None),
    # Logpoint in another case, without the alert_name label.
    (r"CEF:0|LogPoint|SIEM|7|alert|Name Rule|5|suser=x@example.com",
     ("logpoint-alert", "Name Rule", "x@example.com")),
    # Sentinel's other product names; another Microsoft product is not Sentinel.
    (r"CEF:0|Microsoft|Azure Sentinel|1|A|Display|5|suser=guest_a.example#EXT#@t.onmicrosoft.com",
     ("sentinel-alert", "Display", "guest_a.example#EXT#@t.onmicrosoft.com")),
    (r"CEF:0|Microsoft|Defender|1|A|Display|5|suser=x@example.com", None),
    # DTEX in capitals; an activity the table does not list.
    (r"CEF:0|DTEX|InTERCEPT|6.3|DeviceActivity|RemovableMediaConnected|5|User_Name=EXAMPLE\\fnovak",
     ("dtex-activity", "Unknown USB Device", "EXAMPLE\\fnovak")),
    (r"CEF:0|Dtex|InTERCEPT|6.3|FileActivity|FileCopied|5|User_Name=EXAMPLE\\fnovak", None),
    # DTEX LEEF: only the InTERCEPT alert export (event id Alert) is an alert.
    (r"LEEF:2.0|DTEX|intercept|6.3|Alert|^|cat=Mass Deletion^usrName=EXAMPLE\fnovak",
     ("dtex-alert", "Mass Deletion", "EXAMPLE\\fnovak")),
    (r"LEEF:2.0|Dtex|InTERCEPT|6.3|FileActivity|^|cat=FileCopied^usrName=EXAMPLE\fnovak", None),
    (r"LEEF:2.0|Dtex|Other|6.3|Alert|^|cat=FileCopied^usrName=EXAMPLE\fnovak", None),
    # Securonix without the policyname label.
    (r"CEF:0|Securonix|SNYPR|6.4|Violation|By Name|8|suser=hlund",
     ("securonix-violation", "By Name", "hlund")),
    # LEEF from another IBM product.
    ("LEEF:2.0|IBM|Guardium|11|Alert|^|cat=Policy^usrName=bob", None),
    # QRadar: only offenses (event id "Offense Rule Fired"), not every event.
    ("LEEF:1.0|IBM|QRadar|7.5.0|Login Succeeded|cat=Authentication\tusrName=admin", None),
    ("LEEF:1.0|IBM|QRadar|7.5.0|Offense Rule Fired|cat=Rule\tusrName=admin",
     ("qradar-offense", "Rule", "admin")),
]


def test_replay_shipped_mapping_variants(ctx):
    """The shipped mappings on variants of each source's layout, and on
    look-alikes that must decide nothing."""
    path = ctx.path("variants.log")
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line, _ in VARIANTS))
    decisions, _, err = replay(write_config(ctx), [path])
    got = {d["input_line"]: (d["mapping"], d["rule"], d["user"]) for d in decisions}
    assert len(got) == len(decisions), "two decisions for one line: %s" % decisions
    problems = ["line %d %r: got %s, want %s" % (i + 1, line, got.get(i + 1), want)
                for i, (line, want) in enumerate(VARIANTS) if got.get(i + 1) != want]
    assert not problems, "\n".join(problems) + "\n--- stderr:\n" + err[-2000:]


def test_replay_splunk_kv_hostile_lines(ctx):
    """splunk-es-kv reads keys by walking the key=value pairs from the start
    of the message, so its regexes stay linear: lines of almost 64 KiB made
    to hurt them (tiny pairs, unclosed quotes, quotes only, no spaces) end
    quickly (the replay's timeout), never with a key read inside a value; a
    long but realistic notable decides without hitting a PCRE2 limit, with
    the JIT and with the interpreter, at the default limits."""
    tail = ' search_name="R" urgency=high user=real'
    hostile = [
        "a= " * 21800 + tail.lstrip(),  # 21800 pairs: may hit the limit
        'search_name="' + "a= " * 21800 + "urgency=high user=evil",
        "a= " * 21800 + 'search_name=x urgency=high z="user=evil',
        "search_name=x urgency=high x=" + '"' * 65000 + " user=evil",
        "search_name=x urgency=high " + "a=b," * 16000 + "user=evil",
        "search_name=x urgency=high a=" + " " * 65000 + "user=real",
        'search_name=x urgency=high note="' + "user=evil " * 6000 + "user=real",
    ]
    # A stash-layout notable with 150 quoted fields before the user.
    fields = ", ".join('field_%03d="value number %d of the notable"' % (i, i)
                       for i in range(150))
    realistic = "1791018785, %s, search_name=\"Long Rule\", urgency=\"high\", user=\"amorgan\"" % (
        fields)
    path = ctx.path("hostile.log")
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in hostile + [realistic]))
    assert all(len(line) < 65536 for line in hostile)
    for jit in (True, False):
        config = write_config(ctx, extra={"limits": {"regex_jit": jit}})
        decisions, text, err = replay(config, [path], explain=True, timeout=30)
        for d in decisions:
            assert (d["mapping"], d["user"]) in {("splunk-es-kv", "real"),
                                                 ("splunk-es-kv", "amorgan")}, d
        got = {d["input_line"]: (d["rule"], d["user"]) for d in decisions}
        assert got.get(len(hostile) + 1) == ("Long Rule", "amorgan"), (jit, got, err[-2000:])
        block = explain_blocks(text)[("hostile.log", len(hostile) + 1)]
        assert not [why for _, _, why in block if why and "limit" in why], (jit, block)


def test_replay_explain_noise_tries_every_mapping(ctx):
    """--explain on a CEF line from another vendor: every shipped mapping is
    tried, in load order, each with "no" and the condition that failed
    (when[i] and its field), then "-> no decision"."""
    noise = os.path.join(_samples(), "noise.log")
    decisions, text, _ = replay(write_config(ctx), [noise], explain=True)
    assert not decisions, "noise decided: %s" % decisions
    blocks = explain_blocks(text)
    assert ("noise.log", 1) in blocks and ("noise.log", 2) in blocks, \
        "explain does not name both noise lines:\n%s" % "\n".join(text)
    with open(noise) as f:
        cef_line = f.read().splitlines()[1]
    assert any(line.endswith("noise.log:2: " + cef_line) for line in text), \
        "explain does not print the line after FILE:LINE:\n%s" % "\n".join(text)
    block = blocks[("noise.log", 2)]
    shipped = shipped_mappings()
    tried = [(m, f) for m, f, _ in block if m is not None]
    assert tried == [(n, f) for n, f, _ in shipped], \
        "mappings tried %s, want every shipped one in load order %s" % (
            tried, [(n, f) for n, f, _ in shipped])
    for (name, _, why), (_, _, mapping) in zip([b for b in block if b[0]], shipped):
        assert why.startswith("no"), "%s: %r does not say no" % (name, why)
        m = re.search(r"when\[(\d+)\]", why)
        assert m, "%s: %r does not name the condition that failed" % (name, why)
        cond = mapping["when"][int(m.group(1))]
        assert cond["field"] in why, "%s: %r does not name the field %s" % (
            name, why, cond["field"])
    assert block[-1] == (None, None, "-> no decision"), "last explain line %r" % (block[-1],)


def _catastrophic_mappings(ctx):
    path = ctx.path("catastrophic.json")
    with open(path, "w") as f:
        json.dump({"mappings": [
            # Exponential backtracking on words followed by a non-word end.
            {"name": "catastrophic", "when": [{"field": "msg", "regex": r"^(\w+\s?)*$"}],
             "rule": {"value": "Never"}, "user": {"value": "nobody"}},
            {"name": "rescue", "when": [{"field": "msg", "regex": "^rtrtest "}],
             "rule": {"value": "Catastrophe Survived"},
             "user": {"field": "msg", "regex": r"(?<user>\w+)!$"}}]}, f, indent=2)
    return path


def test_replay_regex_limit_is_no_match(ctx):
    """A regex that backtracks catastrophically hits the PCRE2 limit: it
    counts as no match, replay ends, the next mapping decides, and
    --explain says the limit was hit."""
    config = write_config(ctx, mappings=[_catastrophic_mappings(ctx)])
    words = ["rtrtest"] + ["w%02d" % i for i in range(28)] + ["jdoe"]
    line = " ".join(words) + "!"
    assert len(words) == 30
    path = ctx.path("words.log")
    with open(path, "w") as f:
        f.write(line + "\n")
    decisions, text, _ = replay(config, [path], explain=True, timeout=10)
    assert len(decisions) == 1, "want one decision, got %s" % decisions
    dec = decisions[0]
    assert (dec["mapping"], dec["rule"], dec["user"], dec["input_line"]) == (
        "rescue", "Catastrophe Survived", "jdoe", 1), dec
    block = explain_blocks(text)[("words.log", 1)]
    first = [why for m, _, why in block if m == "catastrophic"]
    assert len(first) == 1 and "limit" in first[0], \
        "explain for the catastrophic mapping does not mention the limit: %s" % block
    assert any(m == "rescue" and why.startswith("yes") for m, _, why in block), block
    plain, _, _ = replay(config, [path], timeout=10)
    assert [(d["mapping"], d["user"]) for d in plain] == [("rescue", "jdoe")], plain


def test_replay_unresolved_user(ctx):
    """A user the directory does not know: outcome unresolved-user, email null."""
    path = ctx.path("unknown-user.log")
    with open(path, "w") as f:
        f.write("<134>1 2026-10-02T09:12:44Z splunk-sh01 splunkd - - - CEF:0|Splunk|Enterprise "
                "Security|7.3.2|notable|Fallback Name|7|suser=EXAMPLE\\\\nobody "
                "cs1Label=search_name cs1=Some Rule\n")
    decisions, _, _ = replay(write_config(ctx), [path])
    assert len(decisions) == 1, decisions
    dec = decisions[0]
    assert (dec["mapping"], dec["rule"], dec["user"], dec["email"], dec["outcome"]) == (
        "splunk-es-cef", "Some Rule", "EXAMPLE\\nobody", None, "unresolved-user"), dec
    assert dec.get("detail") == "static: not listed", "want the reason, as the audit line: %s" % dec


def test_replay_json_payload_fields(ctx):
    """A syslog message whose MSG is a JSON object (a Sentinel alert
    relayed by Logstash): a mapping reads json.<path> fields, through
    nested objects, an array index and escapes (\\\\ in the user, \\u00e9 in
    the rule), and decides; a MSG that starts with '{' but is not strict
    JSON (a duplicate key) is plain text, so the json.* fields are absent,
    and --explain says the message is not a JSON object."""
    mapping = ctx.path("json-mapping.json")
    with open(mapping, "w") as f:
        json.dump({"mappings": [{
            "name": "sentinel-json",
            "when": [{"field": "json.ProductName", "equals": "Azure Sentinel"}],
            "rule": [{"field": "json.AlertName"}],
            "user": [{"field": "json.Entities.0.Name"}]}]}, f)
    good = ('<134>1 2026-10-02T09:12:44Z logstash01 sentinel - - - {"ProductName":"Azure Sentinel",'
            '"AlertName":"Caf\\u00e9 exfiltration","Entities":[{"Name":"EXAMPLE\\\\amorgan",'
            '"Type":"account"}],"Severity":"High"}')
    dup = ('<134>1 2026-10-02T09:12:44Z logstash01 sentinel - - - {"ProductName":"Azure Sentinel",'
           '"AlertName":"x","AlertName":"y","Entities":[{"Name":"EXAMPLE\\\\amorgan"}]}')
    path = ctx.path("sentinel-json.log")
    with open(path, "w") as f:
        f.write(good + "\n" + dup + "\n")
    decisions, text, _ = replay(write_config(ctx, mappings=[mapping]), [path], explain=True)
    assert [(d["mapping"], d["rule"], d["user"], d["email"], d["input_line"])
            for d in decisions] == [("sentinel-json", "Caf\u00e9 exfiltration",
                                     "EXAMPLE\\amorgan", "alice.morgan@example.com", 1)], decisions
    blocks = explain_blocks(text)
    why = [w for m, _, w in blocks[("sentinel-json.log", 2)] if m == "sentinel-json"]
    assert why and "not a JSON object" in why[0], blocks[("sentinel-json.log", 2)]


def _splunk_cef(ext):
    return "CEF:0|Splunk|Enterprise Security|7.3.2|notable|Fallback|7|cs1Label=search_name " + ext


def test_replay_text_over_the_cap(ctx):
    """A user or rule over 1024 bytes (MAPPING_MAX_VALUE) decides nothing,
    as in the daemon, which could not queue it: --explain and the log say
    which mapping and which text; 1024 bytes still decide."""
    lines = [_splunk_cef("cs1=Rule suser=" + "u" * 1500),
             _splunk_cef("cs1=" + "r" * 1025 + " suser=amorgan"),
             _splunk_cef("cs1=Rule suser=" + "u" * 1024)]
    path = ctx.path("long.log")
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    decisions, text, err = replay(write_config(ctx), [path], explain=True)
    assert [(d["input_line"], len(d["user"])) for d in decisions] == [(3, 1024)], decisions
    blocks = explain_blocks(text)
    why = {n: [w for m, _, w in blocks[("long.log", n)] if m == "splunk-es-cef"] for n in (1, 2)}
    assert why[1] == ["no: user identifier of 1500 bytes is over the 1024-byte cap: no decision "
                      "(counted in decisions_dropped)"], why[1]
    assert why[2] == ["no: rule of 1025 bytes is over the 1024-byte cap: no decision (counted "
                      "in decisions_dropped)"], why[2]
    assert ('(mapping "splunk-es-cef"): user identifier of 1500 bytes is over the 1024-byte '
            'cap: no decision') in err, err[-2000:]


def test_replay_user_with_control_characters(ctx):
    """A user with a control character (a raw NUL or ESC in the message)
    is not a usable identifier: the next user source is tried, and
    --explain says why."""
    path = ctx.path("control.log")
    with open(path, "wb") as f:
        f.write(_splunk_cef("cs1=Rule suser=bad\x00user duser=bkhan@example.com\n").encode())
        f.write(_splunk_cef("cs1=Rule suser=bad\x1buser\n").encode())
    decisions, text, _ = replay(write_config(ctx), [path], explain=True)
    assert [(d["input_line"], d["user"], d["outcome"]) for d in decisions] == [
        (1, "bkhan@example.com", "would-dispatch")], decisions
    why = [w for m, _, w in explain_blocks(text)[("control.log", 2)] if m == "splunk-es-cef"]
    assert why == ['no: user: user[0] cef.ext.suser "bad\\x1buser" contains a control character, '
                   'user[1] cef.ext.duser absent (counted in decisions_no_user)'], why


def test_replay_explain_cannot_be_forged(ctx):
    """Quotes and backslashes in a quoted value are escaped (\\" and \\\\) and
    a NUL shows as \\x00, so a value cannot close its quotes and write a
    second "user" on the explain line, nor cut the line short."""
    forged = 'x" (rule[0] fake), user "admin\\z'
    path = ctx.path("forged.log")
    with open(path, "wb") as f:
        # CEF escapes a backslash in a value as \\.
        f.write((_splunk_cef("cs1=Rule suser=" + forged.replace("\\", "\\\\")) + "\n").encode())
        f.write(b"CEF:0|Ac\x00me|Box|1|1|Thing|5|x=1\n")
    decisions, text, _ = replay(write_config(ctx), [path], explain=True)
    assert [d["user"] for d in decisions] == [forged], decisions
    yes = [w for m, _, w in explain_blocks(text)[("forged.log", 1)] if m == "splunk-es-cef"]
    assert len(yes) == 1 and yes[0].startswith(
        'yes: rule "Rule" (rule[0] cef.label.search_name), user "x\\" (rule[0] fake), user '
        '\\"admin\\\\z" (user[0] cef.ext.suser, kind '), yes
    no = [w for m, _, w in explain_blocks(text)[("forged.log", 2)] if m == "splunk-es-cef"]
    assert no == ['no: when[0] cef.vendor is "Ac\\x00me", expected "Splunk"'], no


def test_replay_directory_with_a_bom(ctx):
    """A directory saved by a spreadsheet (a UTF-8 BOM, CRLF): its first
    identifier resolves, and one quoted with a blank inside resolves too."""
    users = ctx.path("bom-users.csv")
    with open(users, "wb") as f:
        f.write(b"\xef\xbb\xbfbom,bom@example.com\r\n\"quoted \",q@example.com\r\n")
    path = ctx.path("bom.log")
    with open(path, "w") as f:
        f.write(_splunk_cef("cs1=Rule suser=bom") + "\n" + _splunk_cef("cs1=Rule suser=quoted") +
                "\n")
    decisions, _, err = replay(write_config(ctx, users=users), [path])
    assert [(d["user"], d["email"], d["outcome"]) for d in decisions] == [
        ("bom", "bom@example.com", "would-dispatch"),
        ("quoted", "q@example.com", "would-dispatch")], (decisions, err[-2000:])


def test_replay_mapping_file_matched_twice(ctx):
    """Two globs naming one file (and a path through ..) load it once, with
    an info line, instead of reporting its names as duplicates."""
    shipped = os.path.join(MAPPINGS, "*.json")
    splunk = os.path.join(MAPPINGS, "..", "mappings", "splunk.json")
    config = write_config(ctx, mappings=[shipped, os.path.join(MAPPINGS, "splunk.json"), splunk])
    decisions, _, err = replay(config, [os.path.join(_samples(), "splunk.log")])
    assert decisions, err[-2000:]
    assert "splunk.json: already loaded (mappings[1] matched it again)" in err, err[-2000:]
    assert "splunk.json: already loaded (mappings[2] matched it again)" in err, err[-2000:]
    assert "already the name" not in err, err[-2000:]


def test_replay_config_matched_as_a_mapping_file(ctx):
    """A mappings glob that also matches the config file says so in one line."""
    os.makedirs(ctx.path("etc"), exist_ok=True)
    config = write_config(ctx, name=os.path.join("etc", "rtr-agent.json"),
                          mappings=[os.path.join(ctx.path("etc"), "*.json")])
    _, _, err = replay(config, [], data=b"", expect_rc=1)
    assert ("rtr-agent.json: listen: this looks like the agent's config file, not a mapping "
            "file") in err, err[-2000:]
    assert "unknown key" not in err, err[-2000:]


def test_replay_json_is_strict(ctx):
    """Single quotes and trailing commas, which json-c takes, are errors
    with their line and column; comments stay allowed."""
    path = ctx.path("sloppy.json")
    with open(path, "w") as f:
        f.write("// a comment is fine\n{\"mappings\": [],\n 'description': 'x',}\n")
    _, _, err = replay(write_config(ctx, mappings=[path]), [], data=b"", expect_rc=1)
    assert "sloppy.json:3:2: single-quoted string: JSON needs double quotes" in err, err[-2000:]
    assert "sloppy.json:3:17: single-quoted string: JSON needs double quotes" in err, err[-2000:]
    assert "sloppy.json:3:20: trailing comma" in err, err[-2000:]


def test_replay_stdin(ctx):
    """"-" reads stdin: line numbers count from 1 as for a file."""
    d = _samples()
    with open(os.path.join(d, "noise.log"), "rb") as f:
        data = f.read()
    with open(os.path.join(d, "splunk.log"), "rb") as f:
        data += f.read()
    decisions, _, _ = replay(write_config(ctx), ["-"], data=data)
    got = [(d["input_line"], d["rule"], d["user"], d["outcome"]) for d in decisions]
    assert got == [(3, "Endpoint - Removable Media Mounted - Rule", "EXAMPLE\\amorgan",
                    "would-dispatch"),
                   (4, "Web - Malware Download Detected - Rule", "bkhan@example.com",
                    "would-dispatch")], got


def test_replay_unreadable_input(ctx):
    """A missing input fails the run (named on stderr); the others are still
    replayed."""
    missing = ctx.path("no-such-input.log")
    qradar = os.path.join(_samples(), "qradar.log")
    decisions, _, err = replay(write_config(ctx), [missing, qradar], expect_rc=1)
    assert "no-such-input.log" in err, "the missing input is not named: %r" % err[-1000:]
    assert [d["input_line"] for d in decisions] == [1, 2], decisions


def test_replay_cut_lines_counted_per_input(ctx):
    """Lines cut at max_message_bytes are told once per input, counting only
    that input's: also when an input fails to read after some of them
    (stdin, a socket reset after two cut lines) or cannot be read at all (a
    directory). The count must not leak into the next input."""
    long_line = _splunk_cef("cs1=Rule suser=amorgan " + "x" * 600) + "\n"
    last = ctx.path("last.log")
    with open(last, "w") as f:
        f.write(_splunk_cef("cs1=Rule suser=amorgan") + "\n" + long_line)
    config = write_config(ctx, extra={"limits": {"max_message_bytes": 480}})
    # A Unix stream socket whose peer closed with data unread: the agent
    # reads what was sent, then its read fails with ECONNRESET.
    ours, theirs = socket.socketpair()
    try:
        ours.sendall((long_line * 2).encode())
        theirs.sendall(b"never read")
        ours.close()
        argv = WRAPPER + [AGENT, "replay", "-c", config, "--dry-run", "-", ctx.path(), last]
        p = subprocess.run(argv, stdin=theirs.fileno(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=t(20))
    finally:
        theirs.close()
    err = p.stderr.decode("utf-8", "replace")
    assert not REPORT.search(p.stderr), err[-3000:]
    assert p.returncode == 1, "replay exited %d, want 1:\n%s" % (p.returncode, err[-2000:])
    assert "rtr-agent replay: stdin: Connection reset by peer" in err, err[-2000:]
    assert "rtr-agent replay: %s: Is a directory" % ctx.path() in err, err[-2000:]
    cut = re.findall(r"replay: (\S+): (\d+) line\(s\) longer than limits.max_message_bytes "
                     r"\(480\).* the first at line (\d+)", err)
    assert cut == [("-", "2", "1"), (last, "1", "2")], (cut, err[-2000:])
    decisions = [check_json_line(raw, "replay output") for raw in p.stdout.splitlines()]
    assert [(d["input_file"], d["input_line"]) for d in decisions] == [(last, 1)], decisions


def test_replay_octet_framing_decides_as_lf(ctx):
    """--framing octet: every sample rewritten as RFC 6587 octet-counted
    frames (after a first frame that holds LFs of its own and decides
    nothing) gives the decisions LF framing gives, in the same order, with
    input_line the frame's ordinal in its input instead of the line number.
    An unknown --framing is a usage error."""
    d = _samples()
    logs = sorted(glob.glob(os.path.join(d, "*.log")))
    multiline = b"<14>Oct  2 10:00:00 app01 notes[7]: first\nsearch_name=x user=bob\nthird"
    octet_files, ordinal = [], {}
    for path in logs:
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
        frames = [multiline]
        for number, line in enumerate(lines, 1):
            line = line[:-1] if line.endswith(b"\r") else line
            if line:
                frames.append(line)
                ordinal[(os.path.basename(path), number)] = len(frames)
        out = ctx.path(os.path.basename(path))
        with open(out, "wb") as f:
            f.write(b"".join(b"%d %s" % (len(fr), fr) for fr in frames))
        octet_files.append(out)
    config = write_config(ctx)
    lf, _, _ = replay(config, logs)
    octet, _, err = replay(config, ["--framing", "octet"] + octet_files)
    assert lf, "the samples decided nothing"
    want = [dict(dec, input_file=os.path.basename(dec["input_file"]),
                 input_line=ordinal[(os.path.basename(dec["input_file"]), dec["input_line"])])
            for dec in lf]
    got = [dict(dec, input_file=os.path.basename(dec["input_file"])) for dec in octet]
    assert got == want, "octet framing decided otherwise:\n%s\nwant\n%s\n--- stderr:\n%s" % (
        got, want, err[-2000:])
    p = subprocess.run(WRAPPER + [AGENT, "replay", "-c", config, "--dry-run", "--framing", "crlf"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=t(20))
    assert p.returncode == 2, (p.returncode, p.stderr[-1000:])
    assert b"--framing is lf or octet, not crlf" in p.stderr, p.stderr[-1000:]


def _expect_lines(err):
    return [line for line in err.splitlines() if line.startswith("rtr-agent replay --expect: ")]


def test_replay_expect_samples_and_own_output(ctx):
    """--expect passes on the samples' expected.jsonl and on replay's own
    output recorded a moment before (only the fields named are compared),
    saying "0 differences"."""
    d = _samples()
    logs = sorted(glob.glob(os.path.join(d, "*.log")))
    config = write_config(ctx)
    decisions, _, err = replay(config, logs, expect=os.path.join(d, "expected.jsonl"))
    assert decisions and "%d decisions, 0 differences" % len(decisions) in err, err[-2000:]
    recorded = ctx.path("recorded.jsonl")
    with open(recorded, "w") as f:
        for dec in decisions:
            f.write(json.dumps(dec) + "\n")
        f.write(json.dumps({"input_file": decisions[0]["input_file"],  # partial: rule only
                            "input_line": decisions[0]["input_line"],
                            "rule": decisions[0]["rule"]}) + "\n")
    # The partial line expects a second decision on that line: one difference.
    _, _, err = replay(config, logs, expect=recorded, expect_rc=1)
    assert _expect_lines(err)[-1].endswith("1 difference from %s" % recorded), err[-2000:]
    with open(recorded, "w") as f:
        for dec in decisions:
            f.write(json.dumps(dec) + "\n")
    _, _, err = replay(config, logs, expect=recorded)
    assert "0 differences" in err, err[-2000:]


def test_replay_expect_reports_every_difference(ctx):
    """A changed field, a decision no line expects, an expected decision
    not made and a decision where none is expected: each is one line on
    stderr naming the input line, both values and the expectation's line;
    the count follows and the exit status is 1. stdout still holds every
    decision."""
    d = _samples()
    logs = sorted(glob.glob(os.path.join(d, "*.log")))
    with open(os.path.join(d, "expected.jsonl")) as f:
        expected = [json.loads(line) for line in f if line.strip()]
    deciding = [e for e in expected if e["decision"] is not None]
    silent = [e for e in expected if e["decision"] is None]
    assert len(deciding) >= 3 and silent, "the samples changed shape"
    changed = dict(deciding[0], decision=dict(deciding[0]["decision"], email="someone@else"))
    dropped = deciding[1]
    extra = dict(silent[0], decision={"rule": "Made Up Rule"})
    none_here = dict(deciding[2], decision=None)
    lines = [changed, extra, none_here] + [e for e in expected if e not in (
        deciding[0], dropped, silent[0], deciding[2])]
    path = ctx.path("expected.jsonl")
    with open(path, "w") as f:
        f.write("".join(json.dumps(e) + "\n" for e in lines))
    decisions, _, err = replay(write_config(ctx), logs, expect=path, expect_rc=1)
    assert len(decisions) == len(deciding), "stdout lost decisions: %s" % decisions
    said = _expect_lines(err)
    where = lambda e: "%s:%d: " % (e["file"], e["line"])  # noqa: E731
    want = [
        (where(changed), 'email "%s", expected "someone@else" (%s:1)'
         % (deciding[0]["decision"]["email"], path)),
        (where(extra), 'no decision, expected rule "Made Up Rule" (%s:2)' % path),
        (where(none_here), "), expected none (%s:3)" % path),
        (where(dropped), ") that no expectation names"),
    ]
    for at, text in want:
        assert any(at in line and text in line for line in said), \
            "no line with %r and %r:\n%s" % (at, text, "\n".join(said))
    assert said[-1] == "rtr-agent replay --expect: %d decisions, 4 differences from %s" % (
        len(decisions), path), said[-1]


def test_replay_expect_file_errors(ctx):
    """An expectation file that cannot be used stops replay before any
    decision, naming the line: an unknown key (a misspelt field must not
    pass unnoticed), a line that is not an object, a missing line number."""
    config = write_config(ctx)
    for text, said in (('{"input_file":"a.log","input_line":1,"rulle":"x"}', 'unknown key "rulle"'),
                       ("[1, 2]", "not a JSON object"),
                       ('{"file":"a.log","decision":null}', 'needs "file" (a string) and "line"')):
        path = ctx.path("bad.jsonl")
        with open(path, "w") as f:
            f.write('{"file":"a.log","line":1,"decision":null}\n' + text + "\n")
        decisions, _, err = replay(config, ["-"], data=b"x\n", expect=path, expect_rc=1)
        assert not decisions and "%s:2: %s" % (path, said) in err, err[-2000:]
    _, _, err = replay(config, ["-"], data=b"", expect=ctx.path("missing.jsonl"), expect_rc=1)
    assert "missing.jsonl: No such file or directory" in err, err[-2000:]
