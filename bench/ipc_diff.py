#!/usr/bin/env python3
"""Randomized differential audit of netkit's IPC paths beside socat and ncat.

`netkit echo`, `netkit send` and `netkit forward` on Unix sockets (paths and abstract `@names`)
and loopback TCP, each scenario run the same way with the peer tools doing the same job:

  echo    netkit echo            | socat UNIX-LISTEN:P,fork EXEC:cat | ncat -lkU P --sh-exec cat
  client  netkit send            | socat - UNIX-CONNECT:P           | ncat -U P
  forward netkit forward unix:P T | socat UNIX-LISTEN:P,fork UNIX-CONNECT:T (or TCP:...)

Seeded random scenarios: message sizes 0 B to several MB of random bytes (NULs included),
half-close then read the reply, clients that close with input unread mid-transfer, many
concurrent clients, stale and live socket files, a symbolic link in the way, --mode, path length limits, SIGTERM/SIGINT
with clients connected (socket file cleanup), a low open-files limit (the server must keep
serving), --json records. Every difference from the expected result is printed as a DIFF line;
a summary counts scenarios and differences per area.

Usage: bench/ipc_diff.py [--seed N] [--rounds N] [--netkit PATH] [--only AREA,...]
  (default: seed from the clock, printed; 20 rounds; target/release/netkit of this tree).
Local sockets only (Unix sockets under a temporary directory, 127.0.0.1).
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIFFS = []
COUNTS = {}


def diff(area, what):
    DIFFS.append((area, what))
    print(f"DIFF [{area}] {what}", flush=True)


def count(area):
    COUNTS[area] = COUNTS.get(area, 0) + 1


def wait_for_unix(path, timeout=5.0):
    """Waits until a connect to `path` (a filesystem path or '@name') succeeds."""
    deadline = time.monotonic() + timeout
    addr = "\0" + path[1:] if path.startswith("@") else path
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(addr)
            s.close()
            return True
        except OSError:
            s.close()
            time.sleep(0.02)
    return False


def wait_for_tcp(port, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def payload(rng):
    kind = rng.random()
    if kind < 0.1:
        n = 0
    elif kind < 0.2:
        n = rng.randint(1, 16)
    elif kind < 0.5:
        n = rng.randint(17, 70000)
    elif kind < 0.6:
        n = rng.choice([65535, 65536, 65537, 131072, 212992, 262144, 262145])
    else:
        n = rng.randint(70000, 6 << 20)
    data = bytearray(rng.randbytes(n))
    # Runs of NULs and newlines, which a text-minded tool might mangle.
    for _ in range(min(n // 1000, 20)):
        at = rng.randrange(n)
        data[at : at + 64] = b"\0" * len(data[at : at + 64])
    return bytes(data)


class Server:
    """A server process; stop() sends a signal and waits."""

    def __init__(self, argv, ready, env=None, preexec=None):
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            preexec_fn=preexec,
            start_new_session=True,
        )
        self.ok = ready()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        note = b""
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            note = b"\n(killed after 10 s)"
        # the children of a forking peer (socat's, ncat's) hold the pipes: end the session
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = self.proc.communicate()
        err += note
        return self.proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def unix_addr(path):
    return "\0" + path[1:] if path.startswith("@") else path


def echo_servers(netkit, path, kind):
    """(name, argv) of echo servers on `path` ('@name' abstract) or TCP port `path`."""
    if kind == "tcp":
        port = path
        return [
            ("netkit", [netkit, "echo", f"127.0.0.1:{port}"]),
            ("socat", ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", "EXEC:cat"]),
            ("ncat", ["ncat", "-lk", "127.0.0.1", str(port), "--sh-exec", "cat"]),
        ]
    if path.startswith("@"):
        return [
            ("netkit", [netkit, "echo", f"unix:{path}"]),
            ("socat", ["socat", f"ABSTRACT-LISTEN:{path[1:]},fork", "EXEC:cat"]),
        ]
    return [
        ("netkit", [netkit, "echo", f"unix:{path}"]),
        ("socat", ["socat", f"UNIX-LISTEN:{path},fork", "EXEC:cat"]),
        ("ncat", ["ncat", "-lkU", path, "--sh-exec", "cat"]),
    ]


def clients(netkit, path, kind):
    if kind == "tcp":
        return [
            ("netkit", [netkit, "send", f"127.0.0.1:{path}"]),
            ("socat", ["socat", "-t", "30", "-", f"TCP:127.0.0.1:{path}"]),
            ("ncat", ["ncat", "127.0.0.1", str(path)]),
        ]
    if path.startswith("@"):
        return [
            ("netkit", [netkit, "send", f"unix:{path}"]),
            ("socat", ["socat", "-t", "30", "-", f"ABSTRACT-CONNECT:{path[1:]}"]),
        ]
    return [
        ("netkit", [netkit, "send", f"unix:{path}"]),
        ("socat", ["socat", "-t", "30", "-", f"UNIX-CONNECT:{path}"]),
        ("ncat", ["ncat", "-U", path]),
    ]


def run_client(argv, data, timeout=60):
    try:
        p = subprocess.run(argv, input=data, capture_output=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return "timeout", b"", ""


def py_exchange(addr, data, family=socket.AF_UNIX, timeout=30):
    """Connects, sends `data` while reading, half-closes, reads to EOF: the reply."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(addr)
    got = []
    err = []

    def reader():
        try:
            while True:
                b = s.recv(1 << 18)
                if not b:
                    return
                got.append(b)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=reader)
    t.start()
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        err.append(e)
    t.join(timeout + 5)
    s.close()
    return b"".join(got), err


