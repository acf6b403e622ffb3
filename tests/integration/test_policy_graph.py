"""The graph containment action of response policies (issue 16): a critical
alert makes the agent revoke the user's sign-in sessions (POST
/v1.0/users/{id}/revokeSignInSessions) or disable the account (PATCH
/v1.0/users/{id} {"accountEnabled": false}) through the Graph stand-in,
with the identity layer's token (a 401 fetches a new one and the request
goes once more), audited as a dispatched action; a low alert runs nothing.
Graph refusing for a missing permission (403) is a dead letter whose reason
names the permission; `check` lists the operation and refuses graph
actions without identity.graph."""
import json
import subprocess
import time

import response_env as env
from harness import AGENT, WRAPPER, t
from test_replay import write_config

HENRIK = "henrik.lund@example.com"  # hlund in users.csv; his UPN in Graph too
USERS = [{"id": "3d1c0b9a-8e7f-4a6b-9c5d-000000000016", "userPrincipalName": HENRIK,
          "mail": HENRIK, "accountEnabled": True, "proxyAddresses": []}]
REVOKE_PATH = "/v1.0/users/henrik.lund%40example.com/revokeSignInSessions"
USER_PATH = "/v1.0/users/henrik.lund%40example.com"

POLICY = """{"policies": [
  {"name": "contain-risky", "when": [{"field": "decision.mapping", "equals": "securonix-violation"}],
   "tiers": [{"priority": "critical", "when": [{"field": "cef.label.riskscore", "ge": 80}]},
             {"priority": "low"}],
   "actions": {"critical": [{"name": "contain", "type": "graph", "operation": "%s"}],
               "low": []}}]}
"""


def _alert(n, risk, user="hlund"):
    """A Securonix violation (test_policies.py's layout), externalId n."""
    rule = "Uploads to personal websites"
    return ("<134>1 2026-10-02T09:30:11Z snypr-console securonix - - - CEF:0|Securonix|SNYPR|6.4|"
            "Violation|%s|8|suser=%s cs1Label=policyname cs1=%s cfp1Label=riskscore cfp1=%s "
            "externalId=pg-%d" % (rule, user, rule, risk, n)).encode()


def _policy(ctx, operation):
    path = ctx.path("contain-%s.json" % operation)
    with open(path, "w") as f:
        f.write(POLICY % operation)
    return path


def _start(ctx, operation):
    st = env.standin(ctx)
    g = env.standin(ctx, "graph", users=USERS)
    cfg = env.live_config(ctx, st, graph=g, order=["static", "graph"])
    cfg["policies"] = [_policy(ctx, operation)]
    return env.start_agent(ctx, cfg), st, g


def _contain_requests(g):
    return [r for r in g.requests() if r["path"].startswith("/v1.0/")]


def _tokens(g):
    return [r for r in g.requests() if r["path"].endswith("/oauth2/v2.0/token")]


def test_revoke_sessions(ctx):
    """A critical alert revokes the user's sessions with the bearer token;
    the first answer is a 401 (a token Graph no longer takes): a new token
    and the request once more. A low alert runs nothing."""
    a, st, g = _start(ctx, "revoke_sessions")
    g.script([{"status": 401, "match": "revokeSignInSessions"}])
    env.send_tcp(a, [_alert(1, 10), _alert(2, 90)])
    env.wait_audit(a, lambda x: x.get("action") == "contain" and x["outcome"] == "dispatched",
                   timeout=t(15))
    time.sleep(t(0.5))
    reqs = _contain_requests(g)
    assert [(r["method"], r["path"]) for r in reqs] == [("POST", REVOKE_PATH)] * 2, reqs
    assert [len(_tokens(g))] == [2], g.requests()
    assert reqs[0]["headers"]["authorization"] == "Bearer tok-1", reqs[0]["headers"]
    assert reqs[1]["headers"]["authorization"] == "Bearer tok-2", reqs[1]["headers"]
    assert json.loads(reqs[1]["body"]) == {}, reqs[1]
    assert reqs[1]["headers"]["content-type"] == "application/json", reqs[1]["headers"]
    lines = [x for x in env.audit(a) if x.get("action") == "contain"]
    assert [x["outcome"] for x in lines] == ["spooled", "dispatched"], lines
    x = lines[1]
    assert (x["policy"], x["priority"], x["status"], x["email"]) == \
        ("contain-risky", "critical", 200, HENRIK), x
    assert not [x for x in env.audit(a) if x.get("priority") == "low" and x.get("action")]
    assert st.requests() == [], st.requests()  # no safetitan action in these lists
    assert env.dead_letters(a) == []


