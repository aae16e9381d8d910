"""Several hosts on one machine: Linux network namespaces joined by veth pairs (iproute2).

    root ns (the test) --10.77.0.1/24-- [server ns 10.77.0.2] --10.77.<i>.1/24-- [node-<i> ns 10.77.<i>.2]

The server runs in its own namespace, each agent in another; the test reaches the server's API
over the root link and serves the webhook receiver there. Everything is removed on close(), also
when a test fails (the namespaces are deleted, which deletes their veths, and every process this
lab started is killed with its group). Needs root (CAP_NET_ADMIN); Lab.available() says why not.
"""

import json
import shlex
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

SOURCE_DIR = os.environ.get("SHEPHERD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("SHEPHERD_BINARY", "shepherd")
FIXTURES = os.path.join(SOURCE_DIR, "tests", "fixtures")
PORT = 8443


def run(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


class Lab:
    @staticmethod
    def available():
        """"" when namespaces can be made here, else why not."""
        if os.geteuid() != 0:
            return "not root: network namespaces need CAP_NET_ADMIN"
        if shutil.which("ip") is None:
            return "no `ip` (Debian's iproute2)"
        probe = f"shp-probe-{os.getpid()}"
        r = run("ip", "netns", "add", probe, check=False)
        if r.returncode != 0:
            return "cannot create a network namespace: " + r.stderr.strip()
        run("ip", "netns", "del", probe, check=False)
        return ""

    count = 0

    def __init__(self, nodes, policy=None, controllers=1):
        Lab.count += 1  # names unique per lab: a test process makes several
        self.tag = f"{os.getpid() % 100000}x{Lab.count}"
        self.dir = tempfile.mkdtemp(prefix="shepherd-lab-")
        os.chmod(self.dir, 0o755)
        self.namespaces = []
        self.processes = []
        # Several controllers share the server's namespace and directory, each on its own port
        # (PORT + k); they need the MariaDB store.
        self.controllers = controllers
        self.servers = [None] * controllers
        self.paused = set()
        self.server_logs = [os.path.join(self.dir, f"server-{k + 1}.log") for k in range(controllers)]
        self.server_ns = self._namespace("s")
        self._link("r", None, self.server_ns, "10.77.0.1", "10.77.0.2")
        self.nodes = {}
        for i in range(1, nodes + 1):
            ns = self._namespace(str(i))
            self._link(str(i), self.server_ns, ns, f"10.77.{i}.1", f"10.77.{i}.2")
            self.nodes[f"node-{i}"] = Node(self, f"node-{i}", ns, f"10.77.{i}.2", f"10.77.{i}.1")
        self.policy = {"max_retries": 1, "diag_level": 1, "diag_timeout": 60,
                       "reboot_timeout": 60, "heartbeat_timeout": 30}
        self.policy.update(policy or {})
        self._init_server()

    # ---- namespaces and links ----

    def _namespace(self, suffix):
        name = f"shp{self.tag}-{suffix}"
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def _link(self, suffix, ns_a, ns_b, addr_a, addr_b):
        a, b = f"va{self.tag}{suffix}", f"vb{self.tag}{suffix}"
        run("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        run("ip", "link", "set", b, "netns", ns_b)
        if ns_a:
            run("ip", "link", "set", a, "netns", ns_a)
        ip_a = ["ip", "-n", ns_a] if ns_a else ["ip"]
        run(*ip_a, "addr", "add", addr_a + "/24", "dev", a)
        run(*ip_a, "link", "set", a, "up")
        run("ip", "-n", ns_b, "addr", "add", addr_b + "/24", "dev", b)
        run("ip", "-n", ns_b, "link", "set", b, "up")

    def set_node_link(self, name, up):
        """Cuts (or restores) a node's only cable: its end of the veth goes down."""
        index = name.split("-")[1]
        node = self.nodes[name]
        run("ip", "-n", node.ns, "link", "set", f"vb{self.tag}{index}", "up" if up else "down")

    def spawn(self, ns, args, log, env=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(log, "ab") as out:
            p = subprocess.Popen(["ip", "netns", "exec", ns] + args, stdout=out, stderr=subprocess.STDOUT,
                                 env=full_env, start_new_session=True)
        self.processes.append(p)
        return p

    # ---- the server ----

    def _init_server(self):
        self.server_dir = os.path.join(self.dir, "server")
        names = ["10.77.0.2"] + [n.server_ip for n in self.nodes.values()]
        args = [BINARY, "server", "init", self.server_dir, "--listen", f"0.0.0.0:{PORT}"]
        for n in names:
            args += ["--name", n]
        run(*args)
        self.ca = os.path.join(self.server_dir, "tls", "ca.crt")
        with open(os.path.join(self.server_dir, "secrets", "admin.token")) as f:
            self.admin_token = f.read().strip()
        self.bootstrap_token_file = os.path.join(self.server_dir, "secrets", "bootstrap.token")
        self.webhook_file = os.path.join(self.server_dir, "webhook.url")
        self.write_config()

    @staticmethod
    def mariadb_wanted():
        """SHEPHERD_E2E_STORE=mariadb: the server keeps its state in MariaDB (scripts/test's private
        server, reached through its Unix socket, which every namespace shares)."""
        return os.environ.get("SHEPHERD_E2E_STORE") == "mariadb"

    def _mariadb_store(self):
        """A database of this lab's own on the test server; the store lines of the config."""
        sock = os.environ.get("SHEPHERD_TEST_MYSQL_SOCKET")
        password_file = os.environ.get("SHEPHERD_TEST_MYSQL_PASSWORD_FILE")
        if not sock or not password_file:
            raise RuntimeError("SHEPHERD_E2E_STORE=mariadb needs SHEPHERD_TEST_MYSQL_SOCKET and "
                               "SHEPHERD_TEST_MYSQL_PASSWORD_FILE (scripts/test sets them)")
        self.mariadb_database = f"shepherd_e2e_{self.tag}"
        self.mariadb_socket = sock
        run("mariadb", "--no-defaults", f"--socket={sock}", "-uroot", "-e",
            f"CREATE DATABASE {self.mariadb_database}")
        url = f"mariadb://shepherd_test@localhost/{self.mariadb_database}?socket={sock}"
        return [f'  url: "{url}"', f'  password_file: "{password_file}"']

    def write_config(self, webhook_url=None):
        if self.mariadb_wanted():
            if not hasattr(self, "store_lines"):
                self.store_lines = self._mariadb_store()
        else:
            self.store_lines = [f'  path: "{self.server_dir}/data/shepherd.db"']
        lines = ["cluster_name: lab", f'listen: "0.0.0.0:{PORT}"', "store:"] + self.store_lines
        if self.controllers > 1:  # a short lease, so a paused leader is replaced within seconds
            lines += ["controller:", "  lease_ttl: 3"]
        lines += ["policy:"]
        lines += [f"  {k}: {v}" for k, v in self.policy.items()]
        if webhook_url:
            with open(self.webhook_file, "w") as f:
                f.write(webhook_url + "\n")
            os.chmod(self.webhook_file, 0o600)
            lines += ["notify:", f'  webhook_url_file: "{self.webhook_file}"']
        with open(os.path.join(self.server_dir, "shepherd.yaml"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def ports(self):
        return [PORT + k for k in range(self.controllers)]

    def start_server(self, k=None):
        """Starts controller k (0-based), or every one not running."""
        for i in range(self.controllers) if k is None else [k]:
            if self.servers[i] is not None and self.servers[i].poll() is None:
                continue
            args = [BINARY, "server", "--dir", self.server_dir]
            if self.controllers > 1:
                args += ["--listen", f"0.0.0.0:{PORT + i}", "--controller-name", f"c{i + 1}",
                         "--url", f"https://10.77.0.2:{PORT + i}"]
            self.servers[i] = self.spawn(self.server_ns, args, self.server_logs[i])
            wait_for(lambda: self._healthy(PORT + i), 20, f"controller {i + 1} to answer /healthz")

    def kill_server(self, k=None):
        """kill -9 (of the leader, unless k says which): no chance to finish anything."""
        k = self.leader() if k is None else k
        self.servers[k].send_signal(signal.SIGKILL)
        self.servers[k].wait()
        return k

    def pause(self, k):
        """SIGSTOP: the process keeps its connections but does nothing, as a stalled machine."""
        self.paused.add(k)
        self.servers[k].send_signal(signal.SIGSTOP)

    def resume(self, k):
        self.servers[k].send_signal(signal.SIGCONT)
        self.paused.discard(k)

    def start_all_at_once(self):
        """Every controller at the same moment (none waits for another to answer)."""
        for i in range(self.controllers):
            args = [BINARY, "server", "--dir", self.server_dir, "--listen", f"0.0.0.0:{PORT + i}",
                    "--controller-name", f"c{i + 1}", "--url", f"https://10.77.0.2:{PORT + i}"]
            self.servers[i] = self.spawn(self.server_ns, args, self.server_logs[i])
        for port in self.ports():
            wait_for(lambda: self._healthy(port), 30, f"the controller on port {port} to answer")

    def sql(self, query):
        """A query on this lab's MariaDB database, as root over the socket: its rows' columns."""
        r = run("mariadb", "--no-defaults", f"--socket={self.mariadb_socket}", "-uroot", "-N", "-B",
                self.mariadb_database, "-e", query)
        return [line.split("\t") for line in r.stdout.splitlines()]

    def leader(self):
        """The index of the controller that leads now."""
        if self.controllers == 1:
            return 0
        name = wait_for(lambda: (self.api("GET", "/api/cluster").get("leader") or {}).get("name"), 30,
                        "a controller to lead")
        return int(name[1:]) - 1

    def _healthy(self, port):
        try:
            return self._request(port, "GET", "/healthz", None, False) == {"ok": True}
        except OSError:
            return False

    def _request(self, port, method, path, body, token):
        ctx = ssl.create_default_context(cafile=self.ca)
        req = urllib.request.Request(f"https://10.77.0.2:{port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
        if token:  # True: the admin token; a string: that token
            req.add_header("Authorization",
                           "Bearer " + (token if isinstance(token, str) else self.admin_token))
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            text = r.read().decode()
            return json.loads(text) if r.headers.get_content_type() == "application/json" else text

    def api(self, method, path, body=None, token=True, expect_error=False):
        """The API of the first running controller that answers: a standby serves reads and
        redirects commands (307), which go to the next one."""
        last = None
        for i, port in enumerate(self.ports()):
            if self.controllers > 1 and (self.servers[i] is None or self.servers[i].poll() is not None
                                         or i in self.paused):
                continue
            try:
                return self._request(port, method, path, body, token)
            except urllib.error.HTTPError as e:
                text = e.read().decode()
                if e.code in (307, 503) and self.controllers > 1:
                    last = OSError(f"{method} {path} on controller {i + 1}: HTTP {e.code}: {text}")
                    continue
                if expect_error:
                    return {"status": e.code, **json.loads(text)}
                raise AssertionError(f"{method} {path}: HTTP {e.code}: {text}")
            except OSError as e:
                last = e
        raise last or OSError("no controller runs")

    def job(self, job_id):
        return self.api("GET", f"/api/jobs/{job_id}")

    def timeline(self):
        return self.api("GET", "/api/timeline")

    def server_log_text(self):
        text = ""
        for k, log in enumerate(self.server_logs):
            if os.path.exists(log):
                if self.controllers > 1:
                    text += f"---- controller {k + 1} ----\n"
                with open(log, errors="replace") as f:
                    text += f.read()
        return text

    # ---- teardown ----

    def close(self):
        for n in self.nodes.values():
            n.stop_agent()
        for p in self.processes:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        # Tasks a killed agent left (they run in groups of their own) die with their node's netns
        # processes: anything still in a lab namespace is killed before the namespace goes.
        for ns in self.namespaces:
            pids = run("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for ns in self.namespaces:
            run("ip", "netns", "del", ns, check=False)
        if getattr(self, "mariadb_database", None):  # after the server is gone
            run("mariadb", "--no-defaults", f"--socket={self.mariadb_socket}", "-uroot", "-e",
                f"DROP DATABASE IF EXISTS {self.mariadb_database}", check=False)
        if os.environ.get("SHEPHERD_KEEP_LAB"):
            print("lab kept in", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Node:
    """A GPU node: its namespace, its agent (restarted by a loop, as systemd restarts it after a
    reboot), a boot id file, a fake dcgmi and a reboot command."""

    def __init__(self, lab, name, ns, ip, server_ip):
        self.lab, self.name, self.ns, self.ip, self.server_ip = lab, name, ns, ip, server_ip
        self.dir = os.path.join(lab.dir, name)
        self.state = os.path.join(self.dir, "state")
        self.bin = os.path.join(self.dir, "bin")
        os.makedirs(self.bin)
        self.boot_id_file = os.path.join(self.dir, "boot_id")
        self.kernel_log = os.path.join(self.dir, "kmsg")
        self.reboots_file = os.path.join(self.dir, "reboots")
        self.faulty_file = os.path.join(self.dir, "faulty")
        self.stop_file = os.path.join(self.dir, "stop")
        self.log = os.path.join(self.dir, "agent.log")
        self.loop = None
        write(self.boot_id_file, f"{name}-boot-0\n")
        write(self.kernel_log, "")
        self._write_scripts()

    def _write_scripts(self):
        fail = os.path.join(FIXTURES, "dcgm", "synthetic-4x-multi-gpu-fail.json")
        ok = os.path.join(FIXTURES, "dcgm", "nvvs-3.1.0-deployment-pass.txt")  # a real pass
        # dcgmi: a real DCGM JSON failure while the node is faulty, a real pass otherwise.
        script(os.path.join(self.bin, "dcgmi"), f"""#!/bin/sh
echo "$@" >> "{self.dir}/dcgmi.calls"
if [ -f "{self.dir}/slow" ]; then sleep 5; fi
if [ -f "{self.faulty_file}" ]; then cat "{fail}"; exit 226; fi
cat "{ok}"
""")
        # The reboot: a new boot id, the fault cured, every process of the node gone (the agent
        # first; its loop starts it again, as systemd would after the boot).
        script(os.path.join(self.bin, "reboot"), f"""#!/bin/sh
n=$(cat "{self.reboots_file}" 2>/dev/null || echo 0); echo $((n + 1)) > "{self.reboots_file}"
echo "{self.name}-boot-$((n + 1))" > "{self.boot_id_file}"
rm -f "{self.faulty_file}"
(sleep 0.3; pkill -KILL -f -- "--dir {self.state} ") > /dev/null 2>&1 &
exit 0
""")

    def enrol(self):
        r = run("ip", "netns", "exec", self.ns, BINARY, "agent", "--server", self.servers(), "--ca", self.lab.ca,
                "--dir", self.state, "enrol", "--name", self.name,
                "--bootstrap-token-file", self.lab.bootstrap_token_file, check=False)
        if r.returncode != 0:
            raise AssertionError("enrol failed: " + r.stderr)

    def servers(self):
        """Every controller, as this node reaches them."""
        return ",".join(f"https://{self.server_ip}:{port}" for port in self.lab.ports())

    def agent_args(self):
        return [BINARY, "agent", "--server", self.servers(), "--ca", self.lab.ca,
                "--dir", self.state, "--boot-id-file", self.boot_id_file, "--ip", self.ip,
                "--kernel-log", self.kernel_log, "--diag-command", f"{self.bin}/dcgmi diag -r {{level}} -j",
                "--reboot-command", f"{self.bin}/reboot", "--stop-grace", "1",
                "--backoff-base", "0.2", "--backoff-cap", "1"]

    def start_agent(self):
        os.makedirs(self.state, exist_ok=True)
        # The agent's command line is in a file, so that only the agent, not this loop, matches the
        # reboot script's pkill.
        command = os.path.join(self.dir, "agent.cmd")
        script(command, "#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in self.agent_args()) + "\n")
        loop = f'while [ ! -f "{self.stop_file}" ]; do "{command}" >> "{self.log}" 2>&1; sleep 0.3; done'
        self.loop = self.lab.spawn(self.ns, ["sh", "-c", loop], self.log,
                                   env={"PATH": self.bin + ":" + os.environ.get("PATH", "")})

    def stop_agent(self):
        write(self.stop_file, "")
        run("pkill", "-KILL", "-f", "--", f"--dir {self.state} ", check=False)

    def reboots(self):
        try:
            return int(read(self.reboots_file).strip())
        except FileNotFoundError:
            return 0

    def log_text(self):
        try:
            return read(self.log)
        except FileNotFoundError:
            return ""


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def script(path, text):
    write(path, text)
    os.chmod(path, 0o755)


def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, AssertionError) as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what} (last: {last!r})")
