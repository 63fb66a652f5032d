"""The deployer lab: moto server, extended in-process so that ECS rolls out as ECS does.

Stock moto (see shared/reference/moto.md) never starts a service's tasks, never creates a
deployment on UpdateService, never registers task IPs in target groups and never fails. This
launcher patches moto's ECS backend and runs one "controller" thread that plays the part of
ECS's service scheduler and of the ALB's health checker, so DescribeServices, ListTasks,
DescribeTasks, DescribeTargetHealth and CloudWatch Logs all tell the same story.

A WSGI middleware in front of moto adds the lab's own control API under /_lab/ (lab/README.md has
every field, and what AWS documents about each behaviour):
  POST /_lab/reset              moto reset + lab state reset (faults too)
  POST /_lab/task-fault         {"image": "exact ref (or untagged repo)", "kind": "exit|cannot_pull|pending|unhealthy|alarm|one_zone",
                                 "exit_code": 3, "log_lines": [...]}
  POST /_lab/api-fault          {"action": "DescribeServices", "count": 5, "match": "name" | ["names"],
                                 "kind": "throttle|error5xx|delay|hang|stale|apply_then_error",
                                 "delay_ms": 300, "jitter_ms": 100, "after": false, "apply": false, "drop": false}
                                match is exact: a cluster/service/family/task-definition/repository name or ARN
  GET  /_lab/api-faults         [{"id", "action", "kind", "remaining", "fired", ...}]  (DELETE disarms)
  POST /_lab/release            {"id": N} or {}: requests held by `hang` answer now
  POST /_lab/registry           {"token_password": "wrong", "down": ["repo"], "cut": {"repo": bytes},
                                 "findings": {"repo:tag": [{"name", "severity"}]}, "scan": {"repo:tag": "in_progress:2|unsupported|enhanced|not_found|..."}}
  POST /_lab/timing             {"task_start_s": .., "health_s": .., "drain_s": .., "exit_after_s": ..}
  GET  /_lab/calls              {"ecs:DescribeServices": 12, ...}   (DELETE clears, the call log too)
  GET  /_lab/call-log           [[epoch_seconds, "ecs:DescribeServices"], ...]
  GET  /_lab/reads?cluster=NAME  [{"t", "action", "services": [..], "tasks": n}]: ECS reads of one cluster
  GET  /_lab/writes             [{"action": "ecs:UpdateService", "cluster": .., "service": .., "family": .., "repositoryName": ..}]
  GET  /_lab/timeline           [{"t": epoch_seconds, "what": "...", ...}]
and counts every AWS API call by action, so tests can assert "no writes".
"""

import argparse
import io
import json
import math
import random
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import parse_qs

from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from moto.ecs import models as ecs_models
from moto.ecs.models import ecs_backends
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.elbv2 import models as elbv2_models
from moto.elbv2.models import elbv2_backends
from moto.logs.models import logs_backends
from moto.moto_api._internal.models import moto_api_backend
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

import ecr_registry
import faults
import strategies  # lab/strategies.py: BLUE_GREEN/LINEAR/CANARY and the service-deployment APIs
import codedeploy  # lab/codedeploy.py: CodeDeploy blue/green for CODE_DEPLOY services

LOCK = threading.RLock()


def now():
    return datetime.now(timezone.utc)


class LabState:
    def __init__(self):
        self.task_faults = []  # dicts: image, kind, exit_code, log_lines
        self.api_faults = []  # dicts: action, kind, count, delay_ms
        self.calls = {}
        self.call_log = []  # (epoch seconds, "ecs:DescribeServices") per call, for request rates
        self.reads = []  # ECS DescribeServices/ListTasks/DescribeTasks: who was asked about, for batching
        self.writes = []  # every non-read call: {"action": "ecs:UpdateService", "cluster": .., "service": ..}
        self.timeline = []
        self.timing = {
            "task_start_s": 0.6,  # PROVISIONING -> RUNNING
            "health_s": 0.6,  # target initial -> healthy/unhealthy
            "drain_s": 0.3,  # target draining -> gone
            "exit_after_s": 0.4,  # a crashing container runs this long
            "unhealthy_kill_s": 1.5,  # ECS stops a task this long after it turned unhealthy
            "alarm_after_s": 0.5,  # a deployment alarm fires this long after tasks are healthy
        }
        # target health, keyed by (target group arn, ip): dict(state, reason, description)
        self.targets = {}
        # per service arn: task definition of the last COMPLETED deployment (circuit-breaker rollback)
        self.last_completed = {}
        self.deployment_config = {}  # service arn -> deploymentConfiguration dict
        # service arn -> [service deployment records] for ListServiceDeployments / DescribeServiceRevisions,
        # which moto lacks; ECS keeps this history after DescribeServices forgets finished deployments.
        self.history = {}
        self.placements = {}  # service arn -> tasks placed so far (round-robin over subnets)


STATE = LabState()


def record(what, **kw):
    STATE.timeline.append({"t": time.time(), "what": what, **kw})


def image_matches(wanted, image):
    """A task fault's image names this container image: the same reference, or the same one pinned
    by digest (`REF@sha256:…`), or, for a fault image without a tag, any tag of that repository.
    Never a prefix: `app:crash-x3` does not match `app:crash-x3N` (tests-audit C1)."""
    image = image or ""
    if not wanted:
        return False
    if image == wanted or image.startswith(wanted + "@"):
        return True
    untagged = "@" not in wanted and ":" not in wanted.rsplit("/", 1)[-1]
    return untagged and image.startswith(wanted + ":")


def fault_for(task_definition, kinds):
    images = [c.get("image") or "" for c in task_definition.container_definitions]
    for fault in STATE.task_faults:
        if fault["kind"] in kinds and any(image_matches(fault["image"], img) for img in images):
            return fault
    return None


# --------------------------------------------------------------------------- moto patches


class LabTask(ecs_models.Task):
    """A service task whose life the controller drives (not moto's describe-count state machine)."""

    __module__ = "moto.ecs.lab"  # moto's model registry keys models by the module's second part
    last_status = None  # plain attribute, shadows moto's managed-state property

    def advance(self):
        pass


