"""What the forward audit scripts share: where netkit-lab is, the lab tag's form and one run
per work directory (driver.py, udp.py, host_audit.py); a keep-alive HTTP backend, a reader to
the end and the HAProxy and nginx configs of the HTTP scripts (http_drain.py, http_linger.py,
http_ends.py, host_audit.py)."""
import os
import socket
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The lab binary: DFW_LAB, else the repository's release build.
LAB = os.environ.get('DFW_LAB', os.path.join(ROOT, 'target', 'release', 'netkit-lab'))
# netkit: the repository's release build unless a run names another.
NETKIT = os.path.join(ROOT, 'target', 'release', 'netkit')


def check_tag(tag, prog):
    """Exits unless `tag` is a lab tag netkit-lab takes: 1-16 of [A-Za-z0-9_-]."""
    if not (0 < len(tag) <= 16 and all(c.isalnum() or c in '_-' for c in tag)):
        sys.exit(f'{prog}: {tag}: a lab tag is 1-16 of [A-Za-z0-9_-]')


def claim(d):
    """One run per work directory: refuse a tag a live run already holds."""
    pidfile = os.path.join(d, 'pid')
    try:
        other = int(open(pidfile).read().strip() or 0)
        if other and other != os.getpid() and os.path.exists(f'/proc/{other}'):
            sys.exit(f'{d}: run {other} uses this tag; give another with --tag')
    except (OSError, ValueError):
        pass
    open(pidfile, 'w').write(str(os.getpid()))


# ---------------------------------------------------------------- the HTTP scripts' pieces
# (http_drain.py, http_linger.py, http_ends.py, host_audit.py)

OK = b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'


def serve_each(port, serve, backlog=64, wait=False):
    """Listens on 127.0.0.1:`port` and runs `serve(conn)` in a daemon thread per connection;
    the accept loop runs in a daemon thread, or in this one with `wait`."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('127.0.0.1', port))
    s.listen(backlog)

    def loop():
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()
    if wait:
        loop()
    threading.Thread(target=loop, daemon=True).start()


def http_backend(port, answer=lambda line: (OK, None), wait=False, keep_open=False):
    """A keep-alive HTTP backend on 127.0.0.1:`port`, a thread per connection: `answer` gets
    each request head's first line and returns the reply and when to close after it (None:
    keep the connection; else seconds to wait first). Runs in a daemon thread, or in this one
    with `wait`. With `keep_open`, a connection the proxy ended (its FIN) is not closed from
    this side: the socket is kept open for as long as the backend runs."""
    kept = []

    def serve(c):
        buf = b''
        c.settimeout(60)
        try:
            while True:
                while b'\r\n\r\n' not in buf:
                    b = c.recv(65536)
                    if not b:
                        if keep_open:
                            kept.append(c)
                        return
                    buf += b
                head, buf = buf.split(b'\r\n\r\n', 1)
                reply, close = answer(head.split(b'\r\n')[0])
                c.sendall(reply)
                if close is not None:
                    time.sleep(close)
                    return
        except OSError:
            pass
        finally:
            if c not in kept:
                c.close()

    serve_each(port, serve, wait=wait)


def read_all(s, timeout=6, limit=60_000_000):
    """Bytes until EOF, reset, timeout or `limit`, and which ('eof', 'rst', 'timeout',
    'limit')."""
    s.settimeout(timeout)
    got = bytearray()
    try:
        while len(got) < limit:
            b = s.recv(262144)
            if not b:
                return bytes(got), 'eof'
            got += b
        return bytes(got), 'limit'
    except ConnectionResetError:
        return bytes(got), 'rst'
    except socket.timeout:
        return bytes(got), 'timeout'


# The timeouts of host_audit.py's and http_ends.py's HAProxy.
TIMEOUTS_10S = 'client 10s\n    timeout server 10s\n    timeout tunnel 10s'


def haproxy_http(bind, server, host, timeouts=TIMEOUTS_10S, extra=''):
    """HAProxy's config of the HTTP scripts: mode http on `bind` (`ADDR:PORT`), Host set to
    `host`, one `server`; `timeouts` beside `timeout connect 5s`, `extra` lines after them."""
    return f"""global
    maxconn 2000
defaults
    mode http
    timeout connect 5s
    timeout {timeouts}
{extra}listen audit
    bind {bind}
    http-request set-header Host {host}
    server up {server}
"""


# The keep-alive timeouts of http_drain.py and http_linger.py: nothing ends for want of traffic.
KEEPALIVE_60S = 'client 60s\n    timeout server 60s\n    timeout http-keep-alive 60s'


def nginx_conf(w, listen, backend, host, connections=64, upgrade=False):
    """nginx's config of the HTTP scripts, its files in `w`: one worker, `listen` proxied to
    127.0.0.1:`backend` (HTTP/1.1) with Host `host`, keep-alive 60 s; with `upgrade`, Upgrade
    passed on (a `Connection: upgrade` when the client asked for one)."""
    if upgrade:
        upgrade_map = "  map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n"
        upgrade_fields = ('\n      proxy_set_header Upgrade $http_upgrade;'
                          '\n      proxy_set_header Connection $connection_upgrade;')
    else:
        upgrade_map, upgrade_fields = '', ''
    return f"""user root;
worker_processes 1;
pid {w}/nginx.pid;
error_log {w}/err.log info;
events {{ worker_connections {connections}; }}
http {{
  access_log off;
  client_body_temp_path {w}/cb; proxy_temp_path {w}/pt;
  fastcgi_temp_path {w}/ft; uwsgi_temp_path {w}/ut; scgi_temp_path {w}/st;
  keepalive_timeout 60s;
{upgrade_map}  server {{
    listen {listen};
    location / {{
      proxy_pass http://127.0.0.1:{backend}; proxy_http_version 1.1; proxy_set_header Host {host};{upgrade_fields}
    }}
  }}
}}
"""


def nginx_proxy(work, listen, backend, host):
    """Writes [`nginx_conf`] into `work`/ngx and returns the command that runs nginx with it
    in the foreground (http_drain.py, http_linger.py)."""
    w = f'{work}/ngx'
    os.makedirs(w, exist_ok=True)
    open(f'{w}/nginx.conf', 'w').write(nginx_conf(w, listen, backend, host))
    return ['nginx', '-c', f'{w}/nginx.conf', '-p', w, '-g', 'daemon off;']
