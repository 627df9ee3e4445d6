"""Shared client workload and checks for the Chorus tools (tools/rolling-restart,
tools/faults): keep-alive HTTP connections, a cluster's views (members, hints, metrics),
a rate-bounded read-modify-write load that records every operation, anti-entropy on
every node, and the verifications that run once the faults are over.

Import it from a tool in this folder with

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import chorus_workload as cw

Python 3 standard library only, like the tools.
"""

import base64
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUCKET = "default"
HTTP_PORT = 7480

def now():
    return time.monotonic()


class Fail(Exception):
    """A verification or bounded-wait failure (exit 1)."""


class SetupError(Exception):
    """A usage or set-up error (exit 2)."""


# ---------------------------------------------------------------------------
# HTTP helpers


def split_addr(addr):
    host, _, port = addr.rpartition(":")
    if not host:
        return addr, HTTP_PORT
    return host.strip("[]"), int(port)


class Conns:
    """Keep-alive connections per node address, for one thread."""

    def __init__(self, timeout=10.0, token=None):
        self.timeout = timeout
        self.token = token
        self.conns = {}

    def request(self, addr, method, path, body=None, headers=None, timeout=None):
        """Returns (status, headers, body bytes); raises OSError/HTTPException on a
        connection failure (the connection is dropped)."""
        conn = self.conns.get(addr)
        if conn is None:
            host, port = split_addr(addr)
            conn = http.client.HTTPConnection(host, port, timeout=timeout or self.timeout)
            self.conns[addr] = conn
        hdrs = dict(headers or {})
        if self.token:
            hdrs["Authorization"] = "Bearer " + self.token
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp, data
        except (OSError, http.client.HTTPException):
            self.drop(addr)
            raise

    def drop(self, addr):
        conn = self.conns.pop(addr, None)
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def close(self):
        for addr in list(self.conns):
            self.drop(addr)


def kv_path(key, query, bucket=BUCKET):
    return "/v1/kv/%s/%s?%s" % (bucket, urllib_quote(key), query)


def urllib_quote(s):
    from urllib.parse import quote
    return quote(s, safe="")


def decode_values(status, resp, data):
    """(values set, context) of a GET answer; None values for an error status."""
    if status == 200:
        return {data}, resp.getheader("X-Chorus-Context")
    if status == 300:
        doc = json.loads(data)
        return {base64.b64decode(s["value"]) for s in doc.get("siblings", [])}, doc.get("context")
    if status == 404:
        return set(), resp.getheader("X-Chorus-Context")
    return None, None


def is_stopping(status, data):
    return status == 503 and b"stopping" in data.lower()


def short(data, limit=300):
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    return text if len(text) <= limit else text[:limit] + "..."


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


# ---------------------------------------------------------------------------
# Nodes and cluster views


class Node:
    def __init__(self, name, http):
        self.name = name
        self.http = http

    @property
    def host(self):
        return split_addr(self.http)[0]


class Cluster:
    def __init__(self, nodes, token=None):
        self.nodes = nodes
        self.by_name = {n.name: n for n in nodes}
        self.token = token
        self.lock = threading.Lock()
        self.conns = Conns(timeout=5.0, token=token)

    def get_json(self, node, path, method="GET", timeout=5.0):
        """JSON of one API call on a fresh connection; None when it fails."""
        c = Conns(timeout=timeout, token=self.token)
        try:
            status, _, data = c.request(node.http, method, path)
            if status >= 300:
                return None
            return json.loads(data) if data else {}
        except (OSError, http.client.HTTPException, ValueError):
            return None
        finally:
            c.close()

    def answers(self, node):
        return self.get_json(node, "/v1/status", timeout=2.0) is not None

    def members(self, node):
        m = self.get_json(node, "/v1/members")
        return {x["name"]: x for x in m} if isinstance(m, list) else None

    def hints(self, node):
        h = self.get_json(node, "/v1/hints")
        if not isinstance(h, list):
            return None
        return [x for x in h if int(x.get("count", 0)) > 0]

    def metrics(self, node):
        c = Conns(timeout=5.0, token=self.token)
        try:
            status, _, data = c.request(node.http, "GET", "/metrics")
            if status != 200:
                return None
        except (OSError, http.client.HTTPException):
            return None
        finally:
            c.close()
        out = {}
        for line in data.decode("utf-8", "replace").splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
        return out

    def all_alive_everywhere(self, target=None, min_incarnation=None):
        """True when every node answers and sees every node alive (target with an
        incarnation of at least min_incarnation)."""
        for n in self.nodes:
            m = self.members(n)
            if m is None:
                return False
            for other in self.nodes:
                x = m.get(other.name)
                if x is None or x.get("status") != "alive":
                    return False
                if target is not None and other.name == target and min_incarnation is not None:
                    if int(x.get("incarnation", 0)) < min_incarnation:
                        return False
        return True


