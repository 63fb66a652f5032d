"""The lab's API faults, request scoping, eventual consistency (`stale`) and AWS's paging and caps.

ecs_lab.py's middleware calls in here; see lab/README.md for every fault's control-API shape and
what AWS documents about the behaviour it imitates.

Scoping is exact: a fault's `match` (a string or a list of strings) fires only when one of its
strings *equals* a name the request carries (see `request_names`): a cluster, service, family,
task-definition, repository or target-group name, or a full ARN. "svcx4" never matches "svcx4N".
"""

import base64
import io
import itertools
import json
import random
import threading
import time
from urllib.parse import parse_qs

from moto.ecs.models import ecs_backends
from moto.elbv2.models import elbv2_backends

ECS_TARGET = "AmazonEC2ContainerServiceV20141113."
ERROR_KINDS = ("throttle", "error5xx", "denied")
KINDS = ERROR_KINDS + ("delay", "hang", "stale", "apply_then_error")
DEFAULT_DELAY_MS = {"delay": 500, "hang": 600_000}
IDS = itertools.count(1)


class Registry:
    def __init__(self):
        self.faults = []  # armed API faults, in arming order; exhausted ones stay listed (remaining 0)
        # (cluster, service) -> {"service": DescribeServices entry or None, "tasks": {arn: DescribeTasks entry}}
        # taken just before each UpdateService / CreateService / DeleteService was applied
        self.service_snapshots = {}
        self.run_tasks = set()  # task ARNs started by RunTask: before that write they did not exist
        self.hanging = 0  # requests held by a `hang` fault right now


FAULTS = Registry()


def reset():
    for fault in FAULTS.faults:
        fault["_release"].set()
    FAULTS.__init__()


# --------------------------------------------------------------------------- arming and listing


def arm(data):
    kind = data.get("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown api-fault kind {kind!r} (one of {', '.join(KINDS)})")
    if not data.get("action"):
        raise ValueError("an api-fault needs an action")
    if kind == "stale" and data["action"].split(":")[-1] not in ("DescribeServices", "DescribeTasks"):
        raise ValueError("a stale fault is for DescribeServices or DescribeTasks")
    fault = dict(data)
    fault["id"] = next(IDS)
    fault["count"] = int(fault.get("count", 1))
    fault["fired"] = 0
    if kind in DEFAULT_DELAY_MS and fault.get("delay_ms") is None:
        fault["delay_ms"] = DEFAULT_DELAY_MS[kind]
    match = fault.get("match")
    fault["match"] = [match] if isinstance(match, str) and match else [m for m in (match or []) if m]
    fault["_release"] = threading.Event()
    FAULTS.faults.append(fault)
    return public(fault)


def public(fault):
    out = {k: v for k, v in fault.items() if not k.startswith("_")}
    out["remaining"] = fault["count"]
    return out


def listing():
    return [public(f) for f in FAULTS.faults]


def clear():
    release(None)
    FAULTS.faults.clear()


def release(fault_id):
    """Let every request a `hang` fault holds answer now (one fault's, or all)."""
    released = 0
    for fault in FAULTS.faults:
        if fault["kind"] == "hang" and (fault_id is None or fault["id"] == fault_id):
            fault["_release"].set()
            released += 1
    return released


# --------------------------------------------------------------------------- what a request names


def _last(value):
    return value.rsplit("/", 1)[-1]


def _add_arn(names, value):
    """A name or ARN: the value itself, its last path part, and for service ARNs the cluster part."""
    if not isinstance(value, str) or not value:
        return
    names.add(value)
    names.add(_last(value))
    if ":service/" in value or ":service-deployment/" in value or ":service-revision/" in value:
        parts = value.split(":", 5)[-1].split("/")
        names.update(p for p in parts[1:3] if p)


def _add_task_definition(names, value):
    if not isinstance(value, str) or not value:
        return
    names.add(value)
    short = _last(value)  # family:revision or family
    names.add(short)
    names.add(short.split(":")[0])


def _backends():
    for regions in list(ecs_backends.values()):
        for backend in list(regions.values()):
            yield backend


def find_task(ref):
    for backend in _backends():
        for cluster_tasks in list(backend.tasks.values()):
            for arn, task in list(cluster_tasks.items()):
                if ref == arn or ref == _last(arn):
                    return task
    return None


