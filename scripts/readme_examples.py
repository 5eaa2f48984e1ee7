#!/usr/bin/env python3
"""Runs the README's shell examples, in order, against a fresh server.

    python3 scripts/readme_examples.py [--binary target/release/sessiond] [--readme README.md]

Starts the release `sessiond` on a fresh SQLite file in a temporary
directory, on a free port, and runs the README's examples top to bottom in
one bash process whose working directory is another temporary directory,
so variables and files (`login.json`, ...) carry from one example to the
next, exactly as for a reader who pastes them into one terminal. It stops
at the first example that does not do what the README says and exits
non-zero; otherwise it prints one line per example. It needs bash, curl
and jq (and whatever the examples call, such as schemathesis' `st`).

Which blocks run
    Every ```sh block in the sections named in SECTIONS below (and their
    subsections) runs, in README order, unless the line before its opening
    fence (blank lines aside) is an HTML comment starting with
    `<!-- not run`, saying why. A new block in those sections therefore runs
    unless it is marked. Blocks in other sections do not run, but a ```sh
    block anywhere else that sends a request to 127.0.0.1:8080 with curl is
    an error (add its section to SECTIONS, or mark it), and so is a section
    of SECTIONS that the README no longer has.

Steps and expectations
    A block is cut into steps by expectation lines, comments of the form

        # → <JSON>

    A step is the lines since the previous expectation (or the start of the
    block); it runs as one unit and its standard output is checked against
    the expectation right after it. <JSON> is a JSON value, or the members
    of an object without the outer braces (`# → "status": "success"`). The
    output (or, when commands before the request print text of their own,
    its last line) must be JSON containing it: every member of an expected
    object is in the answer with a matching value (other members may be
    there too), every item of an expected array matches an item of the
    answer's array in the same order (others may come between), and any
    other value is equal, type included (`# → 200` for a curl printing
    `-w '%{http_code}'`). Every command of a step must succeed, as under
    `set -e -o pipefail` (conditions, as in `until curl ...`, may fail).
    A step may run at most one curl, and one that runs curl must end in an
    expectation, so every request's answer is checked. Lines after a
    block's last expectation form a last step, which may not run curl.

Placeholders, replaced in each step just before it runs
    PRINTED-PASSWORD    the one-time admin password the server printed.
    CODE-FROM-YOUR-APP  a TOTP code computed here from the latest `secret`
                        an earlier step printed (as an authenticator app
                        shows it). Each code is accepted once: every
                        occurrence gets a code of a later 30 s step than
                        the one before (the server accepts the previous,
                        current and next step), waiting for the next step
                        when needed.
    127.0.0.1:8080      the address of the server started here. A block that
                        starts a server of its own (`sessiond serve`) gets
                        another free port, in it and in the blocks after it.

As from a checkout
    The examples that install the binary (`cargo install --path .`) are
    marked not to run; instead, `sessiond` in the examples is the binary
    given with --binary (by default the release build), put first on PATH.
    The repository's schemathesis.toml, which schemathesis reads from the
    directory it runs in, is linked into the working directory, as a reader
    running the examples in a checkout would have it.

Every process started here (the server, the shell and whatever the examples
start in the background) is stopped at the end.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The README sections whose ```sh blocks are executed, by the start of
# their heading's text.
SECTIONS = [
    "Using it with curl",
    "Device management",
    "Admin authenticated sessions",
    "JSON action API",
    "Using sessiond in your own CI",
]

README_ADDRESS = "127.0.0.1:8080"
PASSWORD_PLACEHOLDER = "PRINTED-PASSWORD"
CODE_PLACEHOLDER = "CODE-FROM-YOUR-APP"
EXPECT = re.compile(r"^\s*#\s*→\s*(.*?)\s*$")
NOT_RUN = "<!-- not run"
SHELL_LANGS = {"sh", "bash", "shell"}
# A curl command: the word `curl` where a command can start.
CURL = re.compile(r"(?:^|[\s;&|(`$])curl(?=\s|$)")
STEP_TIMEOUT_SECONDS = 300


class ReadmeError(Exception):
    """The README breaks the convention above (not a failed example)."""


# ----------------------------------------------------------------------------
# Reading the README


class Block:
    def __init__(self, number, section, line, lines):
        self.number = number  # 1-based among the executed blocks
        self.section = section
        self.line = line  # README line of the first line of code
        self.lines = lines


class Step:
    def __init__(self, block, index, line, text, expected_text, expected, start):
        self.start = start  # README line of the step's first line
        self.block = block
        self.index = index
        self.line = line
        self.text = text
        self.expected_text = expected_text
        self.expected = expected

    @property
    def label(self):
        return f"block {self.block.number} step {self.index} (README line {self.line})"

    @property
    def summary(self):
        """The step's curl line, or else its first command line."""
        code = [l.strip() for l in self.text.splitlines() if l.strip() and not l.strip().startswith("#")]
        line = next((l for l in code if CURL.search(l)), code[0] if code else "")
        line = line.rstrip("\\").rstrip()
        return line if len(line) <= 90 else line[:87] + "..."