def wait_until(pred, timeout, interval=0.1):
    deadline = now() + timeout
    while True:
        if pred():
            return True
        if now() >= deadline:
            return False
        time.sleep(interval)


# ---------------------------------------------------------------------------
# Load


class History:
    """The operation history as JSON lines, one object per finished operation (a
    header line first), written as the operations finish: what a checker needs to
    judge the run afterwards, and what a person reads when it failed."""

    def __init__(self, path, header):
        self.path = path
        self.lock = threading.Lock()
        self.f = open(path, "w")
        self.add(dict(header, op="header", wall_time=time.time()))

    def add(self, rec):
        line = json.dumps(rec, sort_keys=True)
        with self.lock:
            if self.f is not None:
                self.f.write(line + "\n")

    def close(self):
        with self.lock:
            if self.f is not None:
                self.f.close()
                self.f = None


def read_history(path):
    """The operations of a history file (the header line left out)."""
    ops = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rec = json.loads(line)
                if rec.get("op") != "header":
                    ops.append(rec)
    return ops


class Load:
    """A rate-bounded read-modify-write load: each thread owns a share of the keys;
    a write reads the key first (r=quorum) and writes back with that context
    (w=quorum), so every write supersedes exactly what its read saw. Every write is
    kept in `writes`; with a `history`, every operation is also recorded there with
    the values its read saw (`seen`), which the history checker needs to tell a
    superseded write from a lost one. `delete_fraction` of the writes are deletes
    (with the read's context)."""

    def __init__(self, cluster, rate, keys, threads, write_fraction, run_id, timeout,
                 bucket=BUCKET, key_prefix="rr", delete_fraction=0.0, history=None):
        self.cluster = cluster
        self.rate = rate
        self.bucket = bucket
        self.delete_fraction = delete_fraction
        self.history = history
        self.keys = ["%s-%s-%d" % (key_prefix, run_id, i) for i in range(keys)]
        self.threads_n = threads
        self.write_fraction = write_fraction
        self.run_id = run_id
        self.timeout = timeout
        self.lock = threading.RLock()
        self.restarting = set()       # nodes not to send requests to
        self.generation = {}          # node -> generation; bumped after a restart
        self.in_restart = None        # name of the node in its restart window
        self.stop_event = threading.Event()
        self.next_slot = None
        self.writes = []              # write records
        self.reads = []               # (t_start, latency, outcome, during_restart)
        self.read_failures = []
        self.threads = []
        self.t0 = None

    # -- control
    def start(self):
        self.t0 = now()
        self.next_slot = self.t0
        for tid in range(self.threads_n):
            t = threading.Thread(target=self.worker, args=(tid,), daemon=True, name="load-%d" % tid)
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=self.timeout * 3 + 5)
        return [t.name for t in self.threads if t.is_alive()]

    def mark_restarting(self, name):
        with self.lock:
            self.restarting.add(name)
            self.in_restart = name

    def mark_back(self, name):
        with self.lock:
            self.restarting.discard(name)
            self.generation[name] = self.generation.get(name, 0) + 1

    def end_window(self):
        with self.lock:
            self.in_restart = None

    def during_restart(self):
        with self.lock:
            return self.in_restart

    # -- workers
    def pick(self, rng, exclude):
        with self.lock:
            busy = set(self.restarting)
        cands = [n for n in self.cluster.nodes if n.name not in busy and n.name not in exclude]
        if not cands:
            cands = [n for n in self.cluster.nodes if n.name not in exclude]
        return rng.choice(cands) if cands else None

    def wait_slot(self):
        with self.lock:
            t = now()
            if self.next_slot < t - 0.5:   # fell behind: do not burst to catch up
                self.next_slot = t
            slot = self.next_slot
            self.next_slot += 1.0 / self.rate
        while not self.stop_event.is_set():
            d = slot - now()
            if d <= 0:
                return True
            time.sleep(min(d, 0.1))
        return False

    def call(self, conns, gens, rng, method, path, body=None, headers=None):
        """One request with at most one retry on another node when the first node is
        stopping or unreachable. Returns (attempts, final) where each attempt is
        a dict and final is (status, resp, data) or None."""
        attempts = []
        tried = set()
        for _ in range(2):
            node = self.pick(rng, tried)
            if node is None:
                break
            tried.add(node.name)
            with self.lock:
                g = self.generation.get(node.name, 0)
            if gens.get(node.name) != g:
                conns.drop(node.http)       # the node restarted since: no stale keep-alive
                gens[node.name] = g
            t = now()
            try:
                status, resp, data = conns.request(node.http, method, path, body=body, headers=headers)
            except (OSError, http.client.HTTPException) as e:
                attempts.append({"node": node.name, "error": "%s: %s" % (type(e).__name__, e),
                                 "seconds": round(now() - t, 4)})
                continue
            attempts.append({"node": node.name, "status": status, "seconds": round(now() - t, 4)})
            if is_stopping(status, data):
                attempts[-1]["body"] = short(data)
                continue
            return attempts, (status, resp, data)
        return attempts, None

    def worker(self, tid):
        rng = random.Random("%s-%d" % (self.run_id, tid))
        conns = Conns(timeout=self.timeout, token=self.cluster.token)
        gens = {}
        my_keys = [k for i, k in enumerate(self.keys) if i % self.threads_n == tid]
        last_ctx = {}
        last_value = {}   # key -> this thread's last acknowledged value (what last_ctx covers)
        seq = 0
        try:
            while not self.stop_event.is_set():
                if not self.wait_slot():
                    break
                key = rng.choice(my_keys)
                if rng.random() < self.write_fraction:
                    seq += 1
                    delete = self.delete_fraction > 0 and rng.random() < self.delete_fraction
                    self.write(conns, gens, rng, key, "%s:%s:%d:%d" % (self.run_id, key, tid, seq), last_ctx,
                               last_value, delete)
                else:
                    self.read(conns, gens, rng, key)
        finally:
            conns.close()

    def read(self, conns, gens, rng, key):
        t = now()
        phase = self.during_restart()
        attempts, final = self.call(conns, gens, rng, "GET", kv_path(key, "r=quorum", self.bucket))
        lat = now() - t
        ok = final is not None and final[0] in (200, 300, 404)
        if self.history is not None:
            vals = decode_values(*final)[0] if ok else None
            self.history.add({"op": "get", "key": key, "t_start": round(t - self.t0, 4),
                              "t_end": round(t - self.t0 + lat, 4), "attempts": attempts,
                              "outcome": "ok" if ok else "failed",
                              "values": None if vals is None else sorted(v.decode("utf-8", "replace") for v in vals)})
        phase = phase or self.during_restart()
        with self.lock:
            self.reads.append((t - self.t0, lat, ok, phase))
            if not ok:
                self.read_failures.append({"key": key, "t": round(t - self.t0, 3), "attempts": attempts,
                                           "final": None if final is None else
                                           {"status": final[0], "body": short(final[2])}})

    def write(self, conns, gens, rng, key, value, last_ctx, last_value=None, delete=False):
        t = now()
        phase = self.during_restart()
        # read-modify-write: the context of what is there now
        r_attempts, r_final = self.call(conns, gens, rng, "GET", kv_path(key, "r=quorum", self.bucket))
        ctx = None
        read_ok = False
        seen = set()
        if r_final is not None:
            vals, c = decode_values(*r_final)
            if vals is not None:
                ctx, read_ok = c, True
                seen = {v.decode("utf-8", "replace") for v in vals}
        if not read_ok:
            # A blind write: the context of our own last write covers every sibling the
            # key held then (a write's context is the stored object's), siblings this
            # client never saw, so writing with it would rightly replace them. Without a
            # context the write is concurrent with everything and supersedes nothing.
            ctx = None
            with self.lock:
                self.read_failures.append({"key": key, "t": round(t - self.t0, 3), "for_write": True,
                                           "attempts": r_attempts, "final": None if r_final is None else
                                           {"status": r_final[0], "body": short(r_final[2])}})
        headers = {"Content-Type": "application/octet-stream"}
        if ctx:
            headers["X-Chorus-Context"] = ctx
        tw = now()
        if delete:
            value = None
            attempts, final = self.call(conns, gens, rng, "DELETE", kv_path(key, "w=quorum", self.bucket),
                                        headers=headers)
        else:
            attempts, final = self.call(conns, gens, rng, "PUT", kv_path(key, "w=quorum", self.bucket),
                                        body=value.encode(), headers=headers)
        t_end = now()
        rec = {
            "key": key, "value": value, "context": ctx, "read_ok": read_ok,
            "t_start": round(t - self.t0, 4), "t_put": round(tw - self.t0, 4), "t_end": round(t_end - self.t0, 4),
            "put_seconds": round(t_end - tw, 4), "rmw_seconds": round(t_end - t, 4),
            "attempts": attempts, "retried": len(attempts) > 1,
            "during_restart": phase or self.during_restart(),
        }
        if self.history is not None:
            rec["op"] = "delete" if delete else "put"
            rec["seen"] = sorted(seen)
        if final is not None and final[0] == 204:
            rec["outcome"] = "acknowledged"
            new_ctx = final[1].getheader("X-Chorus-Context")
            rec["new_context"] = new_ctx
            if new_ctx:
                last_ctx[key] = new_ctx
                if last_value is not None:
                    if delete:
                        last_value.pop(key, None)
                    else:
                        last_value[key] = value
        elif final is not None:
            rec["outcome"] = "refused"
            rec["status"] = final[0]
            rec["body"] = short(final[2], 1000)
        else:
            rec["outcome"] = "refused" if any("status" in a for a in attempts) else "error"
            if attempts and "body" in attempts[-1]:
                rec["status"] = attempts[-1].get("status")
                rec["body"] = attempts[-1]["body"]
        with self.lock:
            self.writes.append(rec)
        if self.history is not None:
            self.history.add(rec)

    def counts(self):
        with self.lock:
            return write_counts(self.writes, len(self.reads))


