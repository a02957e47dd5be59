#!/usr/bin/env python3
"""Malformed and abusive clients against `windowpane-cli serve`: each gets its error (or its
connection closed) and the server keeps answering everyone else.

usage: abuse_test.py CLI SHARED        exit 77: skipped (no fixtures, outside CI)
"""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time

CLI, SHARED = sys.argv[1], sys.argv[2]
MODEL = "tiny-qwen2"
READ_TIMEOUT = 2  # --read-timeout: how long a silent client may hold its connection


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


if not os.path.isfile(os.path.join(SHARED, "fixtures", MODEL, "config.json")):
    if os.environ.get("CI"):
        fail("shared fixtures missing (CI is set)")
    print("SKIP: shared fixtures not found at", SHARED)
    sys.exit(77)

server = subprocess.Popen([CLI, "serve", "--model", os.path.join(SHARED, "fixtures", MODEL), "--port", "0",
                           "--ctx", "30000", "--parallel", "2", "--read-timeout", str(READ_TIMEOUT),
                           "--max-body-mb", "1"], stderr=subprocess.PIPE, text=True)
host, port = None, None
for line in server.stderr:
    m = re.search(r"listening on http://([^:]+):(\d+)", line)
    if m:
        host, port = m.group(1), int(m.group(2))
        break
if port is None:
    fail("serve did not print its address")


def request(method, path, body=None, headers=None):
    c = http.client.HTTPConnection(host, port, timeout=60)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def error_of(data):
    e = json.loads(data)["error"]
    assert isinstance(e["message"], str) and e["message"], e
    return e


def still_serving(what):
    status, data = request("GET", "/health")
    if status != 200:
        fail(f"after {what}: /health answered {status}")
    body = json.dumps({"model": MODEL, "prompt": "And God said", "max_tokens": 4, "temperature": 0})
    status, data = request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    if status != 200 or json.loads(data)["object"] != "text_completion":
        fail(f"after {what}: a completion answered {status} {data[:200]!r}")


def expect(what, status, data, want, param=None):
    if status != want:
        fail(f"{what}: status {status}, wanted {want}: {data[:300]!r}")
    e = error_of(data)
    if param is not None and e["param"] != param:
        fail(f"{what}: param {e['param']!r}, wanted {param!r}")
    print(f"ok  {what}: {want} {e['message'][:80]}")
    still_serving(what)


