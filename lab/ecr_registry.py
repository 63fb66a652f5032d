"""The lab's ECR, with a real registry behind it (Debian `docker-registry`, lab/up starts it).

moto's ECR keeps repositories; images live in the registry. Repository URIs and the token's
proxyEndpoint point at the registry, the token decodes to AWS:<password> that the registry's
htpasswd accepts, and DescribeImages / BatchGetImage / PutImage / DescribeImageScanFindings are
answered from the registry itself, so ECR and the registry never disagree.
"""

import base64
import hashlib
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request

from moto.ecr import models as ecr_models
from moto.ecr.models import ecr_backends

REGISTRY = os.environ.get("LAB_REGISTRY", "127.0.0.1:5077")
USER, PASSWORD = "AWS", "123456789012-auth-token"
MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
])


class Faults:
    def __init__(self):
        self.token_password = PASSWORD  # a wrong one makes every push fail with 401
        self.down = set()  # repositories whose URI points at a closed port
        self.findings = {}  # "repo:tag" -> [{"name", "severity"}]
        self.scan = {}  # "repo:tag" -> scan mode (see SCAN_MODES); the default is "complete"
        self.scan_reads = {}  # "repo:tag" -> DescribeImageScanFindings calls so far (for in_progress:N)
        self.cut = {}  # repository -> port of a proxy that dies mid-push (see CutProxy)


FAULTS = Faults()

_orig_repo_init = ecr_models.Repository.__init__


def repo_init(self, *args, **kwargs):
    _orig_repo_init(self, *args, **kwargs)
    if self.name in FAULTS.down:
        host = "127.0.0.1:9"
    elif self.name in FAULTS.cut:
        host = f"127.0.0.1:{FAULTS.cut[self.name]}"
    else:
        host = REGISTRY
    self.uri = f"{host}/{self.name}"


class CutProxy:
    """The registry going down mid-push: forwards to the registry until `limit` bytes of requests
    have passed, then drops every connection and stops listening (connection refused from then on)."""

    def __init__(self, limit):
        self.limit, self.sent, self.down = limit, 0, False
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(50)
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.down:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            host, port = REGISTRY.split(":")
            upstream = socket.create_connection((host, int(port)))
            threading.Thread(target=self.pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self.pipe, args=(upstream, client, False), daemon=True).start()

    def pipe(self, src, dst, upload):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upload:
                    self.sent += len(data)
                    if self.sent > self.limit:
                        self.down = True
                        self.server.close()
                        break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass


def cut_mid_push(repository, limit):
    FAULTS.cut[repository] = CutProxy(limit).port


SCAN_MODES = ("complete", "in_progress:N", "unsupported", "enhanced", "not_found", "findings_unavailable",
              "failed", "pending", "scan_eligibility_expired")


def configure(data):
    """POST /_lab/registry: {"token_password", "down": [repo], "cut": {repo: bytes},
    "findings": {"repo:tag": [{"name", "severity"}]}, "scan": {"repo:tag": mode}}."""
    for key, mode in (data.get("scan") or {}).items():
        base = mode.split(":")[0]
        if base not in [m.split(":")[0] for m in SCAN_MODES]:
            raise ValueError(f"unknown scan mode {mode!r} (one of {', '.join(SCAN_MODES)})")
        if base == "in_progress":
            int(mode.split(":")[1] if ":" in mode else 1)
    if "token_password" in data:
        FAULTS.token_password = data["token_password"] or PASSWORD
    for repo in data.get("down", []):
        FAULTS.down.add(repo)
    for repo, limit in (data.get("cut") or {}).items():
        cut_mid_push(repo, int(limit))
    for key, findings in (data.get("findings") or {}).items():
        FAULTS.findings[key] = findings
    for key, mode in (data.get("scan") or {}).items():
        FAULTS.scan[key] = mode
        FAULTS.scan_reads.pop(key, None)


ecr_models.Repository.__init__ = repo_init


