"""The status endpoint under abuse (issue 12 item 3): out of descriptors it
pauses accepting instead of spinning, a request trickled byte by byte is cut
at the whole-request deadline, and connections beyond the cap are closed at
once; /metrics answers again once the abuse ends.

What it says (issue 13 items 9 and 10): /metrics passes `promtool check
metrics` on a live scrape and carries build_info, process_start_time_seconds,
the TLS certificate's expiry and the reload gauges; /readyz is 200 once the
port files are written and 503 while stopping; /healthz is 503 with its
reason while dispatch fails past status.unhealthy_after_s or the spool
holds alerts, and 200 again once that ends."""
import http.client
import json
import os
import re
import resource
import signal
import socket
import ssl
import subprocess
import threading
import time

import response_env as env
from harness import (ROOT, certs, free_port, listener, rfc3164, t, tcp_connect, tls_listener,
                     token, tool, udp_send, wait_closed, wait_until)
from numbered import start_untapped

# agent/cmd/status.c: STATUS_TIMEOUT_S and STATUS_MAX_CONNECTIONS.
DEADLINE_S = 10
MAX_CONNECTIONS = 32


def _cpu_seconds(pid):
    """User + system CPU time of every thread of pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_below(pid, limit):
    """How many descriptor numbers below limit pid does not use."""
    return limit - len([fd for fd in os.listdir("/proc/%d/fd" % pid) if int(fd) < limit])


def _limit_leaving(pid, free):
    """The RLIMIT_NOFILE under which pid can open exactly `free` more
    descriptors: a new descriptor takes the lowest free number and must stay
    below the limit (valgrind's own descriptors sit near the old limit)."""
    limit = 0
    while _free_below(pid, limit) < free:
        limit += 1
    return limit


def _metrics_answer(agent):
    try:
        status, _ = agent.http_get("/metrics", timeout=2)
    except OSError:
        return False
    return status == 200


def test_status_fd_exhaustion_pauses_accepting(ctx):
    """With no descriptor left, the endpoint stops accepting for a while
    (one rate-limited line) instead of retrying accept() in a loop (87 % of
    a core and 66 MB/s of libevent warnings before); it serves again once
    descriptors are back."""
    agent = ctx.agent([listener("tcp")], workers=1)
    pid = agent.proc.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    limit = _limit_leaving(pid, 2)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, hard))
    socks = []
    try:
        # Two are accepted, the rest wait in the backlog while accept fails.
        socks = [tcp_connect(agent.status_port) for _ in range(8)]
        wait_until(lambda: _free_below(pid, limit) == 0, 5,
                   "the agent to use its last descriptors")
        time.sleep(0.2)
        cpu0, err0, start = _cpu_seconds(pid), len(agent.stderr_bytes()), time.monotonic()
        time.sleep(1.0)
        cpu = _cpu_seconds(pid) - cpu0
        wall = time.monotonic() - start
        grown = len(agent.stderr_bytes()) - err0
        agent.assert_alive()
        assert cpu < 0.3 * wall, "the agent used %.2f s of CPU in %.2f s out of descriptors" % (
            cpu, wall)
        assert grown < 4096, "stderr grew by %d bytes in %.2f s out of descriptors\n%s" % (
            grown, wall, agent.stderr_tail(5))
        assert b"status: accept: Too many open files" in agent.stderr_bytes(), (
            agent.stderr_tail(5))
    finally:
        for s in socks:
            s.close()
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    wait_until(lambda: _metrics_answer(agent), 5, "GET /metrics to answer again")
    agent.stop()


