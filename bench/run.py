#!/usr/bin/env python3
"""The sessiond benchmark.

Seeds a Postgres store (10k, 100k, then 1M sessions by default) and, in one
run, reports:

1. every endpoint loaded with wrk at 16 and 64 connections (largest size),
   and the server's peak RSS after the 64-connection runs;
2. `GET /api/v1/me` and `GET /api/v1/sessions/list` against a Node peer
   (Express + pg in cluster mode, bench/peer/), run alternately with
   sessiond on the same store at the same connection counts, and the ratio;
3. ceilings: each of those two endpoints' SQL through pgbench, as sessiond
   issues it and as one minimal statement, and /healthz through wrk;
4. the single-client latency (p50, p99) of every admin view at each size,
   and its growth from the smallest size to the largest, with EXPLAIN
   (ANALYZE, BUFFERS) of the costly statements at the largest size;
5. a table of targets, each met or missed.

It writes a markdown report to bench/results/<date>.md (quick mode:
bench/results/tmp/) and prints it. It reports numbers; it asserts none
(quick mode fails only when a step itself breaks).

    python3 bench/run.py            # the full run (7 to 10 minutes on 2 cores)
    python3 bench/run.py --quick    # tiny sizes, 1 s runs: checks the script works
"""

import argparse
import atexit
import base64
import datetime
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
TMP = os.path.join(RESULTS, "tmp")
PEER = os.path.join(ROOT, "bench", "peer")
SECRET_KEY = "YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMzI="
PG_LOG = "/var/log/postgresql/postgresql-15-main.log"
NAN = float("nan")
# sessiond's defaults, but for the expensive lists one user may run at once
# (default 2): the load runs send one admin's requests on 16 and 64
# connections, and would otherwise measure mostly 429s.
SERVER_ENV = {"SESSIOND_EXPENSIVE_QUERIES_PER_USER": "64"}

# The admin views timed with a single client, in report order.
ONE_USER = "bench-user-00042"
BROAD = "Chrome"
DEEP_PAGES = 20
VIEWS = [
    "list.all page 1",
    f"list.all deep page (cursor, {DEEP_PAGES} pages in)",
    f"list.all one-user filter ({ONE_USER})",
    f"list.all broad filter ({BROAD}) with total",
    "admin users list page 1",
    f"user-sessions/{{guid}} page 1 ({ONE_USER})",
]
DEEP, ONE, BROAD_VIEW, USERS_LIST, USER_SESSIONS = VIEWS[1:]


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_wrk():
    if shutil.which("wrk"):
        return
    log("installing wrk (Debian package)")
    if os.geteuid() != 0:
        sys.exit("wrk is missing: install it with `apt-get install wrk`")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)


def release_binaries():
    """Builds the release binaries and returns the paths of sessiond and
    sessiond-seed, in CARGO_TARGET_DIR when that is set."""
    log("building the release binaries")
    subprocess.run(["cargo", "build", "--release", "--bins", "--quiet"], cwd=ROOT, check=True)
    target = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR") or "target")
    release = os.path.join(target, "release")
    return os.path.join(release, "sessiond"), os.path.join(release, "sessiond-seed")


def db_url(base, name, extra=""):
    parts = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + name, extra, ""))


