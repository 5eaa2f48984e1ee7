#!/usr/bin/env python3
"""The sessiond benchmark.

Seeds a Postgres store (10k, 100k, then 1M sessions by default), starts the
release binary on it, loads each endpoint with wrk at 16 and 64
connections, runs the same SQL that `sessions/list` issues through pgbench
for the ceiling, records peak RSS, and writes a markdown report to
bench/results/<date>.md (quick mode: bench/results/tmp/). It reports
numbers; it asserts none.

    python3 bench/run.py            # the full run (about 6 minutes)
    python3 bench/run.py --quick    # tiny sizes, 1 s runs: checks the script works
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
TMP = os.path.join(RESULTS, "tmp")
SECRET_KEY = "YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMzI="
PG_LOG = "/var/log/postgresql/postgresql-15-main.log"


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


def db_url(base, name, extra=""):
    parts = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + name, extra, ""))


def recreate_database(admin_url, name):
    for sql in (f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"):
        sh(["psql", admin_url, "-q", "-c", sql])


class Server:
    """The release binary, serving the bench store."""

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
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        sys.exit("sessiond did not become ready")

    def peak_rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def request(base, path, headers=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, json.loads(r.read() or b"null")


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_latency(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


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
    result = {"rps": float("nan"), "p50": float("nan"), "p99": float("nan"), "errors": 0}
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


def settle(base, limit_s=30):
    """Waits until the server has drained the work of the previous run:
    wrk stops after its duration, but requests it left queued (slow broad
    filters at 64 connections) still run, and would be charged to the next
    row. Ready means /readyz, which takes a store connection, answers
    quickly twice in a row."""
    deadline = time.time() + limit_s
    quick = 0
    while time.time() < deadline and quick < 2:
        started = time.time()
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=5) as r:
                ok = r.status == 200
        except OSError:
            ok = False
        quick = quick + 1 if ok and time.time() - started < 0.1 else 0
        time.sleep(0.1)


def capture_list_sql(binary, url, tokens):
    """The statements one `GET /api/v1/sessions/list` issues, read from the
    Postgres log of a server whose connections log every statement."""
    if not os.access(PG_LOG, os.R_OK):
        return None, f"{PG_LOG} is not readable"
    logged_url = url + ("&" if "?" in url else "?") + "options=" + urllib.parse.quote("-c log_statement=all -c log_min_duration_statement=-1")
    server = Server(binary, logged_url, {"SESSIOND_DB_POOL_SIZE": "1", "SESSIOND_WORKERS": "1"})
    try:
        time.sleep(0.5)
        start = os.path.getsize(PG_LOG)
        known = tokens["known"]
        request(server.base, "/api/v1/sessions/list", {"X-User-Id": known["userId"], "X-Auth-Token": known["token"]})
        time.sleep(0.5)
        with open(PG_LOG, errors="replace") as f:
            f.seek(start)
            lines = f.read().splitlines()
    finally:
        server.stop()
    statements, current = [], None
    for line in lines:
        m = re.search(r"LOG:\s+execute [^:]*: (.*)$", line)
        if m:
            current = {"sql": m.group(1), "params": {}}
            statements.append(current)
            continue
        m = re.search(r"DETAIL:\s+parameters: (.*)$", line)
        if m and current is not None:
            for name, value in re.findall(r"\$(\d+) = '((?:[^']|'')*)'", m.group(1)):
                current["params"][name] = value.replace("''", "'")
    statements = [s for s in statements if s["sql"].lstrip().upper().startswith("SELECT")]
    if not statements:
        return None, "no statements found in the Postgres log"
    return statements, None


def pgbench(url, statements, connections, duration):
    script_lines, defines = [], []
    for i, statement in enumerate(statements):
        sql = statement["sql"]
        for name, value in sorted(statement["params"].items(), key=lambda kv: -len(kv[0])):
            var = f"s{i}p{name}"
            sql = sql.replace(f"${name}", f":{var}")
            defines += ["-D", f"{var}={value}"]
        script_lines.append(sql + ";")
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
    return {"tps": float(m.group(1)) if m else float("nan"), "latency_ms": float(lat.group(1)) if lat else float("nan")}, script_lines


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


def endpoints(base, tokens, size):
    known = {"X-User-Id": tokens["known"]["userId"], "X-Auth-Token": tokens["known"]["token"]}
    admin = {"X-User-Id": tokens["admin"]["userId"], "X-Auth-Token": tokens["admin"]["token"]}
    deep_offset = max(0, int(size * 0.9) - 100)
    _, page = request(base, f"/api/v1/sessions/list.all?count=100&offset={deep_offset}", admin)
    cursor = page.get("nextCursor") or ""
    _, reply = request(base, "/api", body={"action": "listSessions", "authToken": tokens["known"]["token"]})
    if reply.get("errorCode") not in (0, None):
        log(f"listSessions answered {reply.get('errorCode')}: {reply.get('errorMessage')}")
    return [
        ("GET /healthz", "/healthz", {}, None),
        ("GET /api/v1/me", "/api/v1/me", known, None),
        ("GET sessions/list (50 sessions)", "/api/v1/sessions/list", known, None),
        ("GET sessions/info", f"/api/v1/sessions/info?sessionId={tokens['known']['sessionId']}", known, None),
        ("GET list.all page 1", "/api/v1/sessions/list.all", admin, None),
        ("GET list.all filter (one user)", "/api/v1/sessions/list.all?filter=bench-user-00042", admin, None),
        ("GET list.all filter (firefox, broad)", "/api/v1/sessions/list.all?filter=firefox", admin, None),
        ("GET list.all deep page (cursor)", "/api/v1/sessions/list.all?cursor=" + urllib.parse.quote(cursor), admin, None),
        ("GET admin list", "/api/admin/v1/authenticated-sessions/list", admin, None),
        ("POST /api listSessions", "/api", {}, {"action": "listSessions", "authToken": tokens["known"]["token"]}),
    ]


def fmt(x, digits=2):
    return "n/a" if x != x else f"{x:.{digits}f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and 1 s runs (CI)")
    parser.add_argument("--postgres", default=os.environ.get("SESSIOND_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--database", default="sessiond_bench")
    args = parser.parse_args()
    sizes = [200, 1000] if args.quick else [10_000, 100_000, 1_000_000]
    users = 100 if args.quick else 10_000
    duration = 1 if args.quick else 5
    os.makedirs(TMP, exist_ok=True)

    ensure_wrk()
    log("building the release binaries")
    subprocess.run(["cargo", "build", "--release", "--bins", "--quiet"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "sessiond")
    seeder = os.path.join(ROOT, "target", "release", "sessiond-seed")
    recreate_database(args.postgres, args.database)
    url = db_url(args.postgres, args.database)

    growth, matrix, seeding, rss, ceiling, ceiling_note, ceiling_sql = [], [], [], None, {}, None, []
    tokens = None
    for size in sizes:
        tokens, elapsed = seed(seeder, url, users, size)
        seeding.append((size, elapsed))
        server = Server(binary, url)
        try:
            eps = endpoints(server.base, tokens, size)
            for name, path, headers, body in eps:
                if name.startswith("GET list.all"):
                    r = wrk(server.base + path, 16, duration, headers, body)
                    settle(server.base)
                    growth.append((size, name, r))
                    log(f"{size:>9} {name}: {fmt(r['rps'], 0)} req/s p50 {fmt(r['p50'])} ms")
            if size == sizes[-1]:
                for connections in (16, 64):
                    for name, path, headers, body in eps:
                        r = wrk(server.base + path, connections, duration, headers, body)
                        settle(server.base)
                        matrix.append((connections, name, r))
                        log(f"c={connections} {name}: {fmt(r['rps'], 0)} req/s p50 {fmt(r['p50'])} p99 {fmt(r['p99'])} ms")
                rss = server.peak_rss_mib()
        finally:
            server.stop()

    statements, ceiling_note = capture_list_sql(binary, url, tokens)
    if statements:
        for connections in (16, 64):
            ceiling[connections], ceiling_sql = pgbench(url, statements, connections, duration)

    report = render(args, sizes, users, duration, seeding, growth, matrix, rss, ceiling, ceiling_note, ceiling_sql)
    print(report)
    name = datetime.date.today().isoformat() + ".md"
    path = os.path.join(TMP if args.quick else RESULTS, ("quick-" if args.quick else "") + name)
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


def render(args, sizes, users, duration, seeding, growth, matrix, rss, ceiling, ceiling_note, ceiling_sql):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True, capture_output=True).stdout.strip()
    out = [f"# sessiond benchmark, {datetime.date.today().isoformat()}", ""]
    out.append(f"- Machine: {machine()}; Postgres 15 on the same machine.")
    out.append(f"- Commit {commit or 'unknown'}; release build; wrk with 2 threads, {duration} s per run; {users} users.")
    out.append(f"- Mode: {'quick (sizes too small to mean anything)' if args.quick else 'full'}.")
    out.append("")
    out.append("## Seeding")
    out.append("")
    out.append("| sessions in store | seconds to reach it |")
    out.append("|---:|---:|")
    for size, elapsed in seeding:
        out.append(f"| {size:,} | {elapsed:.1f} |")
    out.append("")
    out.append(f"## Endpoints with {sizes[-1]:,} sessions stored")
    out.append("")
    out.append("| endpoint | conns | req/s | p50 ms | p99 ms | non-2xx |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for connections, name, r in matrix:
        out.append(f"| {name} | {connections} | {fmt(r['rps'], 0)} | {fmt(r['p50'])} | {fmt(r['p99'])} | {r['errors']} |")
    out.append("")
    out.append(f"Peak RSS of the server after the 64-connection runs: **{fmt(rss or float('nan'), 1)} MiB**.")
    out.append("")
    out.append("## Growth (16 connections)")
    out.append("")
    names = sorted({name for _, name, _ in growth})
    out.append("| endpoint | " + " | ".join(f"p50 ms @ {s:,}" for s in sizes) + " | cost ratio last/first |")
    out.append("|---|" + "---:|" * (len(sizes) + 1))
    for name in names:
        p50 = [next((r["p50"] for s, n, r in growth if n == name and s == size), float("nan")) for size in sizes]
        ratio = p50[-1] / p50[0] if p50[0] == p50[0] and p50[0] > 0 else float("nan")
        out.append(f"| {name} | " + " | ".join(fmt(x) for x in p50) + f" | {fmt(ratio)} |")
    out.append("")
    out.append("## Ceiling: the same SQL through pgbench")
    out.append("")
    list_rps = {c: r["rps"] for c, n, r in matrix if n.startswith("GET sessions/list")}
    if ceiling:
        out.append("The statements one `GET /api/v1/sessions/list` issues (read from the Postgres log), run by")
        out.append("`pgbench -M prepared` as one transaction:")
        out.append("")
        out.append("```sql")
        out.extend(ceiling_sql)
        out.append("```")
        out.append("")
        out.append("| conns | pgbench tps | sessiond req/s | ratio |")
        out.append("|---:|---:|---:|---:|")
        for connections, r in sorted(ceiling.items()):
            rps = list_rps.get(connections, float("nan"))
            out.append(f"| {connections} | {fmt(r['tps'], 0)} | {fmt(rps, 0)} | {fmt(rps / r['tps'] if r['tps'] else float('nan'))} |")
    else:
        out.append(f"Not measured: {ceiling_note}.")
    out.append("")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
