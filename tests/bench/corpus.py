#!/usr/bin/env python3
"""The corpus of `make bench-peers` (issue 11): N realistic syslog lines, the
same for every contender, deterministic for a seed so that runs compare.
About 410 bytes a line on average; 75 % CEF under RFC 5424 and RFC 3164
envelopes (mixed), 20 % LEEF (2.0 with `^` or `x5E`, some 1.0 with TAB),
5 % noise (plain syslog). The CEF lines use the escapes of the spec
(/work/shared/spec/cef.md): `\\|` and `\\\\` in the header, `\\=`, `\\\\` and `\\n`
in the extension, and values with spaces, so that field fidelity measures
something. Every CEF and LEEF line carries a unique `externalId` so that an
output line can be matched to its input whatever the order.

For each CEF line the generator also returns the truth: the seven header
fields and the extension key/values as a spec-conforming parser decodes them
(for the CEF lines among the first POOL lines: field fidelity samples those).

CLI: corpus.py --count N --out FILE [--truth FILE.jsonl] [--seed S]
(the truth file holds one JSON object per CEF line: index, header, ext)."""
import argparse
import json
import random

CEF_SHARE, LEEF_SHARE = 0.75, 0.20  # the rest is noise
POOL = 20000  # distinct lines; the rest repeat them with their own externalId
HEADER_KEYS = ("version", "vendor", "product", "device_version", "signature_id", "name",
               "severity")

USERS = ["amorgan", "bkhan", "cdiaz", "dwright", "e.o'neil", "fnovak", "gmensah", "hlund",
         "jsato", "kpetrov", "lmartin", "mnguyen", "oadeyemi", "pfischer", "rsilva", "tkowalski"]
DOMAIN = "EXAMPLE"
HOSTS = ["WS-%04d" % i for i in range(80, 140)] + ["LT-%04d" % i for i in range(2200, 2260)]
FILES = ["C:\\Users\\%s\\Documents\\Q3 forecast.xlsx", "C:\\Users\\%s\\Desktop\\passwords.txt",
         "/home/%s/projects/export final.csv", "\\\\fs01\\finance\\%s\\payroll 2026.pdf"]
URLS = ["https://drive.example-share.com/upload?sid=%d&mode=put",
        "https://pastebin.example.net/api/post?key=%d", "http://203.0.113.%d/update.bin",
        "https://mail.example.com/owa/?ae=Item&id=%d"]
PROCS = ["explorer.exe", "powershell.exe", "chrome.exe", "7z.exe", "rclone.exe", "outlook.exe"]

# vendor, product, version, [(signature id, name, severity)], extension flavour
CEF_SOURCES = [
    ("Splunk", "Enterprise Security", "7.3.2", [
        ("notable", "Endpoint - Removable Media Mounted - Rule", "7"),
        ("notable", "Web - Malware Download Detected - Rule", "9"),
        ("notable", "Access - Excessive Failed Logins | Rule", "5")], "siem"),
    ("Securonix", "SNYPR", "6.4", [
        ("Violation", "Uploads to personal websites", "8"),
        ("Violation", "Data egress via network uploads", "7")], "siem"),
    ("Microsoft", "Sentinel", "1.0", [
        ("ScheduledAlert", "Mass download by a single user", "5"),
        ("ScheduledAlert", "Rare application consent", "3")], "siem"),
    ("Logpoint", "SIEM", "7.4", [("alert", "LP_Windows Firewall Disabled", "6")], "siem"),
    ("Dtex", "InTERCEPT", "6.3", [
        ("DeviceActivity", "RemovableMediaConnected", "5"),
        ("FileActivity", "FileCopiedToRemovable", "6")], "endpoint"),
    ("Cisco", "ASA", "9.18", [("106023", "Deny tcp", "5"), ("302013", "Built inbound TCP", "3")],
     "firewall"),
    ("Palo Alto Networks", "PAN-OS", "10.2.4", [
        ("TRAFFIC|end", "traffic end", "3"), ("THREAT|url", "url filtering", "6")], "firewall"),
    ("Fortinet", "FortiGate", "7.2.5", [("0000000013", "forward traffic", "4")], "firewall"),
    ("Trend Micro", "Deep Security Agent", "20.0.0", [("4000000", "Eicar_test_file", "6")],
     "endpoint"),
    ("McAfee", "ePolicy Orchestrator", "5.10", [("1278", "Access Protection \\ rule", "8")],
     "endpoint"),
]
LEEF_SOURCES = [("IBM", "QRadar", "7.5.0", "Offense Rule Fired"),
                ("Dtex", "InTERCEPT", "6.3", "Alert"),
                ("Palo Alto Networks", "LEEF", "10.2", "TRAFFIC"),
                ("Zscaler", "NSSWeblog", "6.1", "Blocked URL")]
