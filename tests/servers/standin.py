#!/usr/bin/env python3
"""Stand-ins for the services the agent calls: real HTTPS servers on
127.0.0.1 (http.server + ssl, one thread per connection, HTTP/1.1
keep-alive, TLS 1.2 or later) that record every request and can be told to
misbehave. Standard library only.

Python:
    s = Standin("graph" | "safetitan", cert_pem, key_pem, users=None,
                token_expires=3600, client_id="client-id",
                client_secret="client-secret", tenant=None, client_cert=None)
    s.start(); s.port; s.url                  # "https://127.0.0.1:PORT"
    s.requests()   # copy: [{"method","path","query","headers","body","time",
                   #         "params","conn"} ...] ("tenant" on token requests)
    s.script([action, ...])   # consumed one per request, in order
    s.expire_tokens()         # every token issued so far -> 401
    s.wait_requests(n, timeout=10, match=None)
    s.stop()                  # also: with Standin(...) as s:

A record: "path" and "query" exactly as sent (still percent-encoded),
"params" the decoded query ({name: value}, '+' read as a space like Graph
does), "headers" {lowercased name: value}, "body" the body as text, "time"
time.time() when it arrived, "conn" a number per TCP connection (equal
numbers: the client reused a connection).

Actions (keys combine; "match" limits an action to requests whose path,
raw or percent-decoded, contains that text; a request takes the first
queued action that applies to it, the others stay queued):
    {"status": 503, "retry_after": "2", "body": "...", "headers": {...}}
        a canned answer; without "body" an error status gets the kind's
        error body (Graph: {"error":{"code":...}}), and a status below 400
        gives the normal answer with that status
    {"delay": 1.5}        wait, then answer (normally unless other keys say)
    {"hang": true}        never answer; the connection closes at stop()
    {"body": "not json", "status": 200}   malformed (a dict or list body is
                          sent as JSON: wrongly typed answers)
    {"huge": 1048576}     a 200 with that many body bytes (Content-Length;
                          "chunked": true sends it chunked instead)
    {"close": true}       close the connection without answering
    {"clock_offset": -3600}   this answer comes from a server whose clock is
                          that many seconds off ours: its Date header says so,
                          and "retry_after_in": N makes Retry-After the
                          HTTP-date N seconds after that Date

Kinds:
    safetitan  any method, any path -> 200 {"ok":true}
    graph      POST /{tenant}/oauth2/v2.0/token (client credentials, form
               encoded; tokens "tok-N" with expires_in token_expires; a wrong
               client_secret -> 401 invalid_client). With client_cert (the
               PEM certificate registered for the app) it takes a
               certificate credential instead, as Entra ID does
               (https://learn.microsoft.com/entra/identity-platform/
               certificate-credentials): client_assertion_type jwt-bearer and
               client_assertion a JWT whose signature verifies with that
               certificate's key (PS256 or RS256, checked with the openssl
               CLI), x5t#S256 (or x5t) its thumbprint, aud the token URL,
               iss = sub = client_id, nbf <= now < exp, exp at most 10
               minutes after nbf, a jti never seen before; else 401
               invalid_client (AADSTS700027 and kin).
               GET /v1.0/users/{id or UPN}, /v1.0/users('{id or UPN}'),
               /v1.0/users?$filter=... with eq/ne/not/and/or/startswith and
               proxyAddresses/any(p:p eq '...'); onPremisesSamAccountName and
               onPremisesSecurityIdentifier (and ne, not, endswith) need
               ConsistencyLevel: eventual and $count=true, else 400
               Request_UnsupportedQuery; $select, $count, $top honoured;
               string matching is case-insensitive like Graph's; a bearer
               token missing, unknown or expired -> 401
               InvalidAuthenticationToken.
               Containment (by id or UPN, either path form):
               POST /v1.0/users/{id}/revokeSignInSessions -> 200 {"value":
               true}; PATCH /v1.0/users/{id} with a JSON object of known
               properties (accountEnabled) -> 204, applied to the user (a
               later GET sees it); an unknown user -> 404
               Request_ResourceNotFound; a scripted {"status": 403} is the
               app lacking the permission.
    Users: a list of user objects or a JSON file of one (keys as in Graph:
    id, userPrincipalName, mail, onPremisesSamAccountName,
    onPremisesSecurityIdentifier, employeeId, proxyAddresses, ...);
    DEFAULT_USERS when None.

CLI (for the C unit tests; prints nothing):
    python3 tests/servers/standin.py --kind graph|safetitan --cert PEM
        --key PEM --port-file FILE --requests FILE.jsonl [--users USERS.json]
        [--token-expires S] [--script JSON|FILE] [--client-id ID]
        [--client-secret SECRET] [--tenant TENANT] [--client-cert PEM]
    writes the port to --port-file once listening (by rename: whole),
    appends each request to --requests as one JSON line (flushed), runs until
    SIGTERM or SIGINT (exit 0). SIGUSR1 expires every token issued so far.
"""
import argparse
import base64
import binascii
import email.utils
import hashlib
import http.server
import json
import os
import re
import signal
import socket
import shutil
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

