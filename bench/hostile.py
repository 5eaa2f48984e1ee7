#!/usr/bin/env python3
"""sessiond under hostile load.

Seeds a Postgres store with sessiond-seed (100k sessions by default), starts
the release binary on it and measures what abuse costs everyone else:

1. the server's RSS (VmRSS) idle, then after each of 3 bursts of 32
   simultaneous logins, half with the right password and half with a wrong
   one (sent from 127.0.0.2, so the per-IP failure limit they run into does
   not throttle the other phases), with a pause after each burst;
2. GET /api/v1/me with wrk at 16 connections alone, then again while 16
   requests with pathological regex filters are kept in flight (12 ordinary
   users on sessions/list, 4 on list.all as the seeded admin, whose session
   is past 2FA), with the statuses and latencies those requests got;
3. login throughput: POST /api/v1/login with wrk at 16 connections and the
   right password (throttling counts failures only), counted by status.

It writes a markdown report to bench/results/hostile-<date>.md (quick mode:
bench/results/tmp/) and prints it. It reports numbers; it asserts none.
Filter requests still in flight when their phase ends are waited for up to
the client timeout; store queries still running after that are cancelled
(pg_cancel_backend, counted in the report), so the next phase starts clean.

    python3 bench/hostile.py            # 100k sessions, 10 s runs (a few minutes)
    python3 bench/hostile.py --quick    # tiny store, 2 s runs: checks the script works (CI)
"""

import argparse
import collections
import datetime
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True  # no bench/__pycache__ from the import below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (the benchmark's helpers)

