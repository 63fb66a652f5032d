"""Self-check of the lab's faults and AWS realism against a running lab; exits non-zero on any mismatch.

  .lab/venv/bin/python lab/selfcheck.py [--lab http://127.0.0.1:5155] [--forge http://127.0.0.1:5180]
                                        [--registry 127.0.0.1:5177] [--only NAME]...

Prefer a lab of your own (LAB_PORT=5155 LAB_FORGE_PORT=5180 LAB_REGISTRY_PORT=5177 lab/up): the checks
make services and arm faults, scoped to their own names, so they never reach anyone else's.
"""

import argparse
import base64
import concurrent.futures
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

ARGS = None
FAILED = []
CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def uid(prefix):
    return f"{prefix}{uuid.uuid4().hex[:8]}z"


def client(name, **config):
    return boto3.client(name, endpoint_url=ARGS.lab, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test",
                        config=Config(retries={"total_max_attempts": 1}, **config))


def lab(path, body=None, method=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{ARGS.lab}/_lab/{path}", data=data, method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=10).read())


def fault(**kw):
    return lab("api-fault", kw)["id"]


def fault_state(fault_id):
    return next(f for f in lab("api-faults") if f["id"] == fault_id)


def code_of(call):
    try:
        call()
    except ClientError as err:
        return err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


def scenario(*args):
    """lab/scenario.py, as the tests run it; its JSON answer."""
    out = subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenario.py"),
                          *args], capture_output=True, text=True, env={**os.environ, "AWS_ENDPOINT_URL": ARGS.lab})
    if out.returncode != 0:
        raise AssertionError(f"scenario.py {args} failed: {out.stderr[-500:]}")
    return json.loads(out.stdout)


def service(desired=1):
    """A COMPLETED service made by scenario.py: (cluster, service)."""
    cluster, svc = uid("c"), uid("s")
    scenario("create", "--cluster", cluster, "--service", svc, "--desired", str(desired), "--image", f"registry.lab/app:{svc}")
    return cluster, svc


def update(cluster, svc, image):
    scenario("update", "--cluster", cluster, "--service", svc, "--image", image)


def describe(ecs, cluster, svc):
    return ecs.describe_services(cluster=cluster, services=[svc])


def deployments(ecs, cluster, svc):
    got = describe(ecs, cluster, svc)
    return [d["id"] for d in got["services"][0]["deployments"]] if got["services"] else None


# --------------------------------------------------------------------------- ECS faults


@check
def throttle_is_exact_and_counted():
    ecs = client("ecs")
    cluster, svc = service()
    prefix = fault(action="DescribeServices", kind="throttle", count=1, match=svc[:-1])
    expect(code_of(lambda: describe(ecs, cluster, svc)) == (None, 200), "a prefix of the name throttled the service")
    expect(fault_state(prefix)["fired"] == 0 and fault_state(prefix)["remaining"] == 1, "prefix fault fired")
    exact = fault(action="DescribeServices", kind="throttle", count=2, match=svc)
    expect(code_of(lambda: describe(ecs, cluster, svc)) == ("ThrottlingException", 400), "not throttled (400)")
    expect(code_of(lambda: describe(ecs, cluster, svc)) == ("ThrottlingException", 400), "second not throttled")
    expect(code_of(lambda: describe(ecs, cluster, svc)) == (None, 200), "throttled past its count")
    state = fault_state(exact)
    expect(state["fired"] == 2 and state["remaining"] == 0, f"counts wrong: {state}")
    # By cluster name too, and through a target group for ELB (the service that uses it).
    fault(action="ListTasks", kind="error5xx", count=1, match=cluster)
    expect(code_of(lambda: ecs.list_tasks(cluster=cluster))[0] == "ServerException", "cluster-scoped 5xx missed")
    elb = client("elbv2")
    tg = describe(ecs, cluster, svc)["services"][0]["loadBalancers"][0]["targetGroupArn"]
    f = fault(action="DescribeTargetHealth", kind="throttle", count=1, match=svc)
    expect(code_of(lambda: elb.describe_target_health(TargetGroupArn=tg))[0] == "Throttling", "ELB not throttled")
    expect(fault_state(f)["fired"] == 1, "ELB fault not counted")