def registry(method, path, body=None, headers=None):
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    req = urllib.request.Request(f"http://{REGISTRY}{path}", data=body, method=method,
                                 headers={"Authorization": f"Basic {auth}", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


class Error(Exception):
    def __init__(self, code, message):
        self.code, self.message = code, message


def repository(request):
    name = request.get("repositoryName", "")
    for regions in ecr_backends.values():
        for backend in regions.values():
            if name in backend.repositories:
                return backend.repositories[name]
    raise Error("RepositoryNotFoundException",
                f"The repository with name '{name}' does not exist in the registry with id '123456789012'")


def manifest(name, ref):
    status, headers, body = registry("GET", f"/v2/{name}/manifests/{ref}", headers={"Accept": MANIFEST_TYPES})
    if status != 200:
        return None
    return {"digest": headers.get("Docker-Content-Digest"), "mediaType": headers.get("Content-Type"), "body": body}


def image_ids(request, name):
    ids = request.get("imageIds")
    if ids:
        return ids
    status, _, body = registry("GET", f"/v2/{name}/tags/list")
    tags = json.loads(body).get("tags") or [] if status == 200 else []
    return [{"imageTag": t} for t in tags]


def describe_images(request):
    repo = repository(request)
    details = []
    for image_id in image_ids(request, repo.name):
        ref = image_id.get("imageTag") or image_id.get("imageDigest")
        found = manifest(repo.name, ref)
        if found is None:
            raise Error("ImageNotFoundException",
                        f"The image with imageId {{imageTag:'{ref}'}} does not exist within the repository with name "
                        f"'{repo.name}' in the registry with id '123456789012'")
        layers = json.loads(found["body"]).get("layers") or []
        details.append({
            "registryId": "123456789012", "repositoryName": repo.name, "imageDigest": found["digest"],
            "imageTags": [image_id["imageTag"]] if image_id.get("imageTag") else [],
            "imageSizeInBytes": sum(layer.get("size", 0) for layer in layers),
            "imagePushedAt": time.time(), "imageManifestMediaType": found["mediaType"],
            **scan_summary(repo.name, found["digest"]),
        })
    return {"imageDetails": details}


def batch_get_image(request):
    repo = repository(request)
    images, failures = [], []
    for image_id in request.get("imageIds") or []:
        ref = image_id.get("imageTag") or image_id.get("imageDigest")
        found = manifest(repo.name, ref)
        if found is None:
            failures.append({"imageId": image_id, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"})
            continue
        images.append({"registryId": "123456789012", "repositoryName": repo.name,
                       "imageId": {"imageDigest": found["digest"], **({"imageTag": image_id["imageTag"]} if image_id.get("imageTag") else {})},
                       "imageManifest": found["body"].decode(), "imageManifestMediaType": found["mediaType"]})
    return {"images": images, "failures": failures}


def put_image(request):
    repo = repository(request)
    tag = request.get("imageTag")
    body = request["imageManifest"].encode()
    media = request.get("imageManifestMediaType") or json.loads(body).get("mediaType")
    existing = manifest(repo.name, tag) if tag else None
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    # ECR: ImageAlreadyExistsException only when this tag already names this very manifest; a
    # mutable repository moves the tag to another manifest, an immutable one refuses.
    if existing is not None and existing["digest"] == digest:
        raise Error("ImageAlreadyExistsException",
                    f"Image with digest '{existing['digest']}' and tag '{tag}' already exists in the repository with name "
                    f"'{repo.name}' in registry with id '123456789012'")
    if existing is not None and getattr(repo, "image_tag_mutability", "MUTABLE") == "IMMUTABLE":
        raise Error("ImageTagAlreadyExistsException",
                    f"The image tag '{tag}' already exists in the '{repo.name}' repository and cannot be overwritten "
                    f"because the repository is immutable.")
    status, headers, text = registry("PUT", f"/v2/{repo.name}/manifests/{tag}", body, {"Content-Type": media})
    if status not in (200, 201):
        raise Error("InvalidParameterException", f"registry refused the manifest: {status} {text[:200]!r}")
    return {"image": {"registryId": "123456789012", "repositoryName": repo.name, "imageManifest": request["imageManifest"],
                      "imageManifestMediaType": media,
                      "imageId": {"imageDigest": headers.get("Docker-Content-Digest"), "imageTag": tag}}}


def scan_key(repo_name, digest):
    """The "repo:tag" key whose tag names this digest now (faults are per tag, the scan is of the digest)."""
    keys = set(FAULTS.findings) | set(FAULTS.scan)
    for key in sorted(keys):
        name, _, tag = key.partition(":")
        if name != repo_name:
            continue
        tagged = manifest(name, tag)
        if tagged is not None and tagged["digest"] == digest:
            return key
    return None


STATUS_TEXT = {
    "COMPLETE": "The scan was completed successfully.",
    "IN_PROGRESS": "The scan is in progress.",
    "PENDING": "The scan is pending.",
    "ACTIVE": "Continuous scan is selected for image.",
    "UNSUPPORTED_IMAGE": "UnsupportedImageError: The operating system and/or package manager are not supported.",
    "FINDINGS_UNAVAILABLE": "Findings are no longer available for this image.",
    "FAILED": "The scan failed.",
    "SCAN_ELIGIBILITY_EXPIRED": "The scan eligibility for this image has expired.",
}


def scan_state(key, count_read):
    """(status, mode) for a key; `in_progress:N` answers IN_PROGRESS for N DescribeImageScanFindings calls."""
    mode = FAULTS.scan.get(key, "complete") if key else "complete"
    base, _, n = mode.partition(":")
    if base == "in_progress":
        seen = FAULTS.scan_reads.get(key, 0)
        if count_read:
            FAULTS.scan_reads[key] = seen + 1
        return ("IN_PROGRESS" if seen < int(n or 1) else "COMPLETE"), base
    if base == "enhanced":
        return "ACTIVE", base
    return {"complete": "COMPLETE", "unsupported": "UNSUPPORTED_IMAGE", "findings_unavailable": "FINDINGS_UNAVAILABLE",
            "failed": "FAILED", "pending": "PENDING", "scan_eligibility_expired": "SCAN_ELIGIBILITY_EXPIRED",
            "not_found": None}[base], base


def severity_counts(findings):
    counts = {}
    for f in findings:
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    return counts


def scan_summary(repo_name, digest):
    """DescribeImages' imageScanStatus and imageScanFindingsSummary for one image."""
    key = scan_key(repo_name, digest)
    status, _mode = scan_state(key, count_read=False)
    if status is None:
        return {}
    out = {"imageScanStatus": {"status": status, "description": STATUS_TEXT[status]}}
    if status in ("COMPLETE", "ACTIVE"):
        out["imageScanFindingsSummary"] = {"imageScanCompletedAt": time.time(),
                                           "vulnerabilitySourceUpdatedAt": time.time(),
                                           "findingSeverityCounts": severity_counts(FAULTS.findings.get(key) or [])}
    return out


def enhanced(f, repo_name, digest):
    vuln = f["name"]
    return {"awsAccountId": "123456789012", "description": f.get("description", vuln),
            "findingArn": f"arn:aws:inspector2:us-east-1:123456789012:finding/{hashlib.md5((repo_name + digest + vuln).encode()).hexdigest()}",
            "firstObservedAt": time.time(), "lastObservedAt": time.time(), "updatedAt": time.time(),
            "packageVulnerabilityDetails": {"vulnerabilityId": vuln, "source": "NVD", "vulnerablePackages": []},
            "severity": f["severity"], "status": "ACTIVE", "title": f"{vuln} - lab", "type": "PACKAGE_VULNERABILITY",
            "resources": [{"id": f"arn:aws:ecr:us-east-1:123456789012:repository/{repo_name}/{digest}",
                           "type": "AWS_ECR_CONTAINER_IMAGE"}]}


def scan_findings(request):
    repo = repository(request)
    image_id = request.get("imageId") or {}
    ref = image_id.get("imageTag") or image_id.get("imageDigest")
    found = manifest(repo.name, ref)
    if found is None:
        raise Error("ImageNotFoundException", f"The image {ref} does not exist in repository '{repo.name}'")
    key = scan_key(repo.name, found["digest"])
    status, mode = scan_state(key, count_read=True)
    answered_id = {"imageDigest": found["digest"], **({"imageTag": image_id["imageTag"]} if image_id.get("imageTag") else {})}
    if status is None:
        raise Error("ScanNotFoundException",
                    f"Image scan does not exist for the image with '{{imageDigest:'{found['digest']}', "
                    f"imageTag:'{image_id.get('imageTag', '')}'}}' in the repository with name '{repo.name}' "
                    f"in the registry with id '123456789012'")
    out = {"registryId": "123456789012", "repositoryName": repo.name, "imageId": answered_id,
           "imageScanStatus": {"status": status, "description": STATUS_TEXT[status]}}
    if status not in ("COMPLETE", "ACTIVE"):
        return out
    findings = FAULTS.findings.get(key) or []
    limit = request.get("maxResults") or 100  # ECR: 1-1000, default 100
    if not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise Error("InvalidParameterException", "maxResults must be between 1 and 1000.")
    start = 0
    if request.get("nextToken"):
        try:
            start = int(base64.urlsafe_b64decode(request["nextToken"].encode()).decode().split(":")[1])
        except (ValueError, IndexError):
            raise Error("InvalidParameterException", "Invalid NextToken")
    shown = findings[start:start + limit]
    scan = {"imageScanCompletedAt": time.time(), "vulnerabilitySourceUpdatedAt": time.time(),
            "findingSeverityCounts": severity_counts(findings)}
    if mode == "enhanced":
        scan["enhancedFindings"] = [enhanced(f, repo.name, found["digest"]) for f in shown]
    else:
        scan["findings"] = [{"name": f["name"], "severity": f["severity"], "description": f.get("description", f["name"]),
                             "uri": "", "attributes": []} for f in shown]
    out["imageScanFindings"] = scan
    if start + limit < len(findings):
        out["nextToken"] = base64.urlsafe_b64encode(f"findings:{start + limit}".encode()).decode()
    return out


def authorization_token(_request, access_key=""):
    # Callers signing with the access key "bad-registry-creds" get a password the registry refuses,
    # so one test can have invalid credentials while others push in parallel.
    password = "not-the-password" if access_key == "bad-registry-creds" else FAULTS.token_password
    token = base64.b64encode(f"{USER}:{password}".encode()).decode()
    return {"authorizationData": [{"authorizationToken": token, "expiresAt": time.time() + 12 * 3600,
                                   "proxyEndpoint": f"http://{REGISTRY}"}]}


HANDLERS = {
    "DescribeImages": describe_images,
    "BatchGetImage": batch_get_image,
    "PutImage": put_image,
    "DescribeImageScanFindings": scan_findings,
    "GetAuthorizationToken": authorization_token,
}


def handle(action, request, access_key=""):
    """(status, body) for the ECR actions the registry answers, or None to let moto answer."""
    handler = HANDLERS.get(action)
    if handler is None:
        return None
    try:
        if action == "GetAuthorizationToken":
            return "200 OK", authorization_token(request, access_key)
        return "200 OK", handler(request)
    except Error as err:
        return "400 Bad Request", {"__type": err.code, "message": err.message}