DEFAULT_USERS = [
    {"id": "6f1e2d3c-0000-4000-8000-000000000001", "userPrincipalName": "jsmith@contoso.com",
     "mail": "john.smith@contoso.com", "displayName": "John Smith",
     "onPremisesSamAccountName": "jsmith",
     "onPremisesSecurityIdentifier": "S-1-5-21-1004336348-1177238915-682003330-1001",
     "employeeId": "1001",
     "proxyAddresses": ["SMTP:john.smith@contoso.com", "smtp:jsmith@contoso.com",
                        "smtp:john@old.contoso.com"]},
    {"id": "6f1e2d3c-0000-4000-8000-000000000002", "userPrincipalName": "o'brien@contoso.com",
     "mail": "pat.o'brien@contoso.com", "displayName": "Pat O'Brien",
     "onPremisesSamAccountName": "obrien",
     "onPremisesSecurityIdentifier": "S-1-5-21-1004336348-1177238915-682003330-1002",
     "employeeId": "1002", "proxyAddresses": ["SMTP:pat.o'brien@contoso.com"]},
    {"id": "6f1e2d3c-0000-4000-8000-000000000003",
     "userPrincipalName": "guest_fabrikam.com#EXT#@contoso.onmicrosoft.com",
     "mail": "guest@fabrikam.com", "displayName": "Guest User", "userType": "Guest",
     "proxyAddresses": ["SMTP:guest@fabrikam.com"]},
    {"id": "6f1e2d3c-0000-4000-8000-000000000004", "userPrincipalName": "$svc@contoso.com",
     "mail": "svc@contoso.com", "displayName": "Service", "onPremisesSamAccountName": "$svc",
     "proxyAddresses": ["SMTP:svc@contoso.com"]},
    {"id": "6f1e2d3c-0000-4000-8000-000000000005", "userPrincipalName": "nomail@contoso.com",
     "displayName": "No Mail", "onPremisesSamAccountName": "nomail", "employeeId": "1005",
     "proxyAddresses": []},
]

