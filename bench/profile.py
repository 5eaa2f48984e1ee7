#!/usr/bin/env python3
"""An instruction-count profile of sessiond's two hottest endpoints.

Seeds a small throwaway Postgres store (1,000 users, 10,000 sessions, and
the known user `bench-known` with 50 sessions), runs the release binary
under callgrind with one HTTP worker and a pool of two store connections,
and, after an untimed warm-up, measures two phases on one keep-alive
connection, sequentially:

1. N requests to `GET /api/v1/me`;
2. N requests to `GET /api/v1/sessions/list` (a page of 50 sessions),

each as the known user (X-User-Id / X-Auth-Token). The counters are zeroed
(`callgrind_control -z`) before a phase and dumped (`callgrind_control -d`)
after it, so start-up, migrations and the warm-up are not counted. Every
answer must be 200.

For each phase it reports the instructions (Ir) the whole server process
executes per request, their share by component (from function and object
names, on self cost), the top functions by self and by inclusive cost, and
writes a markdown report (and the raw dumps and annotations) to the out
directory. Callgrind counts instructions executed in user space only: time
spent waiting on Postgres or in the kernel does not appear, and Postgres's
own work is a separate process, not profiled here.

    python3 bench/profile.py                            # target/release, 2000 requests per phase
    python3 bench/profile.py --binary /tmp/x/sessiond --requests 500 --out /tmp/x
"""

import argparse
import collections
import datetime
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing run.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, SECRET_KEY, db_url, free_port, log, recreate_database, seed, sh  # noqa: E402

POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
WARM_UP = 100
PHASES = [("GET /api/v1/me", "me", "/api/v1/me"), ("GET /api/v1/sessions/list (50 sessions)", "list", "/api/v1/sessions/list")]
# One HTTP worker and a small pool; the rest as bench/run.py runs sessiond.
SERVER_ENV = {"SESSIOND_WORKERS": "1", "SESSIOND_DB_POOL_SIZE": "2", "SESSIOND_LOG_FORMAT": "json", "RUST_LOG": "warn",
              "SESSIOND_IDLE_TIMEOUT_SECONDS": str(90 * 86400), "SESSIOND_MAX_LIFETIME_SECONDS": str(365 * 86400)}

# Components, first match wins (so a function named after two crates counts
# once): (label, pattern on the function name, pattern on the object file).
ALLOCATOR = (
    r"^(__libc_)?(malloc|free|cfree|realloc|calloc|memalign|posix_memalign|aligned_alloc)$|^_int_(malloc|free|realloc|memalign)"
    r"|^(malloc_consolidate|unlink_chunk|sysmalloc|tcache_\w+)$|^(__rustc::)?__(rust|rdl)_\w+$"
)
GROUPS = [
    ("malloc/free/realloc (libc allocator)", ALLOCATOR, None),
    ("libc mem*/str* (memcpy, memset, memcmp)", r"^__(mem|wmem|str)\w*(avx|sse|evex|erms)\w*$|^(memcpy|memmove|memset|memcmp|bcmp)$", None),
    ("libpq + Postgres protocol (libpq.so)", None, r"/libpq\.so"),
    ("TLS to Postgres (libssl.so, libcrypto.so)", None, r"/lib(ssl|crypto)\.so"),
    ("sha2 token hashing", r"\bsha2::", None),
    ("tracing", r"\btracing(_core|_subscriber|_log)?::", None),
    ("serde / serde_json serialization", r"\b(serde\w*|itoa|ryu)::", None),
    ("diesel (query building, row deserialization)", r"\bdiesel", None),
    ("chrono", r"\bchrono::", None),
    ("actix-web / actix-http / h1 parsing", r"\b(actix_(web|http|router|service|utils|codec|cors)|httparse|http|bytes|bytestring)::", None),
    ("tokio / runtime / threads / futures (and the r2d2 pool)",
     r"\b(tokio\w*|futures\w*|actix_rt|actix_server|mio|parking_lot\w*|crossbeam\w*|local_channel|local_waker|r2d2|scheduled_thread_pool)::"
     r"|\bstd::(thread|sync|sys)::|^(__)?(pthread_\w+|__lll_\w+|futex_\w+|__futex\w*|syscall|epoll_wait|__GI_epoll_wait)$", None),
]
OTHER = "other"