def read_blocks(text):
    """The executed blocks, in README order."""
    lines = text.splitlines()
    headings = []  # (index, level, title)
    fences = []  # (index of the opening fence, language, code lines)
    in_fence = None
    for i, line in enumerate(lines):
        if in_fence is not None:
            if re.match(r"^\s*```\s*$", line):
                fences.append((in_fence[0], in_fence[1], lines[in_fence[0] + 1 : i]))
                in_fence = None
            continue
        m = re.match(r"^\s*```\s*([\w+-]*)", line)
        if m:
            in_fence = (i, m.group(1).lower())
            continue
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            headings.append((i, len(m.group(1)), m.group(2).strip()))
    if in_fence is not None:
        raise ReadmeError(f"README line {in_fence[0] + 1}: a code block is never closed")

    # The line ranges of the executed sections, with their subsections.
    ranges = []
    for name in SECTIONS:
        found = [(i, level, title) for (i, level, title) in headings if title.startswith(name)]
        if not found:
            raise ReadmeError(f"the README has no section whose heading starts with {name!r} (see SECTIONS)")
        i, level, title = found[0]
        end = next((j for (j, lv, _) in headings if j > i and lv <= level), len(lines))
        ranges.append((i, end, title))

    blocks = []
    for start, lang, code in fences:
        if lang not in SHELL_LANGS:
            continue
        before = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marked = before.startswith(NOT_RUN)
        section = next((title for (a, b, title) in ranges if a < start < b), None)
        if section is None:
            if not marked and any(CURL.search(l) and README_ADDRESS in l for l in code):
                raise ReadmeError(
                    f"README line {start + 1}: a shell block calls the API outside the executed sections; "
                    f"add its section to SECTIONS in {os.path.relpath(__file__, ROOT)} or mark it `{NOT_RUN}: why -->`"
                )
            continue
        if marked:
            continue
        blocks.append(Block(len(blocks) + 1, section, start + 2, code))
    return blocks


def parse_expectation(raw, where):
    for candidate in (raw, "{" + raw + "}"):
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            pass
    raise ReadmeError(f"{where}: the expectation `# → {raw}` is not JSON, nor the members of a JSON object")


def split_steps(block):
    steps, pending, pending_line = [], [], None
    for offset, line in enumerate(block.lines):
        m = EXPECT.match(line)
        if m:
            where = f"block {block.number} (README line {block.line + offset})"
            if not any(l.strip() and not l.strip().startswith("#") for l in pending):
                raise ReadmeError(f"{where}: an expectation with no command before it")
            expected = parse_expectation(m.group(1), where)
            start = block.line + offset - len(pending)
            steps.append(
                Step(block, len(steps) + 1, pending_line, "\n".join(pending) + "\n", m.group(1), expected, start)
            )
            pending, pending_line = [], None
            continue
        if pending_line is None and line.strip() and not line.strip().startswith("#"):
            pending_line = block.line + offset
        pending.append(line)
    if any(l.strip() and not l.strip().startswith("#") for l in pending):
        start = block.line + len(block.lines) - len(pending)
        steps.append(Step(block, len(steps) + 1, pending_line, "\n".join(pending) + "\n", None, None, start))
    for step in steps:
        code = [l for l in step.text.splitlines() if not l.strip().startswith("#")]
        curls = sum(len(CURL.findall(l)) for l in code)
        for offset, l in enumerate(step.text.splitlines()):
            if not l.strip().startswith("#") and CURL.search(l):
                step.line = step.start + offset  # name the step by its request
                break
        if curls > 1:
            raise ReadmeError(f"{step.label}: {curls} curl commands in one step; put a `# → ...` after each")
        if curls and step.expected_text is None:
            raise ReadmeError(f"{step.label}: a curl command with no `# → ...` expectation after it")
    return steps


def starts_server(block):
    code = (l for l in block.lines if not l.strip().startswith("#"))
    return any(re.search(r"(^|[\s;&|(])sessiond\s+serve\b", l) for l in code)


