#!/usr/bin/env python3
"""Login throughput with webhooks off and on, and how far behind the
webhooks run.

Every login records its `session.started` event in the login's own
transaction whatever the settings (the event log is also the audit trail
and the live stream's source); webhooks add the delivery of those events.
This measures, on a Postgres store of its own and with the release binary:

1. logins per second (`POST /api/v1/login`, one user, wrk at 16
   connections) with no webhook endpoint;
2. the same with one endpoint, a local receiver that answers 200 at once;
3. the store statements one login costs (from /metrics), each way;
4. the delivery lag: from an event's timestamp to its arrival at the
   receiver (p50, p99, max), and whether every event arrived exactly once.

It writes a markdown report to bench/results/events-<date>.md (quick mode:
bench/results/tmp/) and prints it. It reports numbers; it asserts none.

    python3 bench/events.py            # 10 s runs (about a minute after the build)
    python3 bench/events.py --quick    # 2 s runs: checks the script works
"""

import argparse
import base64
import datetime
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the main benchmark's helpers)

PASSWORD = "bench login password"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"bench-webhook-secret-32-bytes-ok").decode()


class Receiver:
    """A webhook endpoint that answers 200 at once and notes when each
    event arrived."""

    def __init__(self):
        self.arrivals = {}
        self.duplicates = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                now = time.time()
                event = json.loads(body)
                with receiver.lock:
                    key = self.headers.get("webhook-id")
                    if key in receiver.arrivals:
                        receiver.duplicates += 1
                    else:
                        receiver.arrivals[key] = (event, now)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self):
        with self.lock:
            return len(self.arrivals)

    def lags(self):
        with self.lock:
            out = []
            for event, arrived in self.arrivals.values():
                stamp = datetime.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
                out.append(arrived - stamp.timestamp())
            return out


def metric(base, name):
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return run.NAN


def events_in_store(url):
    out = run.sh(["psql", url, "-tAc", "SELECT count(*) FROM session_events WHERE type = 'session.started'"])
    return int(out.stdout.strip())


def sessions_in_store(url):
    """Every login opens one session row, in every version of the schema."""
    out = run.sh(["psql", url, "-tAc", "SELECT count(*) FROM sessions"])
    return int(out.stdout.strip())


