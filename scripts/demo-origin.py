#!/usr/bin/env python3
"""Demo origin for `make run`: a slow HTTP API (about 100 ms per answer)
that returns the time it answered, so a cached answer is easy to recognise.

  GET /time          {"time": "...", "served_by": "demo-origin"}
  GET /items/{id}    {"id": "...", "time": "..."}
  anything else      {"path": "...", "method": "...", "time": "..."}
"""
import argparse
import datetime
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "demo-origin"

    def log_message(self, fmt, *args):
        print("origin: " + fmt % args, flush=True)

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self):
        self.read_body()
        time.sleep(0.1)  # a slow backend is what a cache is for
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        path = self.path.split("?", 1)[0]
        if path == "/time":
            doc = {"time": now, "served_by": "demo-origin"}
        elif path.startswith("/items/"):
            doc = {"id": path[len("/items/"):], "time": now}
        else:
            doc = {"path": self.path, "method": self.command, "time": now}
        body = (json.dumps(doc) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = answer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8081)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"demo origin on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
