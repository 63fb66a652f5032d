"""CodeDeploy blue/green for ECS services in the lab (deploymentController CODE_DEPLOY).

moto 5.2.5 stores CodeDeploy applications, deployment groups and deployments, but a deployment stays
`Created` and StopDeployment, ContinueDeployment and GetDeploymentTarget do not exist. This module
answers the deployment half of the API itself (moto keeps applications and deployment groups) and plays
CodeDeploy's ECS lifecycle from the lab's controller thread: a replacement task set, the listener weights,
the lifecycle events, the ready wait, the termination wait, auto-rollback and the failures the lab's task
faults cause. Every shape and enum follows botocore's codedeploy service-2.json (in .lab/venv).

ecs_lab.py imports this module and calls install(<its own module>) once (after strategies.install);
install() wraps by name, as strategies.py does:
  answer            CodeDeploy requests (X-Amz-Target CodeDeploy_20141006.<Action>) in HANDLED are answered here
  tick_service      CODE_DEPLOY services are driven by tick() here (task sets, tasks, deployments)
  target_groups_of  a CODE_DEPLOY service has both target groups of its deployment group's pair
  lab_api           GET /_lab/codedeploy (every deployment as the lab holds it); reset clears ours
and patches moto's ECS CreateService (a CODE_DEPLOY service gets its first task set) and the UpdateService
response (a new task definition on a CODE_DEPLOY service is refused as ECS does).
See lab/README.md, "CodeDeploy".

Time scale: one minute of waitTimeInMinutes / terminationWaitTimeInMinutes / canary and linear intervals is
STATE.timing["minute_s"] seconds (default 1.0); every lifecycle event lasts at least timing["stage_s"] (0.2 s).
"""

import hashlib
import json
import math
import random
import re
import string
import time
from urllib.parse import parse_qs

import yaml
from moto.codedeploy.models import codedeploy_backends
from moto.ecs import models as ecs_models
from moto.ecs.exceptions import ECSException
from moto.ecs.responses import EC2ContainerServiceResponse

import strategies

lab = None  # the ecs_lab module (set by install)

EVENTS = ("BeforeInstall", "Install", "AfterInstall", "AllowTestTraffic", "AfterAllowTestTraffic",
          "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic")
HOOKABLE = ("BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic")
FINAL = ("Succeeded", "Failed", "Stopped")
# The predefined ECS deployment configurations: (trafficRoutingConfig type, percentage, interval minutes)
CONFIGS = {
    "CodeDeployDefault.ECSAllAtOnce": ("AllAtOnce", 100, 0),
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": ("TimeBasedLinear", 10, 1),
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": ("TimeBasedLinear", 10, 3),
    "CodeDeployDefault.ECSCanary10Percent5Minutes": ("TimeBasedCanary", 10, 5),
    "CodeDeployDefault.ECSCanary10Percent15Minutes": ("TimeBasedCanary", 10, 15),
}
OTHER_PLATFORM_CONFIGS = ("CodeDeployDefault.OneAtATime", "CodeDeployDefault.HalfAtATime", "CodeDeployDefault.AllAtOnce",
                          "CodeDeployDefault.LambdaAllAtOnce")
HANDLED = ("CreateDeployment", "GetDeployment", "BatchGetDeployments", "ListDeployments", "StopDeployment",
           "ContinueDeployment", "GetDeploymentTarget", "ListDeploymentTargets", "BatchGetDeploymentTargets",
           "GetDeploymentConfig")
# How long an unhealthy replacement is waited for before the deployment fails (AWS: 60 minutes).
UNHEALTHY_FAIL_S = 10
MSG_UNHEALTHY = ("The deployment timed out while waiting for the replacement task set to become healthy. "
                 "This time out period is 60 minutes.")
MSG_STOPPED = "The deployment was stopped by the user."

DEPLOYMENTS = {}  # deployment id -> record (see create())


class CDError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def timing(key, default):
    return float(lab.STATE.timing.get(key, default))


def minutes(n):
    return float(n or 0) * timing("minute_s", 1.0)


def new_id():
    return "d-" + "".join(random.choice(string.ascii_uppercase + string.digits) for _ in range(9))


def cd_backend(account, region):
    return codedeploy_backends[account][region]


def ecs_backend(account, region):
    return ecs_models.ecs_backends[account][region]


def is_codedeploy(service):
    return (service.deployment_controller or {}).get("type") == "CODE_DEPLOY"


# --------------------------------------------------------------------------- task sets


def new_task_set(service, task_definition, tg_arn, container_name, container_port, started_by=None, status="ACTIVE"):
    ts = ecs_models.TaskSet(service.arn, service.cluster_arn, task_definition, service._account_id, service.region_name,
                            network_configuration=service.network_configuration or None,
                            load_balancers=[{"targetGroupArn": tg_arn, "containerName": container_name,
                                             "containerPort": container_port}] if tg_arn else [],
                            launch_type=service.launch_type or "FARGATE",
                            scale={"value": 100.0, "unit": "PERCENT"})
    ts.id = f"ecs-svc/{random.randint(10**15, 10**16 - 1)}"
    ts.task_set_arn = f"arn:aws:ecs:{service.region_name}:{service._account_id}:task-set/{service.cluster_name}/{service.name}/{ts.id}"
    ts.service_arn, ts.cluster_arn = service.arn, service.cluster_arn
    ts.status = status
    ts.started_by = started_by
    ts.computed_desired_count = service.desired_count
    ts.running_count = ts.pending_count = 0
    ts.stabilityStatus = "STABILIZING"
    ts.lab_tg = tg_arn
    ts.lab_failed = 0
    ts.lab_failure = None  # (kind, message, log lines) of the last failure
    ts.lab_weight = 0
    service.task_sets.append(ts)
    lab.record("codedeploy_task_set", service=service.name, task_set=ts.id, task_definition=task_definition,
               target_group=tg_arn)
    return ts