def add_event(service, message):
    service.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": now(), "message": message})
    del service.events[100:]


def new_deployment(service, task_definition_arn):
    dep_id = f"ecs-svc/{random.randint(10**15, 10**16 - 1)}"
    for d in service.deployments:
        if d["status"] == "PRIMARY":
            d["status"] = "ACTIVE"
            d["updatedAt"] = now()
    dep = {
        "id": dep_id,
        "status": "PRIMARY",
        "taskDefinition": task_definition_arn,
        "desiredCount": service.desired_count,
        "pendingCount": 0,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now(),
        "updatedAt": now(),
        "launchType": service.launch_type,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {dep_id} in progress.",
        "networkConfiguration": service.network_configuration or None,
    }
    service.deployments.insert(0, dep)
    history = STATE.history.setdefault(service.arn, [])
    for old in history:
        if old["status"] == "IN_PROGRESS":
            old.update(status="STOPPED", statusReason=f"superseded by {dep_id}", finishedAt=time.time())
    cluster_part = f"{service.cluster_name}/{service.name}"
    suffix = dep_id.split("/")[-1]
    history.append({
        "serviceDeploymentArn": f"arn:aws:ecs:{service.region_name}:{service._account_id}:service-deployment/{cluster_part}/{suffix}",
        "serviceArn": service.arn, "clusterArn": service.cluster_arn, "createdAt": time.time(), "startedAt": time.time(),
        "targetServiceRevisionArn": f"arn:aws:ecs:{service.region_name}:{service._account_id}:service-revision/{cluster_part}/{suffix}",
        "status": "IN_PROGRESS", "deploymentId": dep_id, "taskDefinition": task_definition_arn,
    })
    record("deployment_created", service=service.name, deployment=dep_id, task_definition=task_definition_arn)
    return dep


_orig_create_service = ecs_models.EC2ContainerServiceBackend.create_service
_orig_update_service = ecs_models.EC2ContainerServiceBackend.update_service
_orig_list_tasks = ecs_models.EC2ContainerServiceBackend.list_tasks
_orig_health_for = elbv2_models.FakeTargetGroup.health_for
_orig_create_service_response = EC2ContainerServiceResponse.create_service
_orig_update_service_response = EC2ContainerServiceResponse.update_service


def create_service(self, *args, **kwargs):
    service = _orig_create_service(self, *args, **kwargs)
    service.running_count = 0
    service.pending_count = 0
    service.deployments = []
    service.events = []
    if service.deployment_controller.get("type", "ECS") == "ECS" and service.task_definition:
        new_deployment(service, service.task_definition)
    return service


def update_service(self, props):
    service = self._get_service(props.get("cluster", "default"), props["service"].split("/")[-1])
    force = bool(props.pop("force_new_deployment", False))
    before = service.task_definition
    desired_before = service.desired_count
    result = _orig_update_service(self, props)
    if service.task_definition and not service.task_definition.startswith("arn:"):
        service.task_definition = self.describe_task_definition(service.task_definition).arn
    if service.deployment_controller.get("type", "ECS") != "ECS":
        return result
    if service.task_definition != before or force:
        new_deployment(service, service.task_definition)
    elif service.desired_count != desired_before:
        for d in service.deployments:
            if d["status"] == "PRIMARY":
                d["desiredCount"] = service.desired_count
    return result


def run_task(self, cluster_str, task_definition_str, count, overrides, started_by, tags, launch_type,
             networking_configuration=None, group=None, platform_version=None, capacity_provider_strategy=None):
    """A one-off task (RunTask) whose life the controller drives: it starts, runs, and exits."""
    cluster = self._get_cluster(cluster_str)
    task_def = self.describe_task_definition(task_definition_str)
    tasks = []
    for _ in range(count or 1):
        task = LabTask(cluster, task_def, None, None, self, group=group or f"family:{task_def.family}",
                       launch_type=launch_type or "FARGATE", overrides=overrides or {},
                       started_by=started_by or "", tags=tags or [],
                       networking_configuration=networking_configuration if task_def.network_mode == "awsvpc" else None,
                       platform_version=platform_version)
        set_zone(task)
        task.last_status = "PROVISIONING"
        task.desired_status = "RUNNING"
        task.created_at = now()
        task.stop_code = None
        task.health_status = "UNKNOWN"
        task.lab_started = time.time()
        task.lab_service = None
        task.lab_oneoff = True
        task.containers = [
            {"containerArn": f"{task.task_arn.replace(':task/', ':container/')}/{uuid.uuid4()}",
             "taskArn": task.task_arn, "name": c.get("name"), "image": c.get("image"),
             "lastStatus": "PENDING", "essential": c.get("essential", True)}
            for c in task_def.container_definitions
        ]
        self.tasks.setdefault(cluster.name, {})[task.task_arn] = task
        record("task_run", task=task.id, task_definition=task_def.arn, overrides=overrides or {})
        tasks.append(task)
    return tasks


def tick_oneoff(backend, task):
    t = STATE.timing
    age = time.time() - task.lab_started
    task_def = backend.describe_task_definition(task.task_definition_arn)
    if task.last_status == "PROVISIONING" and age >= t["task_start_s"] / 2:
        task.last_status = "PENDING"
    if task.last_status == "PENDING" and age >= t["task_start_s"]:
        task.last_status = "RUNNING"
        task.started_at = now()
        for c in task.containers:
            c["lastStatus"] = "RUNNING"
    if task.last_status == "RUNNING" and age >= t["task_start_s"] + t["exit_after_s"]:
        crash = fault_for(task_def, {"exit"})
        commands = {o.get("name"): o.get("command") for o in (task.overrides or {}).get("containerOverrides") or []}
        codes = {}
        for c in task.containers:
            name = c["name"]
            lines = []
            if commands.get(name):
                lines.append("running: " + " ".join(commands[name]))
            if crash and image_matches(crash["image"], c["image"]):
                lines += crash.get("log_lines") or [f"{name} exiting with {crash.get('exit_code', 1)}"]
                codes[name] = crash.get("exit_code", 1)
            else:
                lines.append(f"{name}: done")
                codes[name] = 0
            write_logs(task, task_def, name, lines)
        task.last_status = "STOPPED"
        task.desired_status = "STOPPED"
        task.stopped_at = now()
        task.stop_code = "EssentialContainerExited"
        task.stopped_reason = "Essential container in task exited"
        for c in task.containers:
            c["lastStatus"] = "STOPPED"
            c["exitCode"] = codes[c["name"]]
        record("task_run_stopped", task=task.id, exit_codes=codes)


