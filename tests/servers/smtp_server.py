#!/usr/bin/env python3
"""A stand-in SMTP submission server on 127.0.0.1 for the agent's email
action (agent/core/mail.c): Debian's python3-aiosmtpd (asyncio), one
process, any number of connections. It records every message it accepts
and can be told to refuse the first ones.

CLI:
    python3 tests/servers/smtp_server.py --port-file FILE --messages FILE.jsonl
        [--tls starttls|implicit|none] [--cert PEM --key PEM]
        [--user NAME --password SECRET]
        [--fail-first N] [--fail-code 451|550]

    --tls starttls (default): STARTTLS offered (certificate from --cert and
        --key, e.g. tests/servers/certs.py's server.pem), and nothing but
        EHLO, STARTTLS, NOOP and QUIT before it (530 otherwise);
    --tls implicit: TLS from the first byte (smtps://);
    --tls none: plain text only, no STARTTLS offered (the loopback case).
    --user/--password: AUTH PLAIN or LOGIN required before MAIL (530
        otherwise; 535 for a wrong login), and only over TLS unless --tls
        none.
    --fail-first N: the first N messages get --fail-code (default 451) as
        the answer to their data, after it was received, and are not
        recorded.

Writes the bound port to --port-file once listening (by rename: whole);
appends each accepted message to --messages as one JSON line, flushed:
    {"mail_from": "<a@b>"'s address, "rcpt_tos": [...], "data": the message
     as received, dot-stuffing undone, as text (UTF-8; undecodable bytes as
     U+FFFD), "tls": true/false, "login": the AUTH user or null,
     "time": time.time()}
Prints nothing; SIGTERM or SIGINT stop it with exit 0.
"""
import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
import time
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

REPLIES = {
    451: "451 4.3.0 Temporary local problem, try again later (stand-in)",
    550: "550 5.1.1 Mailbox unavailable (stand-in)",
}


class Handler:
    def __init__(self, messages_path, fail_first, fail_code, implicit_tls):
        self.messages = open(messages_path, "a", encoding="utf-8")
        self.implicit_tls = implicit_tls
        self.fail_left = fail_first
        self.fail_code = fail_code

    async def handle_DATA(self, server, session, envelope):
        if self.fail_left > 0:
            self.fail_left -= 1
            return REPLIES[self.fail_code]
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        rec = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": envelope.original_content.decode("utf-8", "replace"),
            "tls": self.implicit_tls or session.ssl is not None,
            "login": login.decode("utf-8", "replace") if login is not None else None,
            "time": time.time(),
        }
        self.messages.write(json.dumps(rec) + "\n")
        self.messages.flush()
        return "250 2.0.0 OK: queued (stand-in)"


def make_authenticator(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
              and auth_data.password == password.encode())
        # handled=False: aiosmtpd itself then answers 535 (its default,
        # True, means "answered already", and the client waits forever).
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return authenticate


def main(argv=None):
    ap = argparse.ArgumentParser(description="SMTP stand-in (aiosmtpd)")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0,
                    help="listen on this port (a server that was down coming back)")
    ap.add_argument("--messages", required=True)
    ap.add_argument("--tls", choices=("starttls", "implicit", "none"), default="starttls")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-code", type=int, choices=sorted(REPLIES), default=451)
    args = ap.parse_args(argv)
    if args.tls != "none" and not (args.cert and args.key):
        ap.error("--tls %s needs --cert and --key" % args.tls)
    if (args.user is None) != (args.password is None):
        ap.error("--user and --password go together")

    # aiosmtpd logs every session's exception (a client refusing our
    # certificate is one the tests cause on purpose): quiet.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    ctx = None
    if args.tls != "none":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.cert, args.key)

    handler = Handler(args.messages, args.fail_first, args.fail_code, args.tls == "implicit")
    kwargs = {"hostname": "smtp.stand-in", "ident": "rtr-agent SMTP stand-in"}
    if args.tls == "starttls":
        kwargs.update(tls_context=ctx, require_starttls=True)
    if args.user is not None:
        # aiosmtpd knows only STARTTLS's TLS: under implicit TLS it would
        # refuse AUTH as if in clear, so there the check is left off.
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
        kwargs.update(auth_required=True, auth_require_tls=args.tls == "starttls",
                      authenticator=make_authenticator(args.user, args.password))
    else:
        kwargs.update(auth_require_tls=False)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, loop=loop, **kwargs), "127.0.0.1", args.port,
        ssl=ctx if args.tls == "implicit" else None))
    port = server.sockets[0].getsockname()[1]
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    tmp = "%s.%d.tmp" % (args.port_file, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, args.port_file)
    loop.run_forever()
    server.close()
    handler.messages.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