def prepare(binary, url):
    """Migrates the store and adds the user the logins are for."""
    env = {**os.environ, "DATABASE_URL": url, "SESSIOND_SECRET_KEY": run.SECRET_KEY}
    subprocess.run([binary, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([binary, "user", "add", "bench-login", "--password", "-"], input=PASSWORD + "\n",
                   env=env, check=True, capture_output=True, text=True)


def measure(binary, url, connections, duration, extra_env):
    server = run.Server(binary, url, {"SESSIOND_LOGIN_MAX_FAILURES_PER_IP": "1000000",
                                      "SESSIOND_LOGIN_MAX_FAILURES_PER_USER": "1000000",
                                      **extra_env})
    try:
        body = {"user": "bench-login", "password": PASSWORD}
        calls_before = metric(server.base, "sessiond_db_calls_total")
        statements_before = metric(server.base, "sessiond_db_statements_total")
        started_before = sessions_in_store(url)
        result = run.wrk(server.base + "/api/v1/login", connections, duration, {}, body=body)
        statements_after = metric(server.base, "sessiond_db_statements_total")
        calls_after = metric(server.base, "sessiond_db_calls_total")
        logins = sessions_in_store(url) - started_before
        result["logins"] = logins
        result["statements_per_login"] = (statements_after - statements_before) / logins if logins else run.NAN
        result["calls_per_login"] = (calls_after - calls_before) / logins if logins else run.NAN
        return server, result
    except BaseException:
        server.stop()
        raise


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 s runs (CI)")
    parser.add_argument("--postgres", default=os.environ.get("SESSIOND_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--database", default=f"sessiond_events_{os.getpid()}",
                        help="a database to create for the run and drop after it (must not exist)")
    parser.add_argument("--out", help="where to write the report")
    parser.add_argument("--baseline", metavar="BINARY",
                        help="also measure this sessiond binary (say, a build from before the event log) "
                             "on a database of its own, as a first row")
    args = parser.parse_args()
    duration = 2 if args.quick else 10
    connections = 16
    run.ensure_wrk()
    binary, _ = run.release_binaries()
    run.create_database(args.postgres, args.database)
    url = run.db_url(args.postgres, args.database, "sslmode=disable")
    load_before = os.getloadavg()

    prepare(binary, url)
    rows = []
    if args.baseline:
        baseline_db = args.database + "_baseline"
        run.create_database(args.postgres, baseline_db)
        baseline_url = run.db_url(args.postgres, baseline_db, "sslmode=disable")
        prepare(args.baseline, baseline_url)
        run.log(f"logins on the baseline binary, {duration} s at {connections} connections")
        server, baseline = measure(args.baseline, baseline_url, connections, duration, {})
        server.stop()
        rows.append((f"baseline `{args.baseline}`", baseline))

    run.log(f"logins without webhooks, {duration} s at {connections} connections")
    server, off = measure(binary, url, connections, duration, {})
    server.stop()

    receiver = Receiver()
    run.log(f"logins with one webhook endpoint, {duration} s at {connections} connections")
    recorded_before = events_in_store(url)
    server, on = measure(binary, url, connections, duration,
                         {"SESSIOND_WEBHOOK_URLS": receiver.url, "SESSIOND_WEBHOOK_SECRET": WEBHOOK_SECRET})
    # Logins still in flight when wrk stopped finish too: count what the
    # store recorded once the load is over, then wait (bounded) for the
    # deliveries to catch up and read the lag.
    time.sleep(1)
    expected = events_in_store(url) - recorded_before
    deadline = time.time() + 60
    while time.time() < deadline:
        started = sum(1 for e, _ in list(receiver.arrivals.values()) if e["type"] == "session.started")
        if started >= expected:
            break
        time.sleep(0.2)
    server.stop()
    delivered = sum(1 for e, _ in list(receiver.arrivals.values()) if e["type"] == "session.started")
    lags = sorted(receiver.lags())

    def ms(seconds):
        return f"{seconds * 1000:.0f} ms" if seconds == seconds else "n/a"

    def wrk_ms(value):
        # wrk's latencies come in ms (bench/run.py's UNITS).
        return f"{value:.1f} ms" if value == value else "n/a"

    lines = [
        f"# Logins with webhooks off and on — {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        "",
        f"Machine: {run.machine()}. Load average at start {load_before[0]:.2f}, at end {os.getloadavg()[0]:.2f}.",
        f"`POST /api/v1/login` for one user, wrk -c{connections} -d{duration}s, release build, Postgres store.",
        "Every login records `session.started` in its transaction either way; the second row adds",
        "one webhook endpoint (a local receiver answering 200).",
        "",
        "| webhooks | logins/s | p50 | p99 | non-2xx | store calls per login | statements per login |",
        "|---|---|---|---|---|---|---|",
    ]
    rows += [("off", off), ("on (1 endpoint)", on)]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['rps']:.1f} | {wrk_ms(r['p50'])} | {wrk_ms(r['p99'])} | {r['errors']} | "
            f"{r['calls_per_login']:.2f} | {r['statements_per_login']:.2f} |"
        )
    change = (on["rps"] / off["rps"] - 1) * 100 if off["rps"] else run.NAN
    lines += [
        "",
        f"Throughput with webhooks on: {change:+.1f} % against off.",
        "",
        "| delivery | value |",
        "|---|---|",
        f"| `session.started` events recorded while webhooks were on | {expected} |",
        f"| delivered (distinct `webhook-id`) | {delivered} |",
        f"| duplicates | {receiver.duplicates} |",
        f"| lag p50 (event timestamp → arrival) | {ms(run.percentile(lags, 50)) if lags else 'n/a'} |",
        f"| lag p99 | {ms(run.percentile(lags, 99)) if lags else 'n/a'} |",
        f"| lag max | {ms(lags[-1]) if lags else 'n/a'} |",
        "",
        "Logins are bound by argon2id (19 MiB, one hash per core at a time), so the",
        "event's insert and the delivery's reads barely show in the throughput; the",
        "statements per login show what the event log adds to each login's store work.",
        "With webhooks on, the store calls per login include the delivery's own reads",
        "and cursor writes, which `sessiond_db_calls_total` counts too.",
    ]
    report = "\n".join(lines) + "\n"
    out = args.out or os.path.join(run.TMP if args.quick else run.RESULTS,
                                   f"events-{datetime.datetime.now().strftime('%Y-%m-%d-%H%M')}.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(report)
    print(report)
    run.log(f"report written to {out}")


if __name__ == "__main__":
    main()