# ---------------------------------------------------------------------------------------------
# areas


def area_matrix(args, rng, work):
    """Every echo server x every client on one random payload; the reply must be the input."""
    kind = rng.choice(["path", "abstract", "tcp"])
    if kind == "path":
        where = os.path.join(work, f"m{rng.randrange(1 << 30)}.sock")
    elif kind == "abstract":
        where = f"@ipcaudit-{os.getpid()}-{rng.randrange(1 << 30)}"
    else:
        where = free_port()
    data = payload(rng)
    pending = []
    for sname, sargv in echo_servers(args.netkit, where, kind):
        ready = (lambda: wait_for_tcp(where)) if kind == "tcp" else (lambda: wait_for_unix(where))
        srv = Server(sargv, ready)
        if not srv.ok:
            code, out, err = srv.stop()
            diff("matrix", f"{sname} echo on {kind} never listened: {code} {err.strip()[:200]}")
            continue
        res = {}
        for cname, cargv in clients(args.netkit, where, kind):
            count("matrix")
            code, out, err = run_client(cargv, data, timeout=30)
            res[cname] = (code == 0 and out == data)
            if out != data or code != 0:
                line = (
                    f"server={sname} client={cname} {kind} size={len(data)}: rc={code} "
                    f"got {len(out)} bytes, same={out == data} err={err.strip()[:200]!r}"
                )
                # netkit's fault only as the server, or as a client where socat succeeded;
                # ncat --sh-exec cuts the reply short for any client (a Python client got
                # 57344 to 3213719 of 3216091 bytes, socat hung 4 times in 6: seed 7221), so
                # a netkit client's short reply from it is the peer's when it is a prefix
                if sname == "ncat" and cname == "netkit" and data.startswith(out):
                    print(f"  peer (ncat --sh-exec cut the reply short): {line}")
                elif sname == "netkit" or cname == "netkit":
                    pending.append(line)
                else:
                    print(f"  peer: {line}")
        for line in pending:
            if "server=netkit" in line or res.get("socat"):
                diff("matrix", line)
            else:
                print(f"  peer (socat client failed too): {line}")
        pending.clear()
        code, out, err = srv.stop()
        if sname == "netkit" and code != 0:
            diff("matrix", f"netkit echo exit {code} on SIGTERM: {err.strip()[:200]}")
        if kind == "path" and sname == "netkit" and os.path.lexists(where):
            diff("matrix", f"netkit echo left {where} behind")
        if kind == "path" and os.path.lexists(where):
            os.unlink(where)