# ----------------------------------------------------------------------------
# Checking answers


def contains(actual, expected):
    """Whether `actual` holds `expected` (see "Steps and expectations")."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return False
        items = iter(actual)
        return all(any(contains(item, want) for item in items) for want in expected)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return expected == actual
    return type(expected) is type(actual) and expected == actual


def output_json(output):
    """The step's output as JSON: all of it, or else its last line."""
    text = output.strip()
    candidates = [text]
    if "\n" in text:
        candidates.append(text.rsplit("\n", 1)[1].strip())
    for candidate in candidates:
        try:
            return True, json.loads(candidate)
        except json.JSONDecodeError:
            pass
    return False, None


def find_secret(value):
    """The last string under a `secret` key, at any depth."""
    found = None
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "secret" and isinstance(v, str):
                found = v
            else:
                found = find_secret(v) or found
    elif isinstance(value, list):
        for v in value:
            found = find_secret(v) or found
    return found


# ----------------------------------------------------------------------------
# TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps)


def totp_at(secret_base32, step):
    key = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    start = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[start : start + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


class Codes:
    """Codes as an app shows them, never one time step twice."""

    def __init__(self):
        self.secret = None
        self.last_step = None

    def next(self):
        if self.secret is None:
            raise ReadmeError(f"{CODE_PLACEHOLDER} is used before any example printed a TOTP `secret`")
        while True:
            now = time.time()
            current = int(now) // 30
            left = 30 - now % 30
            # The previous step is accepted until the current one ends:
            # use it only while there is time to spare.
            lowest = current - 1 if left > 5 else current
            step = lowest if self.last_step is None else max(lowest, self.last_step + 1)
            if step <= current + 1:
                self.last_step = step
                return totp_at(self.secret, step)
            print(f"   (waiting {left:.0f} s for the next TOTP time step)", flush=True)
            time.sleep(left + 0.5)


# ----------------------------------------------------------------------------
# Processes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, workdir):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIOND_") and k != "DATABASE_URL"}
    env.update(
        {
            "DATABASE_URL": f"sqlite://{workdir}/sessiond.db",
            "SESSIOND_BIND": f"127.0.0.1:{port}",
            "RUST_LOG": "warn",
        }
    )
    out_path = os.path.join(workdir, "server.out")
    with open(out_path, "w") as out, open(os.path.join(workdir, "server.log"), "w") as log:
        server = subprocess.Popen([binary, "serve"], env=env, stdout=out, stderr=log, cwd=workdir)
    deadline = time.monotonic() + 60
    password = None
    while password is None and server.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        with open(out_path) as f:
            m = re.search(r"one-time password (\S+)", f.read())
        password = m and m.group(1)
    if not password:
        server.kill()
        server.wait()
        sys.exit("readme examples: sessiond did not print the admin's one-time password")
    return server, port, password


class Shell:
    """One bash process; each step is sourced into it, so state carries."""

    def __init__(self, workdir, bindir):
        self.dir = os.path.join(workdir, ".steps")
        os.makedirs(self.dir)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIOND_") and k != "DATABASE_URL"}
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=env,
            text=True,
            start_new_session=True,
        )
        self.count = 0
        # Every failing command is written down, as `set -e` would stop at
        # it (but the shell has to live on to say so).
        self.send(
            "set -o pipefail\n"
            "trap '__status=$?; printf \"line %s: %s (exit status %s)\\n\" "
            "\"$LINENO\" \"$BASH_COMMAND\" \"$__status\" >> \"$__STEP_FAILURES\"' ERR\n"
        )

    def send(self, text):
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def run(self, script, timeout):
        """Runs `script` in the shell; returns (status, stdout, stderr, failed commands)."""
        self.count += 1
        base = os.path.join(self.dir, str(self.count))
        with open(base + ".sh", "w") as f:
            f.write(script)
        open(base + ".failures", "w").close()
        marker = f"__step_{self.count}_done__"
        self.send(
            f"__STEP_FAILURES={base}.failures; source {base}.sh > {base}.out 2> {base}.err < /dev/null; "
            f"echo \"{marker} $?\"\n"
        )
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        status = None
        while status is None:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                status = "timeout"
                break
            line = self.proc.stdout.readline()
            if not line:
                status = "the shell exited"
                break
            if line.startswith(marker):
                status = int(line.split()[1])
        selector.close()
        with open(base + ".out", errors="replace") as f:
            out = f.read()
        with open(base + ".err", errors="replace") as f:
            err = f.read()
        with open(base + ".failures", errors="replace") as f:
            failures = [l for l in f.read().splitlines() if not l.split(": ", 1)[-1].startswith(f"source {base}.sh")]
        return status, out, err, failures

    def stop(self):
        # The shell leads its own process group, with everything the examples
        # started in the background.
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        # Give background jobs of the group a moment, then make sure.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ----------------------------------------------------------------------------