JSON = {"Content-Type": "application/json"}
try:
    # Bodies the parser refuses.
    expect("bad JSON", *request("POST", "/v1/chat/completions", b'{"model": ', JSON), 400)
    expect("invalid UTF-8", *request("POST", "/v1/completions",
                                     b'{"model":"tiny-qwen2","prompt":"\xff\xfe\xc0\xaf"}', JSON), 400)
    expect("a lone surrogate", *request("POST", "/v1/completions",
                                        b'{"model":"tiny-qwen2","prompt":"\\udc00"}', JSON), 400)
    expect("nesting 100000 deep", *request("POST", "/v1/completions", b"[" * 100000, JSON), 400)
    expect("wrong type", *request("POST", "/v1/completions",
                                  json.dumps({"model": MODEL, "prompt": "x", "max_tokens": "many"}), JSON), 400,
           "max_tokens")
    expect("prompt beyond --ctx", *request("POST", "/v1/completions",
                                           json.dumps({"model": MODEL, "prompt": "light " * 31000}), JSON), 400,
           "prompt")
    expect("a file path as model", *request("POST", "/v1/completions",
                                            json.dumps({"model": "/etc/passwd", "prompt": "x"}), JSON), 404, "model")
    expect("text/plain", *request("POST", "/v1/completions", json.dumps({"model": MODEL, "prompt": "x"}),
                                  {"Content-Type": "text/plain"}), 415)
    # What a web page can send cross-site without a preflight: a form, or no type at all.
    expect("a form", *request("POST", "/v1/completions", json.dumps({"model": MODEL, "prompt": "x"}),
                              {"Content-Type": "application/x-www-form-urlencoded"}), 415)
    expect("no Content-Type", *request("POST", "/v1/completions", json.dumps({"model": MODEL, "prompt": "x"})), 415)
    # DNS rebinding: a loopback server answers only to a loopback name.
    expect("another Host", *request("POST", "/v1/completions", json.dumps({"model": MODEL, "prompt": "x"}),
                                    {**JSON, "Host": "rebound.example:8080"}), 403)
    expect("multipart", *request("POST", "/v1/completions",
                                 b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--b--\r\n",
                                 {"Content-Type": "multipart/form-data; boundary=b"}), 415)
    # Bodies above --max-body-mb 1: with a length, and chunked (httplib 0.11 bounds only the former).
    expect("2 MB body", *request("POST", "/v1/completions", b"x" * (2 << 20), JSON), 413)

    def chunks():
        for _ in range(40):
            yield b"y" * 65536

    c = http.client.HTTPConnection(host, port, timeout=60)
    c.request("POST", "/v1/completions", body=chunks(), headers={**JSON, "Transfer-Encoding": "chunked"},
              encode_chunked=True)
    r = c.getresponse()
    expect("2.5 MB chunked body", r.status, r.read(), 413)
    c.close()

    # Not HTTP at all, and a request line beyond httplib's bound.
    s = socket.create_connection((host, port), timeout=30)
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n")
    reply = s.recv(4096)
    s.close()
    if reply and not reply.startswith(b"HTTP/1.1 400"):
        fail(f"garbage: {reply[:100]!r}")
    print("ok  garbage bytes: 400 or closed")
    still_serving("garbage bytes")

    # Slow-loris: clients sending their headers a byte at a time hold one thread each; everyone
    # else is still served meanwhile, and a client that goes silent is dropped after the timeout.
    slow = [socket.create_connection((host, port), timeout=60) for _ in range(3)]
    head = b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    for i in range(12):
        for s in slow:
            s.sendall(head[i:i + 1])
        if i % 4 == 0:
            still_serving("slow-loris clients trickling")
        time.sleep(0.2)
    print("ok  slow-loris: other clients served meanwhile")
    start = time.monotonic()
    for s in slow:
        try:
            data = s.recv(4096)  # the server closes (b"") or answers 400 and closes
        except (ConnectionResetError, socket.timeout) as e:
            data = repr(e).encode()
        if data and not data.startswith(b"HTTP/1.1 400") and b"Reset" not in data:
            fail(f"slow-loris: the server sent {data[:100]!r}")
        s.close()
    waited = time.monotonic() - start
    if waited >= 55:
        fail("slow-loris: a silent client kept its connection")
    print(f"ok  slow-loris: silent clients dropped ({waited:.1f} s after they stopped)")
    still_serving("slow-loris")

    # Clients that go away at once, whole and streamed: their 25,000-token generations end early
    # (the scheduler empties long before 25,000 tokens), and the server keeps serving.
    def metric(name):
        _, data = request("GET", "/metrics")
        m = re.search(r"^" + re.escape(name) + r'\{model="' + MODEL + r'"\} (\S+)$', data.decode(), re.M)
        return float(m.group(1))

    for stream in (False, True):
        before = metric("windowpane_completion_tokens_total")
        s = socket.create_connection((host, port), timeout=30)
        body = json.dumps({"model": MODEL, "prompt": "And God said", "max_tokens": 25000, "temperature": 0,
                           "stream": stream}).encode()
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "
                  + str(len(body)).encode() + b"\r\n\r\n" + body)
        s.close()
        for i in range(600):
            time.sleep(0.1)
            # Wait for the job to have started (or a second, if it was cancelled during its prompt).
            started = metric("windowpane_completion_tokens_total") > before or i >= 10
            if started and metric("windowpane_active_sequences") == 0:
                break
        made = metric("windowpane_completion_tokens_total") - before
        if metric("windowpane_active_sequences") != 0 or made >= 25000:
            fail(f"a client gone ({'streamed' if stream else 'whole'}): its generation ran on ({made:.0f} tokens)")
        print(f"ok  client gone ({'streamed' if stream else 'whole'}): cancelled after {made:.0f} of 25000 tokens")
        still_serving("a client gone")
finally:
    server.terminate()
    try:
        code = server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        fail("serve did not stop on SIGTERM")
if code != 0:
    fail(f"serve exited with {code} after SIGTERM")
print("PASS")