def classify(fn, obj):
    name = fn.split("@", 1)[0] if not fn.startswith("<") else fn
    for label, fn_re, obj_re in GROUPS:
        if (fn_re and re.search(fn_re, name)) or (obj_re and re.search(obj_re, obj or "")):
            return label
    return OTHER


def owner(fn, obj):
    """Who a function in "other" belongs to: its crate, or its object file."""
    m = re.search(r"([A-Za-z_]\w*)::", fn)
    return m.group(1) if m else os.path.basename(obj or "?")


class Server:
    """sessiond under callgrind."""

    def __init__(self, binary, url, out):
        self.port = free_port()
        self.base_file = os.path.join(out, "callgrind.out")
        env = {**os.environ, **SERVER_ENV, "DATABASE_URL": url, "SESSIOND_BIND": f"127.0.0.1:{self.port}", "SESSIOND_SECRET_KEY": SECRET_KEY}
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.base_file}", f"--log-file={os.path.join(out, 'valgrind.log')}", binary, "serve"]
        self.log = open(os.path.join(out, "server.log"), "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.dumps = 0
        deadline = time.time() + 300  # valgrind reads the debug info first
        while time.time() < deadline and self.proc.poll() is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    return
            except (OSError, http.client.HTTPException):
                time.sleep(1)
            finally:
                conn.close()
        self.stop()
        sys.exit(f"sessiond did not become ready under valgrind (see {out}/server.log, valgrind.log)")

    def control(self, flag):
        sh(["callgrind_control", flag, str(self.proc.pid)])

    def dump(self, name):
        """Dumps the counters (which zeroes them) and returns the dump's path."""
        self.control("-d")
        self.dumps += 1
        path = os.path.join(os.path.dirname(self.base_file), f"{name}.callgrind.out")
        os.replace(f"{self.base_file}.{self.dumps}", path)
        return path

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        if os.path.exists(self.base_file):  # the shutdown, after the last phase
            os.unlink(self.base_file)


def send(conn, path, headers, n):
    """`n` sequential GETs on one keep-alive connection; returns the last
    body. Any answer other than 200 stops the run."""
    body = None
    for i in range(n):
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            sys.exit(f"{path} answered {response.status} on request {i + 1}: {payload[:300]!r}")
        body = payload
    return json.loads(body) if body else None


def annotate(dump, inclusive, out_txt):
    """callgrind_annotate's function list: (total Ir, {(function, object): Ir}).
    A function is listed once per source file its code comes from (inlining):
    self costs are summed; inclusive ones are views of the same calls, so the
    largest is kept."""
    # callgrind_annotate 3.19 reads the cost of a call line with `calls=0`
    # (a call made before the counters were zeroed that returned after) as
    # the caller's self cost; a copy with those counts set to 1 reads right.
    fixed = dump + ".annotate"
    with open(dump) as src, open(fixed, "w") as dst:
        for line in src:
            dst.write("calls=1 " + line[8:] if line.startswith("calls=0 ") else line)
    text = sh(["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=100", "--auto=no", "--show-percs=no", fixed]).stdout
    os.unlink(fixed)
    with open(out_txt, "w") as f:
        f.write(text)
    total = int(re.search(r"^\s*([\d,]+)\s+PROGRAM TOTALS", text, re.M).group(1).replace(",", ""))
    costs, objects = collections.Counter(), {}
    listing = text.split("file:function", 1)[1]
    for line in listing.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+(.*?)(?: \[(/[^\]]*)\])?$", line)
        if not m:
            continue
        fn = m.group(2).split(":", 1)[1] if ":" in m.group(2) else m.group(2)
        objects[fn] = objects.get(fn) or m.group(3)
        ir = int(m.group(1).replace(",", ""))
        costs[fn] = max(costs[fn], ir) if inclusive else costs[fn] + ir
    return total, collections.Counter({(fn, objects[fn]): ir for fn, ir in costs.items()})