@check
def stale_describe_services_after_update():
    ecs = client("ecs")
    cluster, svc = service()
    before = deployments(ecs, cluster, svc)
    update(cluster, svc, f"registry.lab/app:{svc}-v2")
    # Armed after the write: the lab keeps the state from just before each write.
    f = fault(action="DescribeServices", kind="stale", count=1, match=svc)
    stale = deployments(ecs, cluster, svc)
    fresh = deployments(ecs, cluster, svc)
    expect(stale == before, f"stale read shows the new deployment: {stale} vs {before}")
    expect(len(fresh) == 2 and fresh[1] == before[0], f"fresh read lacks the new deployment: {fresh}")
    expect(fault_state(f)["fired"] == 1, "stale fault not counted")
    # Right after CreateService, the new service is MISSING.
    svc2 = uid("s")
    td = describe(ecs, cluster, svc)["services"][0]["taskDefinition"]
    net = describe(ecs, cluster, svc)["services"][0]["networkConfiguration"]
    fault(action="DescribeServices", kind="stale", count=1, match=svc2)
    ecs.create_service(cluster=cluster, serviceName=svc2, taskDefinition=td, desiredCount=0, launchType="FARGATE",
                       networkConfiguration=net)
    got = ecs.describe_services(cluster=cluster, services=[svc2, svc])
    expect([x["reason"] for x in got["failures"]] == ["MISSING"], f"new service not MISSING: {got['failures']}")
    expect([s["serviceName"] for s in got["services"]] == [svc], "the other service in the batch was touched")
    expect(describe(ecs, cluster, svc2)["services"], "service still MISSING after the stale read")


def run_task(ecs, cluster, svc, count=1):
    cur = describe(ecs, cluster, svc)["services"][0]
    return ecs.run_task(cluster=cluster, taskDefinition=cur["taskDefinition"], count=count, launchType="FARGATE",
                        networkConfiguration=cur["networkConfiguration"], startedBy="selfcheck")["tasks"]


@check
def stale_describe_tasks_after_run_task_and_cluster_scope():
    ecs = client("ecs")
    cluster, svc = service()
    f = fault(action="DescribeTasks", kind="stale", count=1, match=svc)
    arn = run_task(ecs, cluster, svc)[0]["taskArn"]
    first = ecs.describe_tasks(cluster=cluster, tasks=[arn])
    expect(first["tasks"] == [] and first["failures"] == [{"arn": arn, "reason": "MISSING"}], f"not MISSING: {first}")
    expect(ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]["taskArn"] == arn, "task still missing")
    expect(fault_state(f)["fired"] == 1, "not counted")
    # Another cluster: MISSING, as in ECS (moto looks in every cluster).
    other, _ = service()
    wrong = ecs.describe_tasks(cluster=other, tasks=[arn])
    expect(wrong["tasks"] == [] and wrong["failures"][0]["reason"] == "MISSING", f"cluster ignored: {wrong}")
    # Stale service task after UpdateService: old tasks as they were; new tasks MISSING.
    old = ecs.list_tasks(cluster=cluster, serviceName=svc)["taskArns"]
    update(cluster, svc, f"registry.lab/app:{svc}-v2")
    deadline = time.time() + 10
    while time.time() < deadline:
        now = ecs.list_tasks(cluster=cluster, serviceName=svc)["taskArns"]
        new = [a for a in now if a not in old]
        if new:
            break
        time.sleep(0.1)
    expect(new, "no new task started")
    fault(action="DescribeTasks", kind="stale", count=1, match=svc)
    got = ecs.describe_tasks(cluster=cluster, tasks=old + new)
    expect({t["taskArn"] for t in got["tasks"]} == set(old), f"stale tasks wrong: {got['tasks']}")
    expect({x["arn"] for x in got["failures"]} == set(new), f"new tasks not MISSING: {got['failures']}")