def test_status_trickled_request_cut_at_deadline(ctx):
    """A request sent one byte a second (each byte resets evhttp's idle
    timeout) is cut at the whole-request deadline, not left open for as
    long as the sender likes."""
    agent = ctx.agent([listener("tcp")], workers=1)
    request = b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 200
    bound = DEADLINE_S + t(5)
    s = tcp_connect(agent.status_port)
    s.settimeout(1.0)  # the trickle's pace: one byte, then up to 1 s reading
    start = time.monotonic()
    closed = False
    try:
        for byte in request:
            try:
                s.sendall(bytes([byte]))
                closed = s.recv(4096) == b""
            except socket.timeout:
                pass
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            if closed or time.monotonic() - start > bound:
                break
    finally:
        s.close()
    elapsed = time.monotonic() - start
    assert closed, "a request trickled at 1 byte/s was still open after %.0f s (bound %.0f s)" % (
        elapsed, bound)
    assert b"no complete request within" in agent.stderr_bytes(), agent.stderr_tail(5)
    assert _metrics_answer(agent), "GET /metrics does not answer after the cut"
    agent.stop()


def test_status_connections_capped(ctx):
    """Connections beyond the cap are closed at once while those within it
    are served; once they go, /metrics answers again; a stop frees a
    connection still open."""
    agent = ctx.agent([listener("tcp")], workers=1)
    port = agent.status_port
    held = []
    extra = []
    try:
        held = [tcp_connect(port) for _ in range(MAX_CONNECTIONS)]
        extra = [tcp_connect(port) for _ in range(4)]
        for i, s in enumerate(extra):
            closed, got = wait_closed(s, 3)
            assert closed and got == b"", "connection %d beyond the cap of %d: %s" % (
                i + 1, MAX_CONNECTIONS, "answered %r" % got[:40] if got else "left open")
        # One within the cap is still served (kept-alive connections are not
        # what the cap cuts).
        held[0].settimeout(t(5))
        held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = held[0].recv(4096)
        assert answer.startswith(b"HTTP/1.1 200"), "a connection within the cap got %r" % answer
    finally:
        for s in held + extra:
            s.close()
    assert b"connections are open (the most)" in agent.stderr_bytes(), agent.stderr_tail(5)
    wait_until(lambda: _metrics_answer(agent), 5, "GET /metrics to answer once they went")
    # A connection mid-request at the stop is freed with the endpoint.
    with tcp_connect(port) as s:
        s.sendall(b"GET /metr")
        agent.stop()


# ------------------------------------------------- what the endpoint says

def _promtool_check(body):
    """promtool check metrics on an exposition: (exit status, its output)."""
    p = subprocess.run([tool("promtool"), "check", "metrics"], input=body.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=t(30))
    return p.returncode, p.stdout.decode(errors="replace")


def _samples(body, name):
    """{labels text: value} of every sample of metric name in an exposition."""
    out = {}
    for line in body.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, value = line.rsplit(" ", 1)
            out[key[len(name):]] = float(value)
    return out