def analyse(dump, n, out, name):
    total, self_cost = annotate(dump, False, os.path.join(out, f"{name}.exclusive.txt"))
    _, incl_cost = annotate(dump, True, os.path.join(out, f"{name}.inclusive.txt"))
    groups, other = collections.Counter(), collections.Counter()
    for (fn, obj), ir in self_cost.items():
        label = classify(fn, obj)
        groups[label] += ir
        if label == OTHER:
            other[owner(fn, obj)] += ir
    return {"total": total, "n": n, "self": self_cost, "incl": incl_cost, "groups": groups, "other": other}


def short(fn, limit=140):
    return (fn if len(fn) <= limit else fn[: limit - 1] + "…").replace("|", "\\|")


def render(args, binary, r, items):
    digest = hashlib.sha256(open(binary, "rb").read()).hexdigest()[:12]
    built = datetime.datetime.fromtimestamp(os.path.getmtime(binary)).strftime("%Y-%m-%d %H:%M")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True, capture_output=True).stdout.strip()
    out = [f"# sessiond instruction profile, {datetime.date.today().isoformat()}", ""]
    out.append(
        "Instructions (Ir) counted by callgrind in the whole sessiond process (every thread) while it served "
        f"{args.requests} sequential requests per endpoint on one keep-alive connection, after {WARM_UP} untimed ones; "
        "start-up, migrations and the warm-up are not counted. Callgrind counts user-space instructions only: "
        "waiting on Postgres and time in the kernel (socket reads and writes, futex waits, epoll) are invisible, and "
        "Postgres's own cost (parsing, planning, executing the statements) is a separate process, not profiled here. "
        "Ir is not time: it ignores cache misses, branch mispredictions and syscall cost."
    )
    out += ["", f"- Binary: `{binary}` (sha256 {digest}…, built {built}); checkout at {commit or 'unknown'}."]
    out.append(f"- Server: `SESSIOND_WORKERS=1 SESSIOND_DB_POOL_SIZE=2`; Postgres 15 on the same machine, over TCP to 127.0.0.1 with `sslmode={args.sslmode}`.")
    out.append(f"- Store: 1,000 seeded users with 10,000 sessions, plus `bench-known` (the caller, 50 sessions: `sessions/list` answered {items} items) and `bench-admin`.")
    out.append(
        "- Components are assigned from self cost by function name (crate path) and object file, first match in the "
        "order of the table; code inlined into a function counts where it was inlined (a diesel call inlined into a "
        "sessiond function counts as \"other\"). The allocator row counts only the allocator itself (libc's and Rust's shims), "
        "not its callers. libpq and libcrypto have no symbols for their internal functions, which show as addresses."
    )
    out += ["", "## Ir per request", ""]
    out.append("| component | " + " | ".join(f"{label}: Ir/req | share" for label, _, _ in PHASES) + " |")
    out.append("|---|" + "---:|---:|" * len(PHASES))
    out.append("| **total** | " + " | ".join(f"**{r[k]['total'] / r[k]['n']:,.0f}** | 100% " for _, k, _ in PHASES) + "|")
    for label in [g[0] for g in GROUPS] + [OTHER]:
        cells = []
        for _, k, _ in PHASES:
            ir = r[k]["groups"].get(label, 0)
            cells.append(f"{ir / r[k]['n']:,.0f} | {100 * ir / r[k]['total']:.1f}%")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("| kernel (syscalls, scheduling) | " + " | ".join("not visible | –" for _ in PHASES) + " |")
    for title, key, _ in PHASES:
        p = r[key]
        out += ["", f"## {title}", ""]
        out.append(f"{p['n']} requests, {p['total']:,} Ir, **{p['total'] / p['n']:,.0f} Ir per request**. Dump: `{key}.callgrind.out`.")
        top_other = ", ".join(f"{o} {100 * ir / p['total']:.1f}%" for o, ir in p["other"].most_common(8))
        out += ["", f"\"other\" ({100 * p['groups'].get(OTHER, 0) / p['total']:.1f}%) by crate or object: {top_other}.", ""]
        out += ["Top 20 functions by self (exclusive) Ir:", "", "| # | Ir/req | share | component | function | object |", "|---:|---:|---:|---|---|---|"]
        for i, ((fn, obj), ir) in enumerate(p["self"].most_common(20), 1):
            out.append(f"| {i} | {ir / p['n']:,.0f} | {100 * ir / p['total']:.1f}% | {classify(fn, obj)} | `{short(fn)}` | {os.path.basename(obj or '?')} |")
        out += ["", "Top 15 of sessiond's own functions by inclusive Ir (callees included; nested ones overlap):", ""]
        out += ["| # | Ir/req | share | function |", "|---:|---:|---:|---|"]
        own = [(fn, ir) for (fn, _), ir in p["incl"].most_common() if re.search(r"\bsessiond::", fn)]
        for i, (fn, ir) in enumerate(own[:15], 1):
            out.append(f"| {i} | {ir / p['n']:,.0f} | {100 * ir / p['total']:.1f}% | `{short(fn)}` |")
        listed = sum(p["self"].values())
        out += ["", f"Self costs listed by callgrind_annotate add up to {100 * listed / p['total']:.1f}% of the total. "
                f"Full listings: `{key}.exclusive.txt`, `{key}.inclusive.txt`."]
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "sessiond"), help="sessiond; sessiond-seed must be next to it")
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per endpoint")
    parser.add_argument("--sslmode", default="disable", help="libpq sslmode to the store (prefer: TLS on loopback too)")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "tmp", "profile"))
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    seeder = os.path.join(os.path.dirname(binary), "sessiond-seed")
    out = os.path.abspath(args.out)
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate", "psql"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed")
    for path in (binary, seeder):
        if not os.access(path, os.X_OK):
            sys.exit(f"{path} is missing: build it with `cargo build --release --bins`")
    os.makedirs(out, exist_ok=True)

    database = f"sessiond_profile_{os.getpid()}"
    url = db_url(POSTGRES, database, f"sslmode={args.sslmode}")
    recreate_database(POSTGRES, database)
    r, items, server, conn = {}, None, None, None
    try:
        with tempfile.TemporaryDirectory() as tmp:  # the tokens file holds passwords
            tokens, _ = seed(seeder, url, 1000, 10_000, os.path.join(tmp, "tokens.json"), ("--known-sessions", "50"))
        known = tokens["known"]
        headers = {"X-User-Id": known["userId"], "X-Auth-Token": known["token"]}
        log("starting sessiond under callgrind")
        server = Server(binary, url, out)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        for _, _, path in PHASES:
            body = send(conn, path, headers, WARM_UP)
        items = len(body.get("sessions", []))
        if items != 50:
            sys.exit(f"sessions/list answered {items} items, not 50")
        for title, key, path in PHASES:
            server.control("-z")
            started = time.time()
            send(conn, path, headers, args.requests)
            dump = server.dump(key)
            log(f"{title}: {args.requests} requests in {time.time() - started:.1f} s under callgrind; annotating")
            r[key] = analyse(dump, args.requests, out, key)
    finally:
        if conn is not None:
            conn.close()
        if server is not None:
            server.stop()
        sh(["psql", POSTGRES, "-q", "-c", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"])

    report = render(args, binary, r, items)
    print(report)
    path = os.path.join(out, "profile.md")
    with open(path, "w") as f:
        f.write(report)
    log(f"report written to {path}")


if __name__ == "__main__":
    main()