# Graph's default user properties (what a GET without $select returns).
DEFAULT_SELECT = ["businessPhones", "displayName", "givenName", "jobTitle", "mail",
                  "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                  "userPrincipalName", "id"]
KNOWN_PROPS = DEFAULT_SELECT + [
    "accountEnabled", "employeeId", "onPremisesSamAccountName", "onPremisesSecurityIdentifier",
    "onPremisesDomainName", "onPremisesUserPrincipalName", "otherMails", "proxyAddresses",
    "userType", "department", "companyName"]
FILTERABLE = {p.lower() for p in (
    "id", "userPrincipalName", "mail", "proxyAddresses", "employeeId", "displayName",
    "givenName", "surname", "onPremisesSamAccountName", "onPremisesSecurityIdentifier",
    "userType", "accountEnabled", "otherMails", "jobTitle", "department", "companyName")}
COLLECTIONS = {"proxyaddresses", "othermails", "businessphones"}
ADVANCED_PROPS = {"onpremisessamaccountname", "onpremisessecurityidentifier"}
GRAPH_CODES = {400: "BadRequest", 401: "InvalidAuthenticationToken",
               403: "Authorization_RequestDenied", 404: "Request_ResourceNotFound",
               409: "Conflict", 429: "TooManyRequests", 500: "InternalServerError",
               502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
GRAPH_JSON = ("application/json;odata.metadata=minimal;odata.streaming=true;"
              "IEEE754Compatible=false;charset=utf-8")
CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#users"
TOKEN_PATH = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")
HUGE_CHUNK = 64 * 1024


class _Answer(Exception):
    """Raised inside the Graph handlers to answer with an error at once."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _graph_error(status, code, message):
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    return {"error": {"code": code, "message": message,
                      "innerError": {"date": now, "request-id": str(uuid.uuid4()),
                                     "client-request-id": str(uuid.uuid4())}}}


# ---------------------------------------------------------------- $filter

_TOKEN = re.compile(r"\s*(?:('(?:[^']|'')*')|([A-Za-z_][A-Za-z0-9_.]*)|([(),/:])|(\S))")


def _tokens(text):
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        if m.group(4):
            raise _Answer(400, "BadRequest", "Invalid filter clause: syntax error at '%s'."
                          % m.group(4))
        if m.group(1):
            # '' inside a literal is one quote (OData's escaping).
            out.append(("str", m.group(1)[1:-1].replace("''", "'")))
        elif m.group(2):
            out.append(("word", m.group(2)))
        elif m.group(3):
            out.append(("punct", m.group(3)))
    return out


class _Filter:
    """A small OData $filter parser: enough of the grammar to accept what a
    correct client sends and reject a malformed one the way Graph does.
    AST nodes: ("or"|"and", a, b), ("not", a), ("cmp", op, prop, value),
    ("func", name, prop, value), ("any", prop, inner) where inner's prop is
    None (the lambda variable)."""

    def __init__(self, text):
        self.toks, self.i = _tokens(text), 0
        self.advanced_needed = []  # why: names for the error message
        if not self.toks:
            raise _Answer(400, "BadRequest", "Invalid filter clause: empty.")
        self.ast = self._or()
        if self.i != len(self.toks):
            raise self._syntax()

    def _syntax(self):
        tok = self.toks[self.i][1] if self.i < len(self.toks) else "end of input"
        return _Answer(400, "BadRequest", "Invalid filter clause: syntax error at '%s'." % tok)

    def _peek_word(self, *words):
        if self.i < len(self.toks) and self.toks[self.i][0] == "word" \
                and self.toks[self.i][1].lower() in words:
            return self.toks[self.i][1].lower()
        return None

    def _expect(self, kind, value=None):
        if self.i >= len(self.toks):
            raise self._syntax()
        k, v = self.toks[self.i]
        if k != kind or (value is not None and v != value):
            raise self._syntax()
        self.i += 1
        return v

    def _or(self):
        node = self._and()
        while self._peek_word("or"):
            self.i += 1
            node = ("or", node, self._and())
        return node

    def _and(self):
        node = self._unary()
        while self._peek_word("and"):
            self.i += 1
            node = ("and", node, self._unary())
        return node

    def _unary(self):
        if self._peek_word("not"):
            self.i += 1
            self.advanced_needed.append("not")
            return ("not", self._unary())
        if self.i < len(self.toks) and self.toks[self.i] == ("punct", "("):
            self.i += 1
            node = self._or()
            self._expect("punct", ")")
            return node
        return self._predicate(None)

    def _literal(self):
        if self.i >= len(self.toks):
            raise self._syntax()
        k, v = self.toks[self.i]
        self.i += 1
        if k == "str":
            return v
        if k == "word" and v.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[v.lower()]
        raise _Answer(400, "BadRequest", "Invalid filter clause: a literal is expected, "
                      "found '%s'." % v)

    def _prop(self, var):
        name = self._expect("word")
        if var is not None:
            if name != var:
                raise _Answer(400, "BadRequest", "Invalid filter clause: '%s' is not the "
                              "range variable '%s'." % (name, var))
            return None
        low = name.lower()
        if low not in FILTERABLE:
            if low in (p.lower() for p in KNOWN_PROPS):
                raise _Answer(400, "Request_UnsupportedQuery", "Unsupported or invalid query "
                              "filter clause specified for property '%s' of resource 'User'."
                              % name)
            raise _Answer(400, "BadRequest", "Could not find a property named '%s' on type "
                          "'microsoft.graph.user'." % name)
        if low in ADVANCED_PROPS:
            self.advanced_needed.append(name)
        return low

    def _predicate(self, var):
        fn = self._peek_word("startswith", "endswith")
        if fn:
            self.i += 1
            if fn == "endswith":
                self.advanced_needed.append("endsWith")
            self._expect("punct", "(")
            prop = self._prop(var)
            self._expect("punct", ",")
            value = self._literal()
            self._expect("punct", ")")
            return ("func", fn, prop, value)
        prop = self._prop(var)
        if self.i < len(self.toks) and self.toks[self.i] == ("punct", "/"):
            if var is not None or prop not in COLLECTIONS:
                raise self._syntax()
            self.i += 1
            if not self._peek_word("any"):
                raise self._syntax()
            self.i += 1
            self._expect("punct", "(")
            lvar = self._expect("word")
            self._expect("punct", ":")
            inner = self._predicate(lvar)
            self._expect("punct", ")")
            return ("any", prop, inner)
        op = self._peek_word("eq", "ne")
        if not op:
            raise self._syntax()
        self.i += 1
        if op == "ne":
            self.advanced_needed.append("ne")
        if var is None and prop in COLLECTIONS:
            raise _Answer(400, "BadRequest", "Invalid filter clause: a collection property "
                          "needs any().")
        return ("cmp", op, prop, self._literal())

    def matches(self, user):
        lowered = {k.lower(): v for k, v in user.items()}
        return self._eval(self.ast, lowered, None)

    @staticmethod
    def _same(a, b):
        if isinstance(a, str) and isinstance(b, str):
            return a.lower() == b.lower()
        return a == b

    def _eval(self, node, user, item):
        kind = node[0]
        if kind == "or":
            return self._eval(node[1], user, item) or self._eval(node[2], user, item)
        if kind == "and":
            return self._eval(node[1], user, item) and self._eval(node[2], user, item)
        if kind == "not":
            return not self._eval(node[1], user, item)
        if kind == "any":
            return any(self._eval(node[2], user, v) for v in (user.get(node[1]) or []))
        value = item if node[2] is None else user.get(node[2])
        if kind == "cmp":
            same = self._same(value, node[3])
            return same if node[1] == "eq" else not same
        if not isinstance(value, str) or not isinstance(node[3], str):
            return False
        if node[1] == "startswith":
            return value.lower().startswith(node[3].lower())
        return value.lower().endswith(node[3].lower())


# ---------------------------------------------------------------- server

class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, standin, ctx):
        self.standin, self.ctx = standin, ctx
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self):
        # HTTPServer.server_bind would resolve the host name (getfqdn): slow
        # or hanging without DNS, and of no use here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so a
        # silent or failing client never holds up accept().
        st = self.standin
        conn_id = st._track(request)
        tls = None
        try:
            # Without it a small write after another (a huge body's pieces,
            # an answer after "100 Continue") waits for the client's delayed
            # ACK (40 ms): latency the agent did not cause.
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request.settimeout(10)
            try:
                tls = self.ctx.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                st._tls_failure()
                return
            st._retrack(conn_id, tls)
            if not st._stopping.is_set():
                # The handler serves the whole connection from __init__; its
                # number must be set before that.
                handler = _Handler.__new__(_Handler)
                handler.conn_id = conn_id
                handler.__init__(tls, client_address, self)
        finally:
            st._untrack(conn_id)
            if tls is not None:
                tls.close()

    def handle_error(self, request, client_address):
        pass  # a client going away mid-answer is part of the tests


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rtr-standin/1"
    timeout = 60  # an idle keep-alive connection is closed after this

    def log_message(self, fmt, *args):
        pass

    # The server's clock for the Date header send_response writes: ours,
    # or ours off by the answer's "clock_offset".
    clock_offset = 0

    def date_time_string(self, timestamp=None):
        if timestamp is None:
            timestamp = time.time() + self.clock_offset
        return email.utils.formatdate(timestamp, usegmt=True)

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(3)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _serve(self):
        st = self.server.standin
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        raw_path, _, query = self.path.partition("?")
        headers = {}
        for name, value in self.headers.items():
            low = name.lower()
            headers[low] = headers[low] + ", " + value if low in headers else value
        rec = {"method": self.command, "path": raw_path, "query": query, "headers": headers,
               "body": body.decode("utf-8", "replace"), "time": time.time(),
               "params": dict(urllib.parse.parse_qsl(query, keep_blank_values=True)),
               "conn": self.conn_id}
        action = st._take_action(raw_path)
        if st.kind == "graph":
            m = TOKEN_PATH.match(raw_path)
            if m:
                rec["tenant"] = urllib.parse.unquote(m.group(1))
        st._record(rec)
        self._act(st, rec, action)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def _drop(self):
        """Closes the connection without a byte of answer."""
        self.close_connection = True
        try:
            socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
        except OSError:
            pass

    def _act(self, st, rec, action):
        self.clock_offset = 0  # a keep-alive connection's earlier answer set it
        if action is None:
            self._send(*st._answer(rec))
            return
        if action.get("hang"):
            st._stopping.wait()
            self._drop()
            return
        if action.get("delay") and st._stopping.wait(float(action["delay"])):
            self._drop()
            return
        if action.get("close"):
            self._drop()
            return
        extra = dict(action.get("headers") or {})
        if "retry_after" in action:
            extra["Retry-After"] = str(action["retry_after"])
        self.clock_offset = float(action.get("clock_offset", 0))
        if "retry_after_in" in action:
            extra["Retry-After"] = self.date_time_string(
                time.time() + self.clock_offset + float(action["retry_after_in"]))
        if action.get("huge") is not None:
            self._send_huge(int(action["huge"]), bool(action.get("chunked")), extra)
            return
        status = int(action.get("status", 200))
        if "body" in action:
            body = action["body"]
            ctype = action.get("content_type", "application/json")
            if not isinstance(body, (str, bytes)):
                body = json.dumps(body)
            self._send(status, body, ctype, extra)
            return
        if status < 400:
            normal = st._answer(rec)
            if 200 <= normal[0] < 300:
                normal = (status,) + normal[1:]
            normal[3].update(extra)
            self._send(*normal)
            return
        body, ctype = st._error_body(rec, status)
        self._send(status, body, ctype, extra)

    def _send(self, status, body, ctype, headers):
        data = body.encode("utf-8") if isinstance(body, str) else body
        try:
            self.send_response(status)
            if status != 204:  # no content: no Content-Type, no Content-Length
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            # Headers and body in one write (end_headers would write twice):
            # one TLS record, half the syscalls, for the dispatch benchmark.
            self._headers_buffer.append(b"\r\n" + (b"" if self.command == "HEAD" else data))
            self.flush_headers()
        except OSError:
            self.close_connection = True

    def _send_huge(self, n, chunked, headers):
        head, tail = b'{"value":"', b'"}'
        if n < len(head) + len(tail):
            head, tail = b"", b""
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(n))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            left = n - len(head) - len(tail)
            pieces = [head]
            while left > 0 or pieces:
                if left > 0:
                    k = min(left, HUGE_CHUNK)
                    pieces.append(b"x" * k)
                    left -= k
                if left <= 0:
                    pieces.append(tail)
                data = b"".join(pieces)
                pieces = []
                if data:
                    if chunked:
                        data = b"%x\r\n%s\r\n" % (len(data), data)
                    self.wfile.write(data)
                if self.server.standin._stopping.is_set():
                    self._drop()
                    return
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True


def _b64url(text):
    """base64url without padding to bytes; ValueError when it is none."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as e:
        raise ValueError(str(e))


class _AppCert:
    """An app registration's certificate: its thumbprints, and signature
    checks with its public key by the openssl CLI (the standard library has
    no RSA)."""

    def __init__(self, pem_path):
        with open(pem_path) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        enc = base64.urlsafe_b64encode
        self.x5t_s256 = enc(hashlib.sha256(der).digest()).decode().rstrip("=")
        self.x5t = enc(hashlib.sha1(der).digest()).decode().rstrip("=")
        self._dir = tempfile.mkdtemp(prefix="standin-app-")
        self._pub = os.path.join(self._dir, "pub.pem")
        subprocess.run(["openssl", "x509", "-in", pem_path, "-pubkey", "-noout",
                        "-out", self._pub], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
        self._lock = threading.Lock()

    def close(self):
        shutil.rmtree(self._dir, ignore_errors=True)

    def verify(self, alg, data, sig):
        pss = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32",
               "-sigopt", "rsa_mgf1_md:sha256"] if alg == "PS256" else []
        with self._lock, tempfile.TemporaryDirectory(dir=self._dir) as d:
            data_path, sig_path = os.path.join(d, "data"), os.path.join(d, "sig")
            for path, content in ((data_path, data), (sig_path, sig)):
                with open(path, "wb") as f:
                    f.write(content)
            p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", self._pub,
                                "-signature", sig_path] + pss + [data_path],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        return p.returncode == 0


class Standin:
    """One stand-in server; see the module docstring."""

    def __init__(self, kind, cert, key, users=None, token_expires=3600,
                 client_id="client-id", client_secret="client-secret", tenant=None,
                 requests_file=None, client_cert=None):
        if kind not in ("graph", "safetitan"):
            raise ValueError("standin: kind must be graph or safetitan, not %r" % (kind,))
        self.kind, self.cert, self.key = kind, cert, key
        if isinstance(users, str):
            with open(users) as f:
                users = json.load(f)
        self.users = [dict(u) for u in (DEFAULT_USERS if users is None else users)]
        self.token_expires = token_expires
        self.client_id, self.client_secret, self.tenant = client_id, client_secret, tenant
        self.client_cert = client_cert
        self._jtis = set()  # client assertion ids seen: a replay is refused
        if client_cert is not None:
            self._app = _AppCert(client_cert)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._records, self._actions = [], []
        self._tokens = {}      # token -> monotonic time it expires
        self._token_n = 0
        self._conns, self._conn_n = {}, 0
        self.tls_failures = 0  # handshakes that failed (a client refusing our cert)
        self._stopping = threading.Event()
        self._server = self._thread = None
        self._requests_file = open(requests_file, "a", encoding="utf-8") \
            if requests_file else None

    # -- life

    def start(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        self._server = _Server(self, ctx)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="standin-%s" % self.kind, daemon=True)
        self._thread.start()
        return self

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def stop(self):
        """Stops accepting, releases hanging requests and closes every
        connection; returns without waiting for the connection threads
        (daemons), so a client that never reads cannot hold it up."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns.values())
        for sock in conns:
            try:
                # The plain socket's shutdown: SSLSocket's own would drop its
                # TLS state under a thread still reading from it.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        self._server = None
        if self.client_cert is not None:
            self._app.close()
        with self._lock:
            if self._requests_file:
                self._requests_file.close()
                self._requests_file = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- test controls

    def requests(self):
        with self._lock:
            return [dict(r, headers=dict(r["headers"]), params=dict(r["params"]))
                    for r in self._records]

    def clear_requests(self):
        with self._lock:
            self._records = []

    def script(self, actions):
        if isinstance(actions, dict):
            actions = [actions]
        with self._lock:
            self._actions.extend(dict(a) for a in actions)

    def pending_actions(self):
        with self._lock:
            return len(self._actions)

    def expire_tokens(self):
        with self._lock:
            for tok in self._tokens:
                self._tokens[tok] = 0.0

    def set_users(self, users):
        with self._lock:
            self.users = [dict(u) for u in users]

    def wait_requests(self, count, timeout=10.0, match=None):
        """Waits until at least count requests (whose path contains match,
        when given) were recorded; returns them, or raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self._records if match is None or match in r["path"]]
                if len(got) >= count:
                    return [dict(r) for r in got]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("standin: %d of %d requests%s after %.1fs"
                                       % (len(got), count,
                                          " matching %r" % match if match else "", timeout))
                self._cond.wait(left)

    # -- called from connection threads

    def _track(self, sock):
        with self._lock:
            self._conn_n += 1
            self._conns[self._conn_n] = sock
            return self._conn_n

    def _retrack(self, conn_id, sock):
        with self._lock:
            self._conns[conn_id] = sock

    def _untrack(self, conn_id):
        with self._lock:
            self._conns.pop(conn_id, None)

    def _tls_failure(self):
        with self._lock:
            self.tls_failures += 1

    def _record(self, rec):
        with self._cond:
            self._records.append(rec)
            if self._requests_file:
                self._requests_file.write(json.dumps(rec) + "\n")
                self._requests_file.flush()
            self._cond.notify_all()

    def _take_action(self, raw_path):
        decoded = urllib.parse.unquote(raw_path)
        with self._lock:
            for i, a in enumerate(self._actions):
                m = a.get("match")
                if m is None or m in raw_path or m in decoded:
                    return self._actions.pop(i)
        return None

    # -- answers: (status, body, content type, extra headers)

    def _error_body(self, rec, status):
        if self.kind == "safetitan":
            return json.dumps({"ok": False, "error": "status %d" % status}), "application/json"
        if TOKEN_PATH.match(rec["path"]):
            return json.dumps({"error": "temporarily_unavailable",
                               "error_description": "AADSTS50196: status %d" % status}), \
                "application/json; charset=utf-8"
        code = GRAPH_CODES.get(status, "UnknownError")
        return json.dumps(_graph_error(status, code, "Scripted answer %d." % status)), GRAPH_JSON

    def _answer(self, rec):
        if self.kind == "safetitan":
            return 200, '{"ok":true}', "application/json", {}
        try:
            if TOKEN_PATH.match(rec["path"]):
                return self._token(rec)
            return self._graph(rec)
        except _Answer as a:
            return a.status, json.dumps(_graph_error(a.status, a.code, a.message)), GRAPH_JSON, \
                dict(a.headers)

    def _token(self, rec):
        def oauth(status, error, description):
            body = {"error": error, "error_description": description, "error_codes": [],
                    "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
                    "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())}
            return status, json.dumps(body), "application/json; charset=utf-8", {}

        if rec["method"] != "POST":
            return oauth(405, "invalid_request", "AADSTS900561: The endpoint only accepts "
                         "POST requests.")
        if self.tenant is not None and rec.get("tenant") != self.tenant:
            return oauth(400, "invalid_tenant", "AADSTS90002: Tenant '%s' not found."
                         % rec.get("tenant"))
        ctype = rec["headers"].get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return oauth(400, "invalid_request", "AADSTS900144: The request body must contain "
                         "the following parameter: 'grant_type'.")
        form = dict(urllib.parse.parse_qsl(rec["body"], keep_blank_values=True))
        for name in ("grant_type", "client_id", "scope"):
            if not form.get(name):
                return oauth(400, "invalid_request", "AADSTS900144: The request body must "
                             "contain the following parameter: '%s'." % name)
        if form["grant_type"] != "client_credentials":
            return oauth(400, "unsupported_grant_type", "AADSTS70003: The app requested an "
                         "unsupported grant type.")
        if form["client_id"] != self.client_id:
            return oauth(400, "unauthorized_client", "AADSTS700016: Application with identifier "
                         "'%s' was not found in the directory." % form["client_id"])
        if self.client_cert is not None:
            refused = self._check_assertion(rec, form)
            if refused:
                return oauth(401, "invalid_client", refused)
        elif form.get("client_secret") != self.client_secret:
            return oauth(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        if not form["scope"].endswith("/.default"):
            return oauth(400, "invalid_scope", "AADSTS1002012: The provided value for scope "
                         "is not valid. Client credential flows must have a scope value with "
                         "/.default suffixed to the resource identifier.")
        with self._lock:
            self._token_n += 1
            tok = "tok-%d" % self._token_n
            self._tokens[tok] = time.monotonic() + self.token_expires
        body = {"token_type": "Bearer", "expires_in": int(self.token_expires),
                "ext_expires_in": int(self.token_expires), "access_token": tok}
        return 200, json.dumps(body), "application/json; charset=utf-8", {}

    def _check_assertion(self, rec, form):
        """None when form's client assertion is one Entra ID takes for the
        registered certificate, else its AADSTS refusal."""
        if "client_secret" in form:
            return ("AADSTS7000215: Invalid client secret provided: this app has a "
                    "certificate credential.")
        if form.get("client_assertion_type") != \
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return ("AADSTS7000218: The request body must contain the following parameter: "
                    "'client_assertion' or 'client_secret'.")
        parts = form.get("client_assertion", "").split(".")
        try:
            if len(parts) != 3:
                raise ValueError("not three parts")
            header, claims = (json.loads(_b64url(p)) for p in parts[:2])
            sig = _b64url(parts[2])
            if not isinstance(header, dict) or not isinstance(claims, dict):
                raise ValueError("not objects")
        except ValueError:
            return "AADSTS50027: JWT token is invalid or malformed."
        if header.get("typ") != "JWT" or header.get("alg") not in ("PS256", "RS256"):
            return "AADSTS5002738: Invalid JWT token. '%s' is not a supported signature " \
                "algorithm." % header.get("alg")
        if "x5t#S256" in header:
            registered = header["x5t#S256"] == self._app.x5t_s256
        else:
            registered = header.get("x5t") == self._app.x5t
        if not registered:
            return ("AADSTS700027: The certificate with identifier used to sign the client "
                    "assertion is not registered on application.")
        if not self._app.verify(header["alg"], (parts[0] + "." + parts[1]).encode(), sig):
            return "AADSTS700027: Client assertion failed signature validation."
        now = time.time()
        aud = self.url + rec["path"]
        nbf, exp = claims.get("nbf"), claims.get("exp")
        if claims.get("aud") != aud:
            return "AADSTS700212: No matching federated identity record found for presented " \
                "assertion audience '%s'." % claims.get("aud")
        if claims.get("iss") != form["client_id"] or claims.get("sub") != form["client_id"]:
            return ("AADSTS700021: Client assertion application identifier doesn't match "
                    "'client_id' parameter.")
        if not isinstance(nbf, int) or not isinstance(exp, int) or nbf > now + 60 \
                or exp <= now or exp - nbf > 600:
            return "AADSTS700024: Client assertion is not within its valid time range."
        jti = claims.get("jti")
        with self._lock:
            if not isinstance(jti, str) or not jti or jti in self._jtis:
                return "AADSTS700025: Client assertion jti is missing or was used before."
            self._jtis.add(jti)
        return None

    def _check_token(self, rec):
        auth = rec["headers"].get("authorization", "")
        scheme, _, tok = auth.partition(" ")
        tok = tok.strip()
        if scheme.lower() != "bearer" or not tok:
            raise _Answer(401, "InvalidAuthenticationToken", "Access token is empty.")
        with self._lock:
            expires = self._tokens.get(tok)
        if expires is None:
            raise _Answer(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.")
        if time.monotonic() >= expires:
            raise _Answer(401, "InvalidAuthenticationToken",
                          "Lifetime validation failed, the token is expired.")

    @staticmethod
    def _select(params):
        sel = params.get("$select")
        if sel is None:
            return DEFAULT_SELECT
        known = {p.lower(): p for p in KNOWN_PROPS}
        out = []
        for name in (s.strip() for s in sel.split(",")):
            if not name:
                raise _Answer(400, "BadRequest", "Invalid $select: an empty property name.")
            if name.lower() not in known:
                raise _Answer(400, "BadRequest", "Could not find a property named '%s' on "
                              "type 'microsoft.graph.user'." % name)
            out.append(known[name.lower()])
        return out

    @staticmethod
    def _shape(user, select):
        lowered = {k.lower(): v for k, v in user.items()}
        return {p: lowered.get(p.lower()) for p in select}

    def _find_user(self, key, users):
        for u in users:
            for prop in ("id", "userPrincipalName"):
                if isinstance(u.get(prop), str) and u[prop].lower() == key.lower():
                    return u
        raise _Answer(404, "Request_ResourceNotFound", "Resource '%s' does not exist or one of "
                      "its queried reference-property objects are not present." % key)

    def _contain(self, rec, path):
        """POST .../revokeSignInSessions or PATCH /v1.0/users/{id}: an
        answer, or None when the request is neither."""
        m = re.match(r"^/v1\.0/users(?:/([^/]+)|\('((?:[^']|'')*)'\))(/revokeSignInSessions)?$",
                     path)
        if m is None or (rec["method"], bool(m.group(3))) not in (("POST", True),
                                                                  ("PATCH", False)):
            return None
        key = m.group(1) if m.group(1) is not None else m.group(2).replace("''", "'")
        with self._lock:
            user = self._find_user(key, self.users)
            if rec["method"] == "POST":
                body = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean",
                        "value": True}
                return 200, json.dumps(body), GRAPH_JSON, {}
            try:
                patch = json.loads(rec["body"])
            except ValueError:
                patch = None
            if not isinstance(patch, dict) or not patch:
                raise _Answer(400, "BadRequest", "Empty Payload. JSON content expected.")
            known = {p.lower(): p for p in KNOWN_PROPS}
            for name in patch:
                if name.lower() not in known:
                    raise _Answer(400, "Request_BadRequest", "Invalid property '%s'." % name)
            user.update(patch)
        return 204, "", None, {}

    def _graph(self, rec):
        self._check_token(rec)
        if "#" not in rec["path"]:
            answer = self._contain(rec, urllib.parse.unquote(rec["path"]))
            if answer is not None:
                return answer
        if rec["method"] != "GET":
            raise _Answer(405, "Request_BadRequest", "Specified HTTP method is not allowed for "
                          "the request target.")
        params = rec["params"]
        for name in params:
            if name.startswith("$") and name not in ("$select", "$filter", "$count", "$top"):
                raise _Answer(400, "BadRequest", "Query option '%s' is not allowed." % name)
        select = self._select(params)
        context = CONTEXT + ("(%s)" % ",".join(select) if "$select" in params else "")
        if "#" in rec["path"] or "#" in rec["query"]:
            # A bare '#' starts a fragment, never part of the request: a
            # guest's "#EXT#" must arrive as "%23EXT%23".
            raise _Answer(400, "BadRequest", "Invalid request URL: a bare '#'.")
        path = urllib.parse.unquote(rec["path"])
        with self._lock:
            users = list(self.users)
        if path.rstrip("/") == "/v1.0/users":
            return self._list(rec, params, select, context, users)
        m = re.match(r"^/v1\.0/users\('((?:[^']|'')*)'\)$", path)
        if m:
            key = m.group(1).replace("''", "'")
        elif path.startswith("/v1.0/users/") and "/" not in path[len("/v1.0/users/"):]:
            key = path[len("/v1.0/users/"):]
            if key.startswith("$"):
                # Graph reads a leading '$' as a system segment ($count...).
                raise _Answer(400, "BadRequest", "Resource not found for the segment '%s'."
                              % key)
        else:
            raise _Answer(400, "BadRequest", "Resource not found for the segment '%s'."
                          % path.strip("/").split("/")[-1])
        for u in users:
            for prop in ("id", "userPrincipalName"):
                if isinstance(u.get(prop), str) and u[prop].lower() == key.lower():
                    body = {"@odata.context": context + "/$entity"}
                    body.update(self._shape(u, select))
                    return 200, json.dumps(body), GRAPH_JSON, {}
        raise _Answer(404, "Request_ResourceNotFound", "Resource '%s' does not exist or one of "
                      "its queried reference-property objects are not present." % key)

    def _list(self, rec, params, select, context, users):
        eventual = rec["headers"].get("consistencylevel", "").strip().lower() == "eventual"
        count = params.get("$count", "").lower()
        if count not in ("", "true", "false"):
            raise _Answer(400, "BadRequest", "Invalid $count value '%s'." % params["$count"])
        if count == "true" and not eventual:
            raise _Answer(400, "Request_BadRequest", "$count is not currently supported.")
        advanced = eventual and count == "true"
        matched = users
        if "$filter" in params:
            flt = _Filter(params["$filter"])
            if flt.advanced_needed and not advanced:
                raise _Answer(400, "Request_UnsupportedQuery", "Unsupported or invalid query "
                              "filter clause specified for property '%s' of resource 'User'."
                              % flt.advanced_needed[0])
            matched = [u for u in users if flt.matches(u)]
        body = {"@odata.context": context}
        if count == "true":
            body["@odata.count"] = len(matched)
        if "$top" in params:
            try:
                top = int(params["$top"])
            except ValueError:
                raise _Answer(400, "BadRequest", "Invalid $top value '%s'." % params["$top"])
            if not 1 <= top <= 999:
                raise _Answer(400, "Request_BadRequest", "Invalid page size specified: '%d'. "
                              "Must be between 1 and 999 inclusive." % top)
            matched = matched[:top]
        body["value"] = [self._shape(u, select) for u in matched]
        return 200, json.dumps(body), GRAPH_JSON, {}


# ---------------------------------------------------------------- CLI

def main(argv=None):
    ap = argparse.ArgumentParser(description="HTTPS stand-in for Microsoft Graph or SafeTitan")
    ap.add_argument("--kind", required=True, choices=("graph", "safetitan"))
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--requests", required=True)
    ap.add_argument("--users")
    ap.add_argument("--token-expires", type=float, default=3600)
    ap.add_argument("--script", help="a JSON list of actions, or a file holding one")
    ap.add_argument("--client-id", default="client-id")
    ap.add_argument("--client-secret", default="client-secret")
    ap.add_argument("--tenant")
    ap.add_argument("--client-cert")
    args = ap.parse_args(argv)

    actions = []
    if args.script:
        text = args.script
        if not text.lstrip().startswith(("[", "{")):
            with open(text) as f:
                text = f.read()
        actions = json.loads(text)

    # The main thread takes its signals synchronously (sigwait), blocked
    # before any thread starts so that every thread inherits the mask. A
    # Python handler that set a threading.Event could run while this very
    # thread held the Event's lock inside wait(), and deadlock: the stand-in
    # then never exited on SIGTERM and the test waiting for it hung.
    wanted = {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    s = Standin(args.kind, args.cert, args.key, users=args.users,
                token_expires=args.token_expires, client_id=args.client_id,
                client_secret=args.client_secret, tenant=args.tenant,
                requests_file=args.requests, client_cert=args.client_cert)
    s.script(actions)
    s.start()
    tmp = "%s.%d.tmp" % (args.port_file, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % s.port)
    os.replace(tmp, args.port_file)
    while signal.sigwait(wanted) == signal.SIGUSR1:
        s.expire_tokens()
    s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