def area_forward(args, rng, work):
    """forward with a Unix listen side and/or a Unix target, beside socat; python drives it."""
    listen_kind = rng.choice(["path", "abstract", "tcp"])
    target_kind = rng.choice(["path", "abstract", "tcp"])
    if listen_kind == "tcp" and target_kind == "tcp":
        target_kind = "path"
    tag = rng.randrange(1 << 30)
    # the target: netkit echo (its correctness is checked by the matrix)
    if target_kind == "tcp":
        tport = free_port()
        tsrv = Server([args.netkit, "echo", f"127.0.0.1:{tport}"], lambda: wait_for_tcp(tport))
        nk_target, socat_target = f"127.0.0.1:{tport}", f"TCP:127.0.0.1:{tport}"
    else:
        tpath = os.path.join(work, f"t{tag}.sock") if target_kind == "path" else f"@ipcaudit-t{tag}"
        tsrv = Server([args.netkit, "echo", f"unix:{tpath}"], lambda: wait_for_unix(tpath))
        nk_target = f"unix:{tpath}"
        socat_target = (
            f"UNIX-CONNECT:{tpath}" if target_kind == "path" else f"ABSTRACT-CONNECT:{tpath[1:]}"
        )
    sizes = [payload(rng) for _ in range(rng.randint(1, 4))]
    conc = rng.choice([1, 1, 8, 50])
    for tool in ["netkit", "socat"]:
        if listen_kind == "tcp":
            lport = free_port()
            addr, fam = ("127.0.0.1", lport), socket.AF_INET
            nk_listen, socat_listen = f"127.0.0.1:{lport}", f"TCP-LISTEN:{lport},bind=127.0.0.1,reuseaddr,fork"
            ready = lambda: wait_for_tcp(lport)
        else:
            lpath = (
                os.path.join(work, f"l{tag}-{tool}.sock")
                if listen_kind == "path"
                else f"@ipcaudit-l{tag}-{tool}"
            )
            addr, fam = unix_addr(lpath), socket.AF_UNIX
            nk_listen = f"unix:{lpath}"
            socat_listen = (
                f"UNIX-LISTEN:{lpath},fork"
                if listen_kind == "path"
                else f"ABSTRACT-LISTEN:{lpath[1:]},fork"
            )
            ready = (lambda p: lambda: wait_for_unix(p))(lpath)
        argv = (
            [args.netkit, "forward", "--json", nk_listen, nk_target]
            if tool == "netkit"
            else ["socat", socat_listen, socat_target]
        )
        srv = Server(argv, ready)
        if not srv.ok:
            code, out, err = srv.stop()
            diff("forward", f"{tool} {listen_kind}->{target_kind} never listened: {err.strip()[:200]}")
            continue
        results = {}

        def one(i, data):
            try:
                results[i] = py_exchange(addr, data, fam)
            except OSError as e:
                results[i] = (b"", [e])

        threads = []
        for i in range(conc):
            data = sizes[i % len(sizes)]
            t = threading.Thread(target=one, args=(i, data))
            t.start()
            threads.append(t)
        for t in threads:
            t.join(120)
        for i in range(conc):
            count("forward")
            data = sizes[i % len(sizes)]
            got, err = results.get(i, (b"", ["no result"]))
            if got != data or err:
                line = (
                    f"{tool} {listen_kind}->{target_kind} client {i}/{conc} size={len(data)}: "
                    f"got {len(got)} same={got == data} err={err}"
                )
                if tool == "netkit":
                    diff("forward", line)
                else:
                    print(f"  peer: {line}")  # socat's listen backlog is 5
        code, out, err = srv.stop()
        if tool == "netkit":
            recs = [json.loads(line) for line in out.splitlines() if line.strip()]
            conns = [r for r in recs if r.get("type") == "conn"]
            # one more: the readiness probe's empty connection
            if len(conns) != conc + 1:
                diff("forward", f"netkit {listen_kind}->{target_kind}: {len(conns)} conn records for {conc} clients")
            for r in conns:
                i_sizes = sorted(len(d) for d in sizes) + [0]
                if r.get("bytes_up") != r.get("bytes_down") or r.get("bytes_up") not in i_sizes:
                    diff("forward", f"netkit conn record {r}")
            if code != 0:
                diff("forward", f"netkit forward exit {code}: {err.strip()[:200]}")
            if listen_kind == "path" and os.path.lexists(lpath):
                diff("forward", f"netkit forward left {lpath} behind")
        if listen_kind == "path" and os.path.lexists(lpath):
            os.unlink(lpath)
    tsrv.stop()