def write_counts(writes, reads):
    """(writes, acknowledged, not acknowledged, retried, reads) of a load's records."""
    ack = sum(1 for x in writes if x["outcome"] == "acknowledged")
    return len(writes), ack, len(writes) - ack, sum(1 for x in writes if x["retried"]), reads


class LoadProcess:
    """A `Load` run in a child Python process, driven over a pipe with the same
    interface (start, mark_restarting, mark_back, end_window, counts, stop; then
    writes, reads, read_failures). A tool that polls the cluster while the load runs
    (members, hints, the restart command's output) would otherwise share the GIL
    with the load's threads, and every poll would add its parse time to the
    latencies the load measures — most in the windows the tool watches closest."""

    def __init__(self, cluster, rate, keys, threads, write_fraction, run_id, timeout):
        self.spec = {"nodes": [[n.name, n.http] for n in cluster.nodes], "token": cluster.token,
                     "rate": rate, "keys": keys, "threads": threads, "write_fraction": write_fraction,
                     "run_id": run_id, "timeout": timeout}
        self.proc = None
        self.lock = threading.Lock()
        self.t0 = None
        self.writes, self.reads, self.read_failures = [], [], []

    def _call(self, msg):
        with self.lock:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise Fail("the load process ended unexpectedly (exit %s)" % self.proc.poll())
        return json.loads(line)

    def start(self):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--load-child"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        # CLOCK_MONOTONIC is system-wide: the child's t0 is comparable with `now()` here.
        self.t0 = self._call(dict(self.spec, cmd="start"))["t0"]

    def mark_restarting(self, name):
        self._call({"cmd": "restarting", "name": name})

    def mark_back(self, name):
        self._call({"cmd": "back", "name": name})

    def end_window(self):
        self._call({"cmd": "end_window"})

    def counts(self):
        if self.proc.poll() is None:
            return tuple(self._call({"cmd": "counts"})["counts"])
        return write_counts(self.writes, len(self.reads))

    def stop(self):
        res = self._call({"cmd": "stop"})
        self.writes = res["writes"]
        self.reads = [tuple(x) for x in res["reads"]]
        self.read_failures = res["read_failures"]
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return res["stuck"]