def test_metrics_pass_promtool(ctx):
    """A live scrape after traffic on TCP, TLS and UDP (a parse error too)
    passes `promtool check metrics` (Debian package prometheus): counters
    end in _total, families carry labels, HELP and TYPE once each. It
    counts the bytes of each listener (summing to received_bytes_total) and
    carries rtr_agent_build_info{version,commit}, process_start_time_seconds
    (this start), the TLS listener's certificate expiry (its notAfter) and
    the reload gauges (1 and the start time)."""
    promtool = tool("promtool")
    c = certs()
    started = time.time()
    agent = ctx.agent([listener("tcp"), tls_listener(c, verify=False), listener("udp")])
    tok = token()
    with tcp_connect(agent.port("tcp")) as s:
        s.sendall(rfc3164("tcp " + tok) + b"\n" + b"<13>Nov 23 10:00:00 h app: CEF:0|broken\n")
    udp_send(agent.port("udp"), [rfc3164("udp " + tok)])
    tls = ssl.create_default_context(cafile=c["ca.pem"])
    with tls.wrap_socket(tcp_connect(agent.port("tls")), server_hostname="localhost") as s:
        s.sendall(rfc3164("tls " + tok) + b"\n")
    agent.wait_tap(lambda m: tok in (m.get("msg") or ""), 3, 10)
    status, body = agent.http_get("/metrics")
    assert status == 200
    rc, out = _promtool_check(body)
    assert rc == 0 and not out.strip(), "%s check metrics: exit %d\n%s" % (promtool, rc, out)
    assert _samples(body, "rtr_agent_parse_errors_total")['{kind="cef"}'] >= 1, \
        _samples(body, "rtr_agent_parse_errors_total")
    per = _samples(body, "rtr_agent_listener_received_bytes_total")
    assert set(per) == {'{listener="127.0.0.1:%d",proto="%s"}' % (agent.port(p), p)
                        for p in ("tcp", "tls", "udp")}, per
    assert all(v > 0 for v in per.values()), per
    assert sum(per.values()) == _samples(body, "rtr_agent_received_bytes_total")[""], per
    info = _samples(body, "rtr_agent_build_info")
    assert len(info) == 1 and list(info.values()) == [1], info
    assert list(info)[0].startswith('{version="'), info
    assert ',commit="' in list(info)[0], info
    start = _samples(body, "process_start_time_seconds")[""]
    assert started - 1 <= start <= time.time(), "process_start_time_seconds %s, started %s" % (
        start, started)
    not_after = ssl.cert_time_to_seconds(ssl._ssl._test_decode_cert(c["server.pem"])["notAfter"])
    expiry = _samples(body, "rtr_agent_tls_certificate_expiry_timestamp_seconds")
    assert expiry == {'{listener="127.0.0.1:%d"}' % agent.port("tls"): not_after}, \
        "expiry %s, the certificate's notAfter %s" % (expiry, not_after)
    assert _samples(body, "rtr_agent_config_last_reload_successful") == {"": 1}
    loaded = _samples(body, "rtr_agent_config_last_reload_success_timestamp_seconds")[""]
    assert int(started) <= loaded <= time.time(), loaded
    agent.stop()


def test_decisions_per_mapping(ctx):
    """rtr_agent_mapping_decisions_total{mapping=...} counts each
    decision under the mapping that made it: three of the shipped
    splunk-es-kv, one of splunk-es-cef, and two of a site mapping whose name
    holds a double quote, a backslash and a space (escaped in the label, and
    the scrape still passes promtool); a mapping that decided nothing has no
    sample."""
    env.need_samples()
    site = os.path.join(ctx.dir, "site.json")
    name = 'site "dlp" \\ rule'
    with open(site, "w") as f:
        json.dump({"mappings": [{"name": name,
                                 "when": [{"field": "msg", "regex": "SITE-DLP"}],
                                 "rule": [{"value": "site-dlp"}],
                                 "user": [{"field": "msg", "regex": "user=(?<user>\\S+)"}]}]},
                  f)
    agent = env.start_agent(ctx, env.live_config(ctx, mode="dry-run",
                                                 mappings=[env.MAPPINGS, site]))
    frames = [env.splunk_kv("Excessive Failed Logins", "amorgan") for _ in range(3)]
    frames += [env.cef("Data Exfiltration", "amorgan")]
    frames += [b"<13>Oct  2 09:13:05 h app: SITE-DLP user=amorgan"] * 2
    env.send_tcp(agent, frames)
    agent.wait_metric("decisions_total", 6, timeout=10)
    status, body = agent.http_get("/metrics")
    assert status == 200
    per = _samples(body, "rtr_agent_mapping_decisions_total")
    assert per == {'{mapping="splunk-es-kv"}': 3, '{mapping="splunk-es-cef"}': 1,
                   '{mapping="site \\"dlp\\" \\\\ rule"}': 2}, per
    rc, out = _promtool_check(body)
    assert rc == 0 and not out.strip(), out
    agent.stop()


def test_reload_gauges(ctx):
    """A SIGHUP whose configuration does not load sets
    config_last_reload_successful to 0 and leaves the success time; the next
    good one sets 1 and a newer time."""
    agent = ctx.agent([listener("tcp")])
    first = agent.metric("config_last_reload_success_timestamp_seconds")
    with open(agent.config_path) as f:
        good = f.read()
    with open(agent.config_path, "w") as f:
        f.write('{"listen": [')
    os.kill(agent.proc.pid, signal.SIGHUP)
    agent.wait_metric('reloads_total{result="failure"}', 1)
    assert agent.metric("config_last_reload_successful") == 0
    assert agent.metric("config_last_reload_success_timestamp_seconds") == first
    time.sleep(1.1)  # the time has whole seconds
    with open(agent.config_path, "w") as f:
        f.write(good)
    os.kill(agent.proc.pid, signal.SIGHUP)
    agent.wait_metric('reloads_total{result="success"}', 1)
    assert agent.metric("config_last_reload_successful") == 1
    assert agent.metric("config_last_reload_success_timestamp_seconds") > first
    agent.stop()