def create_service_response(self):
    result = _orig_create_service_response(self)
    cfg = self._get_param("deploymentConfiguration")
    service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
    if cfg is not None:
        service.deployment_configuration = cfg
    grace = self._get_param("healthCheckGracePeriodSeconds")
    if grace is not None:
        service.health_check_grace_period_seconds = grace
    return result


def list_tasks(self, cluster_str=None, container_instance=None, family=None, started_by=None,
               service_name=None, desiredStatus=None):
    tasks = _orig_list_tasks(self, cluster_str, container_instance, family, started_by, None,
                             desiredStatus or "RUNNING")
    if service_name:
        name = service_name.split("/")[-1]
        tasks = [t for t in tasks if t.group == f"service:{name}"]
    return tasks


def health_for(self, target, ec2_backend):
    state = STATE.targets.get((self.arn, target["Id"]))
    if state is None:  # an instance target (EC2 bridge/host) is keyed by instanceId:port
        state = STATE.targets.get((self.arn, f"{target['Id']}:{target.get('Port')}"))
    if state is None:
        return _orig_health_for(self, target, ec2_backend)
    return elbv2_models.FakeHealthStatus(
        target["Id"], target.get("Port", self.port), self.health_check_port,
        state["state"], state.get("reason"), state.get("description"))


# moto only sets an ENI's private_dns_name when the VPC has DNS hostnames; awsvpc tasks read it.
NetworkInterface.private_dns_name = None
ecs_models.EC2ContainerServiceBackend.create_service = create_service
ecs_models.EC2ContainerServiceBackend.update_service = update_service
ecs_models.EC2ContainerServiceBackend.list_tasks = list_tasks
ecs_models.EC2ContainerServiceBackend.run_task = run_task
elbv2_models.FakeTargetGroup.health_for = health_for
EC2ContainerServiceResponse.create_service = create_service_response

# --------------------------------------------------------------------------- the controller


def task_ip(task):
    for att in task.attachments:
        for d in att["details"]:
            if d["name"] == "privateIPv4Address":
                return d["value"]
    return None


def target_groups_of(service):
    backend = elbv2_backends[service._account_id][service.region_name]
    for lb in service.load_balancers or []:
        tg = backend.target_groups.get(lb.get("targetGroupArn"))
        if tg is not None:
            yield tg, lb.get("containerPort")


def start_task(backend, service, dep):
    cluster = backend.clusters[service.cluster_name]
    task_def = backend.describe_task_definition(dep["taskDefinition"])
    placed = place_on_instance(backend, service, task_def)  # EC2 bridge/host networking
    if placed is False:
        return None
    net = spread_over_subnets(service, task_def, service.network_configuration or None)
    task = LabTask(cluster, task_def, placed[0].container_instance_arn if placed else None, None, backend,
                   group=f"service:{service.name}",
                   launch_type=service.launch_type or "FARGATE", started_by=dep["id"],
                   networking_configuration=net if task_def.network_mode == "awsvpc" else None)
    set_zone(task)
    task.last_status = "PROVISIONING"
    task.desired_status = "RUNNING"
    task.created_at = now()
    task.health_status = "UNKNOWN"
    task.stop_code = None
    task.lab_started = time.time()
    task.lab_unhealthy_since = None
    task.lab_healthy_since = None
    task.lab_service = service.name
    task.lab_instance_id = placed[0].ec2_instance_id if placed else None
    task.containers = [
        {
            "containerArn": f"{task.task_arn.replace(':task/', ':container/')}/{uuid.uuid4()}",
            "taskArn": task.task_arn,
            "name": c.get("name"),
            "image": c.get("image"),
            "lastStatus": "PENDING",
            "healthStatus": "UNKNOWN",
            "essential": c.get("essential", True),
            **({"networkBindings": placed[1].get(c.get("name"), [])} if placed else {}),
        }
        for c in task_def.container_definitions
    ]
    backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
    add_event(service, f"(service {service.name}) has started 1 tasks: (task {task.id}).")
    return task


# ---- EC2 container instances, bridge/host networking, instance targets (issue 15; lab/README.md "Service shapes")

UNPLACED = {}  # service arn -> when the last "unable to place a task" event was added
EPHEMERAL = 32768  # the first dynamic host port (bridge networking, hostPort 0)