def load_child():
    """The child side of `LoadProcess`: one JSON command a line on stdin, one JSON
    answer a line on stdout."""
    load = None
    for line in sys.stdin:
        msg = json.loads(line)
        cmd, reply = msg["cmd"], {}
        if cmd == "start":
            cluster = Cluster([Node(name, http) for name, http in msg["nodes"]], token=msg["token"])
            load = Load(cluster, msg["rate"], msg["keys"], msg["threads"], msg["write_fraction"], msg["run_id"],
                        msg["timeout"])
            load.start()
            reply = {"t0": load.t0}
        elif cmd == "restarting":
            load.mark_restarting(msg["name"])
        elif cmd == "back":
            load.mark_back(msg["name"])
        elif cmd == "end_window":
            load.end_window()
        elif cmd == "counts":
            reply = {"counts": list(load.counts())}
        elif cmd == "stop":
            stuck = load.stop()
            with load.lock:
                reply = {"stuck": stuck, "writes": load.writes, "reads": load.reads,
                         "read_failures": load.read_failures}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
        if cmd == "stop":
            return




def run_cmd(cmd, env, timeout, log):
    """Runs a shell command, bounded; returns (rc, output)."""
    try:
        p = subprocess.run(cmd, shell=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, cwd=REPO)
        out = p.stdout.decode("utf-8", "replace")
        return p.returncode, out
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        log("command timed out after %ds: %s" % (timeout, cmd))
        return 124, out