def area_reset(args, rng, work):
    """Clients that close with input unread mid-transfer, then a normal client: served?
    (echo servers, and forward to a Unix and to a TCP echo target)"""
    kind = rng.choice(["path", "abstract"])
    tport = free_port()
    tcp_target = Server([args.netkit, "echo", f"127.0.0.1:{tport}"], lambda: wait_for_tcp(tport))
    path = os.path.join(work, f"r{rng.randrange(1 << 30)}.sock") if kind == "path" else f"@ipcaudit-r{rng.randrange(1 << 30)}"
    tpath = path + "-t" if kind == "path" else path + "-t"
    tsrv = Server([args.netkit, "echo", f"unix:{tpath}"], lambda: wait_for_unix(tpath))
    servers = echo_servers(args.netkit, path, kind) + [
        ("forward", [args.netkit, "forward", f"unix:{path}", f"unix:{tpath}"]),
        ("forward-tcp-target", [args.netkit, "forward", f"unix:{path}", f"127.0.0.1:{tport}"]),
    ]
    for sname, sargv in servers:
        srv = Server(sargv, lambda: wait_for_unix(path))
        for _ in range(rng.randint(1, 5)):
            s = socket.socket(socket.AF_UNIX)
            s.connect(unix_addr(path))
            s.setblocking(False)
            n = rng.randint(1, 4 << 20)
            try:
                s.send(rng.randbytes(n))
            except BlockingIOError:
                pass
            time.sleep(rng.random() * 0.05)
            s.close()  # unread echo in our receive queue: the server sees ECONNRESET/EPIPE
        data = payload(rng)
        count("reset")
        got, err = py_exchange(unix_addr(path), data)
        if got != data or err:
            line = f"{sname}: after aborted clients, size={len(data)} got {len(got)} err={err}"
            if sname in ("netkit", "forward", "forward-tcp-target"):
                diff("reset", line)
            else:
                print(f"  peer: {line}")  # ncat --sh-exec loses data of a half-closed client
        code, out, err = srv.stop()
        if sname in ("netkit", "forward", "forward-tcp-target") and (code != 0 or "panick" in err):
            diff("reset", f"netkit {sname} exit {code}: {err.strip()[:300]}")
        if kind == "path" and os.path.lexists(path):
            if sname == "netkit":
                diff("reset", "netkit echo left its socket file")
            os.unlink(path)
    tsrv.stop()
    tcp_target.stop()


def area_send_reset(args, rng, work):
    """send against a Unix server that closes with input unread after replying part."""
    path = os.path.join(work, f"sr{rng.randrange(1 << 30)}.sock")
    reply = rng.randbytes(rng.randint(0, 300000))
    lst = socket.socket(socket.AF_UNIX)
    lst.bind(path)
    lst.listen(8)

    def serve():
        for _ in range(3):
            try:
                c, _ = lst.accept()
            except OSError:
                return
            c.recv(10)  # read a little, leave the rest unread
            try:
                c.sendall(reply)
            except OSError:
                pass
            c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    data = rng.randbytes(rng.randint(100000, 3 << 20))
    res = {}
    for cname, cargv in clients(args.netkit, path, "path"):
        count("send-reset")
        code, out, err = run_client(cargv, data, timeout=30)
        res[cname] = (code, len(out), out == reply, err.strip()[:200])
    lst.close()
    os.unlink(path)
    if res["netkit"][2] is not True:
        diff("send-reset", f"reply {len(reply)} input {len(data)}: {res}")
    elif res["netkit"][0] != 0:
        diff("send-reset", f"netkit exit {res['netkit'][0]} (Unix reset is documented exit 0): {res}")


