#!/usr/bin/env python3
"""Hand-made request shapes the random audit (host_audit.py) does not draw, sent one per
connection through `netkit forward --http-host audit.example` to a backend that records every
byte and answers nothing: chunk-size lines (spaces, `0x`, leading zeros, bare LF, 2^64 and
more), unterminated quotes in chunk extensions, trailers carrying Content-Length,
Transfer-Encoding, folding, no colon or a space before it, absolute-form variants (upper-case
scheme, userinfo, fragment, empty authority, https/ws schemes), `//host` paths, `OPTIONS *`,
Host spellings, empty lines before a request and after a body, HTTP/1.2 and 01.1, list and
zero-padded Content-Length, Transfer-Encoding spellings, empty and mixed Upgrade, CONNECT
forms, non-token field names, control bytes in Host, HTTP/0.9.

The check: in what reached the backend, every Host line is `Host: audit.example` and every
absolute-form or CONNECT authority is audit.example; the client's first answer is shown.

    python3 http_shapes.py NETKIT [NAME...] [--base PORT]      # ports PORT, PORT+1 (18790)
"""
import os, re, signal, socket, subprocess, sys, time

from common import serve_each

NAME = b'audit.example'


def backend(port, got):
    def serve(c):
        data = b''
        c.settimeout(1.0)
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                data += d
        except OSError:
            pass
        got.append(data)
        c.close()

    serve_each(port, serve, backlog=50)


def violations(data):
    """Host lines other than audit.example's, authorities other than audit.example."""
    bad = []
    # a bare CR taken for a line end by a lenient reader (stop 55)
    for line in re.split(rb'\r?\n|\r', data):
        if line.lower().startswith(b'host:') and line != b'Host: ' + NAME:
            bad.append(line[:60])
        # a request line may follow a body's last bytes on the same line
        m = re.search(rb'([A-Z]+) ([A-Za-z][A-Za-z0-9+.-]*://)?([^ /?#]*)\S* HTTP/', line)
        if m and (m.group(2) or m.group(1) == b'CONNECT'):
            auth = m.group(3).rsplit(b'@', 1)[-1].split(b':')[0]
            if auth != NAME:
                bad.append(line[:60])
    return bad


SM = b'GET /smuggled HTTP/1.1\r\nHost: evil.test\r\n\r\n'
def chunked(line, data, rest=b'0\r\n\r\n'):
    return b'POST /c HTTP/1.1\r\nHost: evil.test\r\nTransfer-Encoding: chunked\r\n\r\n' + line + data + b'\r\n' + rest