def task_set(service, ts_id):
    return next((ts for ts in service.task_sets if ts.id == ts_id), None)


def tasks_of(backend, service, ts_id):
    return [t for t in backend.tasks.get(service.cluster_name, {}).values()
            if isinstance(t, lab.LabTask) and t.lab_service == service.name and t.started_by == ts_id]


def create_service(self, *args, _orig=None, **kwargs):
    service = _orig(self, *args, **kwargs)
    if is_codedeploy(service) and service.task_definition:
        lb = (service.load_balancers or [{}])[0] if service.load_balancers else {}
        ts = new_task_set(service, service.task_definition, lb.get("targetGroupArn"), lb.get("containerName"),
                          lb.get("containerPort"), status="PRIMARY")
        ts.lab_weight = 100
    return service


def target_groups_of(service, _orig=None):
    seen = set()
    for tg, port in _orig(service):
        seen.add(tg.arn)
        yield tg, port
    if is_codedeploy(service):
        port = ((service.load_balancers or [{}])[0] or {}).get("containerPort") if service.load_balancers else None
        for ts in service.task_sets:
            tg = strategies.target_group(service, ts.lab_tg)
            if tg is not None and tg.arn not in seen:
                seen.add(tg.arn)
                yield tg, port


def advance(backend, service, ts, clock):
    """Start, crash, register and health-check a task set's tasks as ecs_lab does for a deployment,
    each task set in its own target group."""
    t = lab.STATE.timing
    task_def = backend.describe_task_definition(ts.task_definition)
    tg = strategies.target_group(service, ts.lab_tg)
    port = (ts.load_balancers or [{}])[0].get("containerPort") if ts.load_balancers else None
    dep = {"id": ts.id, "failedTasks": ts.lab_failed, "taskDefinition": ts.task_definition}
    tasks = tasks_of(backend, service, ts.id)
    for task in tasks:
        if task.last_status == "STOPPED":
            continue
        age = clock - task.lab_started
        if task.last_status == "PROVISIONING" and age >= t["task_start_s"] / 2:
            task.last_status = "PENDING"
        if task.last_status == "PENDING" and age >= t["task_start_s"]:
            if lab.fault_for(task_def, {"pending"}):
                continue
            pull = lab.fault_for(task_def, {"cannot_pull"})
            if pull:
                image = next(c["image"] for c in task.containers if lab.image_matches(pull["image"], c["image"]))
                msg = (f"CannotPullContainerError: pull image manifest has been retried 5 time(s): "
                       f"failed to resolve ref {image}: not found")
                lab.stop_task(service, dep, task, msg, "TaskFailedToStart", container_reason=msg, failed=True)
                ts.lab_failure = ("cannot_pull", f"task {task.id} stopped: {msg}", [msg])
                continue
            task.last_status = "RUNNING"
            task.started_at = lab.now()
            task.lab_running_since = clock
            for c in task.containers:
                c["lastStatus"] = "RUNNING"
            if tg is not None:
                ip = lab.task_ip(task)
                tg.targets[ip] = {"Id": ip, "Port": port or tg.port}
                lab.STATE.targets[(tg.arn, ip)] = {"state": "initial", "reason": "Elb.RegistrationInProgress",
                                                   "description": "Target registration is in progress", "since": clock}
        if task.last_status != "RUNNING":
            continue
        crash = lab.fault_for(task_def, {"exit"})
        if crash and clock - task.lab_running_since >= t["exit_after_s"]:
            name = next(c["name"] for c in task.containers if lab.image_matches(crash["image"], c["image"]))
            lines = crash.get("log_lines") or [f"{name} exiting with {crash.get('exit_code', 1)}"]
            lab.write_logs(task, task_def, name, lines)
            lab.stop_task(service, dep, task, "Essential container in task exited", "EssentialContainerExited",
                          exit_codes={name: crash.get("exit_code", 1)}, failed=True)
            ts.lab_failure = ("exit", f"task {task.id} stopped: Essential container in task exited "
                                      f"({name} exit code {crash.get('exit_code', 1)})", lines)
            continue
        ip = lab.task_ip(task)
        healthy = True
        if tg is not None:
            state = lab.STATE.targets.get((tg.arn, ip))
            if state and state["state"] == "initial" and clock - state["since"] >= t["health_s"]:
                if lab.fault_for(task_def, {"unhealthy"}):
                    lab.STATE.targets[(tg.arn, ip)] = lab.failed_check(tg)
                    if task.lab_unhealthy_since is None:
                        task.lab_unhealthy_since = clock
                        bad = lab.STATE.targets[(tg.arn, ip)]
                        ts.lab_failure = ("unhealthy", f"target {ip}:{port or tg.port} in target group {tg.name} is "
                                          f"unhealthy: {bad['reason']} ({bad['description']})", [])
                else:
                    lab.STATE.targets[(tg.arn, ip)] = {"state": "healthy"}
            healthy = lab.STATE.targets.get((tg.arn, ip), {}).get("state") == "healthy"
        if task.lab_unhealthy_since and clock - task.lab_unhealthy_since >= t["unhealthy_kill_s"]:
            lab.stop_task(service, dep, task, f"Task failed ELB health checks in (target-group {tg.arn})",
                          "ServiceSchedulerInitiated", failed=True)
            continue
        if healthy:
            if task.lab_healthy_since is None:
                task.lab_healthy_since = clock
            task.health_status = "HEALTHY"
            for c in task.containers:
                c["healthStatus"] = "HEALTHY"
    ts.lab_failed = dep["failedTasks"]
    live = [x for x in tasks if x.last_status != "STOPPED"]
    if ts.status != "DRAINING":
        ts.computed_desired_count = math.ceil(service.desired_count * float(ts.scale.get("value", 100)) / 100)
        for _ in range(ts.computed_desired_count - len(live)):
            start = lab.start_task(backend, service, dep)
            if start is not None:
                live.append(start)
    else:
        ts.computed_desired_count = 0
        for task in live:
            lab.stop_task(service, dep, task, f"Scaling activity initiated by (deployment {ts.id})")
    ts.running_count = sum(1 for x in live if x.last_status == "RUNNING")
    ts.pending_count = sum(1 for x in live if x.last_status != "RUNNING")
    healthy_n = sum(1 for x in live if x.last_status == "RUNNING" and (tg is None or x.lab_healthy_since is not None))
    stable = ts.status != "DRAINING" and healthy_n >= ts.computed_desired_count
    if stable != (ts.stabilityStatus == "STEADY_STATE"):
        ts.stabilityStatus = "STEADY_STATE" if stable else "STABILIZING"
        ts.stabilityStatusAt = lab.now()
    return healthy_n