def indent(text, prefix="    "):
    text = text.rstrip("\n")
    return "\n".join(prefix + line for line in text.splitlines()) if text else prefix + "(nothing)"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "sessiond"))
    parser.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    parser.add_argument("--step-timeout", type=float, default=STEP_TIMEOUT_SECONDS, help="seconds one step may take")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args()

    for tool in ("bash", "curl", "jq"):
        if shutil.which(tool) is None:
            sys.exit(f"readme examples: `{tool}` is not installed")
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        sys.exit(f"readme examples: no binary at {binary}; build it with `cargo build --release --bins`")

    with open(args.readme, encoding="utf-8") as f:
        readme = f.read()
    try:
        blocks = read_blocks(readme)
        steps = [step for block in blocks for step in split_steps(block)]
    except ReadmeError as e:
        sys.exit(f"readme examples: {e}")
    shown = os.path.relpath(args.readme)
    shown = args.readme if shown.startswith("..") else shown
    print(f"readme examples: {len(blocks)} blocks, {len(steps)} steps from {shown}", flush=True)

    serverdir = tempfile.mkdtemp(prefix="sessiond-readme-server-")
    workdir = tempfile.mkdtemp(prefix="sessiond-readme-")
    bindir = os.path.join(serverdir, "bin")
    os.makedirs(bindir)
    os.symlink(binary, os.path.join(bindir, "sessiond"))

    config = os.path.join(ROOT, "schemathesis.toml")
    if os.path.exists(config):
        os.symlink(config, os.path.join(workdir, "schemathesis.toml"))

    server, port, password = start_server(binary, serverdir)
    print(f"readme examples: sessiond on 127.0.0.1:{port}, examples run in {workdir}", flush=True)
    shell = Shell(workdir, bindir)
    codes = Codes()
    failed = None
    try:
        for step in steps:
            if step.index == 1 and starts_server(step.block):
                # This block starts a server of its own: from here on the
                # README's address is another free port.
                port = free_port()
            script = step.text.replace(README_ADDRESS, f"127.0.0.1:{port}").replace(PASSWORD_PLACEHOLDER, password)
            try:
                while CODE_PLACEHOLDER in script:
                    script = script.replace(CODE_PLACEHOLDER, codes.next(), 1)
            except ReadmeError as e:
                failed = f"{step.label}: {e}"
                break
            status, out, err, failures = shell.run(script, args.step_timeout)
            problem = None
            if not isinstance(status, int):
                problem = f"it did not finish: {status}"
            elif failures:
                readme_lines = [
                    re.sub(r"^line (\d+)", lambda m: f"README line {step.start + int(m.group(1)) - 1}", f)
                    for f in failures
                ]
                problem = "a command failed: " + "; ".join(readme_lines)
            elif status != 0:
                problem = f"it exited with status {status}"
            is_json, actual = output_json(out)
            if step.expected_text is not None and problem is None:
                if not is_json:
                    problem = "its output is not JSON"
                elif not contains(actual, step.expected):
                    problem = "its output does not contain what the README says"
            secret = find_secret(actual)
            if secret:
                codes.secret = secret
            if problem:
                failed = "\n".join(
                    [
                        f"FAIL {step.label}, in {step.block.section!r}: {problem}",
                        "  command (as run):",
                        indent(script),
                        "  expected (the output contains):",
                        indent(step.expected_text or "(no expectation: every command succeeds)"),
                        "  output:",
                        indent(out),
                        "  standard error:",
                        indent(err),
                    ]
                )
                break
            arrow = f"  → {step.expected_text}" if step.expected_text is not None else ""
            print(f"ok   {step.label}: {step.summary}{arrow}", flush=True)
    finally:
        shell.stop()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if failed:
            with open(os.path.join(serverdir, "server.log"), errors="replace") as f:
                log = f.read().strip().splitlines()[-20:]
            if log:
                failed += "\n  the server's log (last lines):\n" + indent("\n".join(log))
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
            shutil.rmtree(serverdir, ignore_errors=True)
    if failed:
        print(failed, flush=True)
        sys.exit("readme examples: failed")
    print(f"readme examples: all {len(steps)} steps did what the README says", flush=True)


if __name__ == "__main__":
    main()