@check
def caps_and_pages():
    ecs = client("ecs")
    cluster, svc = service()
    expect(code_of(lambda: ecs.describe_services(cluster=cluster, services=[f"x{i}" for i in range(11)]))[0]
           == "InvalidParameterException", "11 services accepted")
    expect(code_of(lambda: ecs.describe_tasks(cluster=cluster, tasks=[f"t{i}" for i in range(101)]))[0]
           == "InvalidParameterException", "101 tasks accepted")
    arns = [t["taskArn"] for t in run_task(ecs, cluster, svc, count=104)]
    page = ecs.list_tasks(cluster=cluster)
    expect(len(page["taskArns"]) == 100 and page.get("nextToken"), f"first page: {len(page['taskArns'])}")
    rest = ecs.list_tasks(cluster=cluster, nextToken=page["nextToken"])
    expect(len(rest["taskArns"]) == 5 and not rest.get("nextToken"), f"second page: {len(rest['taskArns'])}")
    expect(set(arns) <= set(page["taskArns"] + rest["taskArns"]), "pages lost a task")
    small = ecs.list_tasks(cluster=cluster, serviceName=svc, maxResults=1)
    expect(len(small["taskArns"]) == 1 and not small.get("nextToken"), "maxResults=1 on one service task")
    # ListServiceDeployments: 20 a page.
    for _ in range(21):
        ecs.update_service(cluster=cluster, service=svc, forceNewDeployment=True)
    first = ecs.list_service_deployments(cluster=cluster, service=svc)
    expect(len(first["serviceDeployments"]) == 20 and first.get("nextToken"), "ListServiceDeployments first page")
    second = ecs.list_service_deployments(cluster=cluster, service=svc, nextToken=first["nextToken"])
    expect(len(second["serviceDeployments"]) == 2 and not second.get("nextToken"), "second page")


@check
def apply_then_error_and_drop():
    ecs = client("ecs")
    cluster, svc = service()
    before = deployments(ecs, cluster, svc)
    f = fault(action="UpdateService", kind="apply_then_error", count=1, match=svc)
    expect(code_of(lambda: ecs.update_service(cluster=cluster, service=svc, forceNewDeployment=True))
           == ("ServerException", 500), "no 500")
    after = deployments(ecs, cluster, svc)
    expect(after[0] != before[0], "the write was not applied")
    expect(fault_state(f)["fired"] == 1, "not counted")
    fault(action="UpdateService", kind="apply_then_error", drop=True, count=1, match=svc)
    try:
        ecs.update_service(cluster=cluster, service=svc, forceNewDeployment=True)
        raise AssertionError("dropped call answered")
    except ConnectionClosedError:
        pass
    expect(deployments(ecs, cluster, svc)[0] != after[0], "dropped write was not applied")
    # RunTask: applied once, the caller sees a 500.
    fault(action="RunTask", kind="apply_then_error", count=1, match=cluster)
    expect(code_of(lambda: run_task(ecs, cluster, svc))[0] == "ServerException", "RunTask no 500")
    listed = ecs.list_tasks(cluster=cluster, startedBy="selfcheck")["taskArns"]
    expect(len(listed) == 1, f"RunTask applied {len(listed)} times")