def _get(port, path):
    """(status, body) of GET path on 127.0.0.1:port; (None, error) when
    nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=t(2))
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    except OSError as e:
        return None, str(e)
    finally:
        conn.close()


def test_readyz_follows_start_and_stop(ctx):
    """/readyz: nothing answers before the start; 200 on the first request
    once the port files exist (the readiness is set before they are
    written); 503 "stopping" as soon as a SIGTERM came, while the stop
    drains a sender, with /metrics still served; /healthz is 200 all along."""
    port = free_port()
    assert _get(port, "/readyz")[0] is None, "something answers on the status port already"
    status_cfg = {"address": "127.0.0.1:%d" % port, "port_file": "status.port"}
    agent = ctx.agent([listener("tcp")], limits={"drain_timeout_s": 3},
                      extra={"status": status_cfg})
    assert agent.status_port == port
    assert agent.http_get("/readyz") == (200, "ready\n")
    assert agent.http_get("/healthz") == (200, "ok\n")
    stop = threading.Event()

    def sender():
        try:
            with tcp_connect(agent.port("tcp")) as s:
                while not stop.is_set():
                    s.sendall(rfc3164("keeps the stop draining") + b"\n")
                    time.sleep(0.01)
        except OSError:
            pass  # the agent went away

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    time.sleep(0.3)
    agent.proc.send_signal(signal.SIGTERM)
    try:
        wait_until(lambda: agent.http_get("/readyz")[0] == 503, 2, "/readyz to answer 503")
        assert agent.http_get("/readyz") == (503, "stopping: no new input\n")
        assert agent.http_get("/metrics")[0] == 200
        assert agent.alive(), "the stop did not wait for the sender"
    finally:
        stop.set()
        th.join(5)
    agent.stop(signalled=True)


test_readyz_follows_start_and_stop.timeout = 40


def test_healthz_dispatch_failing(ctx):
    """SafeTitan answers 503 for longer than status.unhealthy_after_s (2 s):
    /healthz turns 503 naming the failing dispatch, and the gauges say one
    alert pending since then; once SafeTitan answers again, the alert is
    delivered, /healthz is 200 again and dispatch_failing_since is 0."""
    st = env.standin(ctx)
    st.script([{"status": 503}] * 1000)
    extra = env.live_config(ctx, st)
    extra["status"] = {"address": "127.0.0.1:0", "port_file": "status.port",
                       "unhealthy_after_s": 2}
    agent = env.start_agent(ctx, extra)
    assert agent.http_get("/healthz") == (200, "ok\n")
    sent = time.time()
    env.send_tcp(agent, [env.splunk_kv("Failing dispatch " + token(), "bkhan@example.com")])
    env.wait_requests(st, 1)
    wait_until(lambda: agent.http_get("/healthz")[0] == 503, t(10), "/healthz to answer 503")
    took = time.time() - sent
    assert took >= 2, "unhealthy %.1f s after the first failure: before unhealthy_after_s" % took
    status, body = agent.http_get("/healthz")
    assert status == 503 and body.startswith("dispatch failing for ") and \
        body.count("\n") == 1, body
    assert agent.http_get("/readyz")[0] == 200, "failing dispatch is no reason to be unready"
    m = agent.metrics()
    since = m["rtr_agent_dispatch_failing_since_timestamp_seconds"]
    assert int(sent) <= since <= time.time(), since
    assert m["rtr_agent_last_dispatch_success_timestamp_seconds"] == 0, m
    assert m["rtr_agent_spool_pending_alerts"] == 1, m
    assert m["rtr_agent_spool_bytes"] > 0, m
    assert m["rtr_agent_spool_oldest_pending_age_seconds"] >= 1, m
    st.stop()
    st2 = env.restart(ctx, st)
    agent.wait_metric('alerts_total{outcome="dispatched"}', 1, timeout=10)
    wait_until(lambda: agent.http_get("/healthz") == (200, "ok\n"), 5, "/healthz to answer 200")
    assert len(st2.requests()) == 1
    m = agent.metrics()
    assert m["rtr_agent_dispatch_failing_since_timestamp_seconds"] == 0, m
    assert m["rtr_agent_last_dispatch_success_timestamp_seconds"] >= since, m
    wait_until(lambda: agent.metric("spool_pending_alerts") == 0, 3, "no alert pending")
    assert agent.metric("spool_oldest_pending_age_seconds") == 0
    agent.stop()


test_healthz_dispatch_failing.timeout = 40


def test_healthz_unhealthy_after_zero_never(ctx):
    """status.unhealthy_after_s 0: dispatch failing for long stays healthy
    (the gauge still says since when it fails)."""
    st = env.standin(ctx)
    st.script([{"status": 503}] * 1000)
    extra = env.live_config(ctx, st)
    extra["status"] = {"address": "127.0.0.1:0", "port_file": "status.port",
                       "unhealthy_after_s": 0}
    agent = env.start_agent(ctx, extra)
    env.send_tcp(agent, [env.splunk_kv("Failing dispatch " + token(), "bkhan@example.com")])
    env.wait_requests(st, 1)
    wait_until(lambda: agent.metric("dispatch_failing_since_timestamp_seconds") > 0, 5,
               "dispatch_failing_since to be set")
    time.sleep(2.5)
    assert agent.http_get("/healthz") == (200, "ok\n")
    agent.stop()


def test_healthz_spool_full(ctx):
    """The spool's disk refuses writes (a file size limit on the running
    agent): alerts are held, /healthz answers 503 "spool full" and
    spool_held_alerts counts them; once the limit is lifted the alerts go
    in and /healthz is 200 again."""
    env.need_samples()
    st = env.standin(ctx)
    extra = env.live_config(ctx, st, audit=None)
    agent = start_untapped(ctx, [listener("tcp")], extra, "agent")
    soft, hard = resource.prlimit(agent.proc.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(agent.proc.pid, resource.RLIMIT_FSIZE, (1, hard))
    try:
        env.send_tcp(agent, [env.splunk_kv("Spool full " + token(), "bkhan@example.com")])
        wait_until(lambda: agent.http_get("/healthz")[0] == 503, 10, "/healthz to answer 503")
        status, body = agent.http_get("/healthz")
        assert body.startswith("spool full: 1 alerts held") and body.count("\n") == 1, body
        assert agent.metric("spool_held_alerts") == 1
    finally:
        resource.prlimit(agent.proc.pid, resource.RLIMIT_FSIZE, (soft, hard))
    wait_until(lambda: agent.http_get("/healthz") == (200, "ok\n"), 10, "/healthz to answer 200")
    assert agent.metric("spool_held_alerts") == 0
    agent.wait_metric('alerts_total{outcome="dispatched"}', 1, timeout=10)
    agent.stop()


test_healthz_spool_full.timeout = 40


# The guide's rules, exercised (promtool test rules): each alert fires on
# the series that mean trouble, and not before or after.
RULES_TEST = """
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'rtr_agent_udp_kernel_drops_total{job="rtr-agent"}'
        values: '0 0 5 5 5 5 5 5 5 5'
      - series: 'rtr_agent_parse_errors_total{job="rtr-agent",kind="cef"}'
        values: '0+5x20'
      - series: 'rtr_agent_parse_errors_total{job="rtr-agent",kind="syslog"}'
        values: '0+0x20'
      - series: 'rtr_agent_messages_received_total{job="rtr-agent"}'
        values: '0+100x20'
      - series: 'rtr_agent_dispatch_failing_since_timestamp_seconds{job="rtr-agent"}'
        values: '0 60x20'
      - series: 'rtr_agent_spool_oldest_pending_age_seconds{job="rtr-agent"}'
        values: '0+60x20'
      - series: 'rtr_agent_spool_held_alerts{job="rtr-agent"}'
        values: '0 0 3 0'
      - series: 'rtr_agent_config_last_reload_successful{job="rtr-agent"}'
        values: '1 0 1'
      - series: 'rtr_agent_tls_certificate_expiry_timestamp_seconds{job="rtr-agent",listener="a"}'
        values: '1814400x20'
    alert_rule_test:
      - {eval_time: 3m, alertname: RtrAgentUdpDrops, exp_alerts: [{exp_labels: {job: rtr-agent}}]}
      - eval_time: 15m
        alertname: RtrAgentParseErrors
        exp_alerts: [{exp_labels: {job: rtr-agent}}]
      - {eval_time: 10m, alertname: RtrAgentDispatchFailing, exp_alerts: []}
      - eval_time: 12m
        alertname: RtrAgentDispatchFailing
        exp_alerts: [{exp_labels: {job: rtr-agent}}]
      - {eval_time: 15m, alertname: RtrAgentDispatchStalled, exp_alerts: []}
      - eval_time: 16m
        alertname: RtrAgentDispatchStalled
        exp_alerts: [{exp_labels: {job: rtr-agent}}]
      - {eval_time: 2m, alertname: RtrAgentSpoolFull, exp_alerts: [{exp_labels: {job: rtr-agent}}]}
      - {eval_time: 3m, alertname: RtrAgentSpoolFull, exp_alerts: []}
      - eval_time: 1m
        alertname: RtrAgentReloadFailed
        exp_alerts: [{exp_labels: {job: rtr-agent}}]
      - {eval_time: 2m, alertname: RtrAgentReloadFailed, exp_alerts: []}
      - eval_time: 1m
        alertname: RtrAgentCertificateExpiring
        exp_alerts: [{exp_labels: {job: rtr-agent, listener: a}}]