def create_database(admin_url, name):
    """Creates the run's own database, and drops it when the run ends, however
    it ends. A database of that name that exists already is not touched: the
    run stops instead."""
    sh(["psql", admin_url, "-q", "-c", f"CREATE DATABASE {name}"])
    atexit.register(lambda: subprocess.run(
        ["psql", admin_url, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False))


def wait_ready(base, path, proc, what):
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(base + path, timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def rss_mib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return NAN


class Server:
    """The release binary, serving the bench store."""

    name = "sessiond"
    ready_path = "/readyz"

    def __init__(self, binary, url, extra_env=None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": url,
                "SESSIOND_BIND": f"127.0.0.1:{self.port}",
                "SESSIOND_SECRET_KEY": SECRET_KEY,
                "SESSIOND_LOG_FORMAT": "json",
                "RUST_LOG": "warn",
                "SESSIOND_IDLE_TIMEOUT_SECONDS": str(90 * 86400),
                "SESSIOND_MAX_LIFETIME_SECONDS": str(365 * 86400),
            }
        )
        env.update(extra_env or {})
        self.proc = subprocess.Popen(
            [binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not wait_ready(self.base, self.ready_path, self.proc, "sessiond"):
            self.stop()
            sys.exit("sessiond did not become ready")

    def peak_rss_mib(self):
        return rss_mib(self.proc.pid, "VmHWM")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Peer(Server):
    """The Node peer (bench/peer/server.js): a cluster primary and one
    worker per core, with 16 store connections across the workers."""

    name = "Node peer"
    ready_path = "/healthz"

    def __init__(self, url):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DATABASE_URL": url, "PORT": str(self.port), "PEER_POOL_SIZE": "16", "NODE_ENV": "production"}
        self.errors = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["node", os.path.join(PEER, "server.js")], env=env, stdout=subprocess.DEVNULL, stderr=self.errors
        )
        if not wait_ready(self.base, self.ready_path, self.proc, "the Node peer"):
            self.stop()
            self.errors.seek(0)
            sys.exit("the Node peer did not become ready: " + self.errors.read().decode(errors="replace")[-2000:])


def ensure_peer():
    """The peer's packages, installed from bench/peer/package-lock.json if
    missing. Returns None, or why the peer cannot run."""
    if not shutil.which("node") or not shutil.which("npm"):
        return "node is not installed"
    if not os.path.isdir(os.path.join(PEER, "node_modules", "express")) or not os.path.isdir(os.path.join(PEER, "node_modules", "pg")):
        log("installing the Node peer's packages (npm ci --prefix bench/peer)")
        subprocess.run(["npm", "ci", "--prefix", PEER, "--no-audit", "--no-fund"], check=True, stdout=subprocess.DEVNULL)
    return None


def request(base, path, headers=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, json.loads(r.read() or b"null")


class Client:
    """One keep-alive connection, for single-client latency."""

    def __init__(self, base):
        parts = urllib.parse.urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.conn = None

    def get(self, path, headers):
        """(status, seconds, parsed body, response headers)."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            started = time.perf_counter()
            try:
                self.conn.request("GET", path, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            elapsed = time.perf_counter() - started
            try:
                body = json.loads(payload or b"null")
            except ValueError:
                body = None
            return response.status, elapsed, body, dict(response.getheaders())

    def close(self):
        if self.conn is not None:
            self.conn.close()


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_latency(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else NAN


def wrk(url, connections, duration, headers, body=None, count_statuses=False):
    """Loads `url` with wrk (POSTing `body` as JSON if given). With
    `count_statuses`, responses are also counted by status (bench/status.lua,
    which costs wrk some speed) into result["statuses"]."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    env = dict(os.environ)
    if count_statuses:
        cmd += ["-s", os.path.join(ROOT, "bench", "status.lua")]
    elif body is not None:
        cmd += ["-s", os.path.join(ROOT, "bench", "post.lua")]
    if body is not None:
        env["WRK_BODY"] = json.dumps(body)
    out = subprocess.run(cmd + [url], check=True, text=True, capture_output=True, env=env).stdout
    result = {"rps": NAN, "p50": NAN, "p99": NAN, "errors": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        result["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        if m:
            result[key] = parse_latency(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        result["errors"] = int(m.group(1))
    m = re.search(r"Socket errors:.*", out)
    if m:
        result["socket_errors"] = m.group(0)
    if count_statuses:
        result["statuses"] = {int(code): int(n) for code, n in re.findall(r"^status (\d+) (\d+)$", out, re.M)}
    return result


def settle(base, limit_s=30, path="/readyz", probe=None):
    """Waits until the server has drained the work of the previous run:
    wrk stops after its duration, but requests it left queued (slow broad
    filters at 64 connections) still run, and would be charged to the next
    row. Ready means `path` (/readyz takes a store connection) answers
    quickly twice in a row, and so does `probe` ((path, headers), a cheap
    request through the expensive lists' bulkhead: while the admin's
    leftover requests hold its slots, the next admin row would measure
    429s and 503s)."""
    deadline = time.time() + limit_s
    quick = 0
    checks = [(path, {}, 0.1)] + ([(probe[0], probe[1], 0.25)] if probe else [])
    while time.time() < deadline and quick < 2:
        ok = True
        for check_path, headers, limit in checks:
            started = time.time()
            try:
                req = urllib.request.Request(base + check_path, headers=headers)
                with urllib.request.urlopen(req, timeout=5) as r:
                    ok = ok and r.status == 200 and time.time() - started < limit
            except OSError:
                ok = False
        quick = quick + 1 if ok else 0
        time.sleep(0.1)


def parse_logged_statements(lines, database):
    """The SELECTs in Postgres log lines of `database`, with their parameters."""
    statements, current = [], None
    tag = f"@{database} "
    for line in lines:
        if tag not in line:
            continue
        m = re.search(r"LOG:\s+execute [^:]*: (.*)$", line)
        if m:
            current = {"sql": m.group(1), "params": {}}
            statements.append(current)
            continue
        m = re.search(r"DETAIL:\s+parameters: (.*)$", line)
        if m and current is not None:
            for name, value in re.findall(r"\$(\d+) = '((?:[^']|'')*)'", m.group(1)):
                current["params"][name] = value.replace("''", "'")
    return [s for s in statements if s["sql"].lstrip().upper().startswith("SELECT")]


def capture_sql(binary, url, database, requests):
    """The statements each of `requests` ((label, path, headers)) makes
    sessiond issue, read from the Postgres log of a server whose one store
    connection logs every statement (with the filter and statement budgets
    raised, so a costly filter runs to the end). Returns
    ({label: statements}, None) or (None, why not)."""
    if not os.access(PG_LOG, os.R_OK):
        return None, f"{PG_LOG} is not readable"
    logged_url = url + ("&" if "?" in url else "?") + "options=" + urllib.parse.quote("-c log_statement=all -c log_min_duration_statement=-1")
    # Budgets long enough that a costly filter issues all its statements.
    server = Server(
        binary,
        logged_url,
        {
            "SESSIOND_DB_POOL_SIZE": "1",
            "SESSIOND_WORKERS": "1",
            "SESSIOND_FILTER_TIMEOUT_MS": "120000",
            "SESSIOND_STATEMENT_TIMEOUT_MS": "120000",
            "SESSIOND_DB_TIMEOUT_SECONDS": "180",
        },
    )
    captured = {}
    try:
        time.sleep(0.5)
        for label, path, headers in requests:
            start = os.path.getsize(PG_LOG)
            try:
                request(server.base, path, headers)
            except urllib.error.HTTPError as e:
                log(f"capturing {label}: {path} answered {e.code}")
            time.sleep(0.5)
            with open(PG_LOG, errors="replace") as f:
                f.seek(start)
                captured[label] = parse_logged_statements(f.read().splitlines(), database)
    finally:
        server.stop()
    if not any(captured.values()):
        return None, "no statements found in the Postgres log"
    return captured, None


def is_authentication(statement):
    """A statement that finds a session by its token (sessiond's `me` reads
    the caller with it; the one-statement list joins it in as `me`)."""
    return '"token_hash" =' in statement["sql"]


def sql_literal(value):
    return "'" + value.replace("'", "''") + "'"


def explain(url, statement):
    """EXPLAIN (ANALYZE, BUFFERS) of one logged statement with its logged
    parameters, as a custom plan (as sessiond's filtered lists force)."""
    params = [statement["params"][k] for k in sorted(statement["params"], key=int)]
    args = "(" + ", ".join(sql_literal(v) for v in params) + ")" if params else ""
    script = (
        "SET plan_cache_mode = force_custom_plan;\n"
        f"PREPARE bench_q AS {statement['sql']};\n"
        f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_q{args};\n"
    )
    out = subprocess.run(["psql", url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"], input=script, text=True, capture_output=True)
    if out.returncode != 0:
        return f"(EXPLAIN failed: {out.stderr.strip()})"
    return out.stdout.rstrip()


def pgbench_script(statements):
    """A pgbench script of logged statements: their parameters become -D
    variables."""
    script_lines, defines = [], []
    for i, statement in enumerate(statements):
        sql = statement["sql"]
        for name, value in sorted(statement["params"].items(), key=lambda kv: -len(kv[0])):
            var = f"s{i}p{name}"
            sql = sql.replace(f"${name}", f":{var}")
            defines += ["-D", f"{var}={value}"]
        script_lines.append(sql + ";")
    return script_lines, defines


def pgbench(url, script_lines, defines, connections, duration):
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write("\n".join(script_lines) + "\n")
        script = f.name
    try:
        out = subprocess.run(
            ["pgbench", "-n", "-M", "prepared", "-c", str(connections), "-j", "2", "-T", str(duration), "-f", script]
            + defines
            + [url],
            check=True,
            text=True,
            capture_output=True,
        ).stdout
    finally:
        os.unlink(script)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    lat = re.search(r"latency average = ([\d.]+) ms", out)
    return {"tps": float(m.group(1)) if m else NAN, "latency_ms": float(lat.group(1)) if lat else NAN}


# `sessions/list` as one statement: authentication, the total and the page
# (51 rows, as sessiond reads one more than it shows) in one round trip.
LIST_CTE = """WITH caller AS (
  SELECT s.id AS session_pk, s.user_id FROM sessions s JOIN users u ON u.id = s.user_id
  WHERE s.token_hash = :hash AND u.guid = :guid AND u.active AND s.logout_at IS NULL AND s.expires_at > :now
  LIMIT 1
)
SELECT n.total, p.id, p.session_id, p.device_type, p.device_name, p.device_version, p.device_long_version,
       p.os_name, p.os_version, p.ip, p.host, p.login_at, p.new_device, u.guid, u.username, u.name,
       p.id = c.session_pk AS current
FROM caller c
JOIN users u ON u.id = c.user_id
CROSS JOIN LATERAL (
  SELECT count(*) AS total FROM sessions t WHERE t.user_id = c.user_id AND t.logout_at IS NULL AND t.expires_at > :now
) n
LEFT JOIN LATERAL (
  SELECT t.id, t.session_id, t.device_type, t.device_name, t.device_version, t.device_long_version,
         t.os_name, t.os_version, t.ip, t.host, t.login_at, t.new_device
  FROM sessions t WHERE t.user_id = c.user_id AND t.logout_at IS NULL AND t.expires_at > :now
  ORDER BY t.login_at DESC, t.id DESC LIMIT 51
) p ON true;"""


def token_hash(token):
    """sessions.token_hash: SHA-256 of the raw token, standard base64."""
    return base64.b64encode(hashlib.sha256(token.encode()).digest()).decode()


def seed(seeder, url, users, sessions, tokens_out=None, extra_args=()):
    """Seeds the bench store, which must hold nothing but seed data (the
    seeder refuses anything else; run.py recreates the database and seeds it
    before the first server start, which would otherwise create `admin`).
    Returns the tokens file the seeder wrote (mode 0600: tokens, and the
    generated passwords) and the seconds it took."""
    tokens_out = tokens_out or os.path.join(TMP, "tokens.json")
    started = time.time()
    out = subprocess.run(
        [seeder, "--users", str(users), "--sessions", str(sessions), "--tokens-out", tokens_out, *extra_args],
        env={**os.environ, "DATABASE_URL": url},
        text=True,
        capture_output=True,
    )
    elapsed = time.time() - started
    if out.returncode != 0:
        sys.exit(f"sessiond-seed failed: {out.stderr.strip()}")
    log(out.stdout.strip())
    with open(tokens_out) as f:
        return json.load(f), elapsed


def auth_headers(who):
    return {"X-User-Id": who["userId"], "X-Auth-Token": who["token"]}


def deep_cursor(base, admin, size, fallback):
    """A cursor about 90% into list.all, reached by offset (which scans every
    row before it, and may run past the statement timeout on a loaded
    machine: then it is retried, and at last `fallback` is used)."""
    deep_offset = max(0, int(size * 0.9) - 100)
    for attempt in range(3):
        try:
            _, page = request(base, f"/api/v1/sessions/list.all?count=100&offset={deep_offset}", admin)
            return page.get("nextCursor") or "", "~90% in"
        except urllib.error.HTTPError as e:
            log(f"list.all at offset {deep_offset} answered {e.code}" + ("; retrying" if attempt < 2 else ""))
            time.sleep(2)
    return fallback, f"{DEEP_PAGES} pages in: the offset ~90% in kept failing"


def endpoints(base, tokens, size, fallback_cursor=""):
    known = auth_headers(tokens["known"])
    admin = auth_headers(tokens["admin"])
    cursor, depth = deep_cursor(base, admin, size, fallback_cursor)
    _, reply = request(base, "/api", body={"action": "listSessions", "authToken": tokens["known"]["token"]})
    if reply.get("errorCode") not in (0, None):
        log(f"listSessions answered {reply.get('errorCode')}: {reply.get('errorMessage')}")
    return [
        ("GET /healthz", "/healthz", {}, None),
        ("GET /api/v1/me", "/api/v1/me", known, None),
        ("GET sessions/list (50 sessions)", "/api/v1/sessions/list", known, None),
        ("GET sessions/info", f"/api/v1/sessions/info?sessionId={tokens['known']['sessionId']}", known, None),
        ("GET list.all page 1", "/api/v1/sessions/list.all", admin, None),
        ("GET list.all filter (one user)", f"/api/v1/sessions/list.all?filter={ONE_USER}", admin, None),
        ("GET list.all filter (firefox, broad)", "/api/v1/sessions/list.all?filter=firefox", admin, None),
        (f"GET list.all deep page (cursor, {depth})", "/api/v1/sessions/list.all?cursor=" + urllib.parse.quote(cursor), admin, None),
        ("GET admin list", "/api/admin/v1/authenticated-sessions/list", admin, None),
        ("POST /api listSessions", "/api", {}, {"action": "listSessions", "authToken": tokens["known"]["token"]}),
    ]


def admin_views(base, tokens):
    """The admin views' paths: {view: path}, and the depth the deep page
    reached (fewer pages than DEEP_PAGES when the store is small)."""
    admin = auth_headers(tokens["admin"])
    path, depth = "/api/v1/sessions/list.all", 0
    cursor = None
    while depth < DEEP_PAGES:
        _, page = request(base, path if cursor is None else f"/api/v1/sessions/list.all?cursor={urllib.parse.quote(cursor)}", admin)
        if not page.get("nextCursor"):
            break
        cursor, depth = page["nextCursor"], depth + 1
    deep = "/api/v1/sessions/list.all" + (f"?cursor={urllib.parse.quote(cursor)}" if cursor else "")
    _, one = request(base, f"/api/v1/sessions/list.all?filter={ONE_USER}&count=1", admin)
    guid = one["sessions"][0]["userId"] if one.get("sessions") else tokens["known"]["userId"]
    return {
        VIEWS[0]: "/api/v1/sessions/list.all",
        DEEP: deep,
        ONE: f"/api/v1/sessions/list.all?filter={ONE_USER}",
        BROAD_VIEW: f"/api/v1/sessions/list.all?filter={BROAD}",
        USERS_LIST: "/api/admin/v1/authenticated-sessions/list",
        USER_SESSIONS: f"/api/admin/v1/authenticated-sessions/user-sessions/{guid}",
    }, depth


def percentile(values, pct):
    """Nearest-rank percentile."""
    if not values:
        return NAN
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def time_view(client, path, headers, n, budget_s, min_n):
    """`n` sequential requests (after two untimed ones), fewer when they
    take longer than `budget_s` together (at least `min_n`)."""
    for _ in range(2):
        client.get(path, headers)
    times, statuses, total = [], {}, None
    started = time.time()
    while len(times) < n and (len(times) < min_n or time.time() - started < budget_s):
        status, elapsed, body, response_headers = client.get(path, headers)
        times.append(elapsed * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        if status == 200:
            if isinstance(body, dict) and "total" in body:
                total = body["total"]
            elif "x-total-count" in {k.lower() for k in response_headers}:
                total = int(next(v for k, v in response_headers.items() if k.lower() == "x-total-count"))
    return {"n": len(times), "p50": percentile(times, 50), "p99": percentile(times, 99), "statuses": statuses, "total": total}


def latency_phase(server, tokens, size, n, budget_s, min_n):
    paths, depth = admin_views(server.base, tokens)
    admin = auth_headers(tokens["admin"])
    client = Client(server.base)
    results = {}
    try:
        for view in VIEWS:
            r = time_view(client, paths[view], admin, n, budget_s, min_n)
            r["depth"] = depth if view == DEEP else None
            results[view] = r
            log(f"{size:>9} {view}: p50 {fmt(r['p50'])} ms p99 {fmt(r['p99'])} ms (n={r['n']}, statuses {r['statuses']}, total {r['total']})")
    finally:
        client.close()
    return results, paths


def normalized(body):
    """A response body with what legitimately differs between two servers
    (an opaque cursor) blanked."""
    if isinstance(body, dict) and body.get("nextCursor"):
        return {**body, "nextCursor": "<cursor>"}
    return body


def compare_bodies(sessiond, peer, tokens):
    """Whether the peer answers what sessiond answers: [(path, same, note)]."""
    known = auth_headers(tokens["known"])
    out = []
    for path in ("/api/v1/me", "/api/v1/sessions/list"):
        answers = []
        for server in (sessiond, peer):
            try:
                answers.append(request(server.base, path, known))
            except urllib.error.HTTPError as e:
                answers.append((e.code, None))
        (s_status, s_body), (p_status, p_body) = answers
        same = s_status == p_status == 200 and normalized(s_body) == normalized(p_body)
        note = ""
        if not same:
            keys = sorted(set(s_body or {}) ^ set(p_body or {})) if isinstance(s_body, dict) and isinstance(p_body, dict) else []
            note = f"statuses {s_status}/{p_status}" + (f", keys differ: {keys}" if keys else "")
        out.append((path, same, note))
    return out


def peer_phase(sessiond, peer, tokens, duration, rounds, warm_up):
    """`me` and `list` on sessiond and on the peer, alternately (never
    both loaded at once), `rounds` times each after an untimed warm-up
    run of `warm_up` seconds (the peer's JIT, both servers' prepared
    statements); the median round counts."""
    known = auth_headers(tokens["known"])
    results = []
    if warm_up:
        for server in (sessiond, peer):
            for path in ("/api/v1/me", "/api/v1/sessions/list"):
                wrk(server.base + path, 16, warm_up, known)
                settle(server.base, path=server.ready_path)
    for connections in (16, 64):
        for name, path in (("GET /api/v1/me", "/api/v1/me"), ("GET sessions/list (50 sessions)", "/api/v1/sessions/list")):
            runs = {"sessiond": [], "peer": []}
            for _ in range(rounds):
                for key, server in (("sessiond", sessiond), ("peer", peer)):
                    r = wrk(server.base + path, connections, duration, known)
                    settle(server.base, path=server.ready_path)
                    runs[key].append(r)
            row = {"name": name, "connections": connections, "runs": runs}
            for key in runs:
                ordered = sorted(runs[key], key=lambda r: r["rps"] if r["rps"] == r["rps"] else -1)
                row[key] = ordered[len(ordered) // 2]
            row["ratio"] = row["sessiond"]["rps"] / row["peer"]["rps"] if row["peer"]["rps"] else NAN
            results.append(row)
            log(f"c={connections} {name}: sessiond {fmt(row['sessiond']['rps'], 0)} req/s, peer {fmt(row['peer']['rps'], 0)} req/s, ratio {fmt(row['ratio'])}")
    return results


def fmt(x, digits=2):
    return "n/a" if x is None or x != x else f"{x:.{digits}f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and 1 s runs (CI)")
    parser.add_argument("--postgres", default=os.environ.get("SESSIOND_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--database", default=f"sessiond_bench_{os.getpid()}",
                        help="a database to create for the run and drop after it (must not exist)")
    parser.add_argument("--out", help="where to write the report (default bench/results/<date>.md; quick: bench/results/tmp/quick-<date>.md)")
    parser.add_argument("--note", help="a line for the report's header, e.g. what the run is a baseline for")
    args = parser.parse_args()
    sizes = [200, 1000] if args.quick else [10_000, 100_000, 1_000_000]
    users = 100 if args.quick else 10_000
    duration = 1 if args.quick else 5
    rounds = 1 if args.quick else 3
    warm_up = 0 if args.quick else 3
    samples, budget_s, min_n = (5, 10, 3) if args.quick else (50, 45, 10)
    os.makedirs(TMP, exist_ok=True)
    load_before = os.getloadavg()

    ensure_wrk()
    peer_missing = ensure_peer()
    binary, seeder = release_binaries()
    create_database(args.postgres, args.database)
    # Plain TCP for all three clients of the store: sessiond and pgbench
    # (libpq) would otherwise negotiate TLS on loopback (sslmode=prefer),
    # which the Node peer's pg driver does not.
    url = db_url(args.postgres, args.database, "sslmode=disable")

    r = {
        "sizes": sizes, "users": users, "duration": duration, "rounds": rounds, "warm_up": warm_up, "samples": samples,
        "budget_s": budget_s, "seeding": [], "latency": {}, "matrix": [], "rss": None, "peer": [],
        "peer_missing": peer_missing, "bodies": [], "pgbench": {}, "pgbench_sql": {}, "ceiling_note": None,
        "plans": [], "plans_note": None, "paths": {}, "load_before": load_before,
    }
    tokens = None
    for size in sizes:
        # The admin session stays past 2FA for the rest of the run.
        tokens, elapsed = seed(seeder, url, users, size, extra_args=("--admin-2fa-minutes", "240"))
        r["seeding"].append((size, elapsed))
        server = Server(binary, url, SERVER_ENV)
        try:
            if size == sizes[0] and not peer_missing:
                # Fail fast if the peer does not answer what sessiond answers.
                peer = Peer(url)
                try:
                    bodies = compare_bodies(server, peer, tokens)
                finally:
                    peer.stop()
                bad = [f"{path}: {note}" for path, same, note in bodies if not same]
                if bad:
                    sys.exit("the Node peer does not answer as sessiond does: " + "; ".join(bad))
            r["latency"][size], r["paths"][size] = latency_phase(server, tokens, size, samples, budget_s, min_n)
            if size == sizes[-1]:
                deep = urllib.parse.parse_qs(urllib.parse.urlsplit(r["paths"][size][DEEP]).query).get("cursor", [""])[0]
                eps = endpoints(server.base, tokens, size, deep)
                # Past the offsets list.all answers in one statement, so
                # the probe waits for a bulkhead slot like the costly rows.
                probe = ("/api/v1/sessions/list.all?count=1&offset=1001", auth_headers(tokens["admin"]))
                for connections in (16, 64):
                    for name, path, headers, body in eps:
                        m = wrk(server.base + path, connections, duration, headers, body)
                        settle(server.base, limit_s=60, probe=probe)
                        r["matrix"].append((connections, name, m))
                        log(f"c={connections} {name}: {fmt(m['rps'], 0)} req/s p50 {fmt(m['p50'])} p99 {fmt(m['p99'])} ms")
                r["rss"] = server.peak_rss_mib()
                if not peer_missing:
                    peer = Peer(url)
                    try:
                        r["bodies"] = compare_bodies(server, peer, tokens)
                        r["peer"] = peer_phase(server, peer, tokens, duration, rounds, r["warm_up"])
                    finally:
                        peer.stop()
        finally:
            server.stop()

    # Ceilings, with no server holding store connections.
    admin = auth_headers(tokens["admin"])
    known = auth_headers(tokens["known"])
    paths = r["paths"][sizes[-1]]
    captured, note = capture_sql(
        binary,
        url,
        args.database,
        [
            ("list", "/api/v1/sessions/list", known),
            ("me", "/api/v1/me", known),
            (BROAD_VIEW, paths[BROAD_VIEW], admin),
            (ONE, paths[ONE], admin),
            (USERS_LIST, paths[USERS_LIST], admin),
        ],
    )
    if captured and captured.get("list"):
        statements = captured["list"]
        now = (datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)).isoformat(sep=" ")
        scripts = {
            "list: sessiond's statements": pgbench_script(statements),
            "list: one statement": ([LIST_CTE], ["-D", f"hash={token_hash(tokens['known']['token'])}", "-D", f"guid={tokens['known']['userId']}", "-D", f"now={now}"]),
            "me: the authentication statement": pgbench_script(
                [s for s in captured.get("me", []) if is_authentication(s)][:1]
            ),
        }
        for label, (lines, defines) in scripts.items():
            if not lines:
                log(f"pgbench {label}: no statement captured, skipped")
                continue
            r["pgbench_sql"][label] = lines
            for connections in (16, 64):
                r["pgbench"][(label, connections)] = pgbench(url, lines, defines, connections, duration)
                log(f"pgbench {label} c={connections}: {fmt(r['pgbench'][(label, connections)]['tps'], 0)} tps")
    else:
        r["ceiling_note"] = note or "the list's statements were not captured"
    if captured:
        for label in (BROAD_VIEW, ONE, USERS_LIST):
            for statement in captured.get(label) or []:
                if not is_authentication(statement):
                    r["plans"].append((label, statement, explain(url, statement)))
        log(f"captured {len(r['plans'])} plans")
    else:
        r["plans_note"] = note
    r["load_after"] = os.getloadavg()

    report = render(args, r)
    print(report)
    name = datetime.date.today().isoformat() + ".md"
    path = args.out or os.path.join(TMP if args.quick else RESULTS, ("quick-" if args.quick else "") + name)
    path = os.path.join(ROOT, path) if not os.path.isabs(path) else path
    with open(path, "w") as f:
        f.write(report)
    log(f"report written to {os.path.relpath(path, ROOT)}")


def machine():
    cores = os.cpu_count()
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cores} cores ({cpu}), {mem_kib / 1024 / 1024:.1f} GiB memory"


def statuses_text(statuses):
    return ", ".join(f"{n}×{code}" for code, n in sorted(statuses.items()))


def targets(r):
    """[(target, measured, met)]; met is True, False or None (not measured)."""
    rows = []
    sizes = r["sizes"]
    largest, smallest = sizes[-1], sizes[0]
    peer = {(row["name"], row["connections"]): row for row in r["peer"]}
    for name, short, goal in (("GET sessions/list (50 sessions)", "sessions/list", 2.5), ("GET /api/v1/me", "me", 2.0)):
        for connections in (16, 64):
            row = peer.get((name, connections))
            if row:
                ratio = row["ratio"]
                measured = f"{fmt(ratio)}× ({fmt(row['sessiond']['rps'], 0)} vs {fmt(row['peer']['rps'], 0)} req/s)"
                rows.append((f"`{short}` ≥ {goal}× the Node peer, {connections} conns", measured, ratio >= goal if ratio == ratio else None))
            else:
                rows.append((f"`{short}` ≥ {goal}× the Node peer, {connections} conns", "not measured", None))
    list_rps = {c: m["rps"] for c, n, m in r["matrix"] if n.startswith("GET sessions/list")}
    peer_list = {c: row["sessiond"]["rps"] for (n, c), row in peer.items() if n.startswith("GET sessions/list")}
    for connections in (16, 64):
        ceiling = r["pgbench"].get(("list: one statement", connections))
        rps = peer_list.get(connections, list_rps.get(connections, NAN))
        if ceiling and ceiling["tps"]:
            ratio = rps / ceiling["tps"]
            rows.append((f"`sessions/list` ≥ 0.5× the one-statement pgbench ceiling, {connections} conns", f"{fmt(ratio)}× ({fmt(rps, 0)} req/s vs {fmt(ceiling['tps'], 0)} tps)", ratio >= 0.5 if ratio == ratio else None))
        else:
            rows.append((f"`sessions/list` ≥ 0.5× the one-statement pgbench ceiling, {connections} conns", "not measured", None))
    latency = r["latency"].get(largest, {})
    for view, limit in ((VIEWS[0], 10), (DEEP, 10), (USER_SESSIONS, 10), (USERS_LIST, 10), (ONE, 30), (BROAD_VIEW, 300)):
        v = latency.get(view)
        if not v:
            continue
        ok200 = v["statuses"].get(200, 0) == v["n"]
        measured = f"p50 {fmt(v['p50'])} ms, p99 {fmt(v['p99'])} ms"
        if not ok200:
            measured += f" (answers: {statuses_text(v['statuses'])})"
        rows.append((f"{view} at {largest:,}, single client: p50 ≤ {limit} ms", measured, v["p50"] <= limit and ok200))
    for view in VIEWS:
        first = r["latency"].get(smallest, {}).get(view)
        last = latency.get(view)
        if first and last and first["p50"] > 0:
            growth = last["p50"] / first["p50"]
            rows.append((f"{view}: p50 grows ≤ 1.5× from {smallest:,} to {largest:,}", f"{fmt(growth)}× ({fmt(first['p50'])} → {fmt(last['p50'])} ms)", growth <= 1.5))
    rss = r["rss"]
    rows.append(("peak RSS ≤ 50 MiB at 64 connections", f"{fmt(rss, 1)} MiB" if rss else "not measured", (rss <= 50) if rss else None))
    return rows


def render(args, r):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True, capture_output=True).stdout.strip()
    sizes, duration = r["sizes"], r["duration"]
    largest = sizes[-1]
    out = [f"# sessiond benchmark, {datetime.date.today().isoformat()}", ""]
    if args.note:
        out += [args.note, ""]
    out.append(f"- Machine: {machine()}; Postgres 15 on the same machine, reached over plain TCP on loopback (`sslmode=disable`) by sessiond, pgbench and the Node peer alike.")
    out.append(
        f"- Load average (1, 5, 15 min) at the start {', '.join(f'{x:.2f}' for x in r['load_before'])}, "
        f"at the end {', '.join(f'{x:.2f}' for x in r['load_after'])} (the machine is shared with other builds)."
    )
    out.append(f"- Commit {commit or 'unknown'}; release build; wrk with 2 threads, {duration} s per run; {r['users']} users.")
    out.append(
        "- sessiond runs with its defaults but " + ", ".join(f"`{k}={v}`" for k, v in SERVER_ENV.items())
        + " (the default 2 would answer 429 to most of one admin's 16 or 64 connections), a 90-day idle timeout and a 365-day lifetime."
    )
    out.append(f"- Mode: {'quick (sizes too small to mean anything)' if args.quick else 'full'}.")
    out.append("")

    out.append("## Targets")
    out.append("")
    out.append("Reported, not asserted. Latency targets are on the median of sequential single-client requests.")
    out.append("")
    out.append("| target | measured | |")
    out.append("|---|---|---|")
    for target, measured, met in targets(r):
        out.append(f"| {target} | {measured} | {'met' if met else 'not measured' if met is None else '**missed**'} |")
    out.append("")

    out.append("## Seeding")
    out.append("")
    out.append("| sessions in store | seconds to reach it |")
    out.append("|---:|---:|")
    for size, elapsed in r["seeding"]:
        out.append(f"| {size:,} | {elapsed:.1f} |")
    out.append("")

    out.append(f"## Endpoints with {largest:,} sessions stored")
    out.append("")
    out.append("| endpoint | conns | req/s | p50 ms | p99 ms | non-2xx |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for connections, name, m in r["matrix"]:
        out.append(f"| {name} | {connections} | {fmt(m['rps'], 0)} | {fmt(m['p50'])} | {fmt(m['p99'])} | {m['errors']} |")
    out.append("")
    out.append(f"Peak RSS of the server after the 64-connection runs: **{fmt(r['rss'] or NAN, 1)} MiB**.")
    out.append("")

    out.append("## sessiond and the Node peer")
    out.append("")
    if r["peer_missing"]:
        out.append(f"Not measured: {r['peer_missing']}.")
    else:
        out.append(
            "The peer is bench/peer/server.js: Express and pg, `node:cluster` with one worker per core and 16 store "
            "connections across them (sessiond's pool is 16 too), authenticating and listing with the same statements "
            "sessiond issues, prepared once per connection. The two servers are loaded alternately on the same store "
            f"(never at once), {r['rounds']} round(s) of {duration} s each after an untimed warm-up "
            f"of {r['warm_up']} s per server and endpoint; the median round is shown."
        )
        out.append("")
        for path, same, note in r["bodies"]:
            out.append(f"- `{path}`: the peer's body {'equals' if same else 'differs from'} sessiond's{'' if same else ' (' + note + ')'}.")
        out.append("")
        out.append("| endpoint | conns | sessiond req/s | peer req/s | sessiond/peer | sessiond p50 / p99 ms | peer p50 / p99 ms | rounds (sessiond / peer req/s) |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---|")
        for row in r["peer"]:
            s, p = row["sessiond"], row["peer"]
            rounds = "; ".join(f"{fmt(a['rps'], 0)} / {fmt(b['rps'], 0)}" for a, b in zip(row["runs"]["sessiond"], row["runs"]["peer"]))
            errors = s["errors"] + p["errors"]
            out.append(
                f"| {row['name']} | {row['connections']} | {fmt(s['rps'], 0)} | {fmt(p['rps'], 0)} | {fmt(row['ratio'])} | "
                f"{fmt(s['p50'])} / {fmt(s['p99'])} | {fmt(p['p50'])} / {fmt(p['p99'])} | {rounds}{f' ({errors} non-2xx)' if errors else ''} |"
            )
    out.append("")

    out.append("## Ceilings")
    out.append("")
    if r["pgbench"]:
        healthz = {c: m["rps"] for c, n, m in r["matrix"] if n == "GET /healthz"}
        served = {(row["name"], row["connections"]): row["sessiond"]["rps"] for row in r["peer"]}
        matrix = {(n, c): m["rps"] for c, n, m in r["matrix"]}
        out.append(
            "Each endpoint's SQL through `pgbench -M prepared` (no HTTP, no JSON): as sessiond issues it (read from "
            "the Postgres log), and as the one statement that would do; `/healthz` through wrk is the HTTP ceiling. "
            "sessiond's req/s are from the peer comparison's median round."
        )
        out.append("")
        out.append("| endpoint | conns | sessiond req/s | pgbench, sessiond's statements (tps) | pgbench, one statement (tps) | sessiond / one statement | /healthz req/s |")
        out.append("|---|---:|---:|---:|---:|---:|---:|")
        for name, own, single in (
            ("GET /api/v1/me", "me: the authentication statement", "me: the authentication statement"),
            ("GET sessions/list (50 sessions)", "list: sessiond's statements", "list: one statement"),
        ):
            for connections in (16, 64):
                rps = served.get((name, connections), matrix.get((name, connections), NAN))
                a = r["pgbench"].get((own, connections), {}).get("tps", NAN)
                b = r["pgbench"].get((single, connections), {}).get("tps", NAN)
                out.append(f"| {name} | {connections} | {fmt(rps, 0)} | {fmt(a, 0)} | {fmt(b, 0)} | {fmt(rps / b if b else NAN)} | {fmt(healthz.get(connections, NAN), 0)} |")
        out.append("")
        out.append("For `me`, sessiond's one statement is already the minimal one: the authentication SELECT.")
        out.append("")
        for label, lines in r["pgbench_sql"].items():
            out.append(f"<details><summary>pgbench script: {label}</summary>")
            out.append("")
            out.append("```sql")
            out.extend(lines)
            out.append("```")
            out.append("")
            out.append("</details>")
            out.append("")
    else:
        out.append(f"Not measured: {r['ceiling_note']}.")
        out.append("")

    out.append("## Admin views, single client")
    out.append("")
    out.append(
        f"Sequential requests on one keep-alive connection as `bench-admin` (past 2FA), after two untimed ones: "
        f"{r['samples']} per view, or as many as fit in {r['budget_s']} s (at least a few). The deep page is reached by "
        f"following `nextCursor` {DEEP_PAGES} times from page 1 (fewer where the store has fewer pages), then timed. "
        "`total` is the view's `total` or `X-Total-Count`."
    )
    out.append("")
    out.append("| view | sessions | n | p50 ms | p99 ms | answers | total |")
    out.append("|---|---:|---:|---:|---:|---|---:|")
    for view in VIEWS:
        for size in sizes:
            v = r["latency"].get(size, {}).get(view)
            if not v:
                continue
            label = view + (f" (depth {v['depth']})" if v.get("depth") not in (None, DEEP_PAGES) else "")
            total = f"{v['total']:,}" if isinstance(v["total"], int) else "n/a"
            out.append(f"| {label} | {size:,} | {v['n']} | {fmt(v['p50'])} | {fmt(v['p99'])} | {statuses_text(v['statuses'])} | {total} |")
    out.append("")
    out.append("Growth of the median:")
    out.append("")
    out.append("| view | " + " | ".join(f"p50 ms @ {s:,}" for s in sizes) + f" | {sizes[-1]:,} / {sizes[0]:,} |")
    out.append("|---|" + "---:|" * (len(sizes) + 1))
    for view in VIEWS:
        p50 = [r["latency"].get(size, {}).get(view, {}).get("p50", NAN) for size in sizes]
        ratio = p50[-1] / p50[0] if p50[0] == p50[0] and p50[0] > 0 else NAN
        out.append(f"| {view} | " + " | ".join(fmt(x) for x in p50) + f" | {fmt(ratio)} |")
    out.append("")

    out.append(f"## Plans at {largest:,} sessions")
    out.append("")
    if r["plans"]:
        out.append(
            "The statements sessiond issues for these views (read from the Postgres log, authentication left out), "
            "each through `EXPLAIN (ANALYZE, BUFFERS)` with its logged parameters as a custom plan."
        )
        out.append("")
        for label, statement, plan in r["plans"]:
            sql = statement["sql"]
            kind = "page" if "ORDER BY" in sql.upper() else "count" if sql.upper().startswith("SELECT COUNT(") else "lookup"
            m = re.search(r"Execution Time: ([\d.]+) ms", plan)
            out.append(f"<details><summary>{label}: {kind} ({m.group(1) + ' ms' if m else 'no timing'})</summary>")
            out.append("")
            out.append("```sql")
            out.append(sql + ";")
            if statement["params"]:
                out.append("-- " + ", ".join(f"${k} = {sql_literal(v)}" for k, v in sorted(statement["params"].items(), key=lambda kv: int(kv[0]))))
            out.append("```")
            out.append("")
            out.append("```")
            out.append(plan)
            out.append("```")
            out.append("")
            out.append("</details>")
            out.append("")
    else:
        out.append(f"Not captured: {r['plans_note']}.")
        out.append("")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