def place_on_instance(backend, service, task_def):
    """EC2 bridge/host networking: (container instance, {container: networkBindings}) for a new task,
    round-robin over the cluster's instances with its host ports free; False (and ECS's "unable to place"
    event, at most every 5 s) when none has them; None for awsvpc or Fargate tasks."""
    if (service.launch_type or "FARGATE") != "EC2" or task_def.network_mode not in ("bridge", "host"):
        return None
    instances = sorted(backend.container_instances.get(service.cluster_name, {}).values(),
                       key=lambda ci: ci.container_instance_arn)
    used = {}
    for task in backend.tasks.get(service.cluster_name, {}).values():
        arn = getattr(task, "container_instance_arn", None)
        if arn and task.last_status != "STOPPED":
            for c in task.containers:
                used.setdefault(arn, set()).update(b["hostPort"] for b in c.get("networkBindings") or [])
    n = STATE.placements.get(service.arn, 0)
    for i in range(len(instances)):
        ci = instances[(n + i) % len(instances)]
        taken = set(used.get(ci.container_instance_arn, set()))
        bindings, fits = {}, True
        for c in task_def.container_definitions:
            for pm in c.get("portMappings") or []:
                port = pm.get("containerPort")
                host = port if task_def.network_mode == "host" else (pm.get("hostPort") or 0)
                if host == 0:
                    host = EPHEMERAL
                    while host in taken:
                        host += 1
                if host in taken:
                    fits = False
                taken.add(host)
                bindings.setdefault(c.get("name"), []).append(
                    {"bindIP": "0.0.0.0", "containerPort": port, "hostPort": host, "protocol": pm.get("protocol", "tcp")})
        if fits:
            STATE.placements[service.arn] = n + 1
            return ci, bindings
    if time.time() - UNPLACED.get(service.arn, 0) >= 5:
        UNPLACED[service.arn] = time.time()
        why = ("No Container Instances were found in your cluster." if not instances else
               f"The closest matching (container-instance {instances[0].container_instance_arn.split('/')[-1]}) "
               "is already using a port required by your task.")
        add_event(service, f"(service {service.name}) was unable to place a task because no container instance met "
                           f"all of its requirements. {why} For more information, see the Troubleshooting section of "
                           "the Amazon ECS Developer Guide.")
        record("unable_to_place", service=service.name)
    return False


def target_of(task, tg, port):
    """A task's target in a group: (id, port, key). An instance group takes a placed EC2 task as
    instanceId:hostPort (keyed so; several tasks share an instance); anything else by its IP."""
    instance = getattr(task, "lab_instance_id", None)
    if instance and tg.target_type == "instance":
        host = next((b["hostPort"] for c in task.containers for b in c.get("networkBindings") or []
                     if b["containerPort"] == (port or tg.port)), None)
        return instance, host, f"{instance}:{host}"
    ip = task_ip(task)
    return ip, port or tg.port, ip


def failed_check(tg):
    """An unhealthy target's reason: NLB (TCP/UDP/TLS checks) or ALB (HTTP codes)."""
    if (tg.protocol or "").upper() in ("TCP", "UDP", "TLS", "TCP_UDP"):
        return {"state": "unhealthy", "reason": "Target.FailedHealthChecks", "description": "Health checks failed"}
    return {"state": "unhealthy", "reason": "Target.ResponseCodeMismatch",
            "description": "Health checks failed with these codes: [502]"}


def container_checks(service, dep, task, task_def, clock):
    """No load balancer: the task's health is its containers' health checks (HEALTHY after health_s, or
    UNHEALTHY with the `unhealthy_container` fault, and stopped unhealthy_kill_s later); with no check it
    stays UNKNOWN and counts as healthy once RUNNING, as ECS does. True when the task was stopped."""
    t = STATE.timing
    checked = [c.get("name") for c in task_def.container_definitions if c.get("healthCheck")]
    if not checked:
        if task.lab_healthy_since is None:
            task.lab_healthy_since = clock
        return False
    if clock - task.lab_running_since < t["health_s"] or task.health_status != "UNKNOWN":
        if task.lab_unhealthy_since and clock - task.lab_unhealthy_since >= t["unhealthy_kill_s"]:
            stop_task(service, dep, task, "Task failed container health checks", "ServiceSchedulerInitiated",
                      failed=True)
            return True
        return False
    sick = fault_for(task_def, {"unhealthy_container"})
    for c in task.containers:
        if c["name"] in checked:
            c["healthStatus"] = "UNHEALTHY" if sick and image_matches(sick["image"], c["image"]) else "HEALTHY"
    if any(c.get("healthStatus") == "UNHEALTHY" for c in task.containers):
        task.health_status = "UNHEALTHY"
        task.lab_unhealthy_since = clock
        record("failure_signal", service=service.name, deployment=dep["id"], cause="unhealthy container")
    else:
        task.health_status = "HEALTHY"
        task.lab_healthy_since = clock
    return False


def spread_over_subnets(service, task_def, net):
    """ECS spreads a service's tasks over its subnets' zones; the `one_zone` fault keeps them in the first."""
    if not net or task_def.network_mode != "awsvpc":
        return net
    subnets = list(net["awsvpcConfiguration"].get("subnets") or [])
    if len(subnets) < 2 or fault_for(task_def, {"one_zone"}):
        return net
    n = STATE.placements.get(service.arn, 0)
    STATE.placements[service.arn] = n + 1
    i = n % len(subnets)
    rotated = subnets[i:] + subnets[:i]
    return {**net, "awsvpcConfiguration": {**net["awsvpcConfiguration"], "subnets": rotated}}


def set_zone(task):
    """DescribeTasks' availabilityZone: the zone of the subnet the task's ENI is in."""
    ec2 = ec2_backends[task._account_id][task.region_name]
    for att in task.attachments:
        for d in att["details"]:
            if d["name"] == "subnetId":
                try:
                    task.availability_zone = ec2.get_subnet(d["value"]).availability_zone
                except Exception:
                    pass


def write_logs(task, task_def, container_name, lines):
    for c in task_def.container_definitions:
        if c.get("name") != container_name:
            continue
        log = c.get("logConfiguration") or {}
        opts = log.get("options") or {}
        if log.get("logDriver") != "awslogs" or "awslogs-group" not in opts:
            return
        region = opts.get("awslogs-region", task.region_name)
        backend = logs_backends[task._account_id][region]
        group = opts["awslogs-group"]
        stream = f"{opts.get('awslogs-stream-prefix', 'ecs')}/{container_name}/{task.id}"
        if group not in backend.groups:
            backend.create_log_group(group, {})
        if stream not in backend.groups[group].streams:
            backend.create_log_stream(group, stream)
        base = int(time.time() * 1000)
        events = [{"timestamp": base + i, "message": line} for i, line in enumerate(lines)]
        backend.put_log_events(group, stream, events)


