"""A fake GitHub REST API for the tests, checked against GitHub's own OpenAPI description.

Serves the calls deployer makes (issue comments, commit statuses, deployments and their statuses,
the pull requests of a commit) from memory. Every request is checked against the description from
npm `@octokit/openapi` (path, method, JSON body schema); anything it does not allow is answered
with 404/405/422 like GitHub and recorded as a violation, so a test can assert there are none.

  forge.py --port 5080 --spec .lab/npm/node_modules/@octokit/openapi/generated/api.github.com.json

Control: GET /_forge/requests?repo=o/r  POST /_forge/fail {"repo", "method", "path_contains", "status"}
         POST /_forge/pulls {"repo", "sha", "numbers": [7]}
         POST /_forge/hang {"method": "POST", "path_regex": "/repos/o/r/issues/[0-9]+/comments", "count": 1,
                            "delay_ms": 600000}   accept, then answer nothing for delay_ms (GitHub and GitLab paths;
                            path_regex must match the whole path); GET /_forge/hangs lists them with `fired`;
         POST /_forge/release {"id": 1} (or {} for all) lets held requests answer now
"""

import argparse
import copy
import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlencode, urlparse

import jsonschema

LOCK = threading.Lock()
IDS = itertools.count(1000)
CLOCK = itertools.count(1)


