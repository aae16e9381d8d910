#!/usr/bin/env python3
"""Fail-over time of Shepherd controllers sharing one MariaDB database.

Starts --controllers `shepherd server` processes on one server directory and one fresh database,
then, --runs times: kills the leader with SIGKILL and times until the first decision by the new
leader, that is the first `POST /api/jobs` to a surviving controller answered 409 (no node is
enrolled, so the engine refuses the job) or 201, not 307 (standby), 503 (no leader) or nothing.
The killed controller comes back as a standby before the next run. Each kill comes after a random
part of the standbys' campaign period (ttl/5), as a crash would: otherwise it lands just after
their attempts every time. Prints p50, p99 (nearest rank), min and max, then one JSON line.

    bench/failover.py --runs 3 --ttl 3         # a quick try
    bench/failover.py                          # 20 runs, lease ttl 10 s, 3 controllers

MariaDB: --mariadb-url and --password-file, by default $SHEPHERD_TEST_MYSQL_URL and
$SHEPHERD_TEST_MYSQL_PASSWORD_FILE; the user must be allowed to create databases `shepherd_%`.
The database shepherd_failover_<pid> is created and dropped at the end. Python 3, stdlib only.
"""
import argparse
import itertools
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path


class Failure(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_sql(url, password, statement):
    """One statement with the mariadb CLI as the store's user, the password in the environment
    (not on a command line that others can read)."""
    socket_path = urllib.parse.parse_qs(url.query).get("socket", [None])[0]
    where = [f"--socket={socket_path}"] if socket_path else \
        ["-h", url.hostname, "-P", str(url.port or 3306)]
    done = subprocess.run(["mariadb", "--no-defaults", *where, "-u", url.username, "-e", statement],
                          env=dict(os.environ, MYSQL_PWD=password), capture_output=True, text=True)
    if done.returncode != 0:
        raise Failure(f"mariadb: {statement}: {done.stderr.strip()}")


class Controller:
    """One `shepherd server` on the shared directory, restartable under the same name and port."""

    def __init__(self, binary, server_dir, name, logs):
        self.name, self.port = name, free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.args = [binary, "server", "--dir", server_dir, "--listen", f"127.0.0.1:{self.port}",
                     "--controller-name", name]
        self.log = Path(logs) / f"{name}.log"
        self.proc = None

    def start(self):
        with open(self.log, "ab") as log:
            # Its own session: a Ctrl-C reaches only this script, which then kills it.
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True)

    def kill(self):
        if self.proc:
            self.proc.kill()  # a no-op once it has exited
            self.proc.wait()