def stop_task(service, dep, task, reason, stop_code="ServiceSchedulerInitiated", exit_codes=None,
              container_reason=None, failed=False):
    task.last_status = "STOPPED"
    task.desired_status = "STOPPED"
    task.stopped_reason = reason
    task.stop_code = stop_code
    task.stopped_at = now()
    for c in task.containers:
        c["lastStatus"] = "STOPPED"
        if exit_codes is not None:
            c["exitCode"] = exit_codes.get(c["name"], 0)
        if container_reason:
            c["reason"] = container_reason
    for tg, port in target_groups_of(service):
        ip = target_of(task, tg, port)[2]
        if (tg.arn, ip) in STATE.targets:
            STATE.targets[(tg.arn, ip)] = {"state": "draining", "reason": "Target.DeregistrationInProgress",
                                           "description": "Target deregistration is in progress",
                                           "until": time.time() + STATE.timing["drain_s"]}
    if failed and dep is not None:
        dep["failedTasks"] += 1
        add_event(service, f"(service {service.name}) has stopped 1 running tasks: (task {task.id}).")
        record("task_failed", service=service.name, deployment=dep["id"], task=task.id, reason=reason,
               failed_tasks=dep["failedTasks"])
        if dep["failedTasks"] == 2:
            record("failure_signal", service=service.name, deployment=dep["id"], cause="second failed task")


def circuit_breaker(service):
    cfg = getattr(service, "deployment_configuration", None) or {}
    return cfg.get("deploymentCircuitBreaker") or {}


def finish_history(service, dep_id, status, reason=None):
    for entry in STATE.history.get(service.arn, []):
        if entry["deploymentId"] == dep_id and entry["status"] == "IN_PROGRESS":
            entry.update(status=status, finishedAt=time.time())
            if reason:
                entry["statusReason"] = reason


def fail_deployment(backend, service, dep, reason, rollback):
    finish_history(service, dep["id"], "STOPPED", reason)
    dep["rolloutState"] = "FAILED"
    dep["rolloutStateReason"] = reason
    dep["updatedAt"] = now()
    add_event(service, f"(service {service.name}) (deployment {dep['id']}) deployment failed: {reason}")
    record("rollout_failed", service=service.name, deployment=dep["id"], reason=reason)
    target = STATE.last_completed.get(service.arn)
    if rollback and target and target != dep["taskDefinition"]:
        service.task_definition = target
        add_event(service, f"(service {service.name}) rolling back to task definition {target}.")
        new_deployment(service, target)