# Expensive to compile or to match, and maybe refused by the server (400),
# shed (503) or throttled (429): whatever it answers is recorded.
FILTERS = [
    r"([a-z]{0,10}){0,255}z",
    r"[a-z]{0,255}[0-9]{0,255}[a-z]{0,255}q",
    r"(.*){0,255}z",
    r"(?:[a-z]{0,16}){0,16}z",
]
ATTACKERS = 16
ADMIN_ATTACKERS = 4
CONNECTIONS = 16
BURSTS = 3
BURST_SIZE = 32
WRONG_SOURCE = "127.0.0.2"
# Seeded users by role, so that no phase throttles another: a user's
# failure count only grows through the wrong-password logins.
ATTACKER_USERS = range(0, ATTACKERS - ADMIN_ATTACKERS)
GOOD_LOGIN_USERS = range(12, 12 + BURST_SIZE // 2)
WRONG_LOGIN_USERS = range(28, 28 + BURST_SIZE // 2)
MIN_USERS = 28 + BURST_SIZE // 2


def call(port, method, path, headers=None, body=None, timeout=60.0, source=None):
    """One request on its own connection: (status or "timeout"/"error",
    seconds, parsed JSON body or None). Never raises."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0) if source else None)
    try:
        data = json.dumps(body) if body is not None else None
        sent = dict(headers or {})
        if data is not None:
            sent["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        payload = response.read()
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = None
        return response.status, time.monotonic() - started, parsed
    except (TimeoutError, socket.timeout):
        return "timeout", time.monotonic() - started, None
    except OSError:
        return "error", time.monotonic() - started, None
    finally:
        conn.close()


def can_send_from(port, source):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2, source_address=(source, 0)).close()
        return True
    except OSError:
        return False


def user_name(i):
    return f"bench-user-{i:05}"


def login(port, username, password):
    status, _, body = call(port, "POST", "/api/v1/login", body={"user": username, "password": password})
    if status != 200 or not body:
        sys.exit(f"login as {username} answered {status}")
    return {"X-User-Id": body["data"]["userId"], "X-Auth-Token": body["data"]["authToken"]}


def rss_mib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def login_burst(port, password, wrong_source):
    """BURST_SIZE logins released at once; half right, half wrong."""
    barrier = threading.Barrier(BURST_SIZE)
    statuses = collections.Counter()
    lock = threading.Lock()

    def one(username, secret, source):
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            pass
        status, _, _ = call(port, "POST", "/api/v1/login", body={"user": username, "password": secret}, source=source)
        with lock:
            statuses[status] += 1

    threads = [threading.Thread(target=one, args=(user_name(i), password, None)) for i in GOOD_LOGIN_USERS]
    threads += [threading.Thread(target=one, args=(user_name(i), "wrong-password-" + str(i), wrong_source)) for i in WRONG_LOGIN_USERS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def hostile_phase(server, me_headers, user_headers, admin_headers, duration, timeout):
    """wrk on /me while ATTACKERS filter requests are kept in flight."""
    stop = threading.Event()
    results = collections.defaultdict(list)
    lock = threading.Lock()

    def attacker(first, endpoint, headers):
        k = first
        while not stop.is_set():
            pattern = FILTERS[k % len(FILTERS)]
            k += 1
            path = f"/api/v1/sessions/{endpoint}?filter=" + urllib.parse.quote(pattern, safe="")
            status, seconds, _ = call(server.port, "GET", path, headers, timeout=timeout)
            with lock:
                results[(endpoint, pattern)].append((status, seconds))

    threads = []
    for i in range(ATTACKERS):
        if i < ATTACKERS - ADMIN_ATTACKERS:
            args = (i, "list", user_headers[i % len(user_headers)])
        else:
            args = (i, "list.all", admin_headers)
        threads.append(threading.Thread(target=attacker, args=args, daemon=True))
    for t in threads:
        t.start()
    time.sleep(0.5)  # every attacker has a request in flight
    me = bench.wrk(server.base + "/api/v1/me", CONNECTIONS, duration, me_headers)
    stop.set()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    unfinished = sum(t.is_alive() for t in threads)
    with lock:
        snapshot = {key: list(values) for key, values in results.items()}
    return me, snapshot, unfinished


def cancel_running_queries(admin_url, database):
    """Cancels the store queries still running on the bench database (the
    server's, left by requests that ended or were abandoned): how many, and
    the oldest one's age in seconds."""
    where = f"datname = '{database}' AND state = 'active' AND pid <> pg_backend_pid()"
    out = bench.sh(
        [
            "psql", admin_url, "-At", "-F", " ", "-c",
            f"SELECT count(*), coalesce(max(extract(epoch FROM now() - query_start)), 0), "
            f"count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE {where}",
        ]
    ).stdout.split()
    return int(out[0]), float(out[1])


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def statuses_text(counter):
    if not counter:
        return "none"
    return ", ".join(f"{status}×{n}" for status, n in sorted(counter.items(), key=lambda kv: str(kv[0])))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny store and 2 s runs (CI)")
    parser.add_argument("--postgres", default=os.environ.get("SESSIOND_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--database", default=f"sessiond_hostile_{os.getpid()}",
                        help="a database to create for the run and drop after it (must not exist)")
    parser.add_argument("--sessions", type=int, help="sessions to seed (default 100000; quick 2000)")
    parser.add_argument("--users", type=int, help=f"users to seed (default 10000; quick 64; at least {MIN_USERS})")
    args = parser.parse_args()
    sessions = args.sessions or (2_000 if args.quick else 100_000)
    users = max(MIN_USERS, args.users or (64 if args.quick else 10_000))
    duration = 2 if args.quick else 10
    timeout = 15.0 if args.quick else 60.0
    pause = 1.0 if args.quick else 5.0
    os.makedirs(bench.TMP, exist_ok=True)

    bench.ensure_wrk()
    binary, seeder = bench.release_binaries()
    bench.create_database(args.postgres, args.database)
    url = bench.db_url(args.postgres, args.database)
    tokens, seed_seconds = bench.seed(seeder, url, users, sessions, os.path.join(bench.TMP, "hostile-tokens.json"))
    password = tokens["known"]["password"]

    server = bench.Server(binary, url)
    report = {"sessions": tokens["sessions"], "users": tokens["users"], "seed_seconds": seed_seconds}
    try:
        pid = server.proc.pid
        wrong_source = WRONG_SOURCE if can_send_from(server.port, WRONG_SOURCE) else None
        report["wrong_source"] = wrong_source or "127.0.0.1"

        # 1. Memory: idle, then after each burst of logins.
        time.sleep(pause)
        memory = [("idle", rss_mib(pid), None)]
        bench.log(f"idle RSS {bench.fmt(memory[0][1], 1)} MiB")
        for burst in range(1, BURSTS + 1):
            statuses = login_burst(server.port, password, wrong_source)
            time.sleep(pause)
            memory.append((f"after burst {burst}", rss_mib(pid), statuses))
            bench.log(f"burst {burst}: {statuses_text(statuses)}; RSS {bench.fmt(memory[-1][1], 1)} MiB")
        report["memory"] = memory

        # 2. /me alone, then with hostile filters in flight.
        known = {"X-User-Id": tokens["known"]["userId"], "X-Auth-Token": tokens["known"]["token"]}
        admin = {"X-User-Id": tokens["admin"]["userId"], "X-Auth-Token": tokens["admin"]["token"]}
        attackers = [login(server.port, user_name(i), password) for i in ATTACKER_USERS]
        bench.settle(server.base)
        report["me_alone"] = bench.wrk(server.base + "/api/v1/me", CONNECTIONS, duration, known)
        bench.log(f"/me alone: {bench.fmt(report['me_alone']['rps'], 0)} req/s")
        me, filters, unfinished = hostile_phase(server, known, attackers, admin, duration, timeout)
        report["me_hostile"], report["filters"], report["unfinished"] = me, filters, unfinished
        bench.log(f"/me under hostile filters: {bench.fmt(me['rps'], 0)} req/s; {unfinished} filter requests unfinished")
        report["cancelled"] = cancel_running_queries(args.postgres, args.database)
        bench.settle(server.base)

        # 3. Login throughput with the right password.
        report["login"] = bench.wrk(
            server.base + "/api/v1/login", CONNECTIONS, duration, {}, body={"user": tokens["known"]["username"], "password": password}, count_statuses=True
        )
        bench.log(f"login: {bench.fmt(report['login']['rps'], 0)} req/s {statuses_text(report['login'].get('statuses', {}))}")
        report["rss_end"] = rss_mib(pid)
        report["rss_peak"] = rss_mib(pid, "VmHWM")
    finally:
        cancel_running_queries(args.postgres, args.database)
        server.stop()

    text = render(args, duration, timeout, pause, report)
    print(text)
    name = f"hostile-{datetime.date.today().isoformat()}.md"
    path = os.path.join(bench.TMP if args.quick else bench.RESULTS, name)
    with open(path, "w") as f:
        f.write(text)
    bench.log(f"report written to {os.path.relpath(path, bench.ROOT)}")


def render(args, duration, timeout, pause, r):
    fmt = bench.fmt
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=bench.ROOT, text=True, capture_output=True).stdout.strip()
    out = [f"# sessiond under hostile load, {datetime.date.today().isoformat()}", ""]
    out.append(f"- Machine: {bench.machine()}; Postgres 15 on the same machine.")
    out.append(f"- Commit {commit or 'unknown'}; release build; wrk with 2 threads and {CONNECTIONS} connections, {duration} s per run.")
    out.append(f"- Store: {r['sessions']:,} sessions, {r['users']:,} users, seeded in {r['seed_seconds']:.1f} s.")
    out.append(f"- Mode: {'quick (sizes too small to mean anything)' if args.quick else 'full'}.")
    out.append("")

    out.append("## GET /api/v1/me")
    out.append("")
    out.append("| run | req/s | p50 ms | p99 ms | non-2xx | socket errors |")
    out.append("|---|---:|---:|---:|---:|---|")
    for label, w in (("alone", r["me_alone"]), (f"with {ATTACKERS} hostile filter requests in flight", r["me_hostile"])):
        out.append(f"| {label} | {fmt(w['rps'], 0)} | {fmt(w['p50'])} | {fmt(w['p99'])} | {w['errors']} | {w.get('socket_errors', 'none')} |")
    out.append("")

    out.append("## The hostile filter requests")
    out.append("")
    out.append(
        f"{ATTACKERS - ADMIN_ATTACKERS} ordinary users on `sessions/list` and {ADMIN_ATTACKERS} on `list.all` as the seeded admin, "
        f"each sending the filters below in turn, one request at a time, while the second `/me` run lasted "
        f"(client timeout {timeout:.0f} s). Latency is per request, from the client."
    )
    out.append("")
    out.append("| endpoint | filter | requests | statuses | p50 ms | max ms |")
    out.append("|---|---|---:|---|---:|---:|")
    all_statuses = collections.Counter()
    for (endpoint, pattern), rows in sorted(r["filters"].items()):
        statuses = collections.Counter(status for status, _ in rows)
        all_statuses.update(statuses)
        ms = [seconds * 1000 for _, seconds in rows]
        shown = pattern.replace("|", "\\|")
        out.append(f"| {endpoint} | `{shown}` | {len(rows)} | {statuses_text(statuses)} | {fmt(percentile(ms, 0.5))} | {fmt(max(ms) if ms else float('nan'))} |")
    out.append("")
    out.append(f"All filter requests: {statuses_text(all_statuses)}.")
    count, oldest = r["cancelled"]
    out.append(
        f"Still unanswered {timeout:.0f} s after the run ended: {r['unfinished']} (not counted above). "
        f"Store queries still running then, cancelled by this script: {count}"
        + (f" (the oldest running for {oldest:.1f} s)." if count else ".")
    )
    out.append("")

    out.append("## Memory (VmRSS of the server)")
    out.append("")
    out.append(
        f"Each burst: {BURST_SIZE} logins released at once, {BURST_SIZE // 2} with the right password and "
        f"{BURST_SIZE // 2} with a wrong one (from {r['wrong_source']}); RSS read {pause:.0f} s after the burst."
    )
    out.append("")
    out.append("| moment | RSS MiB | login statuses |")
    out.append("|---|---:|---|")
    for label, rss, statuses in r["memory"]:
        out.append(f"| {label} | {fmt(rss, 1)} | {statuses_text(statuses) if statuses is not None else '—'} |")
    out.append(f"| end of the run | {fmt(r['rss_end'], 1)} | — |")
    out.append(f"| peak (VmHWM) | {fmt(r['rss_peak'], 1)} | — |")
    out.append("")

    login = r["login"]
    out.append("## Login throughput")
    out.append("")
    out.append(f"`POST /api/v1/login` as `bench-known` with the right password, {CONNECTIONS} connections.")
    out.append("")
    out.append("| req/s | p50 ms | p99 ms | statuses |")
    out.append("|---:|---:|---:|---|")
    out.append(f"| {fmt(login['rps'], 0)} | {fmt(login['p50'])} | {fmt(login['p99'])} | {statuses_text(login.get('statuses', {}))} |")
    out.append("")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
