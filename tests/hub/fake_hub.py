#!/usr/bin/env python3
"""Fake Hugging Face Hub HTTP server for Windowpane's downloader tests.

Serves repositories found under --root (ROOT/ORG/NAME with a config.json) using the
real hub's URL layout and headers as huggingface_hub sees them:
  GET  /api/models                              search
  GET  /api/models/ORG/NAME[/revision/REV]      model info (?blobs=true for sizes/hashes)
  GET  /api/models/ORG/NAME/tree/REV[/PATH]     file listing (?recursive=true)
  HEAD/GET /ORG/NAME/resolve/REV/PATH           regular files: 200; LFS files: 302 to /cdn
  HEAD/GET /cdn/<sha256>?repo=..&path=..        LFS bytes, Range supported, no auth
Prints "PORT <n>" once listening. Standard library only. See --help for fault injection.
"""
import argparse
import fnmatch
import hashlib
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".model", ".pt", ".h5", ".onnx")
LFS_MIN_SIZE = 100000
POINTER_SIZE = 134  # size of a git-lfs pointer file, as the hub reports it
LAST_MODIFIED = "2024-01-01T00:00:00.000Z"
XOR_TABLE = bytes(i ^ 0x55 for i in range(256))  # --corrupt-once byte mangling


class RepoFile:
    def __init__(self, repo_dir, path):
        self.path = path
        self.abspath = os.path.join(repo_dir, *path.split("/"))
        self.size = os.path.getsize(self.abspath)
        sha256 = hashlib.sha256()
        blob = hashlib.sha1(b"blob %d\0" % self.size)  # git's blob id
        with open(self.abspath, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                sha256.update(chunk)
                blob.update(chunk)
        self.sha256 = sha256.hexdigest()
        self.git_sha1 = blob.hexdigest()
        self.lfs = path.endswith(LFS_SUFFIXES) or self.size > LFS_MIN_SIZE


class Repo:
    def __init__(self, repo_id, repo_dir):
        self.id = repo_id
        self.org = repo_id.split("/")[0]
        self.gated = self.private = False
        self.files = {}
        for dirpath, dirnames, filenames in os.walk(repo_dir):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            rel = os.path.relpath(dirpath, repo_dir).replace(os.sep, "/")
            for fn in sorted(filenames):
                path = fn if rel == "." else rel + "/" + fn
                if path != ".hub.json":
                    self.files[path] = RepoFile(repo_dir, path)
        self.dirs = {p.rsplit("/", 1)[0] for p in self.files if "/" in p}
        for d in list(self.dirs):  # add every ancestor folder too
            while "/" in d:
                d = d.rsplit("/", 1)[0]
                self.dirs.add(d)
        h = hashlib.sha1()
        for path in sorted(self.files):
            h.update(("%s\0%s\n" % (path, self.files[path].sha256)).encode())
        self.commit = h.hexdigest()
        self.object_id = hashlib.sha1(repo_id.encode()).hexdigest()[:24]  # mongo-like "_id"
        self.meta = self._read_json(os.path.join(repo_dir, ".hub.json"))
        cfg = self._read_json(os.path.join(repo_dir, "config.json"))
        self.config = {k: cfg[k] for k in ("model_type", "architectures") if k in cfg}
        self.safetensors = self._count_parameters()

    @staticmethod
    def _read_json(path):
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _count_parameters(self):
        # Like the hub, only count the weights at the repo root (sub-folder copies would double count).
        params = {}
        for f in self.files.values():
            if "/" in f.path or not f.path.endswith(".safetensors"):
                continue
            try:
                with open(f.abspath, "rb") as fh:
                    (n,) = struct.unpack("<Q", fh.read(8))
                    header = json.loads(fh.read(n))
            except (OSError, ValueError, struct.error):
                continue
            for name, t in header.items():
                if name == "__metadata__" or not isinstance(t, dict):
                    continue
                count = 1
                for dim in t.get("shape", []):
                    count *= dim
                params[t.get("dtype", "F32")] = params.get(t.get("dtype", "F32"), 0) + count
        return {"parameters": params, "total": sum(params.values())} if params else None

    def tags(self):
        return list(self.meta.get("tags", []))

    def summary(self):
        """Fields shared by search results and model info."""
        return {"_id": self.object_id, "id": self.id, "modelId": self.id,
                "likes": self.meta.get("likes", 0), "downloads": self.meta.get("downloads", 0),
                "tags": self.tags(), "pipeline_tag": self.meta.get("pipeline_tag"),
                "private": self.private, "gated": "manual" if self.gated else False}

    def siblings(self, blobs):
        out = []
        for path in sorted(self.files):
            f = self.files[path]
            s = {"rfilename": path}
            if blobs:
                s.update(size=f.size, blobId=f.git_sha1)
                if f.lfs:
                    s["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": POINTER_SIZE}
            out.append(s)
        return out


def scan_root(root):
    repos = {}
    for org in sorted(os.listdir(root)):
        org_dir = os.path.join(root, org)
        if org.startswith(".") or not os.path.isdir(org_dir):
            continue
        for name in sorted(os.listdir(org_dir)):
            repo_dir = os.path.join(org_dir, name)
            if os.path.isfile(os.path.join(repo_dir, "config.json")):
                repos[org + "/" + name] = Repo(org + "/" + name, repo_dir)
    return repos


class Hub:
    """Shared server state: repos, options and first-GET counters for fault injection."""

    def __init__(self, args):
        self.repos = scan_root(args.root)
        self.token = args.token
        self.rate = args.rate
        self.relative_cdn = args.relative_cdn
        self.cdn_host = args.cdn_host
        self.gate_files_only = args.gate_files_only
        self.cuts = []
        for spec in args.cut:
            glob, _, nbytes = spec.rpartition(":")
            self.cuts.append((glob, int(nbytes)))
        self.corrupt = list(args.corrupt_once)
        self.corrupt_always = list(args.corrupt_always)
        self.gets = {}  # (repo id, path) -> number of body-serving GETs so far
        self.lock = threading.Lock()
        self.log = open(args.log, "a", encoding="utf-8") if args.log else None
        self.by_sha256 = {}
        for repo in self.repos.values():
            for f in repo.files.values():
                self.by_sha256.setdefault(f.sha256, []).append((repo, f))
        for flag, ids in (("gated", args.gated), ("private", args.private)):
            for rid in ids:
                if rid in self.repos:
                    setattr(self.repos[rid], flag, True)
                else:
                    print("fake_hub: --%s %s: no such repo" % (flag, rid), file=sys.stderr)

    def first_get_faults(self, repo, f):
        """Count a GET of this file; on the first one return (cut bytes or None, corrupt?)."""
        with self.lock:
            n = self.gets.get((repo.id, f.path), 0)
            self.gets[(repo.id, f.path)] = n + 1
        always = any(fnmatch.fnmatchcase(f.path, g) for g in self.corrupt_always)
        if n:
            return None, always
        cut = next((b for g, b in self.cuts if fnmatch.fnmatchcase(f.path, g)), None)
        return cut, always or any(fnmatch.fnmatchcase(f.path, g) for g in self.corrupt)

    def write_log(self, entry):
        if self.log:
            with self.lock:
                self.log.write(json.dumps(entry) + "\n")
                self.log.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length
    server_version = "FakeHub/1.0"

    def log_message(self, *args):  # keep stderr quiet
        pass

    def send_response(self, code, message=None):
        self.status = code
        super().send_response(code, message)

    @property
    def hub(self):
        return self.server.hub

    def do_GET(self):
        self.status = None
        try:
            self.route()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # client went away; stop quietly
        finally:
            self.hub.write_log({"method": self.command, "path": self.path,
                                "range": self.headers.get("Range"),
                                "auth": self.headers.get("Authorization") is not None,
                                "status": self.status})

    do_HEAD = do_GET

    # ---- response helpers -------------------------------------------------
    def send_json(self, status, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error_json(self, status, code, message, headers=()):
        self.send_json(status, {"error": message},
                       [("X-Error-Code", code), ("X-Error-Message", message)] + list(headers))

    # ---- access control ---------------------------------------------------
    def authorized(self):
        auth = self.headers.get("Authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        return self.hub.token is not None and token == self.hub.token

    def get_repo(self, repo_id, gate=True):
        """Return the repo if this request may see it, else send the hub's error and return None."""
        repo = self.hub.repos.get(repo_id)
        has_auth = self.headers.get("Authorization") is not None
        if repo is None or (repo.private and not self.authorized()):
            # The hub hides existence from anonymous callers with a 401.
            self.send_error_json(404 if has_auth else 401, "RepoNotFound", "Repository not found")
            return None
        if repo.gated and gate and not self.authorized():
            if not has_auth:
                self.send_error_json(401, "GatedRepo", "Access to model %s is restricted. You must have "
                                     "access to it and be authenticated to access it. Please log in." % repo_id)
            else:
                self.send_error_json(403, "GatedRepo", "Access to model %s is restricted and you are not "
                                     "in the authorized list. Visit https://huggingface.co/%s to ask for "
                                     "access." % (repo_id, repo_id))
            return None
        return repo

    def resolve_rev(self, repo, rev):
        if rev in ("main", repo.commit):
            return repo.commit
        self.send_error_json(404, "RevisionNotFound", "Invalid rev id: %s" % rev)
        return None

    # ---- routing ----------------------------------------------------------
    def route(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        segs = [unquote(s) for s in url.path.split("/")[1:]]  # a %2F inside REV stays in one segment
        if segs[:2] == ["api", "models"]:
            if len(segs) == 2 or (len(segs) == 3 and segs[2] == ""):
                return self.search(query)
            if len(segs) >= 4:
                repo_id, rest = segs[2] + "/" + segs[3], segs[4:]
                if not rest or rest == [""]:
                    return self.model_info(repo_id, "main", query)
                if rest[0] == "revision" and len(rest) == 2:
                    return self.model_info(repo_id, rest[1], query)
                if rest[0] == "tree" and len(rest) >= 2:
                    return self.tree(repo_id, rest[1], "/".join(rest[2:]), query)
        elif len(segs) == 2 and segs[0] == "cdn":
            return self.cdn(segs[1], query)
        elif len(segs) >= 5 and segs[2] == "resolve":
            return self.resolve(segs[0] + "/" + segs[1], segs[3], "/".join(segs[4:]))
        self.send_error_json(404, "NotFound", "Not Found")

    # ---- endpoints --------------------------------------------------------
    def search(self, query):
        q = lambda k, d=None: query.get(k, [d])[0]
        search, author = (q("search") or "").lower(), (q("author") or "").lower()
        filters = [v for f in query.get("filter", []) for v in f.split(",") if v]
        sort = q("sort") or "downloads"
        out = []
        for repo in self.hub.repos.values():
            if repo.private and not self.authorized():
                continue
            if search not in repo.id.lower() or (author and repo.org.lower() != author):
                continue
            known = set(repo.tags()) | {repo.meta.get("pipeline_tag"), repo.config.get("model_type")}
            if all(f in known for f in filters):
                out.append(repo.summary())
                if q("full") in ("true", "True", "1"):
                    out[-1].update(sha=repo.commit, lastModified=LAST_MODIFIED,
                                   siblings=repo.siblings(False))
        key = sort if sort in ("downloads", "likes") else "downloads"
        out.sort(key=lambda m: m["id"])
        out.sort(key=lambda m: m[key], reverse=q("direction") != "1")
        limit = int(q("limit") or 1000)
        self.send_json(200, out[:limit])

    def model_info(self, repo_id, rev, query):
        repo = self.get_repo(repo_id, gate=not self.hub.gate_files_only)
        if not repo or not self.resolve_rev(repo, rev):
            return
        info = repo.summary()
        info.update(sha=repo.commit, disabled=False, library_name="transformers",
                    lastModified=LAST_MODIFIED, config=repo.config, cardData={},
                    siblings=repo.siblings(query.get("blobs", [""])[0] in ("true", "True", "1")))
        if repo.safetensors:
            info["safetensors"] = repo.safetensors
        self.send_json(200, info)

    def tree(self, repo_id, rev, sub, query):
        repo = self.get_repo(repo_id, gate=not self.hub.gate_files_only)
        if not repo or not self.resolve_rev(repo, rev):
            return
        sub = sub.strip("/")
        if sub and sub not in repo.dirs:
            return self.send_error_json(404, "EntryNotFound", "%s does not exist on \"%s\"" % (sub, rev))
        recursive = query.get("recursive", [""])[0] in ("true", "True", "1")
        prefix = sub + "/" if sub else ""
        wanted = lambda p: p.startswith(prefix) and (recursive or "/" not in p[len(prefix):])
        entries = [{"type": "directory", "oid": hashlib.sha1(("tree " + d).encode()).hexdigest(),
                    "size": 0, "path": d} for d in repo.dirs if wanted(d)]
        for f in repo.files.values():
            if wanted(f.path):
                e = {"type": "file", "oid": f.git_sha1, "size": f.size, "path": f.path}
                if f.lfs:
                    e["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": POINTER_SIZE}
                entries.append(e)
        self.send_json(200, sorted(entries, key=lambda e: e["path"]))

    def resolve(self, repo_id, rev, path):
        repo = self.get_repo(repo_id)
        commit = repo and self.resolve_rev(repo, rev)
        if not commit:
            return
        f = repo.files.get(path)
        if f is None:
            return self.send_error_json(404, "EntryNotFound", "Entry not found",
                                        [("X-Repo-Commit", commit)])
        if not f.lfs:
            return self.send_file(repo, f, '"%s"' % f.git_sha1, [("X-Repo-Commit", commit)])
        # LFS: redirect to the "CDN", absolute like the real hub's cdn-lfs URLs (see --relative-cdn).
        loc = "/cdn/%s?repo=%s&path=%s" % (f.sha256, quote(repo.id, safe="/"), quote(f.path, safe=""))
        if self.hub.cdn_host:  # another host name, as the real CDN is: clients must not send it the token
            loc = "http://%s:%d%s" % (self.hub.cdn_host, self.server.server_port, loc)
        elif not self.hub.relative_cdn:
            loc = "http://%s%s" % (self.headers.get("Host") or "127.0.0.1:%d" % self.server.server_port, loc)
        self.send_response(302)
        for k, v in (("Location", loc), ("X-Linked-Etag", '"%s"' % f.sha256), ("X-Linked-Size", str(f.size)),
                     ("ETag", '"%s"' % f.sha256), ("X-Repo-Commit", commit), ("Content-Length", "0")):
            self.send_header(k, v)
        self.end_headers()

    def cdn(self, sha256, query):
        cands = self.hub.by_sha256.get(sha256, [])
        want = (query.get("repo", [None])[0], query.get("path", [None])[0])
        match = [c for c in cands if (c[0].id, c[1].path) == want] or cands
        if not match:
            return self.send_error_json(404, "EntryNotFound", "Entry not found")
        self.send_file(match[0][0], match[0][1], '"%s"' % sha256)

    # ---- file bodies: ranges, throttling, fault injection -----------------
    def send_file(self, repo, f, etag, headers=()):
        total, start, end, status = f.size, 0, f.size - 1, 200
        m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", self.headers.get("Range") or "")
        if m and (m.group(1) or m.group(2)):  # a malformed Range is ignored, as RFC 9110 allows
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), total - 1) if m.group(2) else total - 1
            else:  # suffix range bytes=-N
                start = max(0, total - int(m.group(2)))
            if start >= total or start > end:
                self.send_response(416)
                for k, v in (("Content-Range", "bytes */%d" % total), ("Content-Length", "0"),
                             ("ETag", etag)) + tuple(headers):
                    self.send_header(k, v)
                return self.end_headers()
            status = 206
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, total))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        cut, corrupt = self.hub.first_get_faults(repo, f)
        todo = length if cut is None else min(cut, length)
        rate = self.hub.rate
        chunk = max(1, rate // 20) if rate else 1 << 16  # ~20 writes per second when throttled
        with open(f.abspath, "rb") as fh:
            fh.seek(start)
            while todo > 0:
                data = fh.read(min(chunk, todo))
                if not data:
                    break
                self.wfile.write(data.translate(XOR_TABLE) if corrupt else data)
                todo -= len(data)
                if rate:
                    time.sleep(len(data) / rate)
        if cut is not None:  # drop the connection mid-body, as a network failure would
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FakeHubServer(ThreadingHTTPServer):
    daemon_threads = True  # don't wait for slow downloads on exit
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # disconnects are expected
            super().handle_error(request, client_address)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="folder holding ORG/NAME repositories")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    p.add_argument("--token", help="the one token that opens gated and private repos")
    p.add_argument("--gated", nargs="+", action="extend", default=[], metavar="ORG/NAME")
    p.add_argument("--private", nargs="+", action="extend", default=[], metavar="ORG/NAME")
    p.add_argument("--cut", nargs="+", action="extend", default=[], metavar="GLOB:BYTES",
                   help="first GET of a matching file sends BYTES of body, then drops the connection")
    p.add_argument("--corrupt-once", nargs="+", action="extend", default=[], metavar="GLOB",
                   help="first GET of a matching file serves its bytes XOR 0x55")
    p.add_argument("--corrupt-always", nargs="+", action="extend", default=[], metavar="GLOB",
                   help="every GET of a matching file serves its bytes XOR 0x55")
    p.add_argument("--cdn-host", metavar="HOST", help="redirect LFS files to http://HOST:PORT/cdn/... (another host name)")
    p.add_argument("--rate", type=int, default=0, metavar="BYTES_PER_SEC", help="throttle file bodies")
    p.add_argument("--log", metavar="FILE", help="append one JSON line per request")
    p.add_argument("--relative-cdn", action="store_true",
                   help="redirect LFS files to a relative /cdn/... URL instead of http://HOST/cdn/...")
    p.add_argument("--gate-files-only", action="store_true",
                   help="like the real hub, gate only /resolve; model info and tree stay public")
    args = p.parse_args()

    server = FakeHubServer(("127.0.0.1", args.port), Handler)
    server.hub = Hub(args)
    print("PORT %d" % server.server_port, flush=True)
    for sig in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: background jobs inherit it ignored
        signal.signal(sig, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except SystemExit:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
