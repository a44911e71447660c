"""A loopback HTTP proxy in front of an emulator, to give the answers an emulator cannot: a denied request, a
connection that drops. `decide(request)` returns None to forward, `"drop"` to close the connection without an
answer, or (status, headers, body) to answer itself."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Answer = None | str | tuple[int, dict[str, str], bytes]


class Proxy:
    """`with Proxy(upstream, decide) as p:` serves on `p.url`; `p.seen` lists every request."""

    def __init__(self, upstream: str, decide: Callable[[Request], Answer] = lambda r: None) -> None:
        self.upstream = urlsplit(upstream)
        self.decide = decide
        self.seen: list[Request] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                proxy.seen.append(req)
                answer = proxy.decide(req)
                if answer == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if answer is None:
                    conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    headers["Host"] = proxy.upstream.netloc
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    status, out_headers, data = resp.status, resp.getheaders(), resp.read()
                    conn.close()
                else:
                    status, extra, data = answer  # type: ignore[misc]
                    out_headers = list(extra.items())
                self.send_response(status)
                length = str(len(data))
                for k, v in out_headers:
                    if k.lower() == "content-length" and self.command == "HEAD":
                        length = v  # a HEAD answer says the size of what a GET would send
                    elif k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", length)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Proxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