@check
def hang_holds_one_request_only():
    ecs = client("ecs")
    cluster, svc = service()
    other_cluster, other = service()
    f = fault(action="DescribeServices", kind="hang", count=1, match=svc)
    slow = client("ecs", read_timeout=3, connect_timeout=2)
    started = time.time()
    box = {}

    def hung():
        try:
            describe(slow, cluster, svc)
            box["r"] = "answered"
        except ReadTimeoutError:
            box["r"] = "timeout"

    t = threading.Thread(target=hung)
    t.start()
    time.sleep(0.3)
    # Meanwhile the lab answers others, and its controller rolls another service out.
    t0 = time.time()
    describe(ecs, other_cluster, other)
    expect(time.time() - t0 < 1.0, "another request waited for the hang")
    ecs.update_service(cluster=other_cluster, service=other, forceNewDeployment=True)
    deadline = time.time() + 15
    while time.time() < deadline:
        deps = describe(ecs, other_cluster, other)["services"][0]["deployments"]
        if len(deps) == 1 and deps[0]["rolloutState"] == "COMPLETED" and deps[0]["id"] not in ("",):
            break
        time.sleep(0.1)
    t.join()
    expect(box.get("r") == "timeout" and time.time() - started >= 2.9, f"hang answered: {box}")
    expect(fault_state(f)["fired"] == 1, "not counted")
    expect(len(deps) == 1 and deps[0]["rolloutState"] == "COMPLETED", "the controller stalled during a hang")
    # A hang that applies the write (a timeout after ECS applied it), then release.
    before = deployments(ecs, cluster, svc)[0]
    f2 = fault(action="UpdateService", kind="hang", apply=True, count=1, match=svc)
    try:
        slow.update_service(cluster=cluster, service=svc, forceNewDeployment=True)
        raise AssertionError("hung write answered")
    except ReadTimeoutError:
        pass
    expect(deployments(ecs, cluster, svc)[0] != before, "hang apply=true did not apply")
    lab("release", {"id": f2})
    lab("release", {"id": f})


@check
def delayed_answers_can_arrive_out_of_order():
    ecs = client("ecs")
    cluster, svc = service()
    before = deployments(ecs, cluster, svc)
    fault(action="DescribeServices", kind="delay", delay_ms=1500, after=True, count=1, match=svc)
    done = []
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(lambda: (deployments(ecs, cluster, svc), done.append("first")))
        time.sleep(0.3)
        ecs.update_service(cluster=cluster, service=svc, forceNewDeployment=True)
        second = pool.submit(lambda: (deployments(client("ecs"), cluster, svc), done.append("second")))
        a, b = first.result()[0], second.result()[0]
    expect(done == ["second", "first"], f"answers not reordered: {done}")
    expect(a == before and len(b) == len(before) + 1, f"late answer not from the earlier state: {a} {b}")
    # Jitter: a spread of waits around delay_ms.
    f = fault(action="DescribeClusters", kind="delay", delay_ms=300, jitter_ms=250, count=6, match=cluster)
    waits = []
    for _ in range(6):
        t0 = time.time()
        ecs.describe_clusters(clusters=[cluster])
        waits.append(time.time() - t0)
    expect(max(waits) - min(waits) > 0.05 and min(waits) >= 0.04, f"no jitter: {waits}")
    expect(fault_state(f)["remaining"] == 0, "jitter fault not used up")


@check
def task_fault_images_match_exactly():
    sys.path.insert(0, os.path.dirname(__file__))
    from ecs_lab import image_matches
    expect(image_matches("r/app:crash-x3", "r/app:crash-x3"), "exact")
    expect(not image_matches("r/app:crash-x3", "r/app:crash-x3N"), "prefix matched")
    expect(image_matches("r/app:crash-x3", "r/app:crash-x3@sha256:ab"), "digest pin")
    expect(image_matches("r/app", "r/app:any"), "untagged fault matches every tag")
    expect(not image_matches("r/app", "r/application:any"), "repo prefix matched")
    expect(not image_matches("127.0.0.1:5077/app", "127.0.0.1:5077/app2:v"), "registry port confused")


# --------------------------------------------------------------------------- writes and ECR