def tick_service(backend, service):
    t = STATE.timing
    clock = time.time()
    tasks = [task for task in backend.tasks.get(service.cluster_name, {}).values()
             if isinstance(task, LabTask) and task.lab_service == service.name]
    by_dep = {}
    for task in tasks:
        by_dep.setdefault(task.started_by, []).append(task)
    primary = next((d for d in service.deployments if d["status"] == "PRIMARY"), None)

    # Advance every live task, whatever deployment it belongs to.
    for dep in service.deployments:
        task_def = backend.describe_task_definition(dep["taskDefinition"])
        for task in by_dep.get(dep["id"], []):
            if task.last_status == "STOPPED":
                continue
            age = clock - task.lab_started
            if task.last_status == "PROVISIONING" and age >= t["task_start_s"] / 2:
                task.last_status = "PENDING"
            if task.last_status == "PENDING" and age >= t["task_start_s"]:
                if fault_for(task_def, {"pending"}):
                    continue
                pull = fault_for(task_def, {"cannot_pull"})
                if pull:
                    image = next(c["image"] for c in task.containers if image_matches(pull["image"], c["image"]))
                    msg = (f"CannotPullContainerError: pull image manifest has been retried 5 time(s): "
                           f"failed to resolve ref {image}: not found")
                    stop_task(service, dep, task, msg, "TaskFailedToStart", container_reason=msg, failed=True)
                    continue
                task.last_status = "RUNNING"
                task.started_at = now()
                task.lab_running_since = clock
                for c in task.containers:
                    c["lastStatus"] = "RUNNING"
                for tg, port in target_groups_of(service):
                    target_id, target_port, ip = target_of(task, tg, port)
                    tg.targets[ip] = {"Id": target_id, "Port": target_port}
                    STATE.targets[(tg.arn, ip)] = {"state": "initial", "reason": "Elb.RegistrationInProgress",
                                                   "description": "Target registration is in progress",
                                                   "since": clock}
            if task.last_status != "RUNNING":
                continue
            crash = fault_for(task_def, {"exit"})
            if crash and clock - task.lab_running_since >= t["exit_after_s"]:
                name = next(c["name"] for c in task.containers if image_matches(crash["image"], c["image"]))
                write_logs(task, task_def, name, crash.get("log_lines") or [f"{name} exiting with {crash.get('exit_code', 1)}"])
                stop_task(service, dep, task, "Essential container in task exited", "EssentialContainerExited",
                          exit_codes={name: crash.get("exit_code", 1)}, failed=True)
                continue
            if not list(target_groups_of(service)):
                if container_checks(service, dep, task, task_def, clock):
                    continue
            unhealthy = fault_for(task_def, {"unhealthy"})
            for tg, port in target_groups_of(service):
                ip = target_of(task, tg, port)[2]
                state = STATE.targets.get((tg.arn, ip))
                if state and state["state"] == "initial" and clock - state["since"] >= t["health_s"]:
                    if unhealthy:
                        STATE.targets[(tg.arn, ip)] = failed_check(tg)
                        if task.lab_unhealthy_since is None:
                            task.lab_unhealthy_since = clock
                            record("failure_signal", service=service.name, deployment=dep["id"],
                                   cause="unhealthy target", target=ip)
                    else:
                        STATE.targets[(tg.arn, ip)] = {"state": "healthy"}
            if task.lab_unhealthy_since and clock - task.lab_unhealthy_since >= t["unhealthy_kill_s"]:
                tg_arn = next((tg.arn for tg, _ in target_groups_of(service)), "")
                stop_task(service, dep, task, f"Task failed ELB health checks in (target-group {tg_arn})",
                          "ServiceSchedulerInitiated", failed=True)
                continue
            groups = list(target_groups_of(service))
            if groups and all(STATE.targets.get((tg.arn, target_of(task, tg, port)[2]), {}).get("state") == "healthy"
                              for tg, port in groups):
                if task.lab_healthy_since is None:
                    task.lab_healthy_since = clock
                task.health_status = "HEALTHY"
                for c in task.containers:
                    c["healthStatus"] = "HEALTHY"

    # Forget this service's drained targets.
    groups = {tg.arn: tg for tg, _ in target_groups_of(service)}
    for key, state in list(STATE.targets.items()):
        if key[0] in groups and state["state"] == "draining" and clock >= state.get("until", 0):
            del STATE.targets[key]
            groups[key[0]].targets.pop(key[1], None)

    if primary is None:
        return
    live = [task for task in by_dep.get(primary["id"], []) if task.last_status != "STOPPED"]
    healthy = [task for task in live if task.lab_healthy_since is not None]

    if primary["rolloutState"] == "IN_PROGRESS":
        breaker = circuit_breaker(service)
        threshold = max(3, min(200, math.ceil(0.5 * max(primary["desiredCount"], 1))))
        task_def = backend.describe_task_definition(primary["taskDefinition"])
        alarm = fault_for(task_def, {"alarm"})
        alarms = (getattr(service, "deployment_configuration", None) or {}).get("alarms") or {}
        if breaker.get("enable") and primary["failedTasks"] >= threshold:
            fail_deployment(backend, service, primary,
                            "ECS deployment circuit breaker: tasks failed to start.", breaker.get("rollback"))
            return
        if (alarm and alarms.get("enable") and len(healthy) >= primary["desiredCount"]
                and clock - max(task.lab_healthy_since for task in healthy) >= t["alarm_after_s"]):
            names = ", ".join(alarms.get("alarmNames") or ["alarm"])
            record("failure_signal", service=service.name, deployment=primary["id"], cause="alarm")
            fail_deployment(backend, service, primary,
                            f"ECS deployment {primary['id']} failed: alarm(s) detected: {names}.",
                            alarms.get("rollback"))
            return
        # Replace what is missing (ECS keeps relaunching a crash loop until something stops it).
        for _ in range(primary["desiredCount"] - len(live)):
            start_task(backend, service, primary)
        if len(healthy) >= primary["desiredCount"] and not alarm:
            # New tasks are healthy: stop the old deployments' tasks, then complete.
            for dep in service.deployments:
                if dep is primary:
                    continue
                for task in by_dep.get(dep["id"], []):
                    if task.last_status != "STOPPED":
                        stop_task(service, dep, task,
                                  f"Scaling activity initiated by (deployment {primary['id']})")
            draining = any(state["state"] == "draining" for (tg_arn, _ip), state in STATE.targets.items()
                           if tg_arn in {tg.arn for tg, _ in target_groups_of(service)})
            if not draining:
                service.deployments = [primary]
                primary["rolloutState"] = "COMPLETED"
                primary["rolloutStateReason"] = f"ECS deployment {primary['id']} completed."
                primary["updatedAt"] = now()
                STATE.last_completed[service.arn] = primary["taskDefinition"]
                finish_history(service, primary["id"], "SUCCESSFUL")
                add_event(service, f"(service {service.name}) (deployment {primary['id']}) deployment completed.")
                add_event(service, f"(service {service.name}) has reached a steady state.")
                record("rollout_completed", service=service.name, deployment=primary["id"],
                       task_definition=primary["taskDefinition"])

    # Counts, as DescribeServices reports them.
    for dep in service.deployments:
        dep_tasks = [task for task in by_dep.get(dep["id"], []) if task.last_status != "STOPPED"]
        dep["runningCount"] = sum(1 for task in dep_tasks if task.last_status == "RUNNING")
        dep["pendingCount"] = len(dep_tasks) - dep["runningCount"]
    service.running_count = sum(d["runningCount"] for d in service.deployments)
    service.pending_count = sum(d["pendingCount"] for d in service.deployments)


def controller():
    while True:
        time.sleep(0.05)
        with LOCK:
            try:
                for _account, regions in list(ecs_backends.items()):
                    for _region, backend in list(regions.items()):
                        for service in list(backend.services.values()):
                            if service.status == "ACTIVE" and (service.deployments or service.task_sets):
                                tick_service(backend, service)
                        for tasks in list(backend.tasks.values()):
                            for task in list(tasks.values()):
                                if getattr(task, "lab_oneoff", False) and task.last_status != "STOPPED":
                                    tick_oneoff(backend, task)
            except Exception as exc:  # keep the controller alive; say what broke
                import traceback
                traceback.print_exc()
                record("controller_error", error=repr(exc))


# --------------------------------------------------------------------------- middleware


def action_of(environ, body):
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = ""
    if "Credential=" in auth:
        parts = auth.split("Credential=")[1].split(",")[0].split("/")
        if len(parts) >= 4:
            service = parts[3]
    if target:
        return service, target.split(".")[-1]
    if body:
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return service, action[0]
    return service, None


READ_PREFIXES = ("Describe", "List", "Get", "BatchGet", "BatchCheck")


def error_response(start_response, service, kind, message=None):
    if kind == "throttle":
        status, code, msg = "400 Bad Request", "ThrottlingException", "Rate exceeded"
    elif kind == "invalid":
        status, code, msg = "400 Bad Request", "InvalidParameterException", message
    elif kind == "denied":  # IAM said no: AccessDeniedException (JSON APIs), AccessDenied (query APIs)
        status, code, msg = "400 Bad Request", "AccessDeniedException", "User: lab is not authorized (lab fault)"
    else:
        status, code, msg = "500 Internal Server Error", "ServerException", "Service Unavailable (lab fault)"
    if service in ("elasticloadbalancing", "iam"):
        code = {"throttle": "Throttling", "invalid": "ValidationError", "denied": "AccessDenied"}.get(kind, "InternalFailure")
        status = "403 Forbidden" if kind == "denied" else status
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{msg}</Message>"
                f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()
        ctype = "text/xml"
    else:
        body = json.dumps({"__type": code, "message": msg}).encode()
        ctype = "application/x-amz-json-1.1"
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body))),
                            ("x-amzn-RequestId", str(uuid.uuid4()))])
    return [body]