shapes = {
 'size_trailing_sp': chunked(b'5 \r\n', b'hello') + SM,
 'size_leading_sp': chunked(b' 5\r\n', b'hello') + SM,
 'size_0x': chunked(b'0x5\r\n', b'hello') + SM,
 'size_zeros': chunked(b'000000000000000000000005\r\n', b'hello') + SM,
 'size_lf': chunked(b'5\n', b'hello') + SM,
 'size_overflow': chunked(b'10000000000000005\r\n', b'hello') + SM,
 'ext_quoted_crlf': chunked(b'5;a="x\r\n', b'hello') + SM,
 'ext_bad_quote': chunked(b'5;a="x\r\n"\r\n', b'hello') + SM,
 'trailer_cl': chunked(b'5\r\n', b'hello', b'0\r\nContent-Length: 50\r\n\r\n') + SM,
 'trailer_te': chunked(b'5\r\n', b'hello', b'0\r\nTransfer-Encoding: chunked\r\n\r\n') + SM,
 'trailer_fold': chunked(b'5\r\n', b'hello', b'0\r\nX-A: b\r\n c\r\n\r\n') + SM,
 'trailer_nocolon': chunked(b'5\r\n', b'hello', b'0\r\nXAb\r\n\r\n') + SM,
 'trailer_spcolon': chunked(b'5\r\n', b'hello', b'0\r\nHost : evil\r\n\r\n') + SM,
 'abs_upper': b'GET HTTP://EVIL.TEST/ HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'abs_userinfo': b'GET http://audit.example@evil.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'abs_frag': b'GET http://evil.test#@audit.example/ HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'abs_empty': b'GET http:///x HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'abs_https': b'GET https://evil.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'abs_weird_scheme': b'GET ws://evil.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'path_netpath': b'GET //evil.test/x HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'options_star': b'OPTIONS * HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'host_nosp': b'GET / HTTP/1.1\r\nHost:evil.test\r\n\r\n',
 'host_upper': b'GET / HTTP/1.1\r\nHOST: evil.test\r\n\r\n',
 'host_trailing_ws': b'GET / HTTP/1.1\r\nHost: evil.test \t\r\n\r\n',
 'leading_crlf': b'\r\n\r\nGET / HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'crlf_between': b'POST / HTTP/1.1\r\nHost: evil.test\r\nContent-Length: 2\r\n\r\nab\r\nGET /2 HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'ver_12': b'GET / HTTP/1.2\r\nHost: evil.test\r\n\r\n',
 'ver_01': b'GET / HTTP/01.1\r\nHost: evil.test\r\n\r\n',
 'cl_leading_zero': b'POST / HTTP/1.1\r\nHost: evil.test\r\nContent-Length: 05\r\n\r\nhello' + SM,
 'cl_list': b'POST / HTTP/1.1\r\nHost: evil.test\r\nContent-Length: 5, 5\r\n\r\nhello' + SM,
 'cl_empty': b'POST / HTTP/1.1\r\nHost: evil.test\r\nContent-Length:\r\n\r\n' + SM,
 'te_chunked_cap': b'POST / HTTP/1.1\r\nHost: evil.test\r\nTransfer-Encoding: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n' + SM,
 'te_empty_elem': b'POST / HTTP/1.1\r\nHost: evil.test\r\nTransfer-Encoding: ,chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' + SM,
 'te_quoted': b'POST / HTTP/1.1\r\nHost: evil.test\r\nTransfer-Encoding: "chunked"\r\n\r\n5\r\nhello\r\n0\r\n\r\n' + SM,
 'upgrade_empty': b'GET /ws HTTP/1.1\r\nHost: evil.test\r\nConnection: Upgrade\r\nUpgrade:\r\n\r\n' + SM,
 'upgrade_h2c_list': b'GET /ws HTTP/1.1\r\nHost: evil.test\r\nConnection: Upgrade\r\nUpgrade: websocket, h2c\r\n\r\n' + SM,
 'connect_origin': b'CONNECT / HTTP/1.1\r\nHost: evil.test\r\n\r\n' + SM,
 'connect_evil': b'CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test\r\n\r\n' + SM,
 'name_highbyte': b'GET / HTTP/1.1\r\nHost\xe9: x\r\nHost: evil.test\r\n\r\n',
 'host_vtab': b'GET / HTTP/1.1\r\nHost:\x0bevil.test\r\n\r\n',
 'host_del': b'GET / HTTP/1.1\r\nHost: evil\x7f.test\r\n\r\n',
 'http09': b'GET /\r\n',
 # stop 55
 'sp_first_field': b'GET / HTTP/1.1\r\n Host: evil.test\r\nX: y\r\n\r\n',
 'tab_first_field': b'GET / HTTP/1.1\r\n\tHost: evil.test\r\n\r\n',
 'host_tab_colon': b'GET / HTTP/1.1\r\nHost\t: evil.test\r\n\r\n',
 'host_nul': b'GET / HTTP/1.1\r\nHost: evil\x00.test\r\n\r\n',
 'cr_in_value': b'GET / HTTP/1.1\r\nX: a\rHost: evil.test\r\n\r\n',
 'cr_after_reqline': b'GET / HTTP/1.1\rHost: evil.test\r\n\r\n',
 'cr_in_host': b'GET / HTTP/1.1\r\nHost: a\rHost: evil.test\r\n\r\n',
 'cr_end_head': b'GET / HTTP/1.1\r\nHost: evil.test\r\n\r\rGET /2 HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'reqline_tab': b'GET\t/\tHTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'method_lower': b'get / HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'colon_first': b'GET / HTTP/1.1\r\n:Host: evil.test\r\nHost: evil.test\r\n\r\n',
 'abs_backslash': b'GET http://evil.test\\@audit.example/ HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'abs_query_noslash': b'GET http://evil.test?x=1 HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'abs_v6': b'GET http://[::1]:80/x HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'abs_port_junk': b'GET http://evil.test:80:80/ HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'abs_pct_host': b'GET http://evil%2etest/ HTTP/1.1\r\nHost: evil.test\r\n\r\n',
 'connect_v6': b'CONNECT [::1]:443 HTTP/1.1\r\nHost: evil.test\r\n\r\n' + SM,
 'te_chunked_not_last': b'POST / HTTP/1.1\r\nHost: evil.test\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n' + SM,
 'te_identity_cl': b'POST / HTTP/1.1\r\nHost: evil.test\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello' + SM,
 'te_two_fields': b'POST / HTTP/1.1\r\nHost: evil.test\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' + SM,
 'cl_two_fields_same': b'POST / HTTP/1.1\r\nHost: evil.test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello' + SM,
 'cl_two_fields_differ': b'POST / HTTP/1.1\r\nHost: evil.test\r\nContent-Length: 5\r\nContent-Length: 60\r\n\r\nhello' + SM,
 'cl_tab': b'POST / HTTP/1.1\r\nHost: evil.test\r\nContent-Length:\t5\t\r\n\r\nhello' + SM,
 'cl_huge': b'POST / HTTP/1.1\r\nHost: evil.test\r\nContent-Length: 99999999999999999999999\r\n\r\nhello' + SM,
 'h2_preface': b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + SM,
 'http10_ka_pipeline': b'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\nHost: evil.test\r\n\r\n',
 'upgrade_http10': b'GET /ws HTTP/1.0\r\nHost: evil.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n' + SM,
 'expect_then_smuggle': b'POST / HTTP/1.1\r\nHost: evil.test\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n' + SM,
}


def main():
    args = sys.argv[1:]
    base = 18790
    if '--base' in args:
        i = args.index('--base')
        base = int(args[i + 1])
        del args[i:i + 2]
    netkit, only = args[0], args[1:] or list(shapes)
    got = []
    backend(base + 1, got)
    p = subprocess.Popen([netkit, '-q', 'forward', f'127.0.0.1:{base}', f'127.0.0.1:{base + 1}',
                          '--http-host', NAME.decode()], start_new_session=True)
    nbad = 0
    try:
        time.sleep(0.5)
        for name in only:
            got.clear()
            s = socket.create_connection(('127.0.0.1', base))
            s.sendall(shapes[name])
            s.settimeout(1.5)
            ans = b''
            try:
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    ans += d
            except OSError:
                pass
            s.close()
            time.sleep(1.2)
            sent = b''.join(got)
            bad = violations(sent)
            nbad += bool(bad)
            first = ans.split(b'\r\n', 1)[0].decode('latin-1') or '(no answer)'
            reqs = len(re.findall(rb'[A-Z]+ \S+ HTTP/1\.[01]\r\n', sent))
            print(f'{name:18s} client: {first:28s} backend: {reqs} request(s), {len(sent)} B'
                  + (f'  VIOLATION {bad}' if bad else ''), flush=True)
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(5)
    print(f'{len(only)} shapes, {nbad} with a violation')
    return 1 if nbad else 0


if __name__ == '__main__':
    sys.exit(main())