def _services_of_target_group(tg_arn):
    for backend in _backends():
        for service in list(backend.services.values()):
            for lb in service.load_balancers or []:
                if lb.get("targetGroupArn") == tg_arn:
                    yield service


def parse(service, body):
    """The request as a dict: JSON for the JSON protocols, the query form for ELB's."""
    text = body.decode("utf-8", "replace") if body else ""
    if service == "elasticloadbalancing" or (text and not text.lstrip().startswith("{")):
        return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(text).items()}
    try:
        doc = json.loads(text or "{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def request_names(service, action, doc):
    """Every cluster, service, family, task-definition, repository and target-group name (and ARN)
    the request names, for exact fault scoping and for recording writes."""
    names = set()
    for key in ("cluster", "clusterName", "service", "serviceName", "serviceArn", "serviceDeploymentArn"):
        _add_arn(names, doc.get(key))
    for key in ("services", "clusters", "serviceDeploymentArns", "serviceRevisionArns"):
        for value in doc.get(key) or []:
            _add_arn(names, value)
    for key in ("family", "familyPrefix"):
        if isinstance(doc.get(key), str):
            names.add(doc[key])
    _add_task_definition(names, doc.get("taskDefinition"))
    if isinstance(doc.get("repositoryName"), str):
        names.add(doc["repositoryName"])
    for key in ("RoleName", "SecretId", "Name", "logGroupNamePrefix",  # IAM, Secrets Manager, SSM, Logs
                "deploymentId"):  # CodeDeploy: a fault scoped to one deployment (StopDeployment, GetDeployment)
        if isinstance(doc.get(key), str):
            names.add(doc[key])
    for ref in doc.get("tasks") or []:
        if not isinstance(ref, str):
            continue
        names.add(ref)
        names.add(_last(ref))
        task = find_task(ref)
        if task is not None:
            names.add(task.cluster_name if hasattr(task, "cluster_name") else "")
            _add_arn(names, getattr(task, "cluster_arn", None))
            if getattr(task, "lab_service", None):
                names.add(task.lab_service)
            _add_task_definition(names, task.task_definition_arn)
    # ELB (query protocol): a target group's own name, and the services and clusters that use it.
    tgs = [v for k, v in doc.items() if k == "TargetGroupArn" or k.startswith("TargetGroupArns.member.")]
    for tg_arn in tgs:
        if not isinstance(tg_arn, str):
            continue
        names.add(tg_arn)
        names.add(tg_arn.split(":")[-1].split("/")[1] if "targetgroup/" in tg_arn else tg_arn)
        for svc in _services_of_target_group(tg_arn):
            names.add(svc.name)
            names.add(svc.cluster_name)
    names.discard("")
    return names


def scoped(fault, names):
    return not fault["match"] or any(m in names for m in fault["match"])


# --------------------------------------------------------------------------- firing


class Plan:
    """What the armed faults do to one request."""

    def __init__(self):
        self.error = None  # "throttle" | "error5xx": answered at once, nothing applied
        self.before_s = 0.0  # wait before the request is applied (the answer shows the state after the wait)
        self.after_s = 0.0  # wait after it was applied (the answer shows the state when it arrived)
        self.hang = None  # the `hang` fault holding this request (released early by /_lab/release)
        self.hang_applies = False
        self.stale = None  # the `stale` fault: answer from the state before the last write
        self.apply_then_error = None  # the fault: apply, then 500 (or drop the connection)


def take(action, key, names):
    """Fire the armed faults for one request (under the lab's lock): count them, and say what to do."""
    plan = Plan()
    live = [f for f in FAULTS.faults
            if f.get("action") in (action, key) and f["count"] > 0 and scoped(f, names)
            and (not f.get("after_write") or f.get("_write_seen"))]
    errors = [f for f in live if f["kind"] in ERROR_KINDS]
    if errors:  # a throttled or failed request never reaches the service: the other faults stay armed
        fault = errors[0]
        fault["count"] -= 1
        fault["fired"] += 1
        plan.error = fault["kind"]
        return plan
    seen = set()
    for fault in live:
        if fault["kind"] in seen:
            continue
        seen.add(fault["kind"])
        fault["count"] -= 1
        fault["fired"] += 1
        if fault["kind"] == "delay":
            wait = max(0.0, fault["delay_ms"] + random.uniform(-1, 1) * float(fault.get("jitter_ms") or 0)) / 1000.0
            if fault.get("after"):
                plan.after_s = max(plan.after_s, wait)
            else:
                plan.before_s = max(plan.before_s, wait)
        elif fault["kind"] == "hang":
            plan.hang = fault
            plan.hang_applies = bool(fault.get("apply"))
        elif fault["kind"] == "stale":
            plan.stale = fault
        elif fault["kind"] == "apply_then_error":
            plan.apply_then_error = fault
    return plan


def hold(fault):
    """A `hang`: hold the request until delay_ms passes or a test releases it; other requests go on."""
    FAULTS.hanging += 1
    try:
        fault["_release"].wait(fault["delay_ms"] / 1000.0)
    finally:
        FAULTS.hanging -= 1


# --------------------------------------------------------------------------- moto, called from inside the lab


def moto_json(app, environ, action, payload):
    """Ask moto an ECS read with the caller's credentials (the answer DescribeServices/Tasks would give)."""
    body = json.dumps(payload).encode()
    env = dict(environ)
    env["wsgi.input"] = io.BytesIO(body)
    env["CONTENT_LENGTH"] = str(len(body))
    env["HTTP_X_AMZ_TARGET"] = ECS_TARGET + action
    env["REQUEST_METHOD"] = "POST"
    env["PATH_INFO"] = "/"
    env["QUERY_STRING"] = ""
    out = {}

    def capture(status, headers, exc_info=None):
        out["status"] = status
        return lambda _chunk: None

    result = app(env, capture)
    try:
        data = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    if not out.get("status", "").startswith("200"):
        return None
    return json.loads(data or b"{}")


def _service_of(doc, action):
    sd = doc.get("serviceDeploymentArn")
    if isinstance(sd, str) and ":service-deployment/" in sd:
        # Stop/ContinueServiceDeployment: arn:aws:ecs:REGION:ACCOUNT:service-deployment/CLUSTER/SERVICE/ID
        parts = sd.split(":", 5)[-1].split("/")
        return (parts[1], parts[2]) if len(parts) > 2 else (None, None)
    cluster = _last(doc.get("cluster") or "default")
    name = doc.get("serviceName") if action == "CreateService" else doc.get("service")
    return cluster, _last(name) if isinstance(name, str) else None


def snapshot_before_write(app, environ, action, doc):
    """Just before UpdateService/CreateService/DeleteService/StopServiceDeployment/
    ContinueServiceDeployment is applied: what DescribeServices and DescribeTasks say about the
    service now, for the `stale` fault."""
    cluster, name = _service_of(doc, action)
    if not name:
        return
    for fault in FAULTS.faults:
        # `after_write`: a fault armed before the deploy starts firing at the service's next write.
        if fault.get("after_write") and scoped(fault, {cluster, name}):
            fault["_write_seen"] = True
    answer = moto_json(app, environ, "DescribeServices", {"cluster": cluster, "services": [name]}) or {}
    services = answer.get("services") or []
    arns = []
    for backend in _backends():
        for arn, task in list(backend.tasks.get(cluster, {}).items()):
            if getattr(task, "lab_service", None) == name:
                arns.append(arn)
    tasks = {}
    for i in range(0, len(arns), 100):
        got = moto_json(app, environ, "DescribeTasks", {"cluster": cluster, "tasks": arns[i:i + 100]}) or {}
        for task in got.get("tasks") or []:
            tasks[task["taskArn"]] = task
    FAULTS.service_snapshots[(cluster, name)] = {"service": services[0] if services else None, "tasks": tasks}


def after_run_task(answer):
    for task in (answer or {}).get("tasks") or []:
        FAULTS.run_tasks.add(task.get("taskArn"))


def _in_scope(fault, *names):
    return not fault["match"] or any(n in fault["match"] for n in names if n)


def stale_services(fault, answer):
    """DescribeServices as it was before the last write to each service the fault is scoped to."""
    services, failures = [], list(answer.get("failures") or [])
    for svc in answer.get("services") or []:
        cluster = _last(svc.get("clusterArn") or "")
        key = (cluster, svc.get("serviceName"))
        snap = FAULTS.service_snapshots.get(key)
        if snap is None or not _in_scope(fault, cluster, svc.get("serviceName"), svc.get("serviceArn")):
            services.append(svc)
        elif snap["service"] is None:
            failures.append({"arn": svc.get("serviceArn"), "reason": "MISSING"})
        else:
            services.append(snap["service"])
    return {**answer, "services": services, "failures": failures}


def stale_tasks(fault, answer):
    """DescribeTasks as it was before the last write: a task RunTask started is MISSING, and a
    service's task is as it was before the service's last UpdateService (MISSING if it is newer)."""
    tasks, failures = [], list(answer.get("failures") or [])
    for entry in answer.get("tasks") or []:
        arn = entry.get("taskArn")
        cluster = _last(entry.get("clusterArn") or "")
        task = find_task(arn)
        service = getattr(task, "lab_service", None)
        family = _last(entry.get("taskDefinitionArn") or "").split(":")[0]
        if not _in_scope(fault, cluster, service, family, arn, _last(arn or "")):
            tasks.append(entry)
            continue
        if arn in FAULTS.run_tasks:
            failures.append({"arn": arn, "reason": "MISSING"})
            continue
        snap = FAULTS.service_snapshots.get((cluster, service)) if service else None
        if snap is None:
            tasks.append(entry)
        elif arn in snap["tasks"]:
            tasks.append(snap["tasks"][arn])
        else:
            failures.append({"arn": arn, "reason": "MISSING"})
    return {**answer, "tasks": tasks, "failures": failures}


# --------------------------------------------------------------------------- AWS's caps, scope and pages


class Invalid(Exception):
    code = "InvalidParameterException"


def check_caps(action, doc):
    """ECS's documented per-call limits, checked before moto sees the request."""
    if action == "DescribeServices" and len(doc.get("services") or []) > 10:
        raise Invalid("services can have at most 10 items.")
    if action == "DescribeTasks":
        if len(doc.get("tasks") or []) > 100:
            raise Invalid("tasks can have at most 100 items.")
    if action in ("ListTasks", "ListServiceDeployments"):
        limit = doc.get("maxResults")
        top = 100
        if limit is not None and not (isinstance(limit, int) and 1 <= limit <= top):
            raise Invalid(f"maxResults must be between 1 and {top}.")


def scope_tasks(doc, answer):
    """DescribeTasks answers only tasks of the cluster asked (default `default`); any other task
    asked for is a MISSING failure, as in ECS (moto searches every cluster)."""
    cluster = _last(doc.get("cluster") or "default")
    tasks, failures = [], list(answer.get("failures") or [])
    found = set()
    for entry in answer.get("tasks") or []:
        arn = entry.get("taskArn") or ""
        ref = next((r for r in doc.get("tasks") or [] if r == arn or r == _last(arn)), None)
        if ref is None:
            continue  # moto's substring match on task ids: ECS matches whole ids
        if _last(entry.get("clusterArn") or "") != cluster:
            continue
        found.add(ref)
        tasks.append(entry)
    for ref in doc.get("tasks") or []:
        if ref not in found and not any(f.get("arn") == ref for f in failures):
            failures.append({"arn": ref, "reason": "MISSING"})
    return {**answer, "tasks": tasks, "failures": failures}


def _token(offset, what):
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "w": what}).encode()).decode()


def page(doc, answer, field, default, what):
    """One page of `field` (maxResults, default `default`), with nextToken for the rest."""
    items = answer.get(field) or []
    start = 0
    token = doc.get("nextToken")
    if token:
        try:
            parsed = json.loads(base64.urlsafe_b64decode(token.encode()))
            start = int(parsed["o"])
            if parsed.get("w") != what:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise Invalid("Invalid nextToken.")
    size = doc.get("maxResults") or default
    out = {**answer, field: items[start:start + size]}
    out.pop("nextToken", None)
    if start + size < len(items):
        out["nextToken"] = _token(start + size, what)
    return out


def wait(seconds):
    if seconds > 0:
        time.sleep(seconds)