# ---------------------------------------------------------------------------
# Verification


def repair_all(cluster, timeout, log):
    results = {}
    for n in cluster.nodes:
        r = cluster.get_json(n, "/v1/repair", method="POST", timeout=10)
        if r is None:
            raise Fail("POST /v1/repair failed on %s" % n.name)

    def done():
        for n in cluster.nodes:
            r = cluster.get_json(n, "/v1/repair")
            if r is None or r.get("running"):
                return False
            results[n.name] = {k: r.get(k) for k in
                               ("partitions", "keys_repaired", "exchanges_done", "exchanges_total",
                                "failed", "udp_bytes", "tcp_bytes")}
        return True

    if not wait_until(done, timeout, 0.25):
        raise Fail("anti-entropy rounds did not finish within %ds" % timeout)
    total = sum(int(r.get("keys_repaired") or 0) for r in results.values())
    failed = sum(int(r.get("failed") or 0) for r in results.values())
    log("anti-entropy: %d keys repaired, %d failed exchanges over %d nodes" % (total, failed, len(results)))
    return {"per_node": results, "keys_repaired": total, "failed": failed}


def read_all(cluster, conns, key, rng, bucket=BUCKET):
    """Values of key read with r=all from some node (tries every node)."""
    nodes = list(cluster.nodes)
    rng.shuffle(nodes)
    last = None
    for n in nodes:
        try:
            status, resp, data = conns.request(n.http, "GET", kv_path(key, "r=all", bucket))
        except (OSError, http.client.HTTPException) as e:
            last = "%s: %s" % (n.name, e)
            continue
        vals, _ = decode_values(status, resp, data)
        if vals is not None:
            return vals, None
        last = "%s: %d %s" % (n.name, status, short(data))
    return None, last


