#!/usr/bin/env python3
"""A fake OpenAI-compatible server for the app's remote backend tests.

Serves recorded chat-completion streams (tests/data/remote/*.sse) as vLLM and llama.cpp's
llama-server send them, and misbehaves on request. The model id picks the stream and the fault:
  vllm, llama-server, vllm-error, llama-server-error     a recorded stream as it is
  <stream>+cut        the first half of the stream's bytes, then the connection closes
  <stream>+slow       a few bytes at a time, lines split across network chunks
  <stream>+paced      one event every --pace seconds (a reply you can watch stream)
  <stream>+crlf       "\\r\\n" line ends and ": keep-alive" comments between events
  <stream>+busyN      429 with Retry-After: 1 for the first N requests, then the stream
  <stream>+no-top-k   400 naming top_k (and min_p) while the request has them
  <stream>+no-logprobs 400 naming logprobs while the request has it
  <stream>+500        500 with an OpenAI error body
  <stream>+endless-line  the stream's first three events, then a 6 MB line with no end, then
                      silence with the connection open
GET /v1/models lists them; under /big (/big/v1/models) the list has 20000 more models (about 2 MB),
under /huge about 34 MB of them. --api-key KEY: every request needs "Authorization: Bearer KEY" (401
otherwise). A path starting with /html answers an HTML page (not an API). GET /fake/requests:
every chat request's JSON body so far. Prints "PORT <n>" once listening. Standard library only.
"""
import argparse
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STREAMS = {
    "vllm": "vllm_chat_stream.sse",
    "llama-server": "llama_server_chat_stream.sse",
    "vllm-error": "vllm_error_midstream.sse",
    "llama-server-error": "llama_server_error_midstream.sse",
}
FAULTS = ["", "+cut", "+slow", "+paced", "+crlf", "+busy2", "+busy9", "+no-top-k", "+no-logprobs", "+500", "+endless-line"]


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.requests = []
        self.counts = {}


def error_body(message, type_, code):
    return json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-openai/1"

    def log_message(self, fmt, *args):
        if self.server.state.args.verbose:
            sys.stderr.write("fake_openai: " + fmt % args + "\n")

    def reply(self, status, body, content_type="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def authorized(self):
        key = self.server.state.args.api_key
        if not key or self.headers.get("Authorization") == "Bearer " + key:
            return True
        self.reply(401, error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
        return False

    def api_path(self):
        # Anything before /v1 is the deployment's prefix (https://host/some/prefix/v1).
        p = self.path.split("?")[0]
        i = p.find("/v1/")
        return p[i:] if i >= 0 else p

    def do_GET(self):
        if self.path.startswith("/html"):
            return self.reply(200, b"<!doctype html><html><body>Welcome to nginx!</body></html>", "text/html")
        if self.path == "/fake/requests":
            with self.server.state.lock:
                return self.reply(200, json.dumps(self.server.state.requests).encode())
        if not self.authorized():
            return
        if self.api_path() == "/v1/models":
            data = [{"id": s + f, "object": "model", "created": 1733480000, "owned_by": "fake"}
                    for s in STREAMS for f in FAULTS]
            extra = 20000 if self.path.startswith("/big/") else 340000 if self.path.startswith("/huge/") else 0
            data += [{"id": "catalogue/model-%06d" % i, "object": "model", "created": 1733480000,
                      "owned_by": "fake-catalogue"} for i in range(extra)]
            return self.reply(200, json.dumps({"object": "list", "data": data}).encode())
        self.reply(404, error_body("Not found: " + self.path, "not_found_error", 404))

    def do_POST(self):
        if self.path.startswith("/html"):
            return self.reply(200, b"<html></html>", "text/html")
        if not self.authorized():
            return
        if self.api_path() != "/v1/chat/completions":
            return self.reply(404, error_body("Not found: " + self.path, "not_found_error", 404))
        length = int(self.headers.get("Content-Length", "0"))
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            return self.reply(400, error_body("The body is not JSON.", "invalid_request_error", 400))
        state = self.server.state
        model = str(body.get("model", ""))
        with state.lock:
            state.requests.append(body)
            state.counts[model] = state.counts.get(model, 0) + 1
            count = state.counts[model]
        stream, _, fault = model.partition("+")
        if stream not in STREAMS or ("+" + fault if fault else "") not in FAULTS:
            return self.reply(404, error_body("The model `%s` does not exist." % model, "NotFoundError", 404))
        if fault.startswith("busy") and count <= int(fault[4:]):
            return self.reply(429, error_body("Too many requests: the queue is full.", "rate_limit_error", 429),
                              headers=[("Retry-After", "1")])
        if fault == "no-top-k" and ("top_k" in body or "min_p" in body):
            return self.reply(400, error_body("Unsupported parameter(s): top_k, min_p", "invalid_request_error", 400))
        if fault == "no-logprobs" and body.get("logprobs"):
            return self.reply(400, error_body("logprobs is not supported by this model", "invalid_request_error", 400))
        if fault == "500":
            return self.reply(500, error_body("The model crashed.", "server_error", 500))
        with open(os.path.join(state.args.streams, STREAMS[stream]), "rb") as fh:
            data = fh.read()
        # HTTP/1.0 without a length: the stream ends when the connection closes, as a proxy's
        # does; only [DONE] or a finish_reason tells a whole reply from a cut one.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.flush()
        try:
            if fault == "cut":
                self.wfile.write(data[: len(data) // 2])
            elif fault == "slow":
                for i in range(0, len(data), 7):
                    self.wfile.write(data[i:i + 7])
                    self.wfile.flush()
                    time.sleep(0.002)
            elif fault == "paced":
                for event in data.split(b"\n\n"):
                    if event:
                        self.wfile.write(event + b"\n\n")
                        self.wfile.flush()
                        time.sleep(state.args.pace)
            elif fault == "endless-line":
                events = data.split(b"\n\n")
                self.wfile.write(b"\n\n".join(events[:3]) + b"\n\n")
                self.wfile.write(b"data: {\"choices\": [{\"delta\": {\"content\": \"")
                for _ in range(6):
                    self.wfile.write(b"a" * (1 << 20))
                self.wfile.flush()
                time.sleep(60)  # the client must end this itself
            elif fault == "crlf":
                for event in data.split(b"\n\n"):
                    if event:
                        self.wfile.write(b": keep-alive\r\n\r\n" + event.replace(b"\n", b"\r\n") + b"\r\n\r\n")
                        self.wfile.flush()
            else:
                self.wfile.write(data)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the client went away (Stop)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--api-key", default="")
    ap.add_argument("--streams", default=os.path.join(here, "..", "data", "remote"))
    ap.add_argument("--pace", type=float, default=0.25, help="seconds between events of a +paced stream")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args)
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
