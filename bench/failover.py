#!/usr/bin/env python3
"""Fail-over time of Shepherd controllers sharing one MariaDB database.

Starts --controllers `shepherd server` processes on one server directory and one fresh database,
then, --runs times: kills the leader with SIGKILL and times until the first decision by the new
leader, that is the first `POST /api/jobs` to a surviving controller answered 409 (no node is
enrolled, so the engine refuses the job) or 201, not 307 (standby), 503 (no leader) or nothing.
The killed controller comes back as a standby before the next run. Prints p50, p99 (nearest
rank), min and max, then one JSON line.

    bench/failover.py --runs 3 --ttl 3         # a quick try
    bench/failover.py                          # 20 runs, lease ttl 10 s, 3 controllers

MariaDB: --mariadb-url and --password-file, by default $SHEPHERD_TEST_MYSQL_URL and
$SHEPHERD_TEST_MYSQL_PASSWORD_FILE; the user must be allowed to create databases `shepherd_%`.
The database shepherd_failover_<pid> is created and dropped at the end. Python 3, stdlib only.
"""
import argparse, json, os, shutil, signal, socket, ssl, subprocess, sys, tempfile, threading, time
import urllib.error, urllib.parse, urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class Failure(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nearest_rank(ordered, pct):
    return ordered[max(0, -(-len(ordered) * pct // 100) - 1)]


class Database:
    """A fresh database on the server of URL, made and dropped with the mariadb CLI."""

    def __init__(self, url, password_file):
        self.url = urllib.parse.urlsplit(url)
        self.password = Path(password_file).read_text().rstrip("\n")
        self.name = f"shepherd_failover_{os.getpid()}"
        self.created = False

    def store_url(self):
        return urllib.parse.urlunsplit(self.url._replace(path="/" + self.name))

    def sql(self, statement):
        socket_path = urllib.parse.parse_qs(self.url.query).get("socket", [None])[0]
        where = [f"--socket={socket_path}"] if socket_path else \
            ["-h", self.url.hostname, "-P", str(self.url.port or 3306)]
        # As the store's user, the password in the environment (not on a visible command line);
        # else as root on the socket that scripts/test exports.
        attempts = [(where + ["-u", self.url.username], dict(os.environ, MYSQL_PWD=self.password))]
        if os.environ.get("SHEPHERD_TEST_MYSQL_SOCKET"):
            attempts.append(([f"--socket={os.environ['SHEPHERD_TEST_MYSQL_SOCKET']}", "-uroot"],
                             os.environ))
        for args, env in attempts:
            done = subprocess.run(["mariadb", "--no-defaults", *args, "-e", statement], env=env,
                                  capture_output=True, text=True)
            if done.returncode == 0:
                return
        raise Failure(f"mariadb: {statement}: {done.stderr.strip()}")

    def create(self):
        self.sql(f"CREATE DATABASE `{self.name}`")
        self.created = True

    def drop(self):
        if self.created:
            self.sql(f"DROP DATABASE IF EXISTS `{self.name}`")


class Controller:
    """One `shepherd server` on the shared directory, restartable under the same name and port."""

    def __init__(self, binary, server_dir, name, logs):
        self.name, self.port = name, free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.args = [binary, "server", "--dir", server_dir, "--listen", f"127.0.0.1:{self.port}",
                     "--controller-name", name]
        self.log = Path(logs) / f"{name}.log"
        self.proc, self.log_offset = None, 0

    def start(self):
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            # Its own session: a Ctrl-C reaches only this script, which then kills it.
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def campaigning(self):  # it said its role since its last start
        text = self.log.read_bytes()[self.log_offset:].decode(errors="replace")
        return "shepherd server: standby" in text or " leads (epoch" in text

    def kill(self):
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_):  # a standby's 307 is its answer, not a hop to the leader
        return None


class Cluster:
    def __init__(self, args, tmp):
        self.dir = Path(tmp, "server")
        subprocess.run([args.binary, "server", "init", str(self.dir), "--listen",
                        f"127.0.0.1:{free_port()}", "--name", "127.0.0.1"],
                       check=True, stdout=subprocess.DEVNULL)
        self.write_config(args)
        self.token = (self.dir / "secrets" / "admin.token").read_text().strip()
        tls = ssl.create_default_context(cafile=str(self.dir / "tls" / "ca.crt"))
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=tls),
                                                  NoRedirect)
        os.mkdir(os.path.join(tmp, "logs"))
        self.controllers = [Controller(args.binary, str(self.dir), f"c{k}", Path(tmp, "logs"))
                            for k in range(1, args.controllers + 1)]

    def write_config(self, args):
        # The generated `store:` block names a SQLite file; a second `store:` key is an error.
        config = self.dir / "shepherd.yaml"
        lines = config.read_text().splitlines()
        i = lines.index("store:")
        if not lines[i + 1].startswith("  path:"):
            raise Failure(f"{config}: unexpected store block: {lines[i + 1]!r}")
        del lines[i:i + 2]
        password = self.dir / "secrets" / "store.password"
        password.touch(mode=0o600)
        password.write_text(args.db.password)
        lines += ["store:", f'  url: "{args.db.store_url()}"', f'  password_file: "{password}"',
                  "controller:", f"  lease_ttl: {args.ttl:g}"]
        config.write_text("\n".join(lines) + "\n")

    def request(self, controller, method, path, body=None, timeout=5):
        """(HTTP status, JSON body or None); (None, None) when there is no answer."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(controller.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with self.opener.open(req, timeout=timeout) as reply:
                return reply.status, json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, None
        except (OSError, ValueError):
            return None, None

    def settled_leader(self, deadline):
        """Waits until every controller runs, answers, campaigns and is listed alive, under a
        leader with a live lease: (leading Controller, epoch)."""
        names = {c.name for c in self.controllers}
        while time.monotonic() < deadline:
            for c in self.controllers:
                if not c.running():
                    raise Failure(f"controller {c.name} exited with {c.proc.returncode}")
            views = [self.request(c, "GET", "/api/cluster", timeout=2)[1]
                     for c in self.controllers]
            if all(views) and all(c.campaigning() for c in self.controllers):
                leader = views[0]["leader"]
                alive = {c["name"] for c in views[0]["controllers"] if c["alive"]}
                if leader and not leader["lapsed"] and leader["name"] in names and names <= alive:
                    return next(c for c in self.controllers if c.name == leader["name"]), \
                        leader["epoch"]
            time.sleep(0.1)
        raise Failure("the controllers did not settle under one leader with all of them alive")

    def first_decision(self, survivors, run, deadline):
        """Polls each survivor in its own thread (a slow answer from one must not delay the
        other) every ~20 ms: (monotonic time, Controller) of the first decided POST /api/jobs."""
        decided, lock = [], threading.Lock()

        def poll(c):
            attempt = 0
            while not decided and time.monotonic() < deadline:
                attempt += 1
                job = {"id": f"probe-{run}-{c.name}-{attempt}", "nodes": 1, "command": ["true"]}
                if self.request(c, "POST", "/api/jobs", job, timeout=2)[0] in (201, 409):
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
            raise Failure(f"run {run}: no surviving controller decided in time")
        return min(decided, key=lambda d: d[0])


def measure(args, cluster):
    times, warnings = [], []
    settle = 30 + 3 * args.ttl  # a fresh start, at worst with a lapsing lease
    for run in range(1, args.runs + 1):
        for c in cluster.controllers:
            if not c.running():
                c.start()  # at first all; then the one killed in the previous run, as a standby
        leader, epoch = cluster.settled_leader(time.monotonic() + settle)
        code = cluster.request(leader, "POST", "/api/jobs",
                               {"id": f"probe-{run}-before", "nodes": 1, "command": ["true"]})[0]
        if code not in (201, 409):  # the probe must be one the leader decides
            raise Failure(f"run {run}: the leader {leader.name} answered {code} to a probe job")
        survivors = [c for c in cluster.controllers if c is not leader]
        t0 = time.monotonic()
        leader.proc.kill()
        t1, winner = cluster.first_decision(survivors, run, t0 + settle)
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
    p50, p99 = nearest_rank(ordered, 50), nearest_rank(ordered, 99)
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
    p.add_argument("--binary", default=os.environ.get("SHEPHERD_BINARY",
                                                      str(REPO / "build" / "shepherd")))
    p.add_argument("--mariadb-url", default=os.environ.get("SHEPHERD_TEST_MYSQL_URL"))
    p.add_argument("--password-file", default=os.environ.get("SHEPHERD_TEST_MYSQL_PASSWORD_FILE"))
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--ttl", type=float, default=10, help="controller.lease_ttl, seconds")
    p.add_argument("--controllers", type=int, default=3, help="one leader, the others standbys")
    p.add_argument("--keep", action="store_true", help="keep the temp dir with the logs")
    args = p.parse_args()
    if not args.mariadb_url or not args.password_file:
        print("failover.py: no MariaDB configured. Give --mariadb-url "
              "mariadb://USER@HOST:PORT/DB and --password-file, or set SHEPHERD_TEST_MYSQL_URL "
              "and SHEPHERD_TEST_MYSQL_PASSWORD_FILE; USER must be allowed to create databases "
              "named shepherd_%. scripts/test starts a private MariaDB and exports these (see "
              "service_mariadb there), or point them at a server of your own.", file=sys.stderr)
        return 2
    if args.runs < 1 or args.controllers < 2 or args.ttl < 1:
        p.error("needs --runs >= 1, --controllers >= 2 and --ttl >= 1")
    if not os.access(args.binary, os.X_OK):
        p.error(f"no shepherd binary at {args.binary} (--binary or SHEPHERD_BINARY)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleans up as after Ctrl-C
    tmp = tempfile.mkdtemp(prefix="shepherd-failover.")
    db = cluster = None
    status = 1
    try:
        db = args.db = Database(args.mariadb_url, args.password_file)
        db.create()
        cluster = Cluster(args, tmp)
        report(args, *measure(args, cluster))
        status = 0
    except (Failure, subprocess.CalledProcessError, OSError) as e:
        print(f"failover.py: {e}", file=sys.stderr)
        print_log_tails(cluster)
    except KeyboardInterrupt:
        status = 130
    finally:
        for c in cluster.controllers if cluster else []:
            c.kill()
        try:
            if db:
                db.drop()
        except Failure as e:
            print(f"failover.py: {e}", file=sys.stderr)
        if args.keep:
            print(f"failover.py: logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