def verify_writes(cluster, writes, log):
    rng = random.Random(1)
    conns = Conns(timeout=10.0, token=cluster.token)
    by_key = {}
    for w in writes:
        by_key.setdefault(w["key"], []).append(w)
    lost, superseded_by_unacked, unreadable = [], 0, []
    checked = 0
    try:
        for key, ws in sorted(by_key.items()):
            acked = [w for w in ws if w["outcome"] == "acknowledged"]
            if not acked:
                continue
            latest = max(acked, key=lambda w: w["t_end"])
            vals, err = read_all(cluster, conns, key, rng)
            checked += 1
            if vals is None:
                unreadable.append({"key": key, "error": err})
                continue
            if latest["value"].encode() in vals:
                continue
            later = [w for w in ws if w["outcome"] != "acknowledged" and w["t_start"] >= latest["t_start"]]
            if any(w["value"].encode() in vals for w in later):
                superseded_by_unacked += 1
                continue
            lost.append({"key": key, "latest_acknowledged": latest, "found": sorted(v.decode("utf-8", "replace")
                                                                                      for v in vals)})
    finally:
        conns.close()
    log("verified %d keys: %d lost, %d unreadable, %d superseded by a later unacknowledged write"
        % (checked, len(lost), len(unreadable), superseded_by_unacked))
    return {"keys_checked": checked, "lost": lost, "unreadable": unreadable,
            "superseded_by_unacknowledged": superseded_by_unacked}


def check_convergence(cluster, keys, log, bucket=BUCKET):
    """Compares every home replica's local copy of each key."""
    conns = Conns(timeout=10.0, token=cluster.token)
    addr = {n.name: n.http for n in cluster.nodes}
    m = cluster.members(cluster.nodes[0]) or {}
    for name, x in m.items():
        h = (x.get("tags") or {}).get("http")
        if h:
            addr[name] = h
    diverged, errors = [], []
    try:
        for key in keys:
            try:
                ring = None
                for n in cluster.nodes:
                    try:
                        status, _, data = conns.request(n.http, "GET", "/v1/ring?bucket=%s&key=%s"
                                                        % (bucket, urllib_quote(key)))
                        if status == 200:
                            ring = json.loads(data)
                            break
                    except (OSError, http.client.HTTPException):
                        continue
                if ring is None:
                    errors.append({"key": key, "error": "no node answered /v1/ring"})
                    continue
                replicas = ring["key"]["replicas"]
                copies = {}
                for r in replicas:
                    if r not in addr:
                        errors.append({"key": key, "error": "no HTTP address for replica %s" % r})
                        continue
                    status, resp, data = conns.request(addr[r], "GET", kv_path(key, "replica=local", bucket))
                    vals, _ = decode_values(status, resp, data)
                    if vals is None:
                        errors.append({"key": key, "replica": r, "status": status, "body": short(data)})
                        continue
                    copies[r] = sorted(v.decode("utf-8", "replace") for v in vals)
                if len({tuple(v) for v in copies.values()}) > 1:
                    diverged.append({"key": key, "replicas": copies})
            except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
                errors.append({"key": key, "error": "%s: %s" % (type(e).__name__, e)})
    finally:
        conns.close()
    log("convergence: %d keys compared on their home replicas, %d diverged, %d errors"
        % (len(keys), len(diverged), len(errors)))
    return diverged, errors


def check_history(cluster, ops, log, bucket=BUCKET):
    """Judges a recorded history (put/delete records with `seen`, from a Load with a
    History) against the cluster once faults are healed and repaired. For every key
    written it reads the final values with r=all and checks:

      * lost: an acknowledged put whose value is not read back, unless it was
        superseded: some operation whose read saw it (so whose context covered it)
        took effect. A put took effect when its own value is read back or was
        superseded in turn; an acknowledged delete took effect; an unacknowledged one
        may have (indeterminate, as in Jepsen), unless one of the values it saw is
        still there. A delete answered 4xx never took effect.
      * phantom: a value read back that no operation ever tried to write;
      * resurrected: a value read back that an acknowledged put or delete superseded
        (it lies in that operation's causal past: what its read saw, transitively);
        for deletes this is "deleted keys stay deleted", while a write concurrent
        with or after the delete may bring the key back with its own value;
      * convergence: every home replica holds the same values (?replica=local).

    Returns a dict of the findings; `final` maps each key to its sorted values."""
    rng = random.Random(2)
    conns = Conns(timeout=10.0, token=cluster.token)

    def read_final(key):
        vals, err = read_all(cluster, conns, key, rng, bucket)
        return (None if vals is None else {v.decode("utf-8", "replace") for v in vals}), err

    try:
        result = judge_history(ops, read_final)
    finally:
        conns.close()
    diverged, conv_errors = check_convergence(cluster, sorted(result["final"]) + sorted(
        x["key"] for x in result["unreadable"]), log, bucket)
    result.update({"diverged": diverged, "convergence_errors": conv_errors})
    result["ok"] = result["ok"] and not (diverged or conv_errors)
    log("history check: %d keys, %d acknowledged writes: %d lost, %d superseded, %d phantom values, "
        "%d resurrected, %d unreadable; %d keys with siblings, %d deleted keys absent"
        % (result["keys"], result["acknowledged"], len(result["lost"]), result["superseded"],
           len(result["phantoms"]), len(result["resurrected"]), len(result["unreadable"]),
           len(result["siblings_keys"]), result["deleted_keys_absent"]))
    return result