class Cluster:
    def __init__(self, args, tmp, store_url, store_password):
        self.dir = Path(tmp, "server")
        subprocess.run([args.binary, "server", "init", str(self.dir), "--listen",
                        f"127.0.0.1:{free_port()}", "--name", "127.0.0.1"],
                       check=True, stdout=subprocess.DEVNULL)
        self.write_config(args.ttl, store_url, store_password)
        self.token = (self.dir / "secrets" / "admin.token").read_text().strip()
        self.tls = ssl.create_default_context(cafile=str(self.dir / "tls" / "ca.crt"))
        self.probe_ids = itertools.count(1)
        os.mkdir(os.path.join(tmp, "logs"))
        self.controllers = [Controller(args.binary, str(self.dir), f"c{k}", Path(tmp, "logs"))
                            for k in range(1, args.controllers + 1)]

    def write_config(self, ttl, store_url, store_password):
        # The generated `store:` block names a SQLite file; a second `store:` key is an error.
        config = self.dir / "shepherd.yaml"
        lines = config.read_text().splitlines()
        i = lines.index("store:")
        if not lines[i + 1].startswith("  path:"):
            raise Failure(f"{config}: unexpected store block: {lines[i + 1]!r}")
        del lines[i:i + 2]
        password = self.dir / "secrets" / "store.password"
        password.touch(mode=0o600)
        password.write_text(store_password)
        lines += ["store:", f'  url: "{store_url}"', f'  password_file: "{password}"',
                  "controller:", f"  lease_ttl: {ttl:g}"]
        config.write_text("\n".join(lines) + "\n")

    def request(self, controller, method, path, body=None, timeout=5):
        """(HTTP status, JSON body or None); (None, None) when there is no answer."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(controller.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:  # urllib follows no 307 for a POST: a standby's redirect comes back as HTTPError
            with urllib.request.urlopen(req, timeout=timeout, context=self.tls) as reply:
                return reply.status, json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, None
        except (OSError, ValueError):
            return None, None

    def decides(self, controller, timeout=2):
        """Whether CONTROLLER's engine decides a probe job: 201, or 409 as no node is enrolled
        (not 307 from a standby, 503 with no leader, nor no answer)."""
        job = {"id": f"probe-{next(self.probe_ids)}", "nodes": 1, "command": ["true"]}
        return self.request(controller, "POST", "/api/jobs", job, timeout=timeout)[0] in (201, 409)

    def settled_leader(self, deadline):
        """Waits until every controller runs, answers and is listed alive, and the leader's lease
        is live and it decides: (leading Controller, epoch)."""
        names = {c.name for c in self.controllers}
        while time.monotonic() < deadline:
            for c in self.controllers:
                if c.proc.poll() is not None:
                    raise Failure(f"controller {c.name} exited with {c.proc.returncode}")
            views = [self.request(c, "GET", "/api/cluster", timeout=2)[1]
                     for c in self.controllers]
            if all(views):
                leader = views[0]["leader"]
                alive = {c["name"] for c in views[0]["controllers"] if c["alive"]}
                if leader and not leader["lapsed"] and leader["name"] in names and names <= alive:
                    leading = next(c for c in self.controllers if c.name == leader["name"])
                    if self.decides(leading):
                        return leading, leader["epoch"]
            time.sleep(0.1)
        raise Failure("the controllers did not settle under one leader with all of them alive")

    def first_decision(self, survivors, deadline):
        """Polls each survivor in its own thread (a slow answer from one must not delay the
        other) every ~20 ms: (monotonic time, Controller) of the first decided POST /api/jobs."""
        decided, lock = [], threading.Lock()

        def poll(c):
            while not decided and time.monotonic() < deadline:
                if self.decides(c):
                    with lock:
                        decided.append((time.monotonic(), c))
                    return
                time.sleep(0.02)

        threads = [threading.Thread(target=poll, args=(c,), daemon=True) for c in survivors]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if not decided:
            raise Failure("no surviving controller decided in time")
        return min(decided, key=lambda d: d[0])


def measure(args, cluster):
    times, warnings = [], []
    settle = 30 + 3 * args.ttl  # a fresh start, at worst with a lapsing lease
    campaign_period = max(0.2, args.ttl / 5)  # as in Server::campaign
    for run in range(1, args.runs + 1):
        for c in cluster.controllers:
            if c.proc is None or c.proc.poll() is not None:
                c.start()  # at first all; then the one killed in the previous run, as a standby
        leader, epoch = cluster.settled_leader(time.monotonic() + settle)
        # The standbys campaign in step with the last take-over (the restarted one on its start,
        # right after it), and the view settles soon after: a kill now would always find their
        # next attempts nearly a whole period away.
        time.sleep(random.uniform(0, campaign_period))
        survivors = [c for c in cluster.controllers if c is not leader]
        t0 = time.monotonic()
        leader.proc.kill()
        t1, winner = cluster.first_decision(survivors, t0 + settle)
        leader.proc.wait()
        times.append(t1 - t0)
        now = (cluster.request(winner, "GET", "/api/cluster")[1] or {}).get("leader") or {}
        note = ""
        if now.get("name") != winner.name or now.get("epoch") != epoch + 1:
            note = (f"  !! then {now.get('name')} leads at epoch {now.get('epoch')}, not "
                    f"{winner.name} at {epoch + 1}")
            warnings.append(f"run {run}:{note}")
        print(f"run {run:3}: killed {leader.name} (epoch {epoch}), {winner.name} decided after "
              f"{t1 - t0:6.3f} s{note}", flush=True)
    return times, warnings


def report(args, times, warnings):
    ordered = sorted(times)
    p50, p99 = (ordered[max(0, -(-len(ordered) * pct // 100) - 1)] for pct in (50, 99))  # rank
    print("\nfail-over, leader killed (SIGKILL) -> first decision by the new leader")
    for label, value in [("controllers", args.controllers), ("lease ttl", f"{args.ttl:g} s"),
                         ("runs", len(times)), ("p50", f"{p50:.3f} s"), ("p99", f"{p99:.3f} s"),
                         ("min", f"{ordered[0]:.3f} s"), ("max", f"{ordered[-1]:.3f} s"),
                         ("epoch not +1", len(warnings))]:
        print(f"  {label:<13}{value:>10}")
    for w in warnings:
        print(f"  warning: {w}")
    ttl = int(args.ttl) if args.ttl == int(args.ttl) else args.ttl
    print(json.dumps({"runs": len(times), "ttl_s": ttl, "p50_s": round(p50, 4),
                      "p99_s": round(p99, 4)}))


def print_log_tails(cluster, lines=20):
    for c in cluster.controllers if cluster else []:
        if c.log.exists():
            tail = c.log.read_text(errors="replace").splitlines()[-lines:]
            print(f"--- {c.log} (last {len(tail)} lines)", *tail, sep="\n", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    repo = Path(__file__).resolve().parent.parent
    p.add_argument("--binary",
                   default=os.environ.get("SHEPHERD_BINARY", str(repo / "build" / "shepherd")))
    p.add_argument("--mariadb-url", default=os.environ.get("SHEPHERD_TEST_MYSQL_URL"))
    p.add_argument("--password-file", default=os.environ.get("SHEPHERD_TEST_MYSQL_PASSWORD_FILE"))
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--ttl", type=float, default=10, help="controller.lease_ttl, seconds")
    p.add_argument("--controllers", type=int, default=3, help="one leader, the others standbys")
    p.add_argument("--keep", action="store_true", help="keep the temp dir with the logs")
    args = p.parse_args()
    if not args.mariadb_url or not args.password_file:
        print("failover.py: no MariaDB configured. Give --mariadb-url mariadb://USER@HOST:PORT/DB "
              "and --password-file, or set SHEPHERD_TEST_MYSQL_URL and "
              "SHEPHERD_TEST_MYSQL_PASSWORD_FILE (USER may create databases `shepherd_%`). "
              "scripts/test starts a private MariaDB and exports both while it runs (see "
              "service_mariadb there); or use a server of your own.", file=sys.stderr)
        return 2
    if args.runs < 1 or args.controllers < 2 or args.ttl < 1:
        p.error("needs --runs >= 1, --controllers >= 2 and --ttl >= 1")
    if not os.access(args.binary, os.X_OK):
        p.error(f"no shepherd binary at {args.binary} (--binary or SHEPHERD_BINARY)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleans up as after Ctrl-C
    tmp = tempfile.mkdtemp(prefix="shepherd-failover.")
    url = urllib.parse.urlsplit(args.mariadb_url)
    database = f"shepherd_failover_{os.getpid()}"
    cluster, created, status = None, False, 1
    try:
        password = Path(args.password_file).read_text().rstrip("\n")
        run_sql(url, password, f"CREATE DATABASE `{database}`")
        created = True
        store_url = urllib.parse.urlunsplit(url._replace(path="/" + database))
        # Its own link to the binary: a rebuild meanwhile neither breaks a restart nor mixes builds.
        binary, args.binary = args.binary, os.path.join(tmp, "shepherd")
        try:
            os.link(binary, args.binary)
        except OSError:
            shutil.copy2(binary, args.binary)
        cluster = Cluster(args, tmp, store_url, password)
        report(args, *measure(args, cluster))
        status = 0
    except Exception as e:  # any failure: say what, show the logs, then clean up
        print(f"failover.py: {e if isinstance(e, Failure) else repr(e)}", file=sys.stderr)
        print_log_tails(cluster)
        if cluster and not args.keep:
            print("failover.py: --keep keeps the temp dir with the whole logs", file=sys.stderr)
    except KeyboardInterrupt:
        status = 130
    finally:
        for c in cluster.controllers if cluster else []:
            c.kill()
        try:
            if created:
                run_sql(url, password, f"DROP DATABASE IF EXISTS `{database}`")
        except Failure as e:
            print(f"failover.py: {e}", file=sys.stderr)
        if args.keep:
            print(f"failover.py: logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