def area_concurrent(args, rng, work):
    kind = rng.choice(["path", "abstract", "tcp"])
    if kind == "tcp":
        where = free_port()
        addr, fam, ready = ("127.0.0.1", where), socket.AF_INET, lambda: wait_for_tcp(where)
    else:
        where = os.path.join(work, f"c{rng.randrange(1 << 30)}.sock") if kind == "path" else f"@ipcaudit-c{rng.randrange(1 << 30)}"
        addr, fam, ready = unix_addr(where), socket.AF_UNIX, lambda: wait_for_unix(where)
    n = rng.choice([20, 100, 300])
    srv = Server([args.netkit, "echo", f"127.0.0.1:{where}" if kind == "tcp" else f"unix:{where}"], ready)
    results = {}
    datas = [rng.randbytes(rng.randint(0, 200000)) for _ in range(n)]

    def one(i):
        try:
            results[i] = py_exchange(addr, datas[i], fam)
        except OSError as e:
            results[i] = (b"", [e])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    bad = [i for i in range(n) if results.get(i, (b"", ["none"]))[0] != datas[i] or results[i][1]]
    count("concurrent")
    if bad:
        diff("concurrent", f"{kind} {n} clients: {len(bad)} wrong, e.g. {results.get(bad[0], ('', 'none'))[1]}")
    code, out, err = srv.stop()
    if code != 0:
        diff("concurrent", f"exit {code}: {err[:200]}")


def area_stale(args, rng, work):
    """A server killed -9 leaves its file; a new server: netkit replaces it, peers?  A live
    socket must never be taken."""
    path = os.path.join(work, f"s{rng.randrange(1 << 30)}.sock")
    first = rng.choice(["netkit", "socat", "ncat"])
    servers = dict(echo_servers(args.netkit, path, "path"))
    srv = Server(servers[first], lambda: wait_for_unix(path))
    srv.proc.kill()
    srv.proc.wait()
    out = {}
    for name, argv in servers.items():
        count("stale")
        s = Server(argv, lambda: wait_for_unix(path, 1.5))
        got = py_exchange(path, b"x" * 10)[0] if s.ok else None
        code, o, e = s.stop()
        out[name] = (s.ok, got == b"x" * 10 if got is not None else None, code, e.strip()[:120])
        # recreate the stale file for the next tool
        if not os.path.lexists(path):
            k = Server(servers["netkit"], lambda: wait_for_unix(path))
            k.proc.kill()
            k.proc.wait()
    print(f"  stale file left by {first} -9: {out}")
    if not out["netkit"][0] or not out["netkit"][1]:
        diff("stale", f"netkit did not replace a stale socket: {out['netkit']}")
    # live socket: each server type live, netkit must refuse with exit 3
    for name, argv in servers.items():
        if os.path.lexists(path):
            os.unlink(path)
        count("live")
        live = Server(argv, lambda: wait_for_unix(path))
        p = subprocess.run([args.netkit, "echo", f"unix:{path}"], capture_output=True, timeout=10)
        # still reachable (ncat --sh-exec loses a short half-closed message anyway: connect only)
        try:
            c = socket.socket(socket.AF_UNIX)
            c.connect(path)
            c.close()
            ok = live.proc.poll() is None
        except OSError:
            ok = False
        live.stop()
        err = p.stderr.decode()
        if p.returncode != 3 or not ok or not err.startswith("netkit: "):
            diff("live", f"live {name} server: netkit rc={p.returncode} err={err.strip()!r} live-still-ok={ok}")
    if os.path.lexists(path):
        os.unlink(path)