def causal_past(op, writer):
    """The values an operation's context covered: what its read saw and, through the
    writes of those values (`writer`: value -> put record), what they saw in turn."""
    out, todo = set(), list(op.get("seen") or [])
    while todo:
        v = todo.pop()
        if v in out:
            continue
        out.add(v)
        w = writer.get(v)
        if w is not None:
            todo.extend(w.get("seen") or [])
    return out


def judge_history(ops, read_final):
    """The pure part of check_history: `read_final(key)` returns (set of value strings,
    None) or (None, error). No convergence check."""
    by_key = {}
    for x in ops:
        if x.get("op") in ("put", "delete"):
            by_key.setdefault(x["key"], []).append(x)
    lost, phantoms, resurrected, unreadable = [], [], [], []
    final = {}
    superseded = 0
    deletes_absent = 0
    for key, xs in sorted(by_key.items()):
        present, err = read_final(key)
        if present is None:
            unreadable.append({"key": key, "error": err})
            continue
        final[key] = sorted(present)
        writer = {x["value"]: x for x in xs if x["op"] == "put"}
        coverers = {}
        for x in xs:
            for v in x.get("seen") or []:
                coverers.setdefault(v, []).append(x)
        memo = {}

        def took_effect(x):
            if x["op"] == "put":
                return explained(x["value"])
            if x["outcome"] == "acknowledged":
                return True
            if x["outcome"] == "refused" and 400 <= int(x.get("status") or 0) < 500:
                return False
            return not (set(x.get("seen") or []) & present)

        def explained(v):
            if v in present:
                return True
            if v in memo:
                return memo[v]
            memo[v] = False          # guards a (impossible) cycle
            memo[v] = any(took_effect(x) for x in coverers.get(v, []))
            return memo[v]

        for v in sorted(present - set(writer)):
            phantoms.append({"key": key, "value": v})
        for x in xs:
            if x["outcome"] != "acknowledged":
                continue
            if x["op"] == "put" and x["value"] not in present:
                if explained(x["value"]):
                    superseded += 1
                else:
                    lost.append({"key": key, "write": x, "found": sorted(present)})
            back = causal_past(x, writer) & present
            if back:
                resurrected.append({"key": key, "by": x.get("value") or "delete at %.3fs" % x["t_end"],
                                    "op": x["op"], "values": sorted(back)})
        if not present and any(x["op"] == "delete" and x["outcome"] == "acknowledged" for x in xs):
            deletes_absent += 1
    siblings = sorted(k for k, v in final.items() if len(v) > 1)
    acked = sum(1 for xs in by_key.values() for x in xs if x["outcome"] == "acknowledged")
    return {"keys": len(by_key), "acknowledged": acked, "lost": lost, "superseded": superseded,
            "phantoms": phantoms, "resurrected": resurrected, "unreadable": unreadable,
            "siblings_keys": siblings, "deleted_keys_absent": deletes_absent, "final": final,
            "ok": not (lost or phantoms or resurrected or unreadable)}


# ---------------------------------------------------------------------------
# Main


def lat_stats(values):
    ms = [v * 1000.0 for v in values]
    p50, p99 = percentile(ms, 50), percentile(ms, 99)
    return {"count": len(ms), "p50_ms": None if p50 is None else round(p50, 2),
            "p99_ms": None if p99 is None else round(p99, 2),
            "max_ms": round(max(ms), 2) if ms else None}


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.2f%s" % (v, unit)
    return "%s%s" % (v, unit)


if __name__ == "__main__" and sys.argv[1:] == ["--load-child"]:
    load_child()