def registry_push(repo, tag, content):
    """A one-layer image straight into the registry (what docker push does), returns the manifest text."""
    auth = base64.b64encode(b"AWS:123456789012-auth-token").decode()

    def call(method, path, data=None, headers=None):
        url = path if path.startswith("http") else f"http://{ARGS.registry}{path}"
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Authorization": f"Basic {auth}", **(headers or {})})
        return urllib.request.urlopen(req, timeout=10)

    def blob(data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        loc = call("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
        loc = loc if loc.startswith("http") else f"http://{ARGS.registry}{loc}"
        call("PUT", f"{loc}{'&' if '?' in loc else '?'}digest={digest}", data,
             {"Content-Type": "application/octet-stream"})
        return digest, len(data)

    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                      "config": {"Labels": {"c": content}}}).encode()
    cd, cs = blob(cfg)
    ld, ls = blob(content.encode())
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cd, "size": cs},
                           "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                       "digest": ld, "size": ls}]})
    call("PUT", f"/v2/{repo}/manifests/{tag}", manifest.encode(),
         {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    return manifest


@check
def writes_name_repositories_and_families():
    ecr, ecs = client("ecr"), client("ecs")
    repo = uid("repo")
    ecr.create_repository(repositoryName=repo)
    manifest = registry_push(repo, "a", "one")
    ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "a"}])
    ecr.put_image(repositoryName=repo, imageManifest=manifest, imageTag="b")
    family = uid("fam")
    arn = ecs.register_task_definition(family=family, containerDefinitions=[{"name": "w", "image": "x", "memory": 64}])[
        "taskDefinition"]["taskDefinitionArn"]
    ecs.deregister_task_definition(taskDefinition=arn)
    writes = lab("writes")
    mine = [w["action"] for w in writes if w.get("repositoryName") == repo]
    expect(mine == ["ecr:CreateRepository", "ecr:PutImage"], f"ECR writes: {mine}")
    fam = [w["action"] for w in writes if w.get("family") == family]
    expect(fam == ["ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition"], f"family writes: {fam}")


@check
def put_image_moves_a_tag_unless_unchanged():
    ecr = client("ecr")
    repo = uid("repo")
    ecr.create_repository(repositoryName=repo)
    one = registry_push(repo, "one", "one")
    two = registry_push(repo, "two", "two")
    expect(code_of(lambda: ecr.put_image(repositoryName=repo, imageManifest=one, imageTag="one"))[0]
           == "ImageAlreadyExistsException", "same tag, same manifest accepted")
    ecr.put_image(repositoryName=repo, imageManifest=two, imageTag="one")
    d = lambda tag: ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": tag}])["imageDetails"][0]["imageDigest"]
    expect(d("one") == d("two"), "the tag did not move")


@check
def scan_modes_and_pages():
    ecr = client("ecr")
    repo = uid("repo")
    ecr.create_repository(repositoryName=repo)
    for i, tag in enumerate(["plain", "prog", "unsup", "enh", "none", "gone"]):
        registry_push(repo, tag, f"content-{i}")
    findings = [{"severity": "LOW", "name": f"CVE-L-{i}"} for i in range(150)] + [{"severity": "CRITICAL", "name": "CVE-C"}]
    lab("registry", {"findings": {f"{repo}:plain": findings, f"{repo}:enh": [{"severity": "CRITICAL", "name": "CVE-E"}]},
                     "scan": {f"{repo}:prog": "in_progress:2", f"{repo}:unsup": "unsupported", f"{repo}:enh": "enhanced",
                              f"{repo}:none": "not_found", f"{repo}:gone": "findings_unavailable"}})
    scan = lambda tag, **kw: ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": tag}, **kw)
    first = scan("plain")
    expect(first["imageScanStatus"]["status"] == "COMPLETE", "plain status")
    expect(first["imageScanFindings"]["findingSeverityCounts"] == {"LOW": 150, "CRITICAL": 1}, "counts")
    expect(len(first["imageScanFindings"]["findings"]) == 100 and first.get("nextToken"), "first page of findings")
    rest = scan("plain", nextToken=first["nextToken"])
    expect(len(rest["imageScanFindings"]["findings"]) == 51 and not rest.get("nextToken"), "second page")
    expect(rest["imageScanFindings"]["findings"][-1]["severity"] == "CRITICAL", "CRITICAL on page 2")
    states = [scan("prog")["imageScanStatus"]["status"] for _ in range(3)]
    expect(states == ["IN_PROGRESS", "IN_PROGRESS", "COMPLETE"], f"in_progress:2 gave {states}")
    expect(scan("unsup")["imageScanStatus"]["status"] == "UNSUPPORTED_IMAGE", "unsupported")
    enh = scan("enh")
    expect(enh["imageScanStatus"]["status"] == "ACTIVE", "enhanced status")
    expect(enh["imageScanFindings"]["findingSeverityCounts"] == {"CRITICAL": 1}, "enhanced counts")
    expect(enh["imageScanFindings"]["enhancedFindings"][0]["severity"] == "CRITICAL", "enhanced findings")
    expect(code_of(lambda: scan("none"))[0] == "ScanNotFoundException", "not_found")
    expect(scan("gone")["imageScanStatus"]["status"] == "FINDINGS_UNAVAILABLE", "findings_unavailable")
    img = ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "enh"}])["imageDetails"][0]
    expect(img["imageScanStatus"]["status"] == "ACTIVE" and
           img["imageScanFindingsSummary"]["findingSeverityCounts"] == {"CRITICAL": 1}, f"DescribeImages: {img}")


