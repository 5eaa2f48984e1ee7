#!/usr/bin/env python3
"""Rocket.Chat's own device-management OpenAPI document, run against sessiond.

Rocket.Chat publishes its REST API as OpenAPI documents in the repository
RocketChat/Rocket.Chat-Open-API; `settings.yaml` there describes the six
device-management operations (`/api/v1/sessions/list`, `list.all`, `info`,
`info.admin`, `logout.me`, `logout`). This script runs schemathesis with that
document, unchanged, against a fresh release `sessiond` on SQLite, so a client
written from Rocket.Chat's document is checked against this server.

The document is pinned to one commit and checked by SHA-256. The upstream
repository carries no license, so the document is not copied into this
repository: the script downloads it (once, into target/rocketchat/), or reads
a copy given with --document. Only the device-management paths are kept.

Checks: not_a_server_error, status_code_conformance, content_type_conformance,
response_headers_conformance, response_schema_conformance, in three passes:

  user         an ordinary user (no device-management permissions)
  admin        an admin whose session passed TOTP at login (x-2fa-code sent)
  admin-no-2fa an admin with TOTP enrolled whose session has not passed it,
               on the three operations that need the second factor

`sessionId` values are drawn half the time from real sessions (so `info`,
`info.admin` and the logouts also answer 200), the other half generated. The
logouts only ever get sessions made for that purpose: the sessions the passes
run with are checked to be still alive at the end.

Every finding is sorted into one of three kinds. Mistakes of Rocket.Chat's
document itself, where Rocket.Chat's own server answers as sessiond does
(DOCUMENT_MISTAKES below), and sessiond's deliberate choices that README.md
states (SESSIOND_CHOICES) are printed as expected. Anything else is a
deviation of sessiond: it is printed with the request and the answer, and the
script exits 1.

    python3 scripts/rocketchat_conformance.py [--binary target/release/sessiond]
        [--document settings.yaml] [--max-examples 40] [--seed 1] [--verbose]

See docs/rocket-chat-conformance.md.
"""

import argparse
import base64
import collections
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from contract import INTERPRETER_BUG, call, login, totp  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)

UPSTREAM_REPOSITORY = "RocketChat/Rocket.Chat-Open-API"
UPSTREAM_COMMIT = "c9aec5ab1008b88aaf66f13f34f4fb74becb4b4a"
UPSTREAM_PATH = "settings.yaml"
UPSTREAM_SHA256 = "ffb14b57bfa13241b442de19c6105520859a7bd5ab085d8fd2bc727ff5d83747"
UPSTREAM_URL = f"https://raw.githubusercontent.com/{UPSTREAM_REPOSITORY}/{UPSTREAM_COMMIT}/{UPSTREAM_PATH}"
CACHE = os.path.join(ROOT, "target", "rocketchat", f"settings-{UPSTREAM_COMMIT[:12]}.yaml")

LIST, LIST_ALL = "GET /api/v1/sessions/list", "GET /api/v1/sessions/list.all"
INFO, INFO_ADMIN = "GET /api/v1/sessions/info", "GET /api/v1/sessions/info.admin"
LOGOUT_ME, LOGOUT = "POST /api/v1/sessions/logout.me", "POST /api/v1/sessions/logout"
OPERATIONS = (LIST, LIST_ALL, INFO, INFO_ADMIN, LOGOUT_ME, LOGOUT)
SECOND_FACTOR_OPERATIONS = (LIST_ALL, INFO_ADMIN, LOGOUT)


@dataclass(frozen=True)
class Known:
    """A finding that is explained: a failure of `check` on one of
    `operations`, with a response status in `statuses`, for which `when`
    (given the finding) holds."""

    operations: tuple
    check: str
    statuses: tuple
    when: object
    reason: str

    def matches(self, finding):
        return (
            finding.operation in self.operations
            and finding.check == self.check
            and finding.status in self.statuses
            and self.when(finding)
        )


def error_type(finding):
    """The errorType of a Rocket.Chat error body (or its error, when it has none)."""
    try:
        body = json.loads(finding.response_body)
    except ValueError:
        return None
    return body.get("errorType") or body.get("error") if isinstance(body, dict) else None


def query(finding):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(finding.uri).query, keep_blank_values=True)


def empty_sort(finding):
    return "" in query(finding).get("sort", [])