def tick_service(backend, service, _orig=None):
    if not is_codedeploy(service):
        return _orig(backend, service)
    clock = time.time()
    for ts in list(service.task_sets):
        advance(backend, service, ts, clock)
    # Forget drained targets; a draining task set whose tasks and targets are gone is deleted.
    groups = {tg.arn: tg for tg, _ in lab.target_groups_of(service)}
    for key, state in list(lab.STATE.targets.items()):
        if key[0] in groups and state["state"] == "draining" and clock >= state.get("until", 0):
            del lab.STATE.targets[key]
            groups[key[0]].targets.pop(key[1], None)
    for ts in list(service.task_sets):
        if ts.status == "DRAINING" and not [x for x in tasks_of(backend, service, ts.id) if x.last_status != "STOPPED"]:
            if not any(k[0] == ts.lab_tg and s["state"] == "draining" for k, s in lab.STATE.targets.items()):
                service.task_sets.remove(ts)
                lab.record("codedeploy_task_set_deleted", service=service.name, task_set=ts.id)
    service.running_count = sum(ts.running_count for ts in service.task_sets)
    service.pending_count = sum(ts.pending_count for ts in service.task_sets)
    for d in sorted(DEPLOYMENTS.values(), key=lambda d: d["created"]):
        if d["arn"] == service.arn and d["status"] not in FINAL:
            try:
                step(backend, service, d, clock)
            except CDError as err:
                fail(service, d, current(d) or "Install", err.code, str(err), str(err), [], clock)


# --------------------------------------------------------------------------- the lifecycle


def event(d, name):
    return next(e for e in d["events"] if e["lifecycleEventName"] == name)


def current(d):
    return next((e["lifecycleEventName"] for e in d["events"] if e["status"] == "InProgress"), None)


def begin(d, name, clock):
    e = event(d, name)
    e.update(status="InProgress", startTime=clock)
    d["since"] = clock
    lab.record("codedeploy_event", deployment=d["id"], event=name, status="InProgress")


def finish(d, name, status, clock, diagnostics=None):
    e = event(d, name)
    if e.get("startTime") is None:
        e["startTime"] = clock
    e.update(status=status, endTime=clock)
    if diagnostics:
        e["diagnostics"] = diagnostics
    elif status == "Succeeded":
        e["diagnostics"] = {"errorCode": "Success", "message": "Succeeded", "logTail": ""}
    lab.record("codedeploy_event", deployment=d["id"], event=name, status=status)


def go_next(d, name, clock):
    """Finish `name` and begin the event after it (or the end of the lifecycle)."""
    finish(d, name, "Succeeded", clock)
    i = EVENTS.index(name) + 1
    if name == "AfterAllowTestTraffic" and d["ready_wait"] and not d["rollback_of"]:
        d["status"] = "Ready"
        d["ready_since"] = clock
        lab.record("codedeploy_ready", deployment=d["id"])
        return
    if i < len(EVENTS):
        if EVENTS[i] == "AllowTestTraffic" and not d["test_listeners"]:
            finish(d, "AllowTestTraffic", "Skipped", clock, {"errorCode": "Success", "message": "Skipped: the deployment group has no test traffic route", "logTail": ""})
            i += 1
        begin(d, EVENTS[i], clock)
    else:
        d["phase"] = "termination"
        d["since"] = clock
        d["term_until"] = clock + (0 if d["rollback_of"] else minutes(d["term_wait"]))
        if d["term_wait"] and not d["rollback_of"]:
            d["instanceTerminationWaitTimeStarted"] = True


def weights(service, d, listeners, to_ts):
    """Point the listeners at to_ts's group with weight w (the other group of the pair gets 100 - w)."""
    for listener, w in listeners:
        strategies.set_weights(service, listener, [(to_ts.lab_tg, w), (d["other_tg"](to_ts.lab_tg), 100 - w)])