def area_signal(args, rng, work):
    """SIGTERM/SIGINT/SIGHUP with clients connected (some mid-transfer): exit and cleanup."""
    path = os.path.join(work, f"g{rng.randrange(1 << 30)}.sock")
    sig = rng.choice([signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
    for tool in ["netkit", "socat", "ncat", "forward"]:
        if tool == "forward":
            tpath = path + ".t"
            tsrv = Server([args.netkit, "echo", f"unix:{tpath}"], lambda: wait_for_unix(tpath))
            argv = [args.netkit, "forward", "--drain-timeout", "1s", f"unix:{path}", f"unix:{tpath}"]
        else:
            argv = dict(echo_servers(args.netkit, path, "path"))[tool]
        if tool == "forward" and sig == signal.SIGHUP:
            sig = signal.SIGTERM  # forward: SIGHUP rereads --config (documented)
        srv = Server(argv, lambda: wait_for_unix(path))
        held = []
        for _ in range(rng.randint(1, 20)):
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.setblocking(False)
            try:
                s.send(rng.randbytes(rng.randint(0, 100000)))
            except BlockingIOError:
                pass
            held.append(s)
        time.sleep(0.1)
        count("signal")
        code, out, err = srv.stop(sig)
        left = os.path.lexists(path)
        print(f"  {tool} on {signal.Signals(sig).name} with {len(held)} clients: exit {code}, file left={left}")
        if tool in ("netkit", "forward") and (left or code != 0):
            diff("signal", f"{tool} on {signal.Signals(sig).name}: exit {code} left={left} err={err.strip()[:200]}")
        for s in held:
            s.close()
        if left:
            os.unlink(path)
        if tool == "forward":
            tsrv.stop()


def area_fds(args, rng, work):
    """A low open-files limit: more clients than fds, then they go; the server keeps serving."""
    path = os.path.join(work, f"f{rng.randrange(1 << 30)}.sock")
    limit = rng.choice([16, 24, 40])
    extra = rng.randint(limit, 3 * limit)
    for tool in ["netkit", "netkit-forward", "socat"]:
        if tool == "netkit":
            argv = [args.netkit, "echo", f"unix:{path}"]
        elif tool == "netkit-forward":
            tpath = path + ".t"
            tsrv = Server([args.netkit, "echo", f"unix:{tpath}"], lambda: wait_for_unix(tpath))
            argv = [args.netkit, "forward", f"unix:{path}", f"unix:{tpath}"]
        else:
            argv = ["socat", f"UNIX-LISTEN:{path},fork", "EXEC:cat"]
        argv = ["prlimit", f"--nofile={limit}", "--"] + argv
        srv = Server(argv, lambda: wait_for_unix(path))
        if not srv.ok:
            code, o, e = srv.stop()
            diff("fds", f"{tool} at nofile={limit} never listened: {code} {e.strip()[:200]}")
            continue
        held = []
        for _ in range(extra):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(2)
            try:
                s.connect(path)
                held.append(s)
            except OSError:
                s.close()
                break
        time.sleep(0.3)
        # the first few: do they get an echo while the limit is hit? (informational)
        served_while_full = 0
        for s in held[: min(3, len(held))]:
            try:
                s.sendall(b"ping")
                s.shutdown(socket.SHUT_WR)
                if s.recv(10) == b"ping":
                    served_while_full += 1
            except OSError:
                pass
        for s in held:
            s.close()
        time.sleep(0.3)
        count("fds")
        alive = srv.proc.poll() is None
        try:
            got, err = py_exchange(path, b"after", timeout=10)
        except OSError as e:
            got, err = b"", [e]
        code, o, e = srv.stop()
        print(f"  {tool} nofile={limit} clients={len(held)}: alive={alive} early-served={served_while_full} after={got == b'after'}")
        if tool.startswith("netkit") and (not alive or got != b"after" or "panick" in e):
            diff("fds", f"{tool} nofile={limit} {len(held)} clients: alive={alive} after={got!r} {err} exit={code} err={e.strip()[-300:]}")
        if os.path.lexists(path):
            os.unlink(path)
        if tool == "netkit-forward":
            tsrv.stop()


def area_mode(args, rng, work):
    """--mode sets the file's bits; a user without permission is refused (exit 3)."""
    path = os.path.join(work, f"p{rng.randrange(1 << 30)}.sock")
    mode = rng.choice([0o600, 0o660, 0o666, 0o644, 0o700, 0o777, 0o000, 0o606])
    old = os.umask(rng.choice([0o022, 0o077, 0o000, 0o777]))
    srv = Server([args.netkit, "echo", f"unix:{path}", "--mode", f"{mode:o}"], lambda: wait_for_unix(path))
    os.umask(old)
    count("mode")
    got = stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path) else None
    if got != mode:
        diff("mode", f"--mode {mode:o}: file mode {got if got is None else oct(got)}")
    os.chmod(work, 0o755)
    p = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", args.netkit, "send", f"unix:{path}", "hi"],
        capture_output=True, timeout=10,
    )
    n = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", "ncat", "-U", path],
        input=b"hi\n", capture_output=True, timeout=10,
    )
    may = bool(mode & 0o002)
    print(f"  mode {mode:o}: nobody netkit rc={p.returncode} ncat rc={n.returncode} {p.stderr.decode().strip()[:120]}")
    if may and (p.returncode != 0 or p.stdout != b"hi\n"):
        diff("mode", f"mode {mode:o} nobody may write: netkit rc={p.returncode} {p.stderr.decode().strip()}")
    if not may and p.returncode != 3:
        diff("mode", f"mode {mode:o} nobody may not write: netkit rc={p.returncode} {p.stderr.decode().strip()}")
    srv.stop()


