"""End to end on several hosts (network namespaces): `shepherd server` in one, `shepherd agent`
in others, real processes, real TLS, a real webhook receiver. Issue 10's cases (a)-(f).

Run one: SHEPHERD_BINARY=build/shepherd python3 tests/e2e/test_hosts.py HostsTest.test_gpu_fault_reboots_and_restarts
Exits 77 (ctest's skip) when namespaces cannot be made here, saying why.
"""

import http.server
import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from lab import Lab, wait_for, read, write, run, BINARY, PORT, SOURCE_DIR  # noqa: E402

# Attempt 0's task on node index 1 fails (exit 1); everything else runs a few seconds and ends
# well. Each task writes its environment where the test reads it.
TRAIN = ("env > \"$SHEPHERD_ENV_DIR/$SHEPHERD_NODE.$SHEPHERD_ATTEMPT.env\"; sleep 3; "
         "if [ \"$SHEPHERD_ATTEMPT\" = 0 ] && [ \"$NODE_RANK\" = 1 ]; then exit 1; fi; sleep 2")


class Webhook:
    """A real HTTP listener in the root namespace (the server reaches it over its link)."""

    def __init__(self):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("10.77.0.1", 0), Handler)
        self.url = f"http://10.77.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def statuses(lab, entity_id):
    return [e["to"] for e in lab.timeline() if e["id"] == entity_id]