def step(backend, service, d, clock):
    s = timing("stage_s", 0.2)
    if d["status"] == "Created":
        if clock - d["created"] >= s:
            d["status"] = "InProgress"
            d["started"] = clock
            begin(d, "BeforeInstall", clock)
        return
    if d["status"] == "Ready":
        if d["ready_wait_min"] is not None and clock - d["ready_since"] >= minutes(d["ready_wait_min"]):
            stop(service, d, "TIMEOUT", "The deployment timed out waiting for a ContinueDeployment (READY_WAIT) "
                                        f"after {d['ready_wait_min']} minutes.", d["auto_stop_rollback"], clock)
        return
    blue, green = task_set(service, d["blue"]), task_set(service, d["green"]) if d["green"] else None
    if d.get("phase") == "termination":
        if clock >= d["term_until"] or d.get("term_continue"):
            if blue is not None and blue.status != "DRAINING":
                blue.status = "DRAINING"
                blue.updatedAt = lab.now()
                lab.record("codedeploy_draining", deployment=d["id"], task_set=blue.id)
            if blue is None:
                succeed(d, clock)
        return
    name = current(d)
    if name is None:
        return
    age = clock - d["since"]
    if name in HOOKABLE:
        if age >= s:
            go_next(d, name, clock)
        return
    if name == "Install":
        if green is None:
            if d["rollback_of"]:
                raise CDError("ECS_UPDATE_ERROR", "The original task set no longer exists.")
            try:
                task_def = backend.describe_task_definition(d["task_definition"])
            except Exception:
                raise CDError("ECS_UPDATE_ERROR", "The ECS service cannot be updated due to an unexpected error: "
                                                  f"Unable to describe task definition {d['task_definition']}.")
            names = [c.get("name") for c in task_def.container_definitions]
            if d["container_name"] not in names:
                raise CDError("ECS_UPDATE_ERROR", "The ECS service cannot be updated due to an unexpected error: "
                                                  f"The container {d['container_name']} does not exist in the task definition.")
            green = new_task_set(service, task_def.arn, d["other_tg"](blue.lab_tg), d["container_name"],
                                 d["container_port"], started_by="CodeDeploy")
            d["green"] = green.id
        green.status = "ACTIVE" if green.status == "DRAINING" else green.status
        if failing(d, green, clock, "exit"):
            return
        if green.running_count >= green.computed_desired_count and registered(backend, service, green) and age >= s:
            go_next(d, name, clock)
        return
    if name == "AllowTestTraffic":
        if not d.get("test_set"):
            weights(service, d, [(l, 100) for l in d["test_listeners"]], green)
            d["test_set"] = True
        if failing(d, green, clock, "any"):
            return
        if healthy(backend, service, green) and age >= s:
            go_next(d, name, clock)
        return
    if name == "AllowTraffic":
        if failing(d, green, clock, "any") or not healthy(backend, service, green):
            return
        kind, pct, interval = CONFIGS[d["config"]]
        done = d.setdefault("shifted", 0)
        if kind == "AllAtOnce" or d["rollback_of"]:
            target = 100
        elif kind == "TimeBasedCanary":
            target = pct if done == 0 else (100 if clock - d["shift_at"] >= minutes(interval) else done)
        else:
            target = pct if done == 0 else (min(100, done + pct) if clock - d["shift_at"] >= minutes(interval) else done)
        if target != done:
            d["shifted"], d["shift_at"] = target, clock
            weights(service, d, [(l, target) for l in d["prod_listeners"]], green)
            green.lab_weight = target
            if blue is not None:
                blue.lab_weight = 100 - target
            lab.record("codedeploy_traffic", deployment=d["id"], weight=target)
        if target == 100:
            if green.status != "PRIMARY":
                green.status, green.updatedAt = "PRIMARY", lab.now()
                if blue is not None:
                    blue.status, blue.updatedAt = "ACTIVE", lab.now()
                service.task_definition = green.task_definition
                service.load_balancers = [dict(lb) for lb in green.load_balancers]
                lab.add_event(service, f"(service {service.name}) updated computedDesiredCount for taskSet "
                                       f"{green.id} to {green.computed_desired_count}.")
            if age >= s:
                go_next(d, name, clock)


def registered(backend, service, ts):
    """Every running task of the task set is registered and its first health check is done (healthy or not):
    Install ends there; a target that is unhealthy fails the test traffic (or production traffic) event."""
    tg = strategies.target_group(service, ts.lab_tg)
    if tg is None:
        return True
    running = [x for x in tasks_of(backend, service, ts.id) if x.last_status == "RUNNING"]
    return all(lab.STATE.targets.get((tg.arn, lab.task_ip(x)), {}).get("state") not in (None, "initial") for x in running)


def healthy(backend, service, ts):
    if ts is None:
        return False
    return advance_count(backend, service, ts) >= ts.computed_desired_count


def advance_count(backend, service, ts):
    return sum(1 for x in tasks_of(backend, service, ts.id) if x.last_status == "RUNNING" and x.lab_healthy_since)


def failing(d, ts, clock, which):
    """A replacement task set that crashes (2 failed tasks, or all of them when fewer) or whose targets turn
    unhealthy fails the current event. CodeDeploy itself waits up to 60 minutes for healthy targets; the lab
    waits UNHEALTHY_FAIL_S (10 s) for them, and fails at the 2nd crashed task."""
    if ts is None or d["rollback_of"]:
        return False
    f = ts.lab_failure
    if f is None:
        return False
    threshold = max(1, min(2, ts.computed_desired_count))
    if f[0] == "unhealthy" and which == "any":
        # CodeDeploy waits up to 60 minutes for healthy targets; the lab waits UNHEALTHY_FAIL_S.
        if clock - d.setdefault("lab_unhealthy_since", clock) < UNHEALTHY_FAIL_S:
            return False
        fail(lab_service(d), d, current(d), "TIMEOUT", MSG_UNHEALTHY, f[1], f[2], clock)
        return True
    if f[0] in ("exit", "cannot_pull") and ts.lab_failed >= threshold:
        msg = (f"The ECS service cannot reach a steady state: tasks of the replacement task set {ts.id} keep stopping "
               f"({'CannotPullContainerError' if f[0] == 'cannot_pull' else 'Essential container in task exited'}).")
        fail(lab_service(d), d, current(d), "ECS_UPDATE_ERROR", msg, f[1], f[2], clock)
        return True
    return False


def lab_service(d):
    return ecs_backend(d["account"], d["region"])._get_service(d["cluster"], d["service"])