def area_paths(args, rng, work):
    """Paths and abstract names around the 108-byte sun_path: netkit vs socat, no panic."""
    for _ in range(4):
        n = rng.choice([105, 106, 107, 108, 109, 200, 4000])
        abstract = rng.random() < 0.4
        if abstract:
            name = "@" + "n" * (n - 1) if False else "@" + ("a%d" % rng.randrange(1 << 20)).ljust(n, "x")
            nk = f"unix:{name}"
            sc = f"ABSTRACT-LISTEN:{name[1:]}"
            length = len(name) - 1  # the bytes after '@'
        else:
            base = os.path.join(work, "")
            name = base + ("p%d" % rng.randrange(1 << 20)).ljust(max(n - len(base), 1), "y")
            nk = f"unix:{name}"
            sc = f"UNIX-LISTEN:{name}"
            length = len(name)
        for cmd in ["echo", "send", "forward"]:
            count("paths")
            argv = {
                "echo": [args.netkit, "echo", nk],
                "send": [args.netkit, "send", nk, "x"],
                "forward": [args.netkit, "forward", nk, "127.0.0.1:9"],
            }[cmd]
            try:
                p = subprocess.run(argv, capture_output=True, timeout=2)
                rc, err = p.returncode, p.stderr.decode(errors="replace")
            except subprocess.TimeoutExpired as e:
                rc, err = "listening", ""
            s = subprocess.run(["timeout", "1", "socat", sc, "STDOUT"], capture_output=True)
            # a path may fill the 108 bytes of sun_path without a NUL (the kernel, socat and
            # ncat take it; Python and Rust's std refuse it); an abstract name has a leading
            # NUL and no terminator: 107 bytes
            fits = length <= (107 if abstract else 108)
            line = f"{cmd} {'abstract' if abstract else 'path'} len={length}: netkit {rc} {err.strip()[:150]!r} socat {s.returncode}"
            if "panick" in err:
                diff("paths", line)
            elif not fits and rc != 2:
                diff("paths", line)
            elif not fits and not (err.startswith(f"netkit: {nk}: ") or (err.startswith(f"netkit: {nk[:200]}") and "bytes): " in err)):
                diff("paths", "format " + line)
            elif fits and rc == 2:
                diff("paths", line)
            if not abstract and os.path.lexists(name):
                os.unlink(name)