test_revoke_sessions.timeout = 40


def test_disable_account(ctx):
    """disable_account: PATCH the user with accountEnabled false (204)."""
    a, _, g = _start(ctx, "disable_account")
    env.send_tcp(a, [_alert(1, 95)])
    env.wait_audit(a, lambda x: x.get("action") == "contain" and x["outcome"] == "dispatched",
                   timeout=t(15))
    reqs = _contain_requests(g)
    assert [(r["method"], r["path"]) for r in reqs] == [("PATCH", USER_PATH)], reqs
    assert json.loads(reqs[0]["body"]) == {"accountEnabled": False}, reqs[0]
    assert reqs[0]["headers"]["authorization"].startswith("Bearer tok-"), reqs[0]["headers"]
    assert g.users[0]["accountEnabled"] is False, g.users
    x = [x for x in env.audit(a) if x.get("action") == "contain"][-1]
    assert (x["outcome"], x["status"]) == ("dispatched", 204), x


test_disable_account.timeout = 40


def test_missing_permission_is_dead_lettered(ctx):
    """Graph's 403 (the app lacks User.RevokeSessions.All): a dead letter
    at once, its reason naming the permission; no retry."""
    a, _, g = _start(ctx, "revoke_sessions")
    g.script([{"status": 403, "match": "revokeSignInSessions"}])
    env.send_tcp(a, [_alert(1, 99)])
    env.wait_audit(a, lambda x: x.get("action") == "contain" and x["outcome"] == "failed",
                   timeout=t(15))
    time.sleep(t(1))
    assert len(_contain_requests(g)) == 1, g.requests()
    dead = env.dead_letters(a)
    assert len(dead) == 1, dead
    d = dead[0]
    assert d["status"] == 403 and d["action"] == "contain", d
    assert "User.RevokeSessions.All" in d["detail"], d
    assert "Authorization_RequestDenied" in d["detail"], d


test_missing_permission_is_dead_lettered.timeout = 40


def test_check(ctx):
    """check lists the operation and what it sends; without identity.graph
    it fails naming identity.graph and the permission."""
    policy = _policy(ctx, "disable_account")
    g = env.standin(ctx, "graph", users=USERS)
    graph = env.live_config(ctx, graph=g)["identity"]["graph"]
    cfg = write_config(ctx, "with-graph.json",
                       extra={"policies": [policy],
                              "identity": {"graph": graph, "order": ["graph"]}})
    p = subprocess.run(WRAPPER + [AGENT, "check", "-c", cfg], capture_output=True, text=True,
                       timeout=t(20))
    assert p.returncode == 0, p.stderr
    assert "policy contain-risky, critical: contain (graph disable_account) sends: email " \
        "(the user's identifier, to Microsoft Graph)" in p.stderr, p.stderr

    cfg = write_config(ctx, "no-graph.json", extra={"policies": [policy]})
    p = subprocess.run(WRAPPER + [AGENT, "check", "-c", cfg], capture_output=True, text=True,
                       timeout=t(20))
    assert p.returncode != 0, p.stderr
    assert cfg + ": identity.graph: policies have graph actions: identity.graph is required, " \
        "named in identity.order (with the app permission User.RevokeSessions.All, or " \
        "User.EnableDisableAccount.All for disable_account)" in p.stderr, p.stderr

    bad = ctx.path("bad.json")
    with open(bad, "w") as f:
        f.write(POLICY % "delete_user")
    cfg = write_config(ctx, "bad-op.json",
                       extra={"policies": [bad], "identity": {"graph": graph}})
    p = subprocess.run(WRAPPER + [AGENT, "check", "-c", cfg], capture_output=True, text=True,
                       timeout=t(20))
    assert p.returncode != 0, p.stderr
    assert bad + ': policies[0].actions.critical[0].operation: expected one of ' \
        '"revoke_sessions", "disable_account", got "delete_user"' in p.stderr, p.stderr