def fail(service, d, at, code, message, detail, log_lines, clock):
    finish(d, at, "Failed", clock, {"errorCode": "UnknownError", "message": detail,
                                    "logTail": "\n".join(log_lines)[-2048:]})
    for e in d["events"]:
        if e["status"] in ("Pending", "InProgress"):
            e["status"] = "Skipped"
    d.update(status="Failed", completed=clock, error={"code": code, "message": message})
    d["messages"].append(message)
    lab.record("codedeploy_failed", deployment=d["id"], event=at, code=code, message=message)
    ar = d["auto_rollback"]
    if ar.get("enabled") and "DEPLOYMENT_FAILURE" in (ar.get("events") or []):
        start_rollback(service, d, clock)


def stop(service, d, code, message, rollback, clock):
    at = current(d)
    if at:
        finish(d, at, "Failed", clock, {"errorCode": "UnknownError", "message": message, "logTail": ""})
    for e in d["events"]:
        if e["status"] in ("Pending", "InProgress"):
            e["status"] = "Skipped"
    d.update(status="Stopped", completed=clock, error={"code": code, "message": message})
    d["messages"].append(message)
    lab.record("codedeploy_stopped", deployment=d["id"], rollback=bool(rollback))
    if rollback:
        return start_rollback(service, d, clock)
    return None


def start_rollback(service, d, clock):
    """A rollback deployment: traffic back to the original task set, the replacement deleted."""
    blue = task_set(service, d["blue"])
    if blue is None:
        return None
    r = record(d["account"], d["region"], d["app"], d["group"], service, d["group_obj"],
               revision=appspec_revision(blue.task_definition, d["container_name"], d["container_port"]),
               task_definition=blue.task_definition, config=d["config"], creator="codeDeployRollback",
               auto_rollback={"enabled": False}, clock=clock)
    r["rollback_of"] = d["id"]
    # In the rollback the replacement is the one traffic leaves (Blue) and the original the one it returns to.
    r["blue"], r["green"] = d["green"], d["blue"]
    r["rollbackInfo"] = {"rollbackTriggeringDeploymentId": d["id"],
                         "rollbackMessage": f"Rollback of deployment {d['id']}: traffic returns to the original task set "
                                            f"{blue.id}."}
    d["rollbackInfo"] = {"rollbackDeploymentId": r["id"],
                         "rollbackMessage": f"Deployment {d['id']} was rolled back by deployment {r['id']}."}
    r["description"] = f"Rollback of deployment {d['id']}"
    lab.record("codedeploy_rollback", deployment=d["id"], rollback=r["id"])
    return r


def succeed(d, clock):
    d.update(status="Succeeded", completed=clock, phase="done")
    d["instanceTerminationWaitTimeStarted"] = bool(d["term_wait"]) and not d["rollback_of"]
    lab.record("codedeploy_succeeded", deployment=d["id"])


# --------------------------------------------------------------------------- the API


def appspec_revision(task_definition, container_name, container_port):
    content = json.dumps({"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {
        "TaskDefinition": task_definition,
        "LoadBalancerInfo": {"ContainerName": container_name, "ContainerPort": container_port}}}}]})
    return {"revisionType": "AppSpecContent",
            "appSpecContent": {"content": content, "sha256": hashlib.sha256(content.encode()).hexdigest()}}


def parse_appspec(revision):
    if not revision:
        raise CDError("RevisionRequiredException", "Revision must be specified.")
    if revision.get("revisionType") != "AppSpecContent" or not isinstance(revision.get("appSpecContent"), dict):
        raise CDError("InvalidRevisionException", "The lab models AppSpecContent revisions only for ECS deployments "
                                                  f"(revisionType {revision.get('revisionType')!r}).")
    spec = revision["appSpecContent"]
    content = spec.get("content") or ""
    if spec.get("sha256") and spec["sha256"].lower() != hashlib.sha256(content.encode()).hexdigest():
        raise CDError("InvalidRevisionException", "The sha256 of the AppSpec content does not match the content.")
    try:
        doc = yaml.safe_load(content)
    except yaml.YAMLError as err:
        raise CDError("InvalidRevisionException", f"The AppSpec file could not be parsed: {str(err).splitlines()[0]}")
    if not isinstance(doc, dict):
        raise CDError("InvalidRevisionException", "The AppSpec file is not a YAML or JSON object.")
    resources = doc.get("Resources")
    if not isinstance(resources, list) or len(resources) != 1 or not isinstance(resources[0], dict) \
            or len(resources[0]) != 1:
        raise CDError("InvalidRevisionException", "The AppSpec file must have exactly one resource under Resources.")
    target = list(resources[0].values())[0]
    if not isinstance(target, dict) or target.get("Type") != "AWS::ECS::Service":
        raise CDError("InvalidRevisionException", "The AppSpec resource Type must be AWS::ECS::Service.")
    props = target.get("Properties") or {}
    td = props.get("TaskDefinition")
    if not isinstance(td, str) or not td:
        raise CDError("InvalidRevisionException", "The AppSpec file is missing Properties.TaskDefinition.")
    lbi = props.get("LoadBalancerInfo") or {}
    name, port = lbi.get("ContainerName"), lbi.get("ContainerPort")
    if not isinstance(name, str) or not name or not isinstance(port, int) or isinstance(port, bool):
        raise CDError("InvalidRevisionException",
                      "The AppSpec file must give LoadBalancerInfo.ContainerName (string) and ContainerPort (integer).")
    hooks = doc.get("Hooks") or []
    for hook in hooks if isinstance(hooks, list) else [None]:
        if not isinstance(hook, dict) or any(k not in HOOKABLE for k in hook):
            raise CDError("InvalidRevisionException", f"Invalid AppSpec hook {hook!r}: hooks may be {', '.join(HOOKABLE)}.")
    return td, name, port