"""


def test_docs_name_real_metrics(ctx):
    """Every rtr_agent_ metric README.md and systemd/going-live.md name is
    one a live scrape has (old names fail this), and the guide's alert
    rules pass `promtool check rules` and RULES_TEST."""
    promtool = tool("promtool")
    agent = ctx.agent([listener("tcp"), tls_listener(certs(), verify=False), listener("udp")])
    status, body = agent.http_get("/metrics")
    agent.stop()
    assert status == 200
    families = {line.split()[2] for line in body.splitlines() if line.startswith("# TYPE ")}
    with open(os.path.join(ROOT, "systemd", "going-live.md")) as f:
        guide = f.read()
    for name, text in (("README.md", open(os.path.join(ROOT, "README.md")).read()),
                       ("systemd/going-live.md", guide)):
        # A name ending in "_" starts a pattern (grep -E 'rtr_agent_graph_(a|b)_total').
        unknown = sorted(n for n in set(re.findall(r"\brtr_agent_[a-z_]+", text))
                         if n not in families and
                         not (n.endswith("_") and any(fam.startswith(n) for fam in families)))
        assert not unknown, "%s names metrics /metrics does not have: %s" % (name, unknown)
    rules = [b for b in re.findall(r"```yaml\n(.*?)```", guide, re.S)
             if b.lstrip().startswith("groups:")]
    assert len(rules) == 1, "systemd/going-live.md has %d alert rule blocks" % len(rules)
    with open(ctx.path("rules.yml"), "w") as f:
        f.write(rules[0])
    with open(ctx.path("rules_test.yml"), "w") as f:
        f.write(RULES_TEST)
    for argv in ([promtool, "check", "rules", "rules.yml"],
                 [promtool, "test", "rules", "rules_test.yml"]):
        p = subprocess.run(argv, cwd=ctx.dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=t(30))
        assert p.returncode == 0, "%s: exit %d\n%s" % (" ".join(argv[1:]), p.returncode,
                                                       p.stdout.decode(errors="replace"))