class Spec:
    def __init__(self, path):
        with open(path) as f:
            doc = json.load(f)
        self.components = doc["components"]
        self.examples = doc["components"]["examples"]
        self.routes = []
        for template, item in doc["paths"].items():
            pattern = "^" + re.sub(r"{[^}]+}", "[^/]+", template) + "$"
            self.routes.append((re.compile(pattern), template, item))

    def check(self, method, path, body):
        """None when GitHub's description allows this request, else (status, why)."""
        matches = [(t, item) for rx, t, item in self.routes if rx.match(path)]
        if not matches:
            return 404, f"no such path in GitHub's REST API: {path}"
        for template, item in matches:
            operation = item.get(method.lower())
            if operation is None:
                continue
            schema = (operation.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema")
            if schema is not None:
                if body is None and (operation.get("requestBody") or {}).get("required"):
                    return 422, f"{method} {template}: a JSON body is required"
                try:
                    jsonschema.validate(body, {**schema, "components": self.components})
                except jsonschema.ValidationError as err:
                    return 422, f"{method} {template}: {err.message} (at {list(err.absolute_path)})"
            return None
        return 405, f"{method} is not allowed on {matches[0][0]} (GitHub allows {sorted(k.upper() for k in matches[0][1] if k in ('get','post','patch','put','delete'))})"


class Forge:
    def __init__(self, spec):
        self.spec = spec
        self.requests = []
        self.comments = {}  # (repo, number) -> [comment]
        self.pulls = {}  # (repo, sha) -> [number]
        self.failures = []
        self.hangs = []  # {"id", "method", "path_regex", "count", "fired", "delay_ms"}, plus a release event

    def hang_for(self, method, path):
        """The armed hang this request falls into (counted), or None. Called under LOCK."""
        for hang in self.hangs:
            if hang["count"] <= 0 or hang.get("method", method) != method:
                continue
            if not re.fullmatch(hang.get("path_regex", ".*"), path):
                continue
            hang["count"] -= 1
            hang["fired"] += 1
            return hang
        return None

    def example(self, name):
        value = copy.deepcopy(self.spec.examples[name]["value"])
        return value


class Handler(BaseHTTPRequestHandler):
    forge: Forge = None

    def log_message(self, *args):
        pass

    def reply(self, status, payload, headers=None):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def handle_any(self, method):
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        forge = self.forge
        if url.path.startswith("/_forge/"):
            return self.control(method, url, raw)
        with LOCK:
            hang = forge.hang_for(method, url.path)
        if hang is not None:
            # Accepted, then no answer: held outside LOCK, so every other request goes on.
            hang["_release"].wait(hang["delay_ms"] / 1000.0)
        if url.path.startswith("/api/v4/"):
            return self.gitlab(method, url, raw)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = "<not JSON>"
        problem = forge.spec.check(method, url.path, body)
        parts = url.path.strip("/").split("/")
        repo = "/".join(parts[1:3]) if parts[:1] == ["repos"] else ""
        record = {"method": method, "path": url.path, "query": url.query, "body": body, "repo": repo,
                  "auth": self.headers.get("Authorization", ""), "violation": problem[1] if problem else None}
        with LOCK:
            forge.requests.append(record)
            if problem:
                return self.reply(problem[0], {"message": problem[1], "documentation_url": "https://docs.github.com/rest"})
            if not record["auth"].startswith(("Bearer ", "token ")):
                return self.reply(401, {"message": "Requires authentication"})
            for fail in forge.failures:
                if fail["repo"] == repo and fail.get("method", method) == method and fail.get("path_contains", "") in url.path:
                    return self.reply(fail.get("status", 403), {"message": "Resource not accessible by integration"})
            return self.route(method, parts, body, url)

    def route(self, method, parts, body, url):
        forge = self.forge
        repo = "/".join(parts[1:3])
        tail = parts[3:]
        if tail[:1] == ["issues"] and len(tail) == 3 and tail[2] == "comments":
            key = (repo, int(tail[1]))
            if method == "GET":
                page = int(parse_qs(url.query).get("page", ["1"])[0])
                per_page = int(parse_qs(url.query).get("per_page", ["30"])[0])
                items = forge.comments.get(key, [])
                return self.reply(200, items[(page - 1) * per_page: page * per_page])
            comment = forge.example("issue-comment")
            comment.update(id=next(IDS), body=body["body"])
            comment["user"]["login"], comment["user"]["type"] = "github-actions[bot]", "Bot"
            forge.comments.setdefault(key, []).append(comment)
            return self.reply(201, comment)
        if tail[:2] == ["issues", "comments"] and len(tail) == 3:
            for comments in forge.comments.values():
                for comment in comments:
                    if comment["id"] == int(tail[2]):
                        comment["body"] = body["body"]
                        return self.reply(200, comment)
            return self.reply(404, {"message": "Not Found"})
        if tail[:1] == ["statuses"]:
            status = forge.example("status")
            status.update(id=next(IDS), state=body["state"], context=body.get("context", "default"))
            return self.reply(201, status)
        if tail == ["deployments"]:
            deployment = forge.example("deployment")
            deployment.update(id=next(IDS), ref=body["ref"], sha=body["ref"], environment=body.get("environment", "production"))
            return self.reply(201, deployment)
        if tail[:1] == ["deployments"] and tail[2:] == ["statuses"]:
            status = forge.example("deployment-status")
            status.update(id=next(IDS), state=body["state"])
            return self.reply(201, status)
        if tail[:1] == ["commits"] and tail[2:] == ["pulls"]:
            numbers = forge.pulls.get((repo, tail[1]), [])
            template = forge.example("pull-request-simple-items")[0]
            items = []
            for n in numbers:
                pr = copy.deepcopy(template)
                pr.update(number=n, state="open")
                pr["head"]["sha"] = tail[1]
                items.append(pr)
            return self.reply(200, items)
        return self.reply(404, {"message": "Not Found (the forge does not serve this call)"})

    def gitlab(self, method, url, raw):
        """GitLab's merge-request notes API (GET/POST …/notes, PUT …/notes/:id), PRIVATE-TOKEN required;
        the list is sorted and paged as GitLab does (`gitlab_page`)."""
        forge = self.forge
        parts = url.path.strip("/").split("/")  # api v4 projects ID merge_requests IID notes [NOTE]
        body = json.loads(raw) if raw else None
        project = parts[3] if len(parts) > 3 else ""
        record = {"method": method, "path": url.path, "query": url.query, "body": body, "repo": f"gitlab:{project}",
                  "auth": self.headers.get("PRIVATE-TOKEN", ""), "violation": None}
        with LOCK:
            forge.requests.append(record)
            if not record["auth"]:
                return self.reply(401, {"message": "401 Unauthorized"})
            for fail in forge.failures:
                if fail["repo"] == record["repo"]:
                    return self.reply(fail.get("status", 403), {"message": "403 Forbidden"})
            if len(parts) < 7 or parts[2] != "projects" or parts[4] != "merge_requests" or parts[6] != "notes":
                record["violation"] = f"not a merge-request notes path: {url.path}"
                return self.reply(404, {"message": "404 Not Found"})
            key = ("gitlab", project, int(parts[5]))
            notes = forge.comments.setdefault(key, [])
            if method == "GET" and len(parts) == 7:
                return self.reply(200, *gitlab_page(notes, parse_qs(url.query), f"http://{self.headers.get('Host')}{url.path}"))
            if method == "POST" and len(parts) == 7:
                if not isinstance(body, dict) or not isinstance(body.get("body"), str):
                    record["violation"] = "POST notes needs a JSON body with a string `body`"
                    return self.reply(400, {"message": "body is missing"})
                note = {"id": next(IDS), "body": body["body"], "system": False, "created_at": stamp(),
                        "author": {"id": 1, "username": "project_1_bot", "name": "deployer"}}
                note["updated_at"] = note["created_at"]
                notes.append(note)
                return self.reply(201, note)
            if method == "PUT" and len(parts) == 8:
                for note in notes:
                    if note["id"] == int(parts[7]):
                        note["body"], note["updated_at"] = body["body"], stamp()
                        return self.reply(200, note)
                return self.reply(404, {"message": "404 Note Not Found"})
            record["violation"] = f"{method} is not a notes call GitLab serves"
            return self.reply(405, {"message": "405 Method Not Allowed"})

    def control(self, method, url, raw):
        forge = self.forge
        data = json.loads(raw or b"{}")
        with LOCK:
            if url.path == "/_forge/requests":
                repo = parse_qs(url.query).get("repo", [""])[0]
                return self.reply(200, [r for r in forge.requests if not repo or r["repo"] == repo])
            if url.path == "/_forge/fail":
                forge.failures.append(data)
                return self.reply(200, {"ok": True})
            if url.path == "/_forge/hang":
                hang = {"id": len(forge.hangs) + 1, "method": data.get("method"), "path_regex": data.get("path_regex", ".*"),
                        "count": int(data.get("count", 1)), "fired": 0, "delay_ms": int(data.get("delay_ms", 600_000)),
                        "_release": threading.Event()}
                if hang["method"] is None:
                    del hang["method"]
                re.compile(hang["path_regex"])
                forge.hangs.append(hang)
                return self.reply(200, {"ok": True, "id": hang["id"]})
            if url.path == "/_forge/hangs":
                return self.reply(200, [{k: v for k, v in h.items() if not k.startswith("_")} for h in forge.hangs])
            if url.path == "/_forge/release":
                for hang in forge.hangs:
                    if data.get("id") in (None, hang["id"]):
                        hang["_release"].set()
                return self.reply(200, {"ok": True})
            if url.path == "/_forge/pulls":
                forge.pulls[(data["repo"], data["sha"])] = data["numbers"]
                return self.reply(200, {"ok": True})
            if url.path == "/_forge/health":
                return self.reply(200, {"ok": True})
        return self.reply(404, {"message": "unknown forge path"})


def stamp():
    """A note's created_at/updated_at: a second later for every write, so the order is strict."""
    return datetime.fromtimestamp(1_767_225_600 + next(CLOCK), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def gitlab_page(notes, query, url):
    """GitLab's offset pagination of a notes list: sort/order_by (default created_at desc), per_page
    (default 20, at most 100), page; x-page, x-per-page, x-next-page (empty on the last page),
    x-prev-page, x-total, x-total-pages and a Link header, as GitLab sends them."""
    arg = lambda name, default: query.get(name, [default])[0]
    key = "updated_at" if arg("order_by", "created_at") == "updated_at" else "created_at"
    ordered = sorted(notes, key=lambda n: (n[key], n["id"]), reverse=arg("sort", "desc") == "desc")
    per_page, page = max(1, min(int(arg("per_page", "20")), 100)), max(1, int(arg("page", "1")))
    pages = max(1, -(-len(ordered) // per_page))
    link = lambda n, rel: f'<{url}?{urlencode({**{k: v[0] for k, v in query.items()}, "page": n})}>; rel="{rel}"'
    links = ([link(page + 1, "next")] if page < pages else []) + [link(1, "first"), link(pages, "last")]
    headers = {"x-page": str(page), "x-per-page": str(per_page), "x-total": str(len(ordered)),
               "x-total-pages": str(pages), "x-next-page": str(page + 1) if page < pages else "",
               "x-prev-page": str(page - 1) if page > 1 else "", "Link": ", ".join(links)}
    return ordered[(page - 1) * per_page: page * per_page], headers


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=5080)
    p.add_argument("--spec", required=True)
    a = p.parse_args()
    Handler.forge = Forge(Spec(a.spec))
    ThreadingHTTPServer.daemon_threads = True  # a held (hanging) request never keeps the forge from stopping
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(f"forge listening on http://127.0.0.1:{a.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
