#!/usr/bin/env python3
"""Idle connections through a TCP forwarder: what each one costs it (RSS, descriptors).

    forward_idle.py upstream PORT
        An echo server on 127.0.0.1:PORT (the forwarders' target).
    forward_idle.py hold PORT PID N [--bulk BYTES]
        Opens N connections to 127.0.0.1:PORT (a forwarder whose process is PID), optionally
        sends BYTES each way on every one (a bulk transfer, echoed), lets them sit idle, reads
        PID's resident memory and open descriptors before and after, then uses every
        connection once more and checks the echo. Prints one JSON object.

Loopback only. Run as root, or with an open-files limit above 2*N + 100.
"""

import asyncio
import hashlib
import json
import os
import resource
import sys

CONCURRENCY = 200  # connections opened or exercised at once


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, need)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


async def echo(reader, writer):
    try:
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def upstream(port):
    raise_nofile(40000)
    server = await asyncio.start_server(echo, "127.0.0.1", port, backlog=4096)
    print(f"listening {port}", flush=True)
    async with server:
        await server.serve_forever()


def usage(pid):
    """Resident kB and open descriptors of process `pid`."""
    with open(f"/proc/{pid}/status") as status:
        rss = next(int(l.split()[1]) for l in status if l.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def pattern(seed, size):
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


async def exchange(reader, writer, data):
    """Sends `data` while reading as many bytes back; True when they match."""
    async def send():
        writer.write(data)
        await writer.drain()

    sender = asyncio.create_task(send())
    got = await reader.readexactly(len(data))
    await sender
    return hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


async def bounded(jobs):
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(job):
        async with gate:
            return await job

    return await asyncio.gather(*(one(j) for j in jobs))


async def hold(port, pid, count, bulk):
    raise_nofile(2 * count + 1000)
    warm = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
    for i, (r, w) in enumerate(warm):
        assert await exchange(r, w, pattern(i, max(bulk, 100)))
        w.close()
    await asyncio.sleep(1)
    before = usage(pid)

    async def open_one(i):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        ok = True
        if bulk:
            ok = await exchange(reader, writer, pattern(i, bulk))
        return reader, writer, ok

    conns = await bounded(open_one(i) for i in range(count))
    await asyncio.sleep(2)
    after = usage(pid)
    checks = await bounded(
        exchange(r, w, pattern(-i, 1000)) for i, (r, w, _) in enumerate(conns)
    )
    intact = sum(1 for (_, _, ok), check in zip(conns, checks) if ok and check)
    for _, writer, _ in conns:
        writer.close()
    print(json.dumps({
        "conns": count,
        "bulk": bulk,
        "rss_kb_before": before[0],
        "rss_kb_after": after[0],
        "fds_before": before[1],
        "fds_after": after[1],
        "rss_per_conn_b": round((after[0] - before[0]) * 1024 / count),
        "fds_per_conn": round((after[1] - before[1]) / count, 2),
        "intact": intact,
    }), flush=True)


def main(argv):
    if len(argv) >= 2 and argv[0] == "upstream":
        asyncio.run(upstream(int(argv[1])))
    elif len(argv) >= 4 and argv[0] == "hold":
        bulk = int(argv[5]) if len(argv) >= 6 and argv[4] == "--bulk" else 0
        asyncio.run(hold(int(argv[1]), int(argv[2]), int(argv[3]), bulk))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