# --------------------------------------------------------------------------- the forge


def forge(path, body=None, method=None, timeout=10, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{ARGS.forge}{path}", data=data, method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    return json.loads(urllib.request.urlopen(req, timeout=timeout).read())


@check
def forge_hangs_github_and_gitlab():
    owner = uid("o")
    gh = forge("/_forge/hang", {"method": "POST", "path_regex": f"/repos/{owner}/r/issues/[0-9]+/comments", "count": 1})["id"]
    gl = forge("/_forge/hang", {"path_regex": f"/api/v4/projects/{owner}/merge_requests/[0-9]+/notes", "count": 1})["id"]
    for path, headers in ((f"/repos/{owner}/r/issues/1/comments", {"Authorization": "Bearer x"}),
                          (f"/api/v4/projects/{owner}/merge_requests/1/notes", {"PRIVATE-TOKEN": "x"})):
        t0 = time.time()
        try:
            forge(path, {"body": "hi"}, timeout=2, headers=headers)
            raise AssertionError(f"{path} answered")
        except (TimeoutError, urllib.error.URLError) as err:
            expect("timed out" in str(err), f"{path}: {err}")
        expect(time.time() - t0 >= 1.9, "answered early")
        expect(forge("/_forge/health", timeout=2)["ok"], "forge blocked by a hang")
    hangs = {h["id"]: h for h in forge("/_forge/hangs")}
    expect(hangs[gh]["fired"] == 1 and hangs[gl]["fired"] == 1, f"not counted: {hangs}")
    # Used up: the next comment is answered.
    got = forge(f"/repos/{owner}/r/issues/1/comments", {"body": "again"}, headers={"Authorization": "Bearer x"})
    expect(got["body"] == "again", "the comment after the hang")
    forge("/_forge/release", {})


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lab", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5155"))
    p.add_argument("--forge", default="http://127.0.0.1:5180")
    p.add_argument("--registry", default="127.0.0.1:5177")
    p.add_argument("--only", action="append", default=[])
    ARGS = p.parse_args()
    os.environ["AWS_ENDPOINT_URL"] = ARGS.lab
    for fn in CHECKS:
        if ARGS.only and fn.__name__ not in ARGS.only:
            continue
        t0 = time.time()
        try:
            fn()
            print(f"ok    {fn.__name__} ({time.time() - t0:.1f}s)", flush=True)
        except Exception as err:
            FAILED.append(fn.__name__)
            print(f"FAIL  {fn.__name__}: {err}", flush=True)
            if not isinstance(err, AssertionError):
                traceback.print_exc()
    print(f"{len(FAILED)} failed" if FAILED else "all checks passed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