def tg_arn_by_name(service, name):
    for tg in strategies.elb(service).target_groups.values():
        if tg.name == name:
            return tg.arn
    return None


def record(account, region, app, group, service, dg, revision, task_definition, config, creator, auto_rollback, clock,
           container=None):
    pair = ((dg.load_balancer_info or {}).get("targetGroupPairInfoList") or [{}])[0]
    tgs = [tg_arn_by_name(service, g.get("name")) for g in pair.get("targetGroups") or []]
    bg = dg.blue_green_deployment_configuration or {}
    ready = bg.get("deploymentReadyOption") or {}
    term = (bg.get("terminateBlueInstancesOnDeploymentSuccess") or {})
    td, cname, cport = container or parse_appspec(revision)
    primary = next((ts for ts in service.task_sets if ts.status == "PRIMARY"), None)
    d = {
        "id": new_id(), "account": account, "region": region, "app": app, "group": group, "group_obj": dg,
        "cluster": service.cluster_name, "service": service.name, "arn": service.arn, "status": "Created",
        "creator": creator, "created": clock, "started": None, "completed": None, "revision": revision,
        "task_definition": task_definition or td, "container_name": cname, "container_port": cport,
        "config": config, "auto_rollback": auto_rollback or {}, "events": [
            {"lifecycleEventName": n, "status": "Pending"} for n in EVENTS],
        "blue": primary.id if primary else None, "green": None, "rollback_of": None, "rollbackInfo": None,
        "error": None, "messages": [], "since": clock,
        "prod_listeners": list((pair.get("prodTrafficRoute") or {}).get("listenerArns") or []),
        "test_listeners": list((pair.get("testTrafficRoute") or {}).get("listenerArns") or []),
        "other_tg": lambda arn, tgs=tgs: next((t for t in tgs if t != arn), arn),
        "ready_wait": ready.get("actionOnTimeout") == "STOP_DEPLOYMENT",
        "ready_wait_min": ready.get("waitTimeInMinutes"),
        "auto_stop_rollback": False,
        "term_wait": term.get("terminationWaitTimeInMinutes") or 0,
        "instanceTerminationWaitTimeStarted": False, "description": None,
    }
    DEPLOYMENTS[d["id"]] = d
    lab.record("codedeploy_created", deployment=d["id"], service=service.name, task_definition=d["task_definition"],
               creator=creator)
    return d


def create(account, region, doc):
    app, group = doc.get("applicationName"), doc.get("deploymentGroupName")
    if not app:
        raise CDError("ApplicationNameRequiredException", "The minimum number of required application names was not specified.")
    backend = cd_backend(account, region)
    if app not in backend.applications:
        raise CDError("ApplicationDoesNotExistException", f"No application found for name: {app}")
    if not group:
        raise CDError("DeploymentGroupNameRequiredException", "The deployment group name was not specified.")
    dg = backend.deployment_groups.get(app, {}).get(group)
    if dg is None:
        raise CDError("DeploymentGroupDoesNotExistException", f"No Deployment Group found for name: {group}")
    config = doc.get("deploymentConfigName") or str(dg.deployment_config_name or "")
    if not doc.get("deploymentConfigName") and config not in CONFIGS:
        config = "CodeDeployDefault.ECSAllAtOnce"  # the ECS default
    if config in OTHER_PLATFORM_CONFIGS:
        raise CDError("InvalidDeploymentConfigNameException",
                      f"The deployment configuration {config} does not support the ECS compute platform.")
    if config not in CONFIGS:
        raise CDError("DeploymentConfigDoesNotExistException", f"No deployment configuration found for name: {config}")
    ar = doc.get("autoRollbackConfiguration")
    if ar is not None:
        bad = [e for e in ar.get("events") or [] if e not in ("DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM",
                                                             "DEPLOYMENT_STOP_ON_REQUEST")]
        if bad or (ar.get("enabled") and not ar.get("events")):
            raise CDError("InvalidAutoRollbackConfigException", f"Invalid auto rollback configuration {ar}.")
    services = dg.ecs_services or []
    if not services:
        raise CDError("InvalidECSServiceException", "The deployment group does not name an ECS service.")
    ecs = ecs_backend(account, region)
    try:
        service = ecs._get_service(services[0].get("clusterName"), services[0].get("serviceName"))
    except Exception:
        raise CDError("InvalidECSServiceException", f"The ECS service {services[0]} does not exist.")
    if not is_codedeploy(service):
        raise CDError("InvalidECSServiceException", f"Deployment group's ECS service {service.name} must use the "
                                                    "CODE_DEPLOY deployment controller.")
    pair = ((dg.load_balancer_info or {}).get("targetGroupPairInfoList") or [{}])[0]
    if len(pair.get("targetGroups") or []) != 2 or not (pair.get("prodTrafficRoute") or {}).get("listenerArns"):
        raise CDError("InvalidLoadBalancerInfoException", "The deployment group needs a target group pair "
                                                          "(two target groups and a production listener).")
    td, _, _ = parse_appspec(doc.get("revision"))
    active = next((d for d in DEPLOYMENTS.values() if d["arn"] == service.arn and d["status"] not in FINAL), None)
    if active:
        raise CDError("DeploymentLimitExceededException",
                      f"The Deployment Group '{group}' already has an active Deployment '{active['id']}'")
    # Task sets that carry no production traffic (left by a failed or stopped deployment) are deleted first.
    for ts in service.task_sets:
        if ts.status != "PRIMARY" and ts.status != "DRAINING":
            ts.status = "DRAINING"
    d = record(account, region, app, group, service, dg, doc["revision"], td, config, "user",
               ar if ar is not None else dict(dg.auto_rollback_configuration or {}), time.time())
    d["description"] = doc.get("description")
    d["auto_stop_rollback"] = "DEPLOYMENT_STOP_ON_REQUEST" in (d["auto_rollback"].get("events") or []) and \
        bool(d["auto_rollback"].get("enabled"))
    return {"deploymentId": d["id"]}