NOISE = ["%s nginx[1201]: 10.0.%d.%d - - [02/Oct/2026:09:40:00 +0000] \"GET /api/v2/items/%d?"
         "page=2 HTTP/1.1\" 200 %d \"-\" \"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\"",
         "%s sshd[%d]: Accepted publickey for deploy from 10.0.%d.%d port %d ssh2: ED25519 "
         "SHA256:Zm9vYmFyYmF6cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8",
         "%s CRON[%d]: (root) CMD (/usr/local/bin/backup --target s3://backups/%d --quiet "
         "--retain %d --exclude /var/cache)",
         "%s kernel: [%d.%d] nf_conntrack: table full, dropping packet; src=10.%d.0.1 "
         "proto=%d (see /proc/sys/net/netfilter/nf_conntrack_max)"]


def header_escape(s):
    return s.replace("\\", "\\\\").replace("|", "\\|")


def ext_escape(s):
    return s.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n")


def ip(rng, net):
    return "%s.%d.%d" % (net, rng.randrange(256), rng.randrange(1, 255))


def cef_ext(rng, flavour, ident):
    """The extension as ordered (key, decoded value) pairs."""
    user = rng.choice(USERS)
    host = rng.choice(HOSTS)
    ts = 1791018000000 + ident * 37
    ext = [("rt", str(ts)), ("externalId", str(ident))]
    if flavour == "siem":
        ext += [("suser", rng.choice(["%s\\%s" % (DOMAIN, user), user + "@example.com", user])),
                ("shost", host + ".example.com"), ("src", ip(rng, "10.20")),
                ("cs1Label", "search_name"),
                ("cs1", rng.choice(["Endpoint - Removable Media Mounted - Rule",
                                    "Data egress via network uploads",
                                    "Mass download by a single user"])),
                ("cs2Label", "urgency"), ("cs2", rng.choice(["high", "critical", "medium"])),
                ("cfp1Label", "riskscore"), ("cfp1", "%d.%d" % (rng.randrange(100), rng.randrange(10))),
                ("request", rng.choice(URLS) % rng.randrange(1000, 99999)),
                ("msg", rng.choice(["User %s copied 312 files in 5 minutes" % user,
                                    "Threshold exceeded: count=%d window=5m" % rng.randrange(50, 900),
                                    "first line\nsecond line: path C:\\temp"]))]
    elif flavour == "endpoint":
        path = rng.choice(FILES) % user
        ext += [("duser", "%s\\%s" % (DOMAIN, user)), ("dhost", host),
                ("fname", path.replace("/", "\\").split("\\")[-1]),
                ("filePath", path), ("fsize", str(rng.randrange(1, 1 << 26))),
                ("sproc", rng.choice(PROCS)), ("cs3Label", "Media_Type"),
                ("cs3", rng.choice(["USB Mass Storage", "MTP Device", "CD-ROM"])),
                ("act", rng.choice(["Allowed", "Blocked", "Quarantined | Logged"])),
                ("Process_Name", rng.choice(PROCS)),
                ("reason", "policy=Removable Media Write; rule id=%d" % rng.randrange(100, 999))]
    else:
        ext += [("src", ip(rng, "10.1")), ("spt", str(rng.randrange(1024, 65535))),
                ("dst", ip(rng, "192.168")), ("dpt", rng.choice(["443", "445", "3389", "22"])),
                ("proto", rng.choice(["TCP", "UDP"])), ("act", rng.choice(["Deny", "Allow", "Drop"])),
                ("deviceInboundInterface", "outside"),
                ("in", str(rng.randrange(40, 150000))), ("out", str(rng.randrange(40, 150000))),
                ("app", rng.choice(["ssl", "smb", "rdp", "web-browsing"])),
                ("suser", "%s\\%s" % (DOMAIN, user)),
                ("requestClientApplication", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
                ("cs4Label", "Rule Name"), ("cs4", "Block SMB from outside = strict")]
    return ext


def cef_line(rng, ident, prefix):
    vendor, product, version, events, flavour = rng.choice(CEF_SOURCES)
    sig, name, sev = rng.choice(events)
    header = {"version": "0", "vendor": vendor, "product": product, "device_version": version,
              "signature_id": sig, "name": name, "severity": sev}
    ext = cef_ext(rng, flavour, ident)
    text = "CEF:0|" + "|".join(header_escape(header[k]) for k in HEADER_KEYS[1:]) + "|" + \
        " ".join("%s=%s" % (k, ext_escape(v)) for k, v in ext)
    return prefix + text, {"header": header, "ext": dict(ext)}


def envelope(rng, ident, host, app):
    pri = rng.choice([13, 14, 110, 133, 134])
    sec = ident % 60
    if rng.random() < 0.5:
        return "<%d>1 2026-10-02T09:%02d:%02d.%03dZ %s %s - - - " % (
            pri, (ident // 60) % 60, sec, ident % 1000, host, app)
    return "<%d>Oct  2 09:%02d:%02d %s " % (pri, (ident // 60) % 60, sec, host)


def leef_line(rng, ident):
    vendor, product, version, event = rng.choice(LEEF_SOURCES)
    user = rng.choice(USERS)
    attrs = [("devTime", "2026-10-02T09:31:%02d.000+0000" % (ident % 60)),
             ("externalId", str(ident)), ("cat", rng.choice(["USB Device Policy",
                                                             "Sensitive Share Access"])),
             ("sev", str(rng.randrange(1, 11))), ("usrName", "%s\\%s" % (DOMAIN, user)),
             ("src", ip(rng, "10.20")), ("dst", ip(rng, "172.16")),
             ("srcPort", str(rng.randrange(1024, 65535))), ("dstPort", "443"),
             ("identHostName", rng.choice(HOSTS)), ("policy", "Block uploads to personal cloud"),
             ("url", rng.choice(URLS) % rng.randrange(1000, 99999)),
             ("resource", "\\\\fs01\\finance\\Q3 board pack.pdf"),
             ("riskScore", "%d.%d" % (rng.randrange(10), rng.randrange(10)))]
    if rng.random() < 0.8:
        delim = rng.choice(["^", "x5E"])
        head = "LEEF:2.0|%s|%s|%s|%s|%s|" % (vendor, product, version, event, delim)
        sep = "^"
    else:
        head = "LEEF:1.0|%s|%s|%s|%s|" % (vendor, product, version, event)
        sep = "\t"
    return head + sep.join("%s=%s" % kv for kv in attrs)


def noise_line(rng, ident):
    host = rng.choice(["web01", "web02", "bastion", "db03"])
    fmt = NOISE[ident % len(NOISE)]
    args = [host] + [rng.randrange(2, 250) for _ in range(fmt.count("%d"))]
    return "<%d>Oct  2 09:40:%02d " % (rng.choice([30, 38, 86]), ident % 60) + fmt % tuple(args)


def generate(count, seed=11):
    """Returns (lines, truth): lines as bytes without LF; truth maps the index of
    each CEF line among the first POOL lines to {"header": {...}, "ext": {...}}.
    Past POOL, line i is line i % POOL with externalId i: generating a million
    lines one by one takes half a minute, and the variety is in the pool."""
    rng = random.Random(seed)
    pool, truth = [], {}
    for i in range(min(count, POOL)):
        r = rng.random()
        if r < CEF_SHARE:
            host = rng.choice(["splunk-sh01", "snypr-console", "sentinel-relay", "fw01",
                               "dtex-intercept", "epo01.example.com"])
            line, t = cef_line(rng, i, envelope(rng, i, host, rng.choice(["splunkd", "cef", "-"])))
            truth[i] = t
        elif r < CEF_SHARE + LEEF_SHARE:
            line = envelope(rng, i, "qradar-con", "-") + leef_line(rng, i)
        else:
            line = noise_line(rng, i)
        pool.append(line.encode())
    lines = list(pool)
    if count > len(pool):
        marker = b"externalId="
        split = []
        for line in pool:
            at = line.find(marker)
            if at < 0:
                split.append((line, None))
                continue
            at += len(marker)
            end = at
            while line[end:end + 1].isdigit():
                end += 1
            split.append((line[:at], line[end:]))
        for i in range(len(pool), count):
            head, tail = split[i % POOL]
            lines.append(head if tail is None else head + str(i).encode() + tail)
    return lines, truth


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", required=True)
    ap.add_argument("--truth")
    args = ap.parse_args()
    lines, truth = generate(args.count, args.seed)
    with open(args.out, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    if args.truth:
        with open(args.truth, "w") as f:
            for i in sorted(truth):
                f.write(json.dumps(dict(index=i, **truth[i])) + "\n")
    print("corpus: %d lines, %.0f bytes average, truth for %d CEF lines" % (
        len(lines), sum(map(len, lines)) / max(1, len(lines)), len(truth)))


if __name__ == "__main__":
    main()