def area_json(args, rng, work):
    path = os.path.join(work, f"j{rng.randrange(1 << 30)}.sock")
    srv = Server([args.netkit, "--json", "-v", "echo", f"unix:{path}"], lambda: wait_for_unix(path))
    data = rng.randbytes(rng.randint(0, 5000))
    p = subprocess.run([args.netkit, "--json", "send", f"unix:{path}"], input=data, capture_output=True, timeout=20)
    code, out, err = srv.stop()
    count("json")
    for line in out.splitlines() + p.stdout.decode().splitlines():
        try:
            json.loads(line)
        except ValueError:
            diff("json", f"not JSON: {line[:200]!r}")
    recs = [json.loads(x) for x in p.stdout.decode().splitlines()]
    if len(recs) != 1 or recs[0].get("sent") != len(data) or recs[0].get("received") != len(data):
        diff("json", f"send record for {len(data)} bytes: {recs}")
    elif recs[0]["reply"] != data.decode("utf-8", errors="replace"):
        diff("json", f"reply text differs from lossy decode of {len(data)} bytes")


def area_link(args, rng, work):
    """A symbolic link at the path (to a stale socket, a live one, nothing, a regular file):
    every tool must refuse it and leave the link and what it points to as they were; netkit
    with exit 3, naming the link and its target."""
    tag = rng.randrange(1 << 30)
    dead = os.path.join(work, f"dead{tag}.sock")
    k = Server(echo_servers(args.netkit, dead, "path")[0][1], lambda: wait_for_unix(dead))
    k.proc.kill()
    k.proc.wait()
    live = os.path.join(work, f"live{tag}.sock")
    srv = Server(echo_servers(args.netkit, live, "path")[0][1], lambda: wait_for_unix(live))
    plain = os.path.join(work, f"plain{tag}")
    with open(plain, "w") as f:
        f.write("keep")
    kinds = {"stale": dead, "live": live, "nothing": os.path.join(work, f"none{tag}.sock"),
             "file": plain}
    kind = rng.choice(sorted(kinds))
    link = os.path.join(work, f"link{tag}")
    os.symlink(os.path.basename(kinds[kind]), link)
    out = {}
    for name, argv in echo_servers(args.netkit, link, "path"):
        count("link")
        # a connect through the link reaches the live server: judge by the process instead
        s = Server(argv, lambda: time.sleep(1.0) or True)
        running = s.proc.poll() is None
        code, _, e = s.stop()
        intact = os.path.islink(link) and os.readlink(link) == os.path.basename(kinds[kind])
        out[name] = (running, code, intact, e.strip()[:160])
        if running or not intact:
            diff("link", f"{name} over a link to {kind}: still running={running} link "
                 f"intact={intact}")
    print(f"  link to {kind}: {out}")
    err = out["netkit"][3]
    if out["netkit"][1] != 3 or "a symbolic link to " not in err:
        diff("link", f"netkit over a link to {kind}: rc={out['netkit'][1]} err={err!r}")
    if not (os.path.exists(dead) and open(plain).read() == "keep"):
        diff("link", "a link's target was removed or changed")
    srv.stop()
    for p in (link, dead, plain, live):
        if os.path.lexists(p):
            os.unlink(p)


AREAS = {
    "matrix": area_matrix,
    "forward": area_forward,
    "reset": area_reset,
    "send-reset": area_send_reset,
    "concurrent": area_concurrent,
    "link": area_link,
    "stale": area_stale,
    "signal": area_signal,
    "fds": area_fds,
    "mode": area_mode,
    "paths": area_paths,
    "json": area_json,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--netkit", default=os.path.join(ROOT, "target/release/netkit"))
    ap.add_argument("--only", default=",".join(AREAS))
    args = ap.parse_args()
    print(f"seed {args.seed}, netkit {args.netkit}", flush=True)
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="ipcdiff-")
    os.chmod(work, 0o755)
    areas = args.only.split(",")
    try:
        for r in range(args.rounds):
            area = rng.choice(areas)
            print(f"round {r}: {area}", flush=True)
            try:
                AREAS[area](args, random.Random(rng.randrange(1 << 62)), work)
            except Exception as e:  # a broken scenario is a finding too
                diff(area, f"scenario raised {type(e).__name__}: {e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)  # it was left behind, empty, after each run
    print("scenarios:", json.dumps(COUNTS), "differences:", len(DIFFS))
    return 1 if DIFFS else 0


if __name__ == "__main__":
    sys.exit(main())