def info(d):
    dg = d["group_obj"]
    overview = {k: 0 for k in ("Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Ready")}
    overview[target_status(d) if target_status(d) in overview else "Pending"] += 1
    out = {
        "applicationName": d["app"], "deploymentGroupName": d["group"], "deploymentConfigName": d["config"],
        "deploymentId": d["id"], "revision": d["revision"], "status": d["status"], "createTime": d["created"],
        "deploymentOverview": overview, "creator": d["creator"], "computePlatform": "ECS",
        "autoRollbackConfiguration": d["auto_rollback"] or {"enabled": False},
        "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        "blueGreenDeploymentConfiguration": dg.blue_green_deployment_configuration or {},
        "loadBalancerInfo": dg.load_balancer_info or {},
        "instanceTerminationWaitTimeStarted": d["instanceTerminationWaitTimeStarted"],
        "deploymentStatusMessages": list(d["messages"]),
        "ignoreApplicationStopFailures": False, "updateOutdatedInstancesOnly": False,
    }
    for key, value in (("startTime", d["started"]), ("completeTime", d["completed"]),
                       ("errorInformation", d["error"]), ("rollbackInfo", d["rollbackInfo"]),
                       ("description", d["description"])):
        if value is not None:
            out[key] = value
    return out


def target_status(d):
    if d["status"] in ("Succeeded", "Failed", "Ready"):
        return d["status"]
    if d["status"] == "Stopped":
        return "Failed"
    return "Pending" if d["status"] == "Created" else "InProgress"


def target(d):
    service = lab_service(d)
    sets = []
    for ts_id, label in ((d["blue"], "Blue"), (d["green"], "Green")):
        ts = task_set(service, ts_id) if ts_id else None
        if ts is None:
            continue
        tg = strategies.target_group(service, ts.lab_tg)
        sets.append({"identifer": ts.id, "desiredCount": ts.computed_desired_count, "pendingCount": ts.pending_count,
                     "runningCount": ts.running_count, "status": ts.status, "trafficWeight": float(ts.lab_weight),
                     "targetGroup": {"name": tg.name if tg else ""}, "taskSetLabel": label})
    events = []
    for e in d["events"]:
        out = {"lifecycleEventName": e["lifecycleEventName"], "status": e["status"]}
        for k in ("startTime", "endTime", "diagnostics"):
            if e.get(k) is not None:
                out[k] = e[k]
        events.append(out)
    return {"deploymentTargetType": "ECSTarget", "ecsTarget": {
        "deploymentId": d["id"], "targetId": f"{d['cluster']}:{d['service']}", "targetArn": d["arn"],
        "lastUpdatedAt": max([d["created"]] + [e.get("endTime") or e.get("startTime") or 0 for e in d["events"]]),
        "lifecycleEvents": events, "status": target_status(d), "taskSetsInfo": sets}}


ID_RE = re.compile(r"^d-[A-Z0-9]{9}$")


def find(doc, key="deploymentId"):
    dep_id = doc.get(key)
    if not dep_id:
        raise CDError("DeploymentIdRequiredException", "At least one deployment ID must be specified.")
    if not ID_RE.match(dep_id):
        raise CDError("InvalidDeploymentIdException", f"Specified DeploymentId is not in the valid format: {dep_id}")
    d = DEPLOYMENTS.get(dep_id)
    if d is None:
        raise CDError("DeploymentDoesNotExistException", f"The deployment {dep_id} could not be found.")
    return d