# The document's own mistakes: in each case Rocket.Chat's server
# (apps/meteor/ee/server/api/sessions.ts, its 2FA check in
# apps/meteor/app/2fa/server/code/index.ts) answers as sessiond does, and the
# document says otherwise. docs/rocket-chat-conformance.md gives the details.
DOCUMENT_MISTAKES = (
    Known(
        (LIST,),
        "status_code_conformance",
        (400,),
        lambda f: error_type(f) in ("invalid-params", "error-invalid-sort-keys")
        or (error_type(f) == "error-invalid-sort" and not empty_sort(f)),
        "sessions/list documents only 200 and 401, but Rocket.Chat checks the query (ajv: offset and "
        "count numbers, sort and filter strings, no other parameter) and the sort (JSON, known keys) "
        "and answers 400 when they are wrong, as sessiond does",
    ),
    Known(
        (INFO, INFO_ADMIN, LOGOUT_ME, LOGOUT),
        "status_code_conformance",
        (404,),
        lambda f: error_type(f) == "Session not found",
        "Rocket.Chat answers an unknown session with 404 {success:false, error:'Session not found'} "
        "(API.v1.notFound); the document puts that body under 400 for info, info.admin and "
        "logout.me and lists no 404 anywhere",
    ),
    Known(
        (LIST_ALL, LOGOUT),
        "response_schema_conformance",
        (400,),
        lambda f: "availableMethods" in f.message and error_type(f) in ("totp-required", "totp-invalid", "totp-max-attempts"),
        "the document types the 2FA error's details.availableMethods as an array of objects; "
        "Rocket.Chat sends the names of the methods, an array of strings such as ['totp']",
    ),
)

# sessiond's own choices, stated in README.md, where it answers a request
# differently from Rocket.Chat on purpose.
SESSIOND_CHOICES = (
    Known(
        (LOGOUT_ME, LOGOUT),
        "status_code_conformance",
        (415,),
        lambda f: error_type(f) == "error-unsupported-media-type",
        "a request body that is not Content-Type: application/json (or no body) is 415, so that a "
        "cross-site form cannot end a session (README: 'Endpoints that take a body insist on "
        "Content-Type: application/json'); Rocket.Chat reads such a body as empty and answers 400",
    ),
    Known(
        (LIST,),
        "status_code_conformance",
        (400,),
        lambda f: error_type(f) == "error-invalid-filter",
        "filter is a regular expression, as the document says, and one that cannot run the same on "
        "both stores is 400 error-invalid-filter (README: 'Filter'); Rocket.Chat escapes the filter "
        "and matches it as plain text, so it never refuses one",
    ),
)


@dataclass(frozen=True)
class Finding:
    run: str
    operation: str
    check: str
    status: object
    title: str
    message: str
    uri: str
    request: str
    response_body: str

    def key(self):
        return (self.run, self.operation, self.check, self.status, self.title, error_type(self))