def drop_connection(environ, start_response):
    """Close the connection without an answer (the client sees the connection end, no HTTP status)."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    start_response("500 Internal Server Error", [("Content-Length", "0")])
    return []


def service_history(action, request):
    """ListServiceDeployments and DescribeServiceRevisions, from the lab's own record."""
    entries = [e for history in STATE.history.values() for e in history]
    if action == "ListServiceDeployments":
        name, cluster = request["service"].split("/")[-1], request.get("cluster", "default").split("/")[-1]
        wanted = set(request.get("status") or [])
        found = [e for e in entries if e["serviceArn"].split("/")[-1] == name and e["clusterArn"].split("/")[-1] == cluster
                 and (not wanted or e["status"] in wanted)]
        found.sort(key=lambda e: e["createdAt"], reverse=True)
        keys = ("serviceDeploymentArn", "serviceArn", "clusterArn", "createdAt", "startedAt", "finishedAt",
                "targetServiceRevisionArn", "status", "statusReason")
        # ECS pages these 20 at a time by default (maxResults 1-100) with nextToken.
        return faults.page(request, {"serviceDeployments": [{k: e[k] for k in keys if k in e} for e in found]},
                           "serviceDeployments", 20, "ListServiceDeployments")
    arns = request.get("serviceRevisionArns") or []
    revisions = [{"serviceRevisionArn": e["targetServiceRevisionArn"], "serviceArn": e["serviceArn"],
                  "clusterArn": e["clusterArn"], "taskDefinition": e["taskDefinition"], "createdAt": e["createdAt"]}
                 for e in entries if e["targetServiceRevisionArn"] in arns]
    missing = [{"arn": a, "reason": "MISSING"} for a in arns if a not in {r["serviceRevisionArn"] for r in revisions}]
    return {"serviceRevisions": revisions, "failures": missing}


def json_response(start_response, obj, status="200 OK"):
    body = json.dumps(obj, default=str).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def lab_api(environ, start_response, path, body):
    method = environ["REQUEST_METHOD"]
    data = json.loads(body or b"{}")
    with LOCK:
        if path == "/_lab/reset":
            moto_api_backend.reset()
            STATE.__init__()
            faults.reset()
            ecr_registry.FAULTS.__init__()
            return json_response(start_response, {"ok": True})
        if path == "/_lab/task-fault":
            STATE.task_faults.append(data)
            return json_response(start_response, {"ok": True})
        if path == "/_lab/task-faults":
            return json_response(start_response, STATE.task_faults)
        if path == "/_lab/api-fault":
            try:
                armed = faults.arm(data)
            except ValueError as err:
                return json_response(start_response, {"error": str(err)}, "400 Bad Request")
            return json_response(start_response, {"ok": True, "id": armed["id"], "fault": armed})
        if path == "/_lab/api-faults":
            if method == "DELETE":
                faults.clear()
            return json_response(start_response, faults.listing())
        if path == "/_lab/release":
            released = faults.release(data.get("id"))
            return json_response(start_response, {"ok": True, "released_faults": released,
                                                  "hanging": faults.FAULTS.hanging})
        if path == "/_lab/clear-faults":
            STATE.task_faults.clear()
            faults.clear()
            return json_response(start_response, {"ok": True})
        if path == "/_lab/timing":
            STATE.timing.update(data)
            return json_response(start_response, STATE.timing)
        if path == "/_lab/calls":
            if method == "DELETE":
                STATE.calls.clear()
                STATE.call_log.clear()
            return json_response(start_response, STATE.calls)
        if path == "/_lab/reads":
            cluster = (parse_qs(environ.get("QUERY_STRING", "")).get("cluster") or [""])[0]
            return json_response(start_response, [r for r in STATE.reads if r["cluster"] == cluster])
        if path == "/_lab/call-log":
            return json_response(start_response, STATE.call_log)
        if path == "/_lab/registry":
            try:
                ecr_registry.configure(data)
            except ValueError as err:
                return json_response(start_response, {"error": str(err)}, "400 Bad Request")
            return json_response(start_response, {"ok": True})
        if path == "/_lab/writes":
            return json_response(start_response, STATE.writes)
        if path == "/_lab/timeline":
            return json_response(start_response, STATE.timeline)
        if path == "/_lab/retire":
            return json_response(start_response, {"ok": True, "retired": retire(data.get("cluster"), data.get("service"))})
        if path == "/_lab/health":
            return json_response(start_response, {"ok": True})
    return json_response(start_response, {"error": f"unknown lab path {path}"}, "404 Not Found")


def retire(cluster, service):
    """A finished test's service leaves the controller's round (tests/lab/mod.rs drops it here): it goes
    INACTIVE at 0 tasks and its tasks are gone, as after DeleteService --force, but without a call or a
    write being recorded. Returns how many services it found."""
    found = 0
    for _account, regions in list(ecs_backends.items()):
        for _region, backend in list(regions.items()):
            svc = backend.services.get(f"{cluster}:{service}")
            if svc is None:
                continue
            found += 1
            svc.status, svc.desired_count, svc.pending_count, svc.running_count = "INACTIVE", 0, 0, 0
            tasks = backend.tasks.get(cluster) or {}
            for arn in [a for a, t in tasks.items() if getattr(t, "group", None) == f"service:{service}"]:
                del tasks[arn]
    return found


def write_names(action, doc):
    """The names a write is recorded with, so a test can find its own writes (tests-audit A1)."""
    names = {k: doc.get(k) for k in ("cluster", "service", "family", "serviceName", "clusterName",
                                      "repositoryName", "imageTag")
             if isinstance(doc.get(k), str)}
    sd = doc.get("serviceDeploymentArn")
    if isinstance(sd, str) and ":service-deployment/" in sd:
        # Stop/ContinueServiceDeployment name the service only through the ARN:
        # arn:aws:ecs:REGION:ACCOUNT:service-deployment/CLUSTER/SERVICE/ID
        parts = sd.split(":", 5)[-1].split("/")
        names.update(zip(("cluster", "service"), parts[1:3]))
    if action == "DeregisterTaskDefinition" and isinstance(doc.get("taskDefinition"), str):
        names["taskDefinition"] = doc["taskDefinition"]
        names["family"] = doc["taskDefinition"].rsplit("/", 1)[-1].split(":")[0]
    return names