class HostsTest(unittest.TestCase):
    def setUp(self):
        self.lab = None

    def tearDown(self):
        if self.lab:
            outcome = getattr(self, "_outcome", None)
            failed = outcome is not None and not outcome.success
            if failed or os.environ.get("SHEPHERD_LAB_LOGS"):
                print("\n---- server log (end) ----\n" + self.lab.server_log_text()[-6000:])
                for n in self.lab.nodes.values():
                    print(f"---- {n.name} agent log (end) ----\n" + n.log_text()[-3000:])
            self.lab.close()

    def make_lab(self, nodes, policy=None, webhook=False, controllers=1):
        if controllers > 1 and not Lab.mariadb_wanted():
            self.skipTest("several controllers share a MariaDB store (SHEPHERD_E2E_STORE=mariadb)")
        self.lab = Lab(nodes, policy, controllers)
        if webhook:  # in the root namespace, on the lab's link: after the lab
            self.webhook = Webhook()
            self.addCleanup(self.webhook.close)
            self.lab.write_config(self.webhook.url)
        self.lab.start_server()
        for n in self.lab.nodes.values():
            n.enrol()
            n.start_agent()
        wait_for(lambda: len([x for x in self.lab.api("GET", "/api/nodes") if x["status"] == "AVAILABLE"])
                 == nodes, 30, f"{nodes} nodes AVAILABLE")
        return self.lab

    def submit(self, job_id, command, nodes):
        env_dir = os.path.join(self.lab.dir, "env")
        os.makedirs(env_dir, exist_ok=True)
        os.chmod(env_dir, 0o777)
        return self.lab.api("POST", "/api/jobs", {"id": job_id, "nodes": nodes, "name": "train",
                                                  "command": ["sh", "-c", command],
                                                  "env": {"SHEPHERD_ENV_DIR": env_dir}})

    def env_of(self, node, attempt):
        path = os.path.join(self.lab.dir, "env", f"{node}.{attempt}.env")
        return dict(line.split("=", 1) for line in read(path).splitlines() if "=" in line)

    def wait_job(self, job_id, status, seconds=90):
        return wait_for(lambda: self.lab.job(job_id)["status"] == status and self.lab.job(job_id), seconds,
                        f"job {job_id} {status}")

    # (a) a GPU fault: exit 1, a dcgmi failure, a reboot with a new boot id, attempt 1 runs, COMPLETE
    def test_gpu_fault_reboots_and_restarts(self):
        lab = self.make_lab(2)
        write(lab.nodes["node-2"].faulty_file, "")
        self.submit("train", TRAIN, ["node-1", "node-2"])
        job = self.wait_job("train", "COMPLETE")
        self.assertEqual(job["retry"], 1)
        self.assertEqual(lab.nodes["node-2"].reboots(), 1)
        self.assertEqual(lab.nodes["node-1"].reboots(), 0)
        node2 = lab.api("GET", "/api/nodes/node-2")
        self.assertEqual(node2["boot_id"], "node-2-boot-1")
        self.assertIn("REBOOTING", statuses(lab, "node-2"))
        env = self.env_of("node-2", 1)
        self.assertEqual(env["NODE_RANK"], "1")
        self.assertEqual(env["SHEPHERD_NODE_INDEX"], "1")
        self.assertEqual(env["NNODES"], "2")
        self.assertEqual(env["SHEPHERD_NODE_COUNT"], "2")
        self.assertEqual(env["SHEPHERD_ATTEMPT"], "1")
        self.assertEqual(env["SHEPHERD_JOB_ID"], "train")
        self.assertEqual(env["MASTER_ADDR"], "10.77.1.2")  # node index 0's address
        self.assertEqual(env["MASTER_PORT"], "29500")
        self.assertIn("SHEPHERD_IBDEV", env)
        self.assertEqual(self.env_of("node-1", 1)["NODE_RANK"], "0")
        # The failing diagnostic's per-GPU results were kept on the node until its next one.
        reasons = [e["reason"] for e in lab.timeline() if e["id"] == "node-2"]
        self.assertTrue(any("DCGM error 83" in r for r in reasons), reasons)
        calls = read(os.path.join(lab.nodes["node-2"].dir, "dcgmi.calls")).split("\n")
        self.assertEqual(calls[0], "diag -r 1 -j")
        logs = lab.api("GET", "/api/tasks/train.1.1/logs")
        self.assertIsInstance(logs, str)
        # One controller leads alone (SQLite, or MariaDB with no standby).
        cluster = lab.api("GET", "/api/cluster")
        self.assertEqual(cluster["leader"]["epoch"], 1)
        self.assertEqual([c["role"] for c in cluster["controllers"]], ["leader"])
        self.assertEqual(cluster["leader"]["name"], cluster["this_controller"])

    # (b) an application failure (the diagnostic passes): FAILED, and a webhook is received
    def test_application_failure_fails_job_and_notifies(self):
        lab = self.make_lab(2, {"max_retries": 1}, webhook=True)
        hook = self.webhook
        self.submit("app", "sleep 2; [ \"$NODE_RANK\" = 1 ] && exit 1; sleep 30", ["node-1", "node-2"])
        self.wait_job("app", "FAILED")
        wait_for(lambda: any(n.get("kind") == "job_failed" for n in hook.received), 30,
                 "the job_failed webhook")
        failed = [n for n in hook.received if n.get("kind") == "job_failed"]
        self.assertEqual(failed[0]["job"], "app")
        self.assertEqual(len(failed), 1)
        self.assertEqual(lab.nodes["node-2"].reboots(), 0)
        self.assertIn("diagnostic pass", " ".join(e["reason"] for e in lab.timeline() if e["id"] == "node-2"))

    # (c) kill -9 of the server mid-recovery: restarted on its directory, it finishes the recovery
    # exactly once (one reboot, one restart)
    def test_server_killed_mid_recovery_finishes_once(self):
        lab = self.make_lab(2)
        write(lab.nodes["node-2"].faulty_file, "")
        write(os.path.join(lab.nodes["node-2"].dir, "slow"), "")  # the diagnostic takes 5 s
        self.submit("train", TRAIN, ["node-1", "node-2"])
        wait_for(lambda: lab.api("GET", "/api/nodes/node-2")["status"] == "PENDING_HEALTHCHECK", 60,
                 "node-2's diagnostic to run")
        lab.kill_server()  # the diagnostic's verdict comes while no server runs
        time.sleep(1)
        lab.start_server()
        job = self.wait_job("train", "COMPLETE")
        self.assertEqual(job["retry"], 1)
        self.assertEqual(lab.nodes["node-2"].reboots(), 1)
        self.assertEqual(statuses(lab, "train").count("RESTARTING"), 1)
        tasks = lab.job("train")["tasks"]
        self.assertEqual(sorted(t["id"] for t in tasks), ["train.0.0", "train.0.1", "train.1.0", "train.1.1"])

    # Several controllers on one MariaDB store (issue 11). kill -9 of the leader mid-recovery with
    # two standbys: one takes over at the next epoch and finishes the recovery once (one reboot,
    # one restart); the killed one comes back as a standby.
    def test_leader_killed_mid_recovery_standby_finishes_once(self):
        lab = self.make_lab(2, controllers=3)
        before = lab.api("GET", "/api/cluster")["leader"]
        write(lab.nodes["node-2"].faulty_file, "")
        write(os.path.join(lab.nodes["node-2"].dir, "slow"), "")  # the diagnostic takes 5 s
        self.submit("train", TRAIN, ["node-1", "node-2"])
        wait_for(lambda: lab.api("GET", "/api/nodes/node-2")["status"] == "PENDING_HEALTHCHECK", 60,
                 "node-2's diagnostic to run")
        killed = lab.kill_server()  # the verdict comes while a standby takes over
        leader = wait_for(lambda: (lab.api("GET", "/api/cluster")["leader"] or {}).get("epoch", 0)
                          > before["epoch"] and lab.api("GET", "/api/cluster")["leader"], 30,
                          "a standby to take over")
        self.assertEqual(leader["epoch"], before["epoch"] + 1)
        self.assertNotEqual(leader["name"], before["name"])
        job = self.wait_job("train", "COMPLETE")
        self.assertEqual(job["retry"], 1)
        self.assertEqual(lab.nodes["node-2"].reboots(), 1)
        self.assertEqual(statuses(lab, "train").count("RESTARTING"), 1)
        tasks = lab.job("train")["tasks"]
        self.assertEqual(sorted(t["id"] for t in tasks), ["train.0.0", "train.0.1", "train.1.0", "train.1.1"])
        lab.start_server(killed)
        cluster = wait_for(lambda: (c := lab.api("GET", "/api/cluster")) and all(
            x["alive"] for x in c["controllers"]) and c, 30, "the killed controller back as a standby")
        roles = {c["name"]: c["role"] for c in cluster["controllers"]}
        self.assertEqual(roles[f"c{killed + 1}"], "standby")
        self.assertEqual(list(roles.values()).count("leader"), 1)
        self.assertEqual(cluster["leader"]["epoch"], before["epoch"] + 1)
        # The CLI on a standby: its command is redirected to the leader, which decides it.
        r = run(BINARY, "job", "submit", "after", "--nodes", "1", "--server",
                f"https://10.77.0.2:{PORT + killed}", "--ca", lab.ca, "--token-file",
                os.path.join(lab.server_dir, "secrets", "admin.token"), "--", "true", check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_job("after", "COMPLETE")

    # A leader paused past its lease (SIGSTOP): a standby takes over and runs a job; woken
    # (SIGCONT), the old leader commits nothing (its heartbeat losses, its retries) and exits 3.
    def test_paused_leader_commits_nothing_after_takeover(self):
        lab = self.make_lab(1, controllers=2)
        old = lab.leader()
        epoch = lab.api("GET", "/api/cluster")["leader"]["epoch"]
        lab.pause(old)
        leader = wait_for(lambda: (lab.api("GET", "/api/cluster")["leader"] or {}).get("epoch", 0)
                          > epoch and lab.api("GET", "/api/cluster")["leader"], 30,
                          "the standby to take over the lapsed lease")
        self.assertEqual(leader["name"], f"c{2 - old}")
        self.submit("after", "sleep 1", ["node-1"])  # the agent finds the new leader
        self.wait_job("after", "COMPLETE", 120)
        timeline = lab.timeline()
        lab.resume(old)
        self.assertEqual(lab.servers[old].wait(timeout=30), 3)
        time.sleep(2)
        self.assertEqual(lab.timeline(), timeline)  # nothing written by the woken leader
        self.assertEqual(lab.api("GET", "/api/cluster")["leader"]["epoch"], epoch + 1)
        log = read(lab.server_logs[old])
        self.assertIn(f"lost the leader lease of epoch {epoch}", log)
        self.assertEqual(lab.api("GET", "/api/nodes/node-1")["status"], "AVAILABLE")

    # MariaDB restarted mid-recovery under two controllers: every connection drops (the lease's
    # too). Whichever controller leads afterwards finishes the recovery once.
    def test_mariadb_restarted_mid_recovery_finishes_once(self):
        restart = os.environ.get("SHEPHERD_TEST_MYSQL_RESTART")
        if not restart:
            self.skipTest("needs SHEPHERD_TEST_MYSQL_RESTART (scripts/test's private MariaDB)")
        lab = self.make_lab(2, controllers=2)
        before = lab.api("GET", "/api/cluster")["leader"]
        write(lab.nodes["node-2"].faulty_file, "")
        write(os.path.join(lab.nodes["node-2"].dir, "slow"), "")  # the diagnostic takes 5 s
        self.submit("train", TRAIN, ["node-1", "node-2"])
        wait_for(lambda: lab.api("GET", "/api/nodes/node-2")["status"] == "PENDING_HEALTHCHECK", 60,
                 "node-2's diagnostic to run")
        r = run(restart, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        job = self.wait_job("train", "COMPLETE", 120)
        self.assertEqual(job["retry"], 1)
        self.assertEqual(lab.nodes["node-2"].reboots(), 1)
        self.assertEqual(statuses(lab, "train").count("RESTARTING"), 1)
        tasks = lab.job("train")["tasks"]
        self.assertEqual(sorted(t["id"] for t in tasks), ["train.0.0", "train.0.1", "train.1.0", "train.1.1"])
        after = lab.api("GET", "/api/cluster")["leader"]
        self.assertGreaterEqual(after["epoch"], before["epoch"])
        # A leader deposed by the restart exited 3 (its service would start it again as a standby).
        for p in lab.servers:
            self.assertIn(p.poll(), (None, 3))

    # Controllers started at once on an empty database: the migrations are applied once and one
    # controller leads.
    def test_controllers_started_at_once_elect_one(self):
        if not Lab.mariadb_wanted():
            self.skipTest("several controllers share a MariaDB store (SHEPHERD_E2E_STORE=mariadb)")
        self.lab = lab = Lab(0, None, 3)
        lab.start_all_at_once()
        cluster = wait_for(lambda: (c := lab.api("GET", "/api/cluster"))["leader"] and len(
            c["controllers"]) == 3 and c, 30, "three controllers, one leading")
        self.assertEqual(cluster["leader"]["epoch"], 1)
        self.assertEqual([c["role"] for c in cluster["controllers"]].count("leader"), 1)
        shown = run(BINARY, "cluster", "show", "--server", f"https://10.77.0.2:{PORT + 1}", "--ca", lab.ca,
                    "--token-file", os.path.join(lab.server_dir, "secrets", "admin.token")).stdout
        self.assertIn(f"leader {cluster['leader']['name']} at ", shown)
        self.assertEqual(shown.count(" standby "), 2, shown)
        migrations = os.listdir(os.path.join(SOURCE_DIR, "src", "store", "migrations", "mariadb"))
        self.assertEqual(lab.sql("SELECT COUNT(*) FROM shepherd_schema_migrations"),
                         [[str(len(migrations))]])

    # (d) a node cut off (its veth down) while its task exits: it reconnects and the exit code is
    # applied once
    def test_cut_off_node_delivers_exit_once(self):
        # Heartbeats every 5 s: each end drops a connection silent for 15 s; the node is lost
        # after 30 s without a word, and the cut lasts 20 s.
        lab = self.make_lab(1, {"heartbeat_timeout": 30})
        self.submit("cut", "sleep 3; exit 0", ["node-1"])
        wait_for(lambda: lab.job("cut")["tasks"][0]["started"], 30, "the task to run")
        lab.set_node_link("node-1", False)
        time.sleep(20)  # the task ends meanwhile; both ends drop the silent connection
        self.assertEqual(lab.job("cut")["status"], "IN_PROGRESS")
        lab.set_node_link("node-1", True)
        self.wait_job("cut", "COMPLETE", 60)
        completes = [e for e in lab.timeline() if e["id"] == "cut.0.0" and e["to"] == "COMPLETE"]
        self.assertEqual(len(completes), 1)
        self.assertIn("connecting again", lab.nodes["node-1"].log_text())  # it did reconnect
        self.assertNotIn("UNKNOWN", statuses(lab, "node-1"))

    # (e) agents without a valid credential are refused, and it is logged
    def test_unenrolled_wrong_and_revoked_agents_are_refused(self):
        lab = self.make_lab(2)
        node1, node2 = lab.nodes["node-1"], lab.nodes["node-2"]
        # Revoked: node-2's connection is closed and it cannot come back.
        self.assertEqual(lab.api("POST", "/api/nodes/node-2/revoke"), {"node": "node-2", "revoked": True})
        wait_for(lambda: "revoked" in node2.log_text(), 20, "node-2's agent to be refused as revoked")
        # Unenrolled and wrong: a forged credential on node-1's host.
        forged = os.path.join(node1.dir, "forged")
        os.makedirs(forged, mode=0o700)
        for cred in ("node-9:" + "ab" * 32, "node-1:" + "cd" * 32):
            write(os.path.join(forged, "credential"), cred + "\n")
            os.chmod(os.path.join(forged, "credential"), 0o600)
            r = run("ip", "netns", "exec", node1.ns, "timeout", "3", BINARY, "agent", "--server",
                    f"https://{node1.server_ip}:{PORT}", "--ca", lab.ca, "--dir", forged,
                    "--boot-id-file", node1.boot_id_file, "--kernel-log", "", check=False)
            self.assertIn("HTTP 401", r.stderr)
        log = lab.server_log_text()
        self.assertIn("agent node-2", log)
        self.assertRegex(log, r"agent node-2 from .* refused: revoked")
        self.assertRegex(log, r"agent node-9 from .* refused: not enrolled")
        self.assertRegex(log, r"agent node-1 from .* refused: wrong credential")
        # A wrong bootstrap token (here the admin token) enrols nothing. The right one can neither
        # take over a live node's name nor bring back a revoked one: only an operator's reenrol.
        bad = lab.api("POST", "/agent/v1/enrol", {"node": "node-7"}, token=True, expect_error=True)
        self.assertEqual(bad["status"], 401)
        with open(lab.bootstrap_token_file) as f:
            bootstrap = f.read().strip()
        taken = lab.api("POST", "/agent/v1/enrol", {"node": "node-1"}, token=bootstrap,
                        expect_error=True)
        self.assertEqual(taken["status"], 409)
        self.assertIn("shepherd node reenrol node-1", taken["error"]["message"])
        back = lab.api("POST", "/agent/v1/enrol", {"node": "node-2"}, token=bootstrap,
                       expect_error=True)
        self.assertEqual(back["status"], 403)
        self.assertEqual(lab.api("POST", "/api/nodes/node-2/reenrol"),
                         {"node": "node-2", "enrolment": "open"})
        again = lab.api("POST", "/agent/v1/enrol", {"node": "node-2"}, token=bootstrap)
        self.assertTrue(again["credential"].startswith("node-2:"))
        # The revoked node is not usable; node-1 still is.
        self.assertEqual(lab.api("GET", "/api/nodes/node-1")["status"], "AVAILABLE")

    # (f) a reboot-class Xid in a node's kernel log starts the job's recovery at once
    def test_xid_in_kernel_log_starts_recovery(self):
        lab = self.make_lab(2)
        self.submit("xid", "sleep 300", ["node-1", "node-2"])
        wait_for(lambda: lab.job("xid")["status"] == "IN_PROGRESS" and
                 all(t["started"] for t in lab.job("xid")["tasks"]), 30, "both tasks running")
        with open(lab.nodes["node-1"].kernel_log, "a") as f:
            f.write("[12345.678] NVRM: Xid (PCI:0000:44:00): 79, pid=4321, name=python, GPU has fallen off the bus.\n")
        # The task is stopped, the node diagnosed (the fake dcgmi passes: the GPU is back), and the
        # job restarts as attempt 1 on the same nodes: all within moments, with no task crash.
        wait_for(lambda: lab.job("xid")["retry"] == 1, 30, "the job's restart after the Xid")
        self.assertEqual(statuses(lab, "xid"), ["IN_PROGRESS", "PENDING_HEALTHCHECK", "PENDING_RESTART",
                                                "RESTARTING", "IN_PROGRESS"][:len(statuses(lab, "xid"))])
        reasons = [e["reason"] for e in lab.timeline() if e["id"] == "xid"]
        self.assertTrue(any("Xid 79" in r for r in reasons), reasons)
        self.assertIn("PENDING_HEALTHCHECK", statuses(lab, "node-1"))  # diagnosed
        self.assertNotIn("PENDING_HEALTHCHECK", statuses(lab, "node-2"))  # only the Xid's node
        self.assertEqual(lab.nodes["node-1"].reboots(), 0)

    # (g) the agent killed under a running task (a crash, an upgrade): the restarted agent kills the
    # task it left (no orphan beside the next attempt) and the job restarts, not FAILED
    def test_agent_killed_under_task_restarts_job(self):
        lab = self.make_lab(2)
        self.submit("survive", 'if [ "$SHEPHERD_ATTEMPT" = 0 ]; then exec sleep 301; fi; sleep 1',
                    ["node-1", "node-2"])
        wait_for(lambda: all(t["started"] for t in lab.job("survive")["tasks"]), 30, "both tasks running")
        node2 = lab.nodes["node-2"]
        run("pkill", "-KILL", "-f", "--", f"--dir {node2.state} ")  # its loop starts it again
        job = self.wait_job("survive", "COMPLETE", 60)
        self.assertEqual(job["retry"], 1)
        self.assertEqual(node2.reboots(), 0)  # a diagnostic passed: no reboot needed
        self.assertIn("killed: the agent restarted while it ran", node2.log_text())
        reasons = [e["reason"] for e in lab.timeline() if e["id"] == "survive"]
        self.assertTrue(any("the agent restarted under it" in r for r in reasons), reasons)
        self.assertEqual(run("pgrep", "-f", "sleep 301", check=False).stdout.strip(), "")


if __name__ == "__main__":
    why = Lab.available()
    if why:
        print("SKIPPED: multi-host tests need network namespaces: " + why)
        sys.exit(77)
    if Lab.mariadb_wanted() and not os.environ.get("SHEPHERD_TEST_MYSQL_SOCKET"):
        if os.environ.get("CI"):
            print("FAILED: CI must run the MariaDB tests, and SHEPHERD_TEST_MYSQL_SOCKET is unset")
            sys.exit(1)
        print("SKIPPED: SHEPHERD_TEST_MYSQL_SOCKET is not set: no MariaDB (scripts/test starts one)")
        sys.exit(77)
    unittest.main()
