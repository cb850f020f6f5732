#!/usr/bin/env python3
"""Randomized differential audit of `netkit wait` against ncat -z loops, wait-for-it, curl loops
and wait-on (npm) on impaired netkit-lab labs.

Each lab is drawn at random (delay, jitter, loss, dup, reorder, rate, direction, the far kernel's
ICMP rate limit, an unroutable prefix); in it several scenarios are drawn. A scenario is a
service in the far namespace (198.18.0.2 or 2001:db8::2, a fresh port) that follows a random
schedule of states: closed (no listener: reset), listening, answering HTTP CODE with a body,
hanging (accepting, never answering), dropped or rejected by the far firewall (tcp-reset, port-,
host-unreachable, admin-prohibited); over HTTP, HTTPS (a throw-away CA, --cacert) or bare TCP;
one to three targets (v4 and v6), --any, --invert, --status, --body, a command after `--`.
netkit and the peers run at the same time against the same service, each in the scanner
namespace, and each is judged against the service's own log of when it was up:

- ready (or gone, with --invert) only while the service truly was (a ready reported before
  the service was up, or a gone before it went away, is a finding);
- a timeout while the service was up long enough before the deadline (and when a peer saw it);
- the exit time against --timeout (wall clock), the exit code (0 / 1 / the command's), the
  JSON records (one per target: ready or timeout, the reason) and the text lines;
- the timeout's reason against the state at the deadline (refused, no route, timed out, HTTP
  503, the body lacks, no HTTP response).

Findings go to OUT/findings.jsonl, every scenario to OUT/scenarios.jsonl. Reading them: the
tools share the far kernel's ICMP rate limit (one source address), so a reject may reach one
tool late; `netkit-missed` with a lossy lab and one peer ahead is often the luck of one lost
segment (compare several seeds); netkit's `--invert` takes silence for gone only after 8 s,
the peers at once (not counted against netkit).

Sends only inside the lab's namespaces (198.18.0.0/15, 2001:db8::/32). Needs root.

  bench/wait_diff.py [--minutes M] [--seed S] [--out DIR] [--netkit BIN] [--lab BIN]
  bench/wait_diff.py --serve SPEC_JSON   (the service, run by the driver in the far namespace)
  bench/wait_diff.py --replay OUT/scenarios.jsonl --ids 39,56 [--tools netkit] [--repeat N]
      (each scenario again, in a fresh lab of its own parameters, N times, with only --tools:
      to tell a tool's fault from the luck of the run or from sharing the far kernel's ICMP
      rate limit with the tools beside it)
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

V4, V6 = "198.18.0.2", "2001:db8::2"
UNROUTABLE = "198.18.9.0/24"
NOHOST = "198.18.0.200"  # routed to the far side, no host there: silence

REJECT = {
    "tcp-reset": ("tcp-reset", "tcp-reset"),
    "port-unreachable": ("icmp-port-unreachable", "icmp6-port-unreachable"),
    "host-unreachable": ("icmp-host-unreachable", "icmp6-addr-unreachable"),
    "admin-prohibited": ("icmp-admin-prohibited", "icmp6-adm-prohibited"),
}


# ---------------------------------------------------------------- the service (far namespace)

def serve(spec):
    """Follows spec["schedule"] ([[t, state], ...], t from spec["t0"]), printing
    `T epoch state` at each change; exits after the last state's time plus spec["tail"]."""
    addr, port, proto = spec["addr"], spec["port"], spec["proto"]
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    ipt = "ip6tables" if fam == socket.AF_INET6 else "iptables"
    ctx = None
    if proto == "https":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(spec["cert"], spec["key"])
    cur = {"state": "closed", "lsock": None, "rule": None}
    lock = threading.Lock()

    def answer(conn):
        try:
            conn.settimeout(20)
            if ctx is not None:
                conn = ctx.wrap_socket(conn, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            with lock:
                state = cur["state"]
            if state.startswith("http:"):
                _, code, body = state.split(":", 2)
                body = body.encode()
                conn.sendall(b"HTTP/1.1 %s X\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                             % (code.encode(), len(body)) + body)
            elif state == "hang":
                time.sleep(20)
            elif state.startswith("trickle:"):
                # the head at once, then the body a byte every 0.3 s
                _, code, body = state.split(":", 2)
                body = b"." * 8 + body.encode()
                conn.sendall(b"HTTP/1.1 %s X\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                             % (code.encode(), len(body)))
                for i in range(len(body)):
                    conn.sendall(body[i:i + 1])
                    time.sleep(0.3)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def accept(lsock):
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            if proto == "tcp":
                # accept and close, as the lab's --open listeners
                threading.Thread(target=lambda c=conn: (time.sleep(0.5), c.close()),
                                 daemon=True).start()
            else:
                threading.Thread(target=answer, args=(conn,), daemon=True).start()

    def set_state(state):
        before = time.time()
        listening = state in ("listen", "hang") or state.startswith(("http:", "trickle:"))
        if cur["rule"]:
            subprocess.run([ipt, "-w", "-D"] + cur["rule"], check=False)
            cur["rule"] = None
        if not listening and cur["lsock"] is not None:
            # shutdown first: a close alone leaves it listening while accept() blocks on it
            try:
                cur["lsock"].shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            cur["lsock"].close()
            cur["lsock"] = None
        if listening and cur["lsock"] is None:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port))
            s.listen(128)
            cur["lsock"] = s
            threading.Thread(target=accept, args=(s,), daemon=True).start()
        if state == "drop" or state.startswith("reject:"):
            r = ["INPUT", "-p", "tcp", "-d", addr, "--dport", str(port), "-j"]
            if state == "drop":
                r += ["DROP"]
            else:
                kind = REJECT[state.split(":", 1)[1]]
                r += ["REJECT", "--reject-with", kind[fam == socket.AF_INET6]]
            subprocess.run([ipt, "-w", "-I"] + r, check=True)
            cur["rule"] = r
        with lock:
            cur["state"] = state
        print("T %.6f %.6f %s" % (before, time.time(), state), flush=True)

    t0 = spec["t0"]
    try:
        for n, (at, state) in enumerate(spec["schedule"]):
            delay = t0 + at - time.time()
            if delay > 0 and n > 0:
                time.sleep(delay)
            set_state(state)
        time.sleep(max(0, t0 + spec["end"] - time.time()))
    finally:
        if cur["rule"]:
            subprocess.run([ipt, "-w", "-D"] + cur["rule"], check=False)


# ---------------------------------------------------------------- the driver

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--out", default="/tmp/wait_diff")
    ap.add_argument("--netkit", default="target/release/netkit")
    ap.add_argument("--lab", default="target/release/netkit-lab")
    ap.add_argument("--tag", default="wdf")
    ap.add_argument("--per-lab", type=int, default=6)
    ap.add_argument("--serve", default=None)
    ap.add_argument("--replay", default=None, help="a scenarios.jsonl to replay (with --ids)")
    ap.add_argument("--ids", default="", help="the scenario ids to replay, comma-separated")
    ap.add_argument("--tools", default="", help="replay only these tools (comma-separated)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each replayed scenario")
    args = ap.parse_args()
    if args.serve:
        serve(json.loads(args.serve))
        return
    Driver(args).run()


class Driver:
    def __init__(self, args):
        self.args = args
        os.makedirs(args.out, exist_ok=True)
        self.rng = random.Random(args.seed)
        self.deadline = time.time() + args.minutes * 60
        self.scen_f = open(os.path.join(args.out, "scenarios.jsonl"), "a")
        self.find_f = open(os.path.join(args.out, "findings.jsonl"), "a")
        self.nk = os.path.abspath(args.netkit)
        self.port = 20000 + self.rng.randrange(0, 20000)
        self.pki()
        print(f"seed {args.seed}", flush=True)

    def pki(self):
        """A CA and a server certificate for both far addresses."""
        d = os.path.join(self.args.out, "pki")
        os.makedirs(d, exist_ok=True)
        self.ca, self.cert, self.key = (os.path.join(d, n) for n in ("ca.pem", "srv.pem", "srv.key"))
        if os.path.exists(self.cert):
            return
        q = dict(check=True, capture_output=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                        "-subj", "/CN=wait-diff CA", "-keyout", d + "/ca.key", "-out", self.ca], **q)
        subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=far",
                        "-keyout", self.key, "-out", d + "/srv.csr"], **q)
        with open(d + "/ext", "w") as f:
            f.write(f"subjectAltName=IP:{V4},IP:{V6}\n")
        subprocess.run(["openssl", "x509", "-req", "-in", d + "/srv.csr", "-CA", self.ca,
                        "-CAkey", d + "/ca.key", "-CAcreateserial", "-days", "30",
                        "-extfile", d + "/ext", "-out", self.cert], **q)

    # ------------------------------------------------------------ labs

    def draw_lab(self):
        r = self.rng
        lab = {}
        delay = r.choice([0, 0, 1, 10, 40, 150, 400, 700])
        if delay:
            lab["delay"] = f"{delay}ms"
            if r.random() < 0.4:
                lab["jitter"] = f"{max(1, delay // r.choice([2, 4]))}ms"
            if r.random() < 0.3:
                lab["reorder"] = f"{r.choice([10, 25])}%"
        if r.random() < 0.6:
            lab["loss"] = f"{r.choice([2, 5, 10, 20, 35])}%"
        if r.random() < 0.35:
            lab["dup"] = f"{r.choice([5, 20, 50])}%"
        if r.random() < 0.15:
            lab["rate"] = r.choice(["200kbit", "1mbit"])
        if r.random() < 0.25:
            lab["direction"] = r.choice(["to-far", "to-scanner"])
        lab["icmp-ratelimit"] = r.choice(["default", "off"])
        lab["unroutable"] = UNROUTABLE + "=" + r.choice(["net", "host", "prohibit"])
        lab["seed"] = str(r.randrange(1, 10**6))
        return lab

    def lab_argv(self, lab):
        argv = [self.args.lab, "up", "--tag", self.args.tag, "--host", V4, "--host", V6]
        for k, v in lab.items():
            argv += [f"--{k}", v]
        return argv

    @staticmethod
    def one_way(lab):
        """The longest one-way delay of the lab, in seconds."""
        d = int(lab.get("delay", "0ms")[:-2]) + int(lab.get("jitter", "0ms")[:-2])
        return d / 1000

    # ------------------------------------------------------------ scenarios

    def draw_target(self, proto, invert, length):
        """One service: its address, port and schedule over `length` seconds."""
        r = self.rng
        self.port += 1
        if r.random() < 0.1:
            where = r.choice(["nohost", "unroutable"])
            addr = NOHOST if where == "nohost" else "198.18.9.%d" % r.randrange(1, 255)
            return {"addr": addr, "port": self.port, "proto": proto, "static": True,
                    "schedule": [[0.0, where]]}
        addr = r.choice([V4, V4, V6])
        down = ["closed", "closed", "drop", "reject:" + r.choice(list(REJECT))]
        if proto != "tcp":
            down += ["http:503:starting", "http:200:starting", "hang", "listen-tcp",
                     "trickle:200:starting"]
        up = "listen" if proto == "tcp" else r.choice(["http:200:ready"] * 3 +
                                                        ["trickle:200:ready"])
        first = up if invert else r.choice(down)
        sched = [[0.0, first]]
        t = 0.0
        for _ in range(r.choice([1, 1, 1, 2, 3])):
            t += r.uniform(0.5, max(1.0, length * 0.6))
            if t > length + 2:
                break
            prev = sched[-1][1]
            nxt = r.choice(down) if self.is_up(prev, proto) else up
            sched.append([round(t, 3), nxt])
        sched = [[a, "http:404:" if s == "listen-tcp" else s] for a, s in sched]
        return {"addr": addr, "port": self.port, "proto": proto, "schedule": sched}

    @staticmethod
    def is_up(state, proto, status=(200, 399), body=None):
        if proto == "tcp":
            return state == "listen"
        if not state.startswith(("http:", "trickle:")):
            return False
        _, code, text = state.split(":", 2)
        return status[0] <= int(code) <= status[1] and (body is None or body in text)

    def url(self, t):
        host = f"[{t['addr']}]" if ":" in t["addr"] else t["addr"]
        if t["proto"] == "tcp":
            return f"{host}:{t['port']}"
        return f"{t['proto']}://{host}:{t['port']}/health"

    def replayed(self, old, sid):
        """Scenario `old` (a scenarios.jsonl record) again, under a new id; its --cacert
        names this run's CA."""
        scen = {k: old[k] for k in ("lab", "proto", "invert", "timeout", "any", "body",
                                    "quiet", "command")}
        scen["id"], scen["status"] = sid, tuple(old["status"])
        scen["targets"] = [dict(t) for t in old["targets"]]
        flags = list(old["flags"])
        if "--cacert" in flags:
            flags[flags.index("--cacert") + 1] = self.ca
        scen["flags"] = flags
        return scen

    def scenario(self, lab, ns, far, sid, fixed=None):
        if fixed is not None:
            return self.play(fixed, lab, ns, far)
        r = self.rng
        proto = r.choice(["tcp", "tcp", "http", "http", "https"])
        invert = r.random() < 0.3
        timeout = r.choice([2, 3, 5, 8, 12])
        n = r.choice([1, 1, 1, 2, 3])
        any_ = n > 1 and r.random() < 0.4
        targets = [self.draw_target(proto, invert, timeout) for _ in range(n)]
        status, body = (200, 399), None
        flags = []
        if proto != "tcp":
            if r.random() < 0.3:
                status = r.choice([(200, 200), (200, 299), (200, 499)])
                flags += ["--status", f"{status[0]}-{status[1]}" if status[0] != status[1]
                          else str(status[0])]
            if r.random() < 0.4:
                body = r.choice(["ready", "rea", "start"])
                flags += ["--body", body]
            if proto == "https":
                flags += ["--cacert", self.ca]
        interval = r.choice([None, None, "50ms", "100ms", "500ms", "1s"])
        if interval:
            flags += ["--interval", interval]
        if any_:
            flags.append("--any")
        if invert:
            flags.append("--invert")
        quiet = r.random() < 0.25
        command = None
        if r.random() < 0.2:
            command = r.choice([0, 3, 42])
        scen = {"id": sid, "lab": lab, "proto": proto, "invert": invert, "timeout": timeout,
                "any": any_, "status": status, "body": body, "targets": targets,
                "flags": flags, "quiet": quiet, "command": command}
        return self.play(scen, lab, ns, far)

    def play(self, scen, lab, ns, far):
        """Runs scenario `scen` in the lab (`ns` the scanner, `far` the far namespace) and
        judges it."""
        targets, timeout, flags = scen["targets"], scen["timeout"], scen["flags"]
        quiet, command = scen["quiet"], scen["command"]
        t0 = time.time() + 1.0
        end = timeout + 3
        services = []
        for t in targets:
            if t.get("static"):
                continue
            spec = dict(t, t0=t0, end=end, cert=self.cert, key=self.key)
            services.append(subprocess.Popen(
                ["ip", "netns", "exec", far, sys.executable, os.path.abspath(__file__),
                 "--serve", json.dumps(spec)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True))
        for p in services:
            p.first = p.stdout.readline().decode()
        if time.time() > t0:
            print("  services late by %.3f s" % (time.time() - t0), flush=True)
        urls = [self.url(t) for t in targets]
        nk = [self.nk, "--json", "wait", *urls, "--timeout", f"{timeout}s", *flags]
        if quiet:
            nk.append("-q")
        if command is not None:
            nk += ["--", "sh", "-c", f"exit {command}"]
        tools = {"netkit": nk}
        tools.update(self.peers(scen, urls))
        if self.args.tools:
            keep = self.args.tools.split(",")
            tools = {k: v for k, v in tools.items() if k in keep}
        time.sleep(max(0, t0 - time.time()))
        res = {}
        threads = [threading.Thread(target=self.run_tool, args=(ns, name, argv, timeout, res))
                   for name, argv in tools.items()]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        logs = []
        for p in services[:0]:
            pass
        services = iter(services)
        for t in targets:
            if t.get("static"):
                logs.append([(t0 - 1, t["schedule"][0][1], t0 - 1)])
                continue
            p = next(services)
            try:
                out, err = p.communicate(timeout=end + 15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                out, err = p.communicate()
            if p.returncode:
                print("  service failed:", err.decode()[-300:], flush=True)
            lines = (p.first + out.decode()).splitlines()
            logs.append([(float(l.split()[1]), l.split(None, 3)[3], float(l.split()[2]))
                         for l in lines if l.startswith("T ")])
        scen["log"] = [[[round(a - t0, 3), s] for a, s, _ in log] for log in logs]
        scen["results"] = {k: {kk: vv for kk, vv in v.items() if kk not in ("out",)}
                           for k, v in res.items()}
        for v in scen["results"].values():
            v["start"] = round(v["start"] - t0, 3)
            v["end"] = round(v["end"] - t0, 3)
        scen["latency"] = {}
        if "netkit" in res:  # a replay of the peers alone (--tools) is not judged
            self.judge(scen, lab, logs, res, t0)
        return scen

    def peers(self, scen, urls):
        tm = scen["timeout"]
        inv, proto, targets = scen["invert"], scen["proto"], scen["targets"]
        peers = {}
        if scen["command"] is not None:
            return peers
        if proto == "tcp":
            def probe(t):
                return f"ncat -z -w 1 {t['addr']} {t['port']} 2>/dev/null"
            if scen["any"]:
                cond = " || ".join(probe(t) for t in targets)
                loop = f"until {cond}; do sleep 0.25; done" if not inv else \
                    f"while {' && '.join(probe(t) for t in targets)}; do sleep 0.25; done"
            else:
                parts = [f"{'until' if not inv else 'while'} {probe(t)}; do sleep 0.25; done"
                         for t in targets]
                loop = "; ".join(parts)
            peers["ncat -z loop"] = ["timeout", str(tm), "sh", "-c", loop]
            if not inv and not scen["any"] and all(":" not in t["addr"] for t in targets):
                peers["wait-for-it"] = ["sh", "-c", " && ".join(
                    f"wait-for-it -q -t {tm} {t['addr']}:{t['port']}" for t in targets)]
            if all(":" not in t["addr"] for t in targets) and not scen["any"]:
                peers["wait-on"] = ["wait-on", "-t", f"{tm}s", "--tcpTimeout", "1s"] + \
                    (["-r"] if inv else []) + [f"tcp:{t['addr']}:{t['port']}" for t in targets]
        else:
            lo, hi = scen["status"]
            body = scen["body"] or ""
            ca = f"--cacert {self.args.out}/pki/ca.pem" if proto == "https" else ""
            check = ("r=$(curl -gs --max-time 5 %s -w '\\n%%{http_code}' 'URL'); c=${r##*$'\\n'}; "
                     "[ \"$c\" -ge %d ] && [ \"$c\" -le %d ] && case \"$r\" in *'%s'*) true;; "
                     "*) false;; esac" % (ca, lo, hi, body))
            if scen["any"]:
                cond = " || ".join("{ %s; }" % (check.replace("URL", u)) for u in urls)
                loop = f"until {cond}; do sleep 0.25; done" if not inv else \
                    "while %s; do sleep 0.25; done" % " && ".join("{ %s; }" % (check.replace("URL", u))
                                                                  for u in urls)
            else:
                loop = "; ".join("%s { %s; }; do sleep 0.25; done" % ("until" if not inv else
                                                                        "while", check.replace("URL", u))
                                 for u in urls)
            peers["curl loop"] = ["timeout", str(tm), "bash", "-c", loop]
            v4 = all(":" not in t["addr"] for t in targets)
            if proto == "http" and scen["body"] is None and not scen["any"] and v4:
                peers["wait-on"] = ["wait-on", "-t", f"{tm}s", "--httpTimeout", "5s",
                                    "--status-codes", f"{lo}-{hi}"] + (["-r"] if inv else []) + \
                    [u.replace("http://", "http-get://") for u in urls]
        # a peer not installed here is left out (its runs would all be 'exit 1 at once')
        return {k: v for k, v in peers.items()
                if shutil.which(v[0] if v[0] not in ("timeout", "sh", "bash") else "true")}

    @staticmethod
    def run_tool(ns, name, argv, timeout, res):
        start = time.time()
        try:
            p = subprocess.run(["ip", "netns", "exec", ns] + argv, capture_output=True,
                               timeout=timeout + 20)
            code, out, err = p.returncode, p.stdout.decode(errors="replace"), \
                p.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired:
            code, out, err = -9, "", "hard timeout"
        res[name] = {"code": code, "out": out, "stdout": out[-2000:], "stderr": err[-2000:],
                     "start": start, "end": time.time(), "took": round(time.time() - start, 3)}

    # ------------------------------------------------------------ judging

    def finding(self, kind, scen, detail):
        rec = {"kind": kind, "scenario": scen["id"], "detail": detail}
        self.find_f.write(json.dumps(rec) + "\n")
        self.find_f.flush()
        print("  FINDING", kind, json.dumps(detail)[:500], flush=True)

    def intervals(self, scen, log, t0, end, lenient=False):
        """The periods (absolute) in which one target counted as ready (gone, inverted)."""
        proto = scen["proto"]
        out = []
        for i, (before, state, after) in enumerate(log):
            nxt = log[i + 1] if i + 1 < len(log) else (end, None, end)
            up = self.is_up(state, proto, scen["status"], scen["body"])
            if up != scen["invert"]:
                if lenient:
                    out.append((before, nxt[2], state))
                else:
                    out.append((after, nxt[0], state))
        return out

    def judge(self, scen, lab, logs, res, t0):
        nk = res["netkit"]
        tm = scen["timeout"]
        ow = self.one_way(lab)
        end_all = t0 + tm + 30
        ivs = [self.intervals(scen, log, t0, end_all) for log in logs]
        wide = [self.intervals(scen, log, t0, end_all, lenient=True) for log in logs]
        urls = [self.url(t) for t in scen["targets"]]
        took = nk["end"] - nk["start"]
        # the exit time against the hard deadline
        if took > tm + 0.5:
            self.finding("netkit-overran", scen, {"took": round(took, 3), "timeout": tm,
                                                  "code": nk["code"]})
        if nk["code"] in (-9, 124) or "panick" in nk["stderr"]:
            self.finding("netkit-hang-or-panic", scen, {"code": nk["code"],
                                                        "err": nk["stderr"][-400:]})
            return
        # records
        recs = []
        for line in nk["out"].splitlines():
            try:
                recs.append(json.loads(line))
            except ValueError:
                self.finding("netkit-json", scen, {"line": line})
        ready = {r["endpoint"]: r for r in recs if r.get("type") == "ready"}
        tmo = {r["endpoint"]: r for r in recs if r.get("type") == "timeout"}
        for r in recs:
            if r.get("type") not in ("ready", "timeout") or not isinstance(r.get("elapsed_s"),
                                                                           (int, float)):
                self.finding("netkit-json-record", scen, {"record": r})
            elif r["elapsed_s"] > tm + 0.05:
                self.finding("netkit-record-late", scen, {"record": r})
        success = (any if scen["any"] else all)(u in ready for u in urls)
        want = (scen["command"] if scen["command"] is not None else 0) if success else 1
        if nk["code"] != want:
            self.finding("netkit-exit", scen, {"code": nk["code"], "want": want,
                                               "stderr": nk["stderr"][-300:]})
        if not success:
            missing = [u for u in urls if u not in ready and u not in tmo]
            if missing:
                self.finding("netkit-json-missing-timeout", scen, {"missing": missing,
                                                                   "out": nk["out"][-400:]})
        # each ready moment within a true ready period (slack: the answer's trip back)
        # the process's start-up before its clock started: the last record was its exit, or
        # the command's start (`sh -c "exit N"`, allowed 25 ms; taking the start-up for 0 then
        # made a ready 75 ms after a loaded start-up look 35 ms early: seed 9921, scenario 37)
        last = max([r["elapsed_s"] for r in recs if isinstance(r.get("elapsed_s"), float)],
                   default=0.0)
        startup = max(0.0, nk["end"] - nk["start"] - last
                      - (0.005 if scen["command"] is None else 0.025))
        for i, u in enumerate(urls):
            if u in ready:
                at = nk["start"] + startup + ready[u]["elapsed_s"]
                ok = any(a - 0.02 <= at <= b + 2 * ow + 0.3 + (5 if s.startswith("trickle:")
                                                                    else 0)
                         for a, b, s in wide[i])
                if not ok:
                    self.finding("netkit-false-ready", scen, {
                        "target": u, "at": round(at - t0, 3),
                        "periods": [(round(a - t0, 3), round(b - t0, 3), s) for a, b, s in ivs[i]],
                        "log": scen["log"][i]})
        # a timeout while a target was ready for long enough
        deadline = nk["start"] + tm
        lossy = any(k in lab for k in ("loss", "rate"))
        interval = self.interval(scen)
        margin = 1.5 + 8 * ow + (2.5 if lossy else 0) + interval
        if scen["proto"] == "https":
            margin += 4 * ow
        for i, u in enumerate(urls):
            if u in ready or success:
                continue
            # exchanges made while the service hung sit on connections it never answers until
            # one beside them is replaced (5 s in: wait::hedge), as a curl loop's --max-time 5
            # try: an up period after a hang counts from then (seed 9921, scenario 36: the
            # exchange beside, 1 s in, reached the service 25 ms before its hang ended)
            log = logs[i]
            after_hang = {log[k + 1][2] for k in range(len(log) - 1) if log[k][1] == "hang"}
            long_enough = [(a, b) for a, b, s in ivs[i]
                           if min(b, deadline)
                           - max(a + (5 + 4 * ow if a in after_hang else 0), nk["start"])
                           >= margin + (8.5 if self.silent(s, lab) else 0)
                           + (3.5 if s.startswith("trickle:") else 0)]
            peers_ok = [k for k, v in res.items() if k != "netkit" and v["code"] == 0]
            if scen["invert"] and any(self.silent(st, lab) or st.startswith("trickle:")
                                      for _, st, _ in logs[i]):
                # the peers take a moment's silence for gone (netkit needs 8 s), and a body
                # trickling in past curl's --max-time 5 too (netkit: still answers)
                peers_ok = []
            if long_enough or (peers_ok and len(urls) == 1):
                self.finding("netkit-missed", scen, {
                    "target": u, "reason": tmo.get(u, {}).get("reason"), "peers_ok": peers_ok,
                    "periods": [(round(a - t0, 3), round(b - t0, 3), s) for a, b, s in ivs[i]],
                    "margin": round(margin, 2)})
        # the reason against the state at the deadline
        for i, u in enumerate(urls):
            if u not in tmo:
                continue
            states = [s for _, s, at in logs[i] if at <= deadline]
            if not states:
                continue
            state, since = states[-1], deadline - [at for _, s, at in logs[i] if at <= deadline][-1]
            reason = tmo[u].get("reason", "")
            exp = self.expected_reason(state, scen)
            if exp and state.startswith("reject:") and self.silent(state, lab):
                exp = exp + ["connect timed out"]  # its ICMP error withheld by the limit
            # exchanges made while the service hung sit on connections it never answers until
            # one beside them is replaced (5 s in: wait::hedge), as a curl loop's --max-time 5
            # try: within that of the hang's end, no answer is what they truly saw
            hang_end = [at for (_, s, _), (_, _, at) in zip(logs[i], logs[i][1:])
                        if s == "hang" and at <= deadline]
            if exp and hang_end and deadline - hang_end[-1] < 5 + 4 * ow:
                exp = exp + ["no HTTP response in time"]
            # an exchange under way when the service began dropping sits until its 10 s
            # answer bound (seed 9801, scenario 28: dropped 5.7 s before the deadline)
            before = states[:-1]
            if exp and state == "drop" and before and before[-1].startswith(("http:", "trickle:")) \
                    and since < 10 + 4 * ow:
                exp = exp + ["no HTTP response in time"]
            # an exchange reading a trickled body (a byte every 0.3 s: 3.9 s for its 13 bytes)
            # when the state changed reads on: one attempt at a time, so the deadline can cut
            # it still reading what it saw (seed 10004, scenario 15: a trickled 200 begun
            # before a 503 that held for the last 1.6 s; 3 of 3 replays the same)
            if exp and before and before[-1].startswith("trickle:") and not scen["invert"] \
                    and since < 4 + 2 * ow:
                exp = exp + (self.expected_reason(before[-1], scen) or [])
            # on a lossy path loss alone can cut an attempt at any step: within the time the
            # missed check gives an up state to be seen, what the path did is a reason too
            # (seed 9923's scenario 36, replayed 6 times at 35 % loss: 5 gave the body's
            # reason, one `connect timed out (earlier: connection refused)` 2.43 s into a 200
            # without the text, as a lost SYN does; wait_diff flagged it)
            if exp and lossy and since < margin:
                exp = exp + ["connect timed out", "no HTTP response in time",
                             "TLS handshake not finished in time"]
            if exp and since > 1.5 + 6 * ow and not any(e in reason for e in exp):
                self.finding("netkit-reason", scen, {"target": u, "state": state,
                                                     "since": round(since, 2),
                                                     "reason": reason, "expected": exp})
        # text lines
        err = nk["stderr"]
        if scen["quiet"]:
            if any(l.startswith("waiting for") for l in err.splitlines()):
                self.finding("netkit-quiet-progress", scen, {"stderr": err[-300:]})
        else:
            for u in urls:
                if f"waiting for {u}" not in err:
                    self.finding("netkit-text-waiting", scen, {"target": u, "stderr": err[-300:]})
                if u in tmo and f"timed out waiting for {u}" not in err:
                    self.finding("netkit-text-timeout", scen, {"target": u, "stderr": err[-300:]})
        # peers: exit after the deadline, latency beside netkit's
        scen["latency"] = {}
        for k, v in res.items():
            if v["code"] == 0 and len(urls) == 1 and ivs[0]:
                first = min(a for a, b, _ in ivs[0] if b > v["start"]) if any(
                    b > v["start"] for a, b, _ in ivs[0]) else None
                if first is not None:
                    scen["latency"][k] = round(v["end"] - max(first, v["start"]), 3)
        if scen["invert"] and any(self.silent(s, lab) or s.startswith("trickle:")
                                  for log in logs for _, s, _ in log):
            scen["latency"] = {}  # the peers take a moment's silence for gone; netkit 8 s
        nl = scen["latency"].get("netkit")
        pl = [x for k, x in scen["latency"].items() if k != "netkit"]
        for k, x in scen["latency"].items():
            if x < -0.05 and not scen["invert"]:
                self.finding(f"peer-false-ready:{k}", scen, {"latency": x, "log": scen["log"]})
        pl = [x for x in pl if x >= 0]
        if nl is not None and pl and nl > min(pl) + 1.5 + 4 * ow + interval:
            self.finding("netkit-slow", scen, {"netkit": nl, "peers": scen["latency"]})

    @staticmethod
    def silent(state, lab):
        """Whether a connect to a target in `state` may hear nothing: dropped, no host, hung;
        or rejected by an ICMP error while the far kernel limits its ICMP errors to us (6 at
        once, then 1 a second, to each address: the segments of the connections closed just
        before, ACKs and their duplicates, spend them, and then a SYN gets no answer; seen in
        a capture of seed 9506's scenario 39)."""
        if state in ("drop", "hang", "nohost"):
            return True
        icmp = state.startswith("reject:") and state != "reject:tcp-reset"
        return icmp and lab.get("icmp-ratelimit") == "default"

    @staticmethod
    def interval(scen):
        """The --interval of the scenario, in seconds."""
        if "--interval" not in scen["flags"]:
            return 0.25
        text = scen["flags"][scen["flags"].index("--interval") + 1]
        return float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1])

    @staticmethod
    def expected_reason(state, scen):
        if state in ("closed", "reject:tcp-reset", "reject:port-unreachable"):
            return ["connection refused"]
        if state == "reject:host-unreachable":
            return ["no route to host", "host is unreachable", "address unreachable"]
        if state == "reject:admin-prohibited":
            return ["prohibited", "no route to host", "permission denied", "filtered"]
        if state in ("drop", "nohost"):
            return ["connect timed out"]
        if state == "unroutable":
            return ["unreachable", "no route to host", "prohibited", "permission denied",
                    "connect timed out"]
        # a state that is up (a 200 without --body, or with its text) times out only by the
        # path (loss, delay): netkit-missed judges that, and the reason is what the path did
        # ("no HTTP response in time" at 35 % loss, seed 9921's scenario 5)
        up = Driver.is_up(state, scen["proto"], scen["status"], scen["body"])
        if state.startswith("trickle:") and not scen["invert"]:
            return ["in the body in time", "body lacks"] if scen["body"] is not None else None
        if state.startswith(("trickle:", "http:")) and scen["invert"]:
            return None  # still up (not gone), or gone by a status netkit may not have seen
        if state == "hang":
            return ["no HTTP response in time"]
        if state.startswith("http:"):
            code = int(state.split(":")[1])
            lo, hi = scen["status"]
            if not lo <= code <= hi:
                return [f"HTTP {code}"]
            return None if up else ["body lacks", "in the body in time"]
        return None

    # ------------------------------------------------------------ main loop

    def plan(self):
        """The labs to bring up, each with the scenarios to replay in it (None: draw them)."""
        if not self.args.replay:
            while True:
                yield self.draw_lab(), None
        ids = {int(i) for i in self.args.ids.split(",") if i.strip()}
        olds = [json.loads(line) for line in open(self.args.replay)]
        olds = [o for o in olds if o["id"] in ids]
        missing = sorted(ids - {o["id"] for o in olds})
        if missing:  # they came back as nothing at all, unsaid
            print(f"not in {self.args.replay}: {missing}", flush=True)
        self.asked = len(olds) * self.args.repeat
        for old in olds:
            yield old["lab"], [old] * self.args.repeat

    def lab_up(self, argv):
        """The lab's process and its scanner and far namespaces, or None when it failed."""
        lp = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True)
        line = lp.stdout.readline().decode()
        m = re.search(r"scanner=(\S+) router=(\S+) far=(\S+)", line)
        if m:
            return lp, m[1], m[3]
        print("lab failed:", " ".join(argv), lp.stderr.read().decode()[-500:], flush=True)
        lp.kill()
        lp.wait()
        time.sleep(1)
        return None

    def run(self):
        sid = nlab = 0
        for lab, fixed in self.plan():
            if time.time() >= self.deadline:
                break
            argv = self.lab_argv(lab)
            # a replay's lab is tried again (its scenarios were dropped, unsaid); a drawn one
            # is drawn anew
            up = next((u for u in (self.lab_up(argv) for _ in range(1 if fixed is None else 3))
                       if u), None)
            if up is None:
                continue
            lp, ns, far = up
            nlab += 1
            print(f"lab {nlab}: {' '.join(argv[2:])}", flush=True)
            try:
                for n in range(self.args.per_lab if fixed is None else len(fixed)):
                    if time.time() > self.deadline:
                        break
                    sid += 1
                    old = None if fixed is None else self.replayed(fixed[n], sid)
                    if old is not None:
                        print(f" replaying s{fixed[n]['id']} as s{sid}", flush=True)
                    scen = self.scenario(lab, ns, far, sid, old)
                    codes = {k: (v["code"], v["took"]) for k, v in scen["results"].items()}
                    print(f" s{sid} {scen['proto']} {' '.join(scen['flags'])} "
                          f"t={scen['timeout']} log={scen['log']} {codes} "
                          f"lat={scen['latency']}", flush=True)
                    self.scen_f.write(json.dumps(scen) + "\n")
                    self.scen_f.flush()
            finally:
                lp.send_signal(signal.SIGTERM)
                try:
                    lp.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    lp.kill()
                    lp.wait()
        print(f"done: {sid} scenarios in {nlab} labs", flush=True)
        if self.args.replay and sid < self.asked:
            print(f"replayed {sid} of the {self.asked} asked", flush=True)


if __name__ == "__main__":
    main()