def call_moto(app, environ):
    """moto's answer as (status, headers, body bytes); the caller holds LOCK."""
    chunks = []
    status_headers = {}

    def capture(status, headers, exc_info=None):
        status_headers["s"] = (status, headers)
        return chunks.append

    result = app(environ, capture)
    try:
        for chunk in result:
            chunks.append(chunk)
    finally:
        if hasattr(result, "close"):
            result.close()
    status, headers = status_headers["s"]
    return status, list(headers), b"".join(chunks)


def json_answer(obj, status="200 OK"):
    body = json.dumps(obj, default=str).encode()
    return status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body


def answer(app, environ, service, action, doc, plan):
    """The request applied and answered (status, headers, body), with AWS's caps, cluster scope and
    pages that moto lacks, and the `stale` fault's view of the past."""
    if service == "ecs":
        try:
            faults.check_caps(action, doc)
        except faults.Invalid as err:
            return json_answer({"__type": err.code, "message": str(err)}, "400 Bad Request")
    if service == "ecs" and action in ("ListServiceDeployments", "DescribeServiceRevisions"):
        with LOCK:
            try:
                return json_answer(service_history(action, doc))
            except faults.Invalid as err:
                return json_answer({"__type": err.code, "message": str(err)}, "400 Bad Request")
    if service == "ecr":
        auth = environ.get("HTTP_AUTHORIZATION", "")
        access_key = auth.split("Credential=")[1].split("/")[0] if "Credential=" in auth else ""
        got = ecr_registry.handle(action, doc, access_key)
        if got is not None:
            return json_answer(got[1], got[0])
    with LOCK:
        if service == "ecs" and action in ("UpdateService", "CreateService", "DeleteService",
                                           "StopServiceDeployment", "ContinueServiceDeployment"):
            faults.snapshot_before_write(app, environ, action, doc)
        status, headers, body = call_moto(app, environ)
        if service != "ecs" or not status.startswith("200") or action not in (
                "RunTask", "DescribeTasks", "DescribeServices", "ListTasks"):
            return status, headers, body
        data = json.loads(body or b"{}")
        if action == "RunTask":
            faults.after_run_task(data)
            return status, headers, body
        try:
            if action == "DescribeTasks":
                data = faults.scope_tasks(doc, data)
                if plan.stale:
                    data = faults.stale_tasks(plan.stale, data)
            elif action == "DescribeServices" and plan.stale:
                data = faults.stale_services(plan.stale, data)
            elif action == "ListTasks":
                data = faults.page(doc, data, "taskArns", 100, "ListTasks")
        except faults.Invalid as err:
            return json_answer({"__type": err.code, "message": str(err)}, "400 Bad Request")
    body = json.dumps(data, default=str).encode()
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"] + [("Content-Length", str(len(body)))]
    return status, headers, body


def middleware(app):
    def wrapped(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_lab/"):
            return lab_api(environ, start_response, path, body)
        service, action = action_of(environ, body)
        if not action:
            with LOCK:
                status, headers, out = call_moto(app, environ)
            start_response(status, headers)
            return [out]
        key = f"{service}:{action}"
        doc = faults.parse(service, body)
        with LOCK:
            STATE.calls[key] = STATE.calls.get(key, 0) + 1
            STATE.call_log.append((time.time(), key))
            if service == "ecs" and action in ("DescribeServices", "ListTasks", "DescribeTasks"):
                named = doc.get("services") or ([doc["serviceName"]] if doc.get("serviceName") else [])
                STATE.reads.append({"t": time.time(), "action": action, "cluster": doc.get("cluster", "default"),
                                    "services": named, "tasks": len(doc.get("tasks") or [])})
            if not action.startswith(READ_PREFIXES):
                names = write_names(action, doc)
                STATE.writes.append({"action": key, "t": time.time(), **names})
                if service == "ecs":
                    record("api_write", action=action, **names)
            # Faults are scoped to requests that name one cluster/service/family/repository exactly,
            # so parallel tests never reach each other's calls.
            plan = faults.take(action, key, faults.request_names(service, action, doc))
        if plan.error:
            return error_response(start_response, service, plan.error)
        # Waits and hangs happen outside LOCK: the lab's other requests and its controller go on.
        faults.wait(plan.before_s)
        if plan.hang and not plan.hang_applies:
            faults.hold(plan.hang)
        status, headers, out = answer(app, environ, service, action, doc, plan)
        if plan.apply_then_error:
            if plan.apply_then_error.get("drop"):
                return drop_connection(environ, start_response)
            return error_response(start_response, service, "error5xx")
        faults.wait(plan.after_s)
        if plan.hang and plan.hang_applies:
            faults.hold(plan.hang)
        start_response(status, headers)
        return [out]

    return wrapped


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args()
    threading.Thread(target=controller, daemon=True, name="ecs-controller").start()
    app = middleware(DomainDispatcherApplication(create_backend_app))
    print(f"deployer lab listening on http://{args.host}:{args.port}", flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


# Deployment strategies (lab/strategies.py) wrap a few functions above by name; keep this after them.
def wrap(name, replacement):
    """Replaces this module's function `name` by `replacement`, which gets the original as `_orig`
    (how the strategies and CodeDeploy extensions hook into the lab)."""
    module = __import__("sys").modules[__name__]
    orig = getattr(module, name)

    def wrapped(*args, **kwargs):
        return replacement(*args, _orig=orig, **kwargs)

    wrapped.__name__ = name
    setattr(module, name, wrapped)


strategies.install(__import__("sys").modules[__name__])
codedeploy.install(__import__("sys").modules[__name__])

if __name__ == "__main__":
    main()