def http_get(base, path, headers):
    req = urllib.request.Request(base + path, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def alive(base, headers):
    try:
        http_get(base, "/api/v1/me", headers)
        return True
    except urllib.error.HTTPError:
        return False


def session_id(base, headers):
    """The sessionId of the session `headers` authenticate."""
    page = http_get(base, "/api/v1/sessions/list?count=100", headers)
    return next(s["sessionId"] for s in page["sessions"] if s.get("current"))


# The document.


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def obtain_document(path):
    """The upstream `settings.yaml`: `path`, the cached download, or a new download."""
    if path is None:
        path = CACHE
        if not os.path.exists(path):
            print(f"rocketchat: downloading {UPSTREAM_URL}", flush=True)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                with urllib.request.urlopen(UPSTREAM_URL, timeout=60) as r:
                    data = r.read()
            except OSError as e:
                sys.exit(
                    f"rocketchat: cannot download the document ({e}); fetch {UPSTREAM_PATH} of "
                    f"{UPSTREAM_REPOSITORY} at {UPSTREAM_COMMIT} yourself and pass it with --document"
                )
            if hashlib.sha256(data).hexdigest() != UPSTREAM_SHA256:
                sys.exit("rocketchat: the downloaded document does not have the pinned SHA-256")
            with open(path, "wb") as f:
                f.write(data)
    digest = sha256(path)
    if digest != UPSTREAM_SHA256:
        sys.exit(
            f"rocketchat: {path} is not {UPSTREAM_PATH} at {UPSTREAM_COMMIT} (SHA-256 {digest}, "
            f"expected {UPSTREAM_SHA256}); the expected findings were written for that version"
        )
    return path


def device_management_document(path, out_dir):
    """The upstream document with only the device-management paths, as JSON."""
    import yaml  # PyYAML, a dependency of schemathesis

    with open(path, encoding="utf-8") as f:
        document = yaml.safe_load(f)
    wanted = {op.split(" ", 1)[1] for op in OPERATIONS}
    missing = wanted - set(document["paths"])
    if missing:
        sys.exit(f"rocketchat: the document has no {sorted(missing)}")
    document["paths"] = {p: v for p, v in document["paths"].items() if p in wanted}
    out = os.path.join(out_dir, "device-management.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1)
    return out


# The server and its accounts.


def start_server(binary, workdir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite://{workdir}/rocketchat.db",
        "SESSIOND_BIND": f"127.0.0.1:{port}",
        "SESSIOND_LOG_FORMAT": "json",
        "RUST_LOG": "warn",
        # Generated x-2fa-code values are wrong codes: keep them from locking
        # the admin out, and the passed second factor valid for the whole run.
        "SESSIOND_2FA_MAX_FAILURES": "1000000",
        "SESSIOND_2FA_WINDOW_SECONDS": "86400",
        "SESSIOND_LOGIN_MAX_FAILURES_PER_IP": "1000000",
        "SESSIOND_LOGIN_MAX_FAILURES_PER_USER": "1000000",
    }
    log = open(os.path.join(workdir, "sessiond.log"), "w")
    server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    password = None
    for line in server.stdout:
        m = re.search(r"one-time password (\S+)", line)
        if m:
            password = m.group(1)
            break
    if not password:
        server.kill()
        sys.exit("rocketchat: sessiond did not print the admin password")
    return server, env, f"http://127.0.0.1:{port}", password


def seed(binary, env, base, admin_password):
    """Every session the passes use, and the sessions the logouts may end."""
    subprocess.run(
        [binary, "user", "add", "tester", "--password", "tester-password-1"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    user = login(base, "tester", "tester-password-1")
    # Sessions of the user that only the logouts may end.
    user_spare = [session_id(base, login(base, "tester", "tester-password-1")) for _ in range(2)]
    admin_spare = [session_id(base, login(base, "tester", "tester-password-1")) for _ in range(2)]

    # The admin enrolls TOTP on this session; enrolling does not pass the
    # second factor, so this session is the one that has not.
    pending = login(base, "admin", admin_password)
    secret = call(base, "/api/v1/users.2fa.enableTOTP", headers=pending)["secret"]
    backup = call(base, "/api/v1/users.2fa.validateTempToken", {"code": totp(secret)}, headers=pending)["codes"]
    code = totp(secret, 1)
    admin = login(base, "admin", admin_password, code)
    # The admin's own sessions for logout.me, opened with backup codes.
    admin_own_spare = [session_id(base, login(base, "admin", admin_password, c)) for c in backup[:2]]

    ids = {
        "user": session_id(base, user),
        "admin": session_id(base, admin),
        "pending": session_id(base, pending),
    }
    return {
        "user": user,
        "admin": {**admin, "x-2fa-code": code},
        "pending": pending,
        "ids": ids,
        "user_spare": user_spare,
        "admin_spare": admin_spare,
        "admin_own_spare": admin_own_spare,
    }


# schemathesis.


def toml_config(dictionaries, bindings):
    """A schemathesis.toml: named dictionaries, and per-operation bindings
    {operation: {parameter: dictionary}} drawn half the time."""
    lines = []
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    for operation, params in bindings.items():
        inline = ", ".join(
            f'{json.dumps(param)} = {{ dictionary = "{name}", probability = 0.5 }}' for param, name in params.items()
        )
        method, path = operation.split(" ", 1)
        lines += [
            "[[operations]]",
            f"include-method = {json.dumps(method)}",
            f"include-path = {json.dumps(path)}",
            f"parameters = {{ {inline} }}",
            "",
        ]
    return "\n".join(lines)


def schemathesis(name, document, base, headers, operations, config, args, workdir):
    """Runs schemathesis; returns its findings."""
    config_path = os.path.join(workdir, f"{name}.toml")
    with open(config_path, "w", encoding="utf-8") as f:
        f.write(config)
    report = os.path.join(workdir, f"{name}.ndjson")
    cmd = [
        "st",
        "--config-file",
        config_path,
        "run",
        document,
        "--url",
        base,
        "--checks",
        CHECKS,
        "--max-examples",
        str(args.max_examples),
        "--workers",
        "1",
        "--seed",
        str(args.seed),
        "--generation-database",
        "none",
        "--continue-on-failure",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        report,
        # Session ids in the report stay readable; this script leaves tokens out of what it prints.
        "--output-sanitize",
        "false",
        "--no-color",
    ]
    for operation in operations:
        cmd += ["--include-path", operation.split(" ", 1)[1]]
    for header, value in headers.items():
        cmd += ["-H", f"{header}: {value}"]
    shown = [re.sub(r"^(X-Auth-Token|x-2fa-code): .*", r"\1: ***", c) for c in cmd]
    print(f"== {name}\n+ " + " ".join(shown), flush=True)
    for attempt in (1, 2, 3):
        run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if args.verbose:
            print(run.stdout, flush=True)
        # Python 3.11's `ast` can raise this while hypothesis reads its own
        # lambdas: the tool crashing, not a finding. Run again, twice at most.
        if run.returncode != 0 and attempt < 3 and INTERPRETER_BUG in run.stdout:
            print(f"rocketchat: schemathesis crashed on `{INTERPRETER_BUG}`; running it again", flush=True)
            continue
        break
    if not os.path.exists(report):
        print(run.stdout)
        sys.exit(f"rocketchat: schemathesis wrote no report ({name})")
    findings, tested, errors = read_report(name, report)
    summary = re.search(r"^=+ (.* in [0-9.]+s) =+$", run.stdout, re.M)
    print(f"   {summary.group(1) if summary else 'done'}; tested: {', '.join(sorted(tested))}", flush=True)
    untested = [op for op in operations if op not in tested]
    if untested or errors or run.returncode not in (0, 1):
        print(run.stdout)
        for error in errors:
            print(f"   error: {error}")
        sys.exit(f"rocketchat: schemathesis did not test {untested or 'every operation'} cleanly ({name})")
    return findings


def decoded(payload):
    if isinstance(payload, dict) and "$base64" in payload:
        return base64.b64decode(payload["$base64"]).decode("utf-8", "replace")
    return "" if payload is None else str(payload)


def describe(request, response):
    """The request and the answer, in one line each."""
    headers = {k: v[0] for k, v in (request.get("headers") or {}).items() if k.lower() != "x-auth-token"}
    body = decoded(request.get("body"))
    line = f"{request.get('method', '')} {request.get('uri', '')} {json.dumps(headers)}" + (f" {body}" if body else "")
    answer = decoded(response.get("content"))[:300]
    return f"{line}\n      -> {response.get('status_code')} {answer}"


def read_report(name, path):
    """Failed checks, the operations tested and the errors, from an ndjson report."""
    findings, tested, errors = [], set(), []
    with open(path, encoding="utf-8") as f:
        for line in f:
            event = json.loads(line)
            ((kind, body),) = event.items() if len(event) == 1 else (("?", event),)
            if kind == "NonFatalError":
                errors.append(body.get("label", "") + ": " + str(body.get("value", ""))[:300])
                continue
            if kind == "FatalError":
                errors.append(str(body)[:300])
                continue
            if kind != "ScenarioFinished":
                continue
            recorder = body["recorder"]
            tested.add(recorder["label"])
            for case_id, checks in recorder["checks"].items():
                interaction = recorder["interactions"].get(case_id) or {}
                response = interaction.get("response") or {}
                request = interaction.get("request") or {}
                for check in checks:
                    if check["status"] != "failure":
                        continue
                    failure = check["failure_info"]["failure"]
                    findings.append(
                        Finding(
                            run=name,
                            operation=recorder["label"],
                            check=check["name"],
                            status=response.get("status_code"),
                            title=failure.get("title", ""),
                            message=failure.get("message", ""),
                            uri=request.get("uri", ""),
                            request=describe(request, response),
                            response_body=decoded(response.get("content")),
                        )
                    )
    return findings, tested, errors


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "sessiond"))
    parser.add_argument("--document", help=f"a copy of {UPSTREAM_PATH} at {UPSTREAM_COMMIT[:12]}")
    parser.add_argument("--max-examples", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="print schemathesis's own output")
    args = parser.parse_args()
    if not shutil.which("st"):
        sys.exit("rocketchat: schemathesis is not installed: pip install 'schemathesis>=4.32,<5'")

    workdir = tempfile.mkdtemp(prefix="sessiond-rocketchat-")
    document = device_management_document(obtain_document(args.document), workdir)
    print(f"rocketchat: {UPSTREAM_REPOSITORY} {UPSTREAM_PATH} at {UPSTREAM_COMMIT[:12]}, device management only", flush=True)

    server, env, base, admin_password = start_server(args.binary, workdir)
    try:
        s = seed(args.binary, env, base, admin_password)
        ids = s["ids"]
        user_ids = [ids["user"]] + s["user_spare"] + s["admin_spare"]
        admin_view = [ids["user"], ids["admin"], ids["pending"]] + s["user_spare"] + s["admin_spare"]
        runs = [
            (
                "user",
                s["user"],
                OPERATIONS,
                toml_config(
                    {"own": user_ids, "spare": s["user_spare"], "any": admin_view},
                    {
                        INFO: {"query.sessionId": "own"},
                        LOGOUT_ME: {"body.sessionId": "spare"},
                        INFO_ADMIN: {"query.sessionId": "any"},
                        LOGOUT: {"body.sessionId": "spare"},
                    },
                ),
            ),
            (
                "admin",
                s["admin"],
                OPERATIONS,
                toml_config(
                    {
                        "own": [ids["admin"], ids["pending"]] + s["admin_own_spare"],
                        "own-spare": s["admin_own_spare"],
                        "any": admin_view,
                        "spare": s["admin_spare"],
                    },
                    {
                        INFO: {"query.sessionId": "own"},
                        LOGOUT_ME: {"body.sessionId": "own-spare"},
                        INFO_ADMIN: {"query.sessionId": "any"},
                        LOGOUT: {"body.sessionId": "spare"},
                    },
                ),
            ),
            (
                "admin-no-2fa",
                s["pending"],
                SECOND_FACTOR_OPERATIONS,
                toml_config(
                    {"any": admin_view, "spare": s["admin_spare"]},
                    {INFO_ADMIN: {"query.sessionId": "any"}, LOGOUT: {"body.sessionId": "spare"}},
                ),
            ),
        ]
        findings = []
        for name, headers, operations, config in runs:
            findings += schemathesis(name, document, base, headers, operations, config, args, workdir)

        ended = [who for who in ("user", "admin", "pending") if not alive(base, s[who])]
        if ended:
            sys.exit(f"rocketchat: the run ended sessions it needed: {ended}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    print(f"rocketchat: schemathesis's reports are in {workdir}", flush=True)
    return report(findings)


def report(findings):
    """Sorts the findings into the document's mistakes, sessiond's choices
    and the rest; returns the exit status."""
    explained = {id(k): collections.OrderedDict() for k in DOCUMENT_MISTAKES + SESSIOND_CHOICES}
    unexpected = collections.OrderedDict()
    for finding in findings:
        known = next((k for k in DOCUMENT_MISTAKES + SESSIOND_CHOICES if k.matches(finding)), None)
        groups = explained[id(known)] if known else unexpected
        groups.setdefault(finding.key(), []).append(finding)

    for title, table in (
        ("Mistakes of Rocket.Chat's document (expected)", DOCUMENT_MISTAKES),
        ("sessiond's documented choices (expected)", SESSIOND_CHOICES),
    ):
        print(f"\n{title}:")
        for known in table:
            seen = explained[id(known)]
            print(f"  * {known.check} on {', '.join(map(str, known.statuses))}: {', '.join(known.operations)}")
            print(f"    {known.reason}")
            if not seen:
                print("    (not seen this run)")
            for (run, operation, check, status, title_, kind), group in seen.items():
                print(f"    seen: [{run}] {operation} -> {status} {kind} ({len(group)}x)")
    if not unexpected:
        print("\nrocketchat: no finding beyond the document's mistakes and sessiond's documented choices")
        return 0
    print("\nUnexpected findings:")
    for (run, operation, check, status, title, kind), group in unexpected.items():
        first = group[0]
        message = " ".join(first.message.split())[:400]
        print(f"  [{run}] {operation}: {check} on {status} {kind} ({len(group)}x): {title}")
        print(f"      {first.request}\n      {message}")
    print(f"\nrocketchat: {len(unexpected)} unexpected finding(s)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