def handle(account, region, action, doc):
    if action == "CreateDeployment":
        return create(account, region, doc)
    if action == "GetDeployment":
        return {"deploymentInfo": info(find(doc))}
    if action == "BatchGetDeployments":
        return {"deploymentsInfo": [info(DEPLOYMENTS[i]) for i in doc.get("deploymentIds") or [] if i in DEPLOYMENTS]}
    if action == "ListDeployments":
        backend = cd_backend(account, region)
        app, group = doc.get("applicationName"), doc.get("deploymentGroupName")
        if group and not app:
            raise CDError("ApplicationNameRequiredException", "An application name must be given with a deployment group.")
        if app and app not in backend.applications:
            raise CDError("ApplicationDoesNotExistException", f"No application found for name: {app}")
        if app and group and group not in backend.deployment_groups.get(app, {}):
            raise CDError("DeploymentGroupDoesNotExistException", f"No Deployment Group found for name: {group}")
        statuses = set(doc.get("includeOnlyStatuses") or [])
        rng = doc.get("createTimeRange") or {}
        found = [d for d in DEPLOYMENTS.values() if d["account"] == account and d["region"] == region
                 and (not app or d["app"] == app) and (not group or d["group"] == group)
                 and (not statuses or d["status"] in statuses)
                 and (rng.get("start") is None or d["created"] >= float(rng["start"]))
                 and (rng.get("end") is None or d["created"] <= float(rng["end"]))]
        found.sort(key=lambda d: d["created"], reverse=True)
        return {"deployments": [d["id"] for d in found]}
    if action in ("GetDeploymentTarget", "ListDeploymentTargets", "BatchGetDeploymentTargets"):
        d = find(doc)
        if d["status"] == "Created":
            raise CDError("DeploymentNotStartedException", f"The deployment {d['id']} has not started.")
        tid = f"{d['cluster']}:{d['service']}"
        if action == "ListDeploymentTargets":
            return {"targetIds": [tid]}
        wanted = [doc.get("targetId")] if action == "GetDeploymentTarget" else (doc.get("targetIds") or [])
        if not all(wanted):
            raise CDError("DeploymentTargetIdRequiredException", "A deployment target ID was not provided.")
        for w in wanted:
            if w != tid:
                raise CDError("DeploymentTargetDoesNotExistException", f"The deployment target {w} does not exist.")
        if action == "GetDeploymentTarget":
            return {"deploymentTarget": target(d)}
        return {"deploymentTargets": [target(d) for _ in wanted]}
    if action == "StopDeployment":
        d = find(doc)
        if d["status"] in FINAL:
            raise CDError("DeploymentAlreadyCompletedException", f"The deployment {d['id']} is already completed.")
        rollback = doc.get("autoRollbackEnabled")
        if rollback is None:
            rollback = d["auto_stop_rollback"]
        r = stop(lab_service(d), d, "MANUAL_STOP", MSG_STOPPED, bool(rollback) and not d["rollback_of"], time.time())
        if r is not None:
            return {"status": "Pending", "statusMessage": f"Deployment {d['id']} stopped; rollback deployment {r['id']} "
                                                          "is returning traffic to the original task set."}
        return {"status": "Succeeded", "statusMessage": f"Deployment {d['id']} stopped."}
    if action == "ContinueDeployment":
        d = find(doc)
        if d["status"] in FINAL:
            raise CDError("DeploymentAlreadyCompletedException", f"The deployment {d['id']} is already completed.")
        kind = doc.get("deploymentWaitType") or "READY_WAIT"
        if kind not in ("READY_WAIT", "TERMINATION_WAIT"):
            raise CDError("InvalidDeploymentWaitTypeException", f"Invalid deployment wait type {kind}.")
        clock = time.time()
        if kind == "READY_WAIT":
            if d["status"] != "Ready":
                raise CDError("DeploymentIsNotInReadyStateException", f"The deployment {d['id']} is not in the Ready state.")
            d["status"] = "InProgress"
            begin(d, "BeforeAllowTraffic", clock)
        else:
            if d.get("phase") != "termination":
                raise CDError("InvalidDeploymentStatusException",
                              f"The deployment {d['id']} is not waiting to terminate the original task set.")
            d["term_continue"] = True
        lab.record("codedeploy_continue", deployment=d["id"], wait_type=kind)
        return {}
    if action == "GetDeploymentConfig":
        name = doc.get("deploymentConfigName")
        if name not in CONFIGS:
            raise CDError("DeploymentConfigDoesNotExistException", f"No deployment configuration found for name: {name}")
        kind, pct, interval = CONFIGS[name]
        routing = {"type": kind}
        if kind == "TimeBasedCanary":
            routing["timeBasedCanary"] = {"canaryPercentage": pct, "canaryInterval": interval}
        elif kind == "TimeBasedLinear":
            routing["timeBasedLinear"] = {"linearPercentage": pct, "linearInterval": interval}
        return {"deploymentConfigInfo": {"deploymentConfigId": hashlib.md5(name.encode()).hexdigest(),
                                         "deploymentConfigName": name, "computePlatform": "ECS",
                                         "trafficRoutingConfig": routing}}
    return None


def region_of(environ):
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" in auth:
        parts = auth.split("Credential=")[1].split(",")[0].split("/")
        if len(parts) >= 3:
            return parts[2]
    return "us-east-1"


def answer(app, environ, service, action, doc, plan, _orig=None):
    if service == "codedeploy" and action in HANDLED:
        with lab.LOCK:
            try:
                from moto.core import DEFAULT_ACCOUNT_ID
                return lab.json_answer(handle(DEFAULT_ACCOUNT_ID, region_of(environ), action, doc))
            except CDError as err:
                return lab.json_answer({"__type": err.code, "message": str(err)}, "400 Bad Request")
    return _orig(app, environ, service, action, doc, plan)


# --------------------------------------------------------------------------- ECS: UpdateService refused


def _refuse_task_definition(orig):
    def response(self):
        td = self._get_param("taskDefinition")
        if td:
            try:
                service = self.ecs_backend._get_service(self._get_param("cluster", "default"),
                                                        self._get_param("service").split("/")[-1])
            except Exception:
                service = None
            if service is not None and is_codedeploy(service):
                arn = td if td.startswith("arn:") else self.ecs_backend.describe_task_definition(td).arn
                if arn != service.task_definition:
                    raise ECSException("InvalidParameterException",
                                       "Unable to update task definition on services with a CODE_DEPLOY deployment "
                                       "controller. Use AWS CodeDeploy to trigger a new deployment.")
        return orig(self)
    return response


def lab_api(environ, start_response, path, body, _orig=None):
    if path == "/_lab/codedeploy":
        with lab.LOCK:
            out = [{**{k: v for k, v in d.items() if k not in ("group_obj", "other_tg")}} for d in DEPLOYMENTS.values()]
        return lab.json_response(start_response, out)
    if path == "/_lab/reset":
        with lab.LOCK:
            DEPLOYMENTS.clear()
    return _orig(environ, start_response, path, body)


def install(module):
    """Called once by ecs_lab.py with itself, after strategies.install."""
    global lab
    lab = module
    for name, fn in (("answer", answer), ("tick_service", tick_service), ("target_groups_of", target_groups_of),
                     ("lab_api", lab_api)):
        lab.wrap(name, fn)
    orig_create = ecs_models.EC2ContainerServiceBackend.create_service
    ecs_models.EC2ContainerServiceBackend.create_service = (
        lambda self, *a, **kw: create_service(self, *a, _orig=orig_create, **kw))
    EC2ContainerServiceResponse.update_service = _refuse_task_definition(EC2ContainerServiceResponse.update_service)
