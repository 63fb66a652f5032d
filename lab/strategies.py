"""ECS-native deployment strategies in the lab: BLUE_GREEN, LINEAR and CANARY, lifecycle hooks, and
the five service-deployment APIs moto lacks (ListServiceDeployments, DescribeServiceDeployments,
DescribeServiceRevisions, StopServiceDeployment, ContinueServiceDeployment).

ecs_lab.py imports this module and calls install(<its own module>) once. install() wraps a few of
ecs_lab's module-level functions by rebinding their names in ecs_lab's namespace (ecs_lab calls them
through its globals), so ecs_lab.py itself carries only two hook lines:
  tick_service      services whose deploymentConfiguration.strategy is BLUE_GREEN/LINEAR/CANARY are
                    driven by tick() here; ROLLING services go to ecs_lab's own tick, unchanged
  new_deployment    a new service deployment of a strategy service gets its stage machine; an older
                    one still in flight is superseded (STOPPED) and reconciled
  target_groups_of  strategy services also have the alternate target group (draining on stop)
  service_history   ListServiceDeployments / DescribeServiceRevisions, extended
  lab_api           /_lab/hook-fault, /_lab/service-deployments; reset and clear-faults clear ours too
and adds three ECS response methods (DescribeServiceDeployments, StopServiceDeployment,
ContinueServiceDeployment) to moto's ECS response class, plus Service.currentServiceDeployment /
currentServiceRevisions. See lab/README.md, "Deployment strategies".

Time scale: one minute of bakeTimeInMinutes / stepBakeTimeInMinutes / canaryBakeTimeInMinutes /
timeoutInMinutes is STATE.timing["minute_s"] seconds of lab time (default 1.0: 1 minute = 1 second),
settable with POST /_lab/timing {"minute_s": 0.5}. Each stage lasts at least timing["stage_s"]
(default 0.2 s) so a poller can see it; a Lambda hook answers after timing["hook_s"] (default 0.3 s).
"""

import json
import random
import string
import time
import uuid

from moto.ecs import models as ecs_models
from moto.ecs.exceptions import ECSException
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.elbv2 import models as elbv2_models
from moto.elbv2.models import elbv2_backends

STRATEGIES = ("BLUE_GREEN", "LINEAR", "CANARY")
ACTIVE = ("PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")
HOOK_STAGES = ("RECONCILE_SERVICE", "PRE_SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT",
               "PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT")

lab = None  # the ecs_lab module (set by install)


class Faults:
    def __init__(self):
        # {"target": "substring of hookTargetArn", "kind": "fail|timeout", "stage": optional, "count": optional}
        self.hooks = []
        # Services whose answers leave out currentServiceDeployment (older API answers, or a field
        # not yet filled in): deployer must find its service deployment by ListServiceDeployments.
        self.hide_current = set()
        # service name -> seconds a rolling StopServiceDeployment(ROLLBACK) stays ROLLBACK_REQUESTED
        # before ECS's rollback deployment appears (default: timing rolling_stop_lag_s, 1 s)
        self.stop_lag = {}


FAULTS = Faults()


class LabError(ECSException):
    def __init__(self, code, message):
        super().__init__(code, message)


def matches(fault_image, image):
    """ecs_lab's rule for a task fault's image naming a container image."""
    if hasattr(lab, "image_matches"):
        return lab.image_matches(fault_image, image)
    return fault_image in (image or "")


def timing(key, default):
    return float(lab.STATE.timing.get(key, default))


def minutes(n):
    return float(n) * timing("minute_s", 1.0)


def strategy_of(service):
    cfg = getattr(service, "deployment_configuration", None) or {}
    return cfg.get("strategy") or "ROLLING"


def is_strategy(service):
    return service.deployment_controller.get("type", "ECS") == "ECS" and strategy_of(service) in STRATEGIES


def entries_of(service):
    return lab.STATE.history.get(service.arn, [])


def entry_for_dep(service, dep_id):
    return next((e for e in entries_of(service) if e["deploymentId"] == dep_id), None)


def rand_id(prefix, n=20):
    return prefix + "".join(random.choice(string.ascii_letters + string.digits) for _ in range(n))


# --------------------------------------------------------------------------- load balancer side


def advanced(service):
    """(load balancer entry, advancedConfiguration) of the service's first load balancer that has one."""
    for lb in service.load_balancers or []:
        adv = lb.get("advancedConfiguration")
        if adv:
            return lb, adv
    return None, None


def elb(service):
    return elbv2_backends[service._account_id][service.region_name]


def find_rule(service, arn):
    """The ALB listener rule (or, for an NLB, the listener's default rule) behind an ARN."""
    if not arn:
        return None
    for balancer in elb(service).load_balancers.values():
        for listener in balancer.listeners.values():
            if listener.arn == arn:
                return listener.rules[0] if 0 in listener.rules else list(listener.rules.values())[-1]
            for rule in listener.rules.values():
                if rule.arn == arn:
                    return rule
    return None


def set_weights(service, rule_arn, weights):
    """Rewrite a rule's forward action as ECS does: a weighted ForwardConfig over both target groups."""
    rule = find_rule(service, rule_arn)
    if rule is None:
        return
    groups = [{"TargetGroupArn": tg, "Weight": int(round(w))} for tg, w in weights if tg]
    action = elbv2_models.FakeAction({"Type": "forward", "ForwardConfig": {"TargetGroups": groups}})
    rule.actions = [action]
    if getattr(rule, "is_default", False):
        for balancer in elb(service).load_balancers.values():
            listener = balancer.listeners.get(rule.listener_arn)
            if listener is not None:
                listener.default_actions = [action]


def target_group(service, arn):
    return elb(service).target_groups.get(arn) if arn else None


# --------------------------------------------------------------------------- service deployments


def stage_plan(cfg, strategy, creation):
    """The ordered stages of one deployment: dicts with shown (lifecycleStage), hook (hook stage), kind, weight."""
    if creation:
        # No blue revision to shift from: the first deployment only scales up (lab assumption, README).
        return [dict(shown="SCALE_UP", hook=None, kind="scale"), dict(shown="CLEAN_UP", hook=None, kind="clean")]
    plan = [dict(shown="PRE_SCALE_UP", hook="PRE_SCALE_UP", kind=None),
            dict(shown="SCALE_UP", hook=None, kind="scale"),
            dict(shown="POST_SCALE_UP", hook="POST_SCALE_UP", kind=None),
            dict(shown="TEST_TRAFFIC_SHIFT", hook="TEST_TRAFFIC_SHIFT", kind="test"),
            dict(shown="POST_TEST_TRAFFIC_SHIFT", hook="POST_TEST_TRAFFIC_SHIFT", kind=None)]
    if strategy == "LINEAR":
        lin = cfg.get("linearConfiguration") or {}
        step = float(lin.get("stepPercent") or 10.0)
        bake = minutes(lin.get("stepBakeTimeInMinutes", 6))
        weights, w = [], 0.0
        while w < 100.0 - 1e-9:
            w = min(100.0, round(w + step, 1))
            weights.append(w)
        steps = [(w, bake if w < 100.0 else 0.0) for w in weights]
    elif strategy == "CANARY":
        can = cfg.get("canaryConfiguration") or {}
        pct = float(can.get("canaryPercent") or 5.0)
        steps = [(pct, minutes(can.get("canaryBakeTimeInMinutes", 10))), (100.0, 0.0)]
    else:
        steps = [(100.0, 0.0)]
    for n, (w, bake) in enumerate(steps):
        # PRE_PRODUCTION_TRAFFIC_SHIFT is a hook stage but not a ServiceDeploymentLifecycleStage value:
        # while its hooks run, the deployment reports PRODUCTION_TRAFFIC_SHIFT (lab assumption).
        plan.append(dict(shown="PRODUCTION_TRAFFIC_SHIFT", hook="PRE_PRODUCTION_TRAFFIC_SHIFT", kind=None, step=n))
        plan.append(dict(shown="PRODUCTION_TRAFFIC_SHIFT", hook="PRODUCTION_TRAFFIC_SHIFT", kind="shift",
                         weight=w, dwell=bake, step=n))
    plan += [dict(shown="POST_PRODUCTION_TRAFFIC_SHIFT", hook="POST_PRODUCTION_TRAFFIC_SHIFT", kind=None),
             dict(shown="BAKE_TIME", hook=None, kind="bake", dwell=minutes(cfg.get("bakeTimeInMinutes") or 0)),
             dict(shown="CLEAN_UP", hook=None, kind="clean")]
    return plan


def init_machine(service, entry, source_entry, reconcile=False):
    cfg = json.loads(json.dumps(getattr(service, "deployment_configuration", None) or {}))
    lb, adv = advanced(service)
    prod_tg = lab_prod_tg(service)
    creation = source_entry is None
    if creation:
        green_tg = prod_tg
    elif adv:
        alternate = adv.get("alternateTargetGroupArn")
        green_tg = alternate if prod_tg != alternate else lb.get("targetGroupArn")
    else:
        green_tg = None
    plan = stage_plan(cfg, strategy_of(service), creation)
    if reconcile:
        plan.insert(0, dict(shown="RECONCILE_SERVICE", hook="RECONCILE_SERVICE", kind=None))
    entry["status"] = "PENDING"
    entry.pop("startedAt", None)
    entry["lab"] = {
        "strategy": strategy_of(service), "config": cfg, "plan": plan, "i": 0, "phase": "enter",
        "since": time.time(), "creation": creation,
        "blue_tg": None if creation else prod_tg, "green_tg": green_tg,
        "source": None if creation else {k: source_entry[k] for k in
                                         ("targetServiceRevisionArn", "deploymentId", "taskDefinition")},
        "prod_weight": 100.0 if creation else 0.0, "test_weight": 100.0 if creation else 0.0,
        "hooks": [], "breaker": None, "alarm": None, "alarm_triggered": [],
    }
    entry["updatedAt"] = time.time()


PROD_TG = {}  # service arn -> the target group serving production now (alternates per deployment)


def lab_prod_tg(service):
    if service.arn not in PROD_TG:
        lb, _adv = advanced(service)
        first = (service.load_balancers or [{}])[0] if service.load_balancers else {}
        PROD_TG[service.arn] = (lb or first).get("targetGroupArn")
    return PROD_TG[service.arn]


def live_entry(service):
    return next((e for e in reversed(entries_of(service)) if e["status"] in ACTIVE and "lab" in e), None)


# --------------------------------------------------------------------------- wrappers installed into ecs_lab


def new_deployment(service, task_definition_arn, _orig=None):
    before = [e for e in entries_of(service) if e["status"] in ACTIVE]
    last_good = next((e for e in reversed(entries_of(service)) if e["status"] == "SUCCESSFUL"), None)
    dep = _orig(service, task_definition_arn)
    if not is_strategy(service):
        return dep
    entry = entries_of(service)[-1]
    source = last_good
    for old in before:
        if old is entry:
            continue
        source = supersede(service, old, entry) or source
    if source is None:
        # The service ran before it had history in the lab (or was rolling): its live revision is blue.
        others = [d for d in service.deployments if d is not dep]
        if others:
            source = entry_for_dep(service, others[0]["id"])
    init_machine(service, entry, source, reconcile=bool(before))
    if source:
        lab.record("service_deployment_created", service=service.name, arn=entry["serviceDeploymentArn"],
                   strategy=strategy_of(service), green_tg=entry["lab"]["green_tg"])
    return dep


def supersede(service, old, new_entry):
    """A newer deployment replaces one in flight: the old goes STOPPED; the service is reconciled to one
    revision (blue if production traffic had not fully moved, else the old green). Returns the base entry."""
    clock = time.time()
    old.update(status="STOPPED", finishedAt=clock, stoppedAt=clock, updatedAt=clock,
               statusReason=f"Service deployment superseded by a newer service deployment "
                            f"({new_entry['serviceDeploymentArn']}).")
    lab.record("service_deployment_superseded", service=service.name, arn=old["serviceDeploymentArn"])
    L = old.get("lab")
    if not L:
        return None
    backend = ecs_models.ecs_backends[service._account_id][service.region_name]
    green_dep = old["deploymentId"]
    if L["creation"] or L["prod_weight"] >= 100.0:
        base, drop = old, (L["source"] or {}).get("deploymentId")
        if L["green_tg"]:
            PROD_TG[service.arn] = L["green_tg"]
    else:
        base, drop = entry_for_dep(service, L["source"]["deploymentId"]), green_dep
        restore_traffic(service, L)
    for task in tasks_of(backend, service):
        if task.started_by == drop and task.last_status != "STOPPED":
            lab.stop_task(service, None, task, f"Scaling activity initiated by (deployment {new_entry['deploymentId']})")
    service.deployments[:] = [d for d in service.deployments if d["id"] != drop]
    return base


def target_groups_of(service, _orig=None):
    yield from _orig(service)
    if is_strategy(service):
        lb, adv = advanced(service)
        tg = target_group(service, (adv or {}).get("alternateTargetGroupArn"))
        if tg is not None:
            yield tg, lb.get("containerPort")


def tick_service(backend, service, _orig=None):
    if not is_strategy(service):
        begin_rolling_rollback(service, time.time())
        return _orig(backend, service)
    tick(backend, service)


# --------------------------------------------------------------------------- the controller for strategy services


def tasks_of(backend, service):
    return [task for task in backend.tasks.get(service.cluster_name, {}).values()
            if isinstance(task, lab.LabTask) and task.lab_service == service.name]


def dep_tg(service, dep_id):
    """The target group a deployment's tasks register in."""
    entry = entry_for_dep(service, dep_id)
    if entry and entry.get("lab"):
        return entry["lab"]["green_tg"]
    for e in entries_of(service):
        L = e.get("lab")
        if L and L["source"] and L["source"]["deploymentId"] == dep_id:
            return L["blue_tg"]
    return lab_prod_tg(service)


def advance_tasks(backend, service, by_dep, clock):
    """Start, crash, register and health-check tasks as ecs_lab's rolling tick does, but each
    deployment's tasks go to that deployment's target group only."""
    t = lab.STATE.timing
    port = ((service.load_balancers or [{}])[0] or {}).get("containerPort") if service.load_balancers else None
    for dep in service.deployments:
        task_def = backend.describe_task_definition(dep["taskDefinition"])
        tg = target_group(service, dep_tg(service, dep["id"]))
        for task in by_dep.get(dep["id"], []):
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
                    image = next(c["image"] for c in task.containers if matches(pull["image"], c["image"]))
                    msg = (f"CannotPullContainerError: pull image manifest has been retried 5 time(s): "
                           f"failed to resolve ref {image}: not found")
                    lab.stop_task(service, dep, task, msg, "TaskFailedToStart", container_reason=msg, failed=True)
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
                                                       "description": "Target registration is in progress",
                                                       "since": clock}
            if task.last_status != "RUNNING":
                continue
            crash = lab.fault_for(task_def, {"exit"})
            if crash and clock - task.lab_running_since >= t["exit_after_s"]:
                name = next(c["name"] for c in task.containers if matches(crash["image"], c["image"]))
                lab.write_logs(task, task_def, name,
                               crash.get("log_lines") or [f"{name} exiting with {crash.get('exit_code', 1)}"])
                lab.stop_task(service, dep, task, "Essential container in task exited", "EssentialContainerExited",
                              exit_codes={name: crash.get("exit_code", 1)}, failed=True)
                continue
            ip = lab.task_ip(task)
            healthy = True
            if tg is not None:
                state = lab.STATE.targets.get((tg.arn, ip))
                if state and state["state"] == "initial" and clock - state["since"] >= t["health_s"]:
                    if lab.fault_for(task_def, {"unhealthy"}):
                        lab.STATE.targets[(tg.arn, ip)] = {
                            "state": "unhealthy", "reason": "Target.ResponseCodeMismatch",
                            "description": "Health checks failed with these codes: [502]"}
                        if task.lab_unhealthy_since is None:
                            task.lab_unhealthy_since = clock
                            lab.record("failure_signal", service=service.name, deployment=dep["id"],
                                       cause="unhealthy target", target=ip)
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
    # Forget drained targets of both groups.
    groups = {tg.arn: tg for tg, _ in lab.target_groups_of(service)}
    for key, state in list(lab.STATE.targets.items()):
        if key[0] in groups and state["state"] == "draining" and clock >= state.get("until", 0):
            del lab.STATE.targets[key]
            groups[key[0]].targets.pop(key[1], None)


def tick(backend, service):
    clock = time.time()
    tasks = tasks_of(backend, service)
    by_dep = {}
    for task in tasks:
        by_dep.setdefault(task.started_by, []).append(task)
    entry = live_entry(service)
    if entry is None:
        # A deployment made before the strategy was known (CreateService stores the configuration after
        # moto's create): give it its machine now.
        pending = next((e for e in reversed(entries_of(service)) if e["status"] == "IN_PROGRESS"), None)
        if pending is not None:
            init_machine(service, pending, None)
            entry = pending
    advance_tasks(backend, service, by_dep, clock)
    if entry is not None:
        step(backend, service, entry, by_dep, clock)
    for dep in service.deployments:
        dep_tasks = [task for task in by_dep.get(dep["id"], []) if task.last_status != "STOPPED"]
        dep["runningCount"] = sum(1 for task in dep_tasks if task.last_status == "RUNNING")
        dep["pendingCount"] = len(dep_tasks) - dep["runningCount"]
    service.running_count = sum(d["runningCount"] for d in service.deployments)
    service.pending_count = sum(d["pendingCount"] for d in service.deployments)


def dep_of(service, dep_id):
    return next((d for d in service.deployments if d["id"] == dep_id), None)


def live(by_dep, dep_id):
    return [task for task in by_dep.get(dep_id, []) if task.last_status != "STOPPED"]


def healthy(by_dep, dep_id):
    return [task for task in live(by_dep, dep_id) if task.lab_healthy_since is not None]


def step(backend, service, entry, by_dep, clock):
    L = entry["lab"]
    t_stage = timing("stage_s", 0.2)
    entry["updatedAt"] = clock
    if entry["status"] == "PENDING":
        if clock - L["since"] < t_stage / 2:
            return
        entry["status"] = "IN_PROGRESS"
        entry["startedAt"] = clock
        L["since"] = clock
    if entry["status"] == "STOP_REQUESTED":
        if clock - L["stop_at"] >= t_stage:
            entry.update(status="STOPPED", finishedAt=clock)
            lab.record("service_deployment_finished", service=service.name, status="STOPPED")
        return
    if entry["status"] in ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"):
        return roll_back(backend, service, entry, by_dep, clock)
    green = dep_of(service, entry["deploymentId"])
    if green is None:
        return
    cfg = L["config"]
    # Failure signals: the circuit breaker (green tasks failing) and deployment alarms during the bake.
    L["failures"] = green["failedTasks"]
    breaker = cfg.get("deploymentCircuitBreaker") or {}
    threshold = max(3, min(200, -(-green["desiredCount"] // 2)))
    if breaker.get("enable"):
        L["breaker"] = "MONITORING"
        if green["failedTasks"] >= threshold:
            L["breaker"] = "TRIGGERED"
            lab.record("failure_signal", service=service.name, deployment=green["id"], cause="circuit breaker")
            return fail(service, entry, "ECS deployment circuit breaker: tasks failed to start.",
                        breaker.get("rollback"), clock)
    alarms = cfg.get("alarms") or {}
    stage = L["plan"][L["i"]]
    if alarms.get("enable"):
        L["alarm"] = "MONITORING"
        alarm = lab.fault_for(backend.describe_task_definition(green["taskDefinition"]), {"alarm"})
        if alarm and stage["kind"] == "bake" and L["phase"] == "dwell" and \
                clock - L["since"] >= min(timing("alarm_after_s", 0.5), stage.get("dwell", 0) / 2):
            L["alarm"] = "TRIGGERED"
            L["alarm_triggered"] = list(alarms.get("alarmNames") or [])
            names = ", ".join(alarms.get("alarmNames") or ["alarm"])
            lab.record("failure_signal", service=service.name, deployment=green["id"], cause="alarm")
            return fail(service, entry, f"Service deployment failed: alarm(s) detected in ALARM state: {names}.",
                        alarms.get("rollback"), clock)
    # Keep green at its desired count (ECS relaunches a crash loop until something stops it).
    if L["i"] >= index_of(L, "scale"):
        for _ in range(green["desiredCount"] - len(live(by_dep, green["id"]))):
            lab.start_task(backend, service, green)

    while True:
        stage = L["plan"][L["i"]]
        if L["phase"] == "enter":
            enter(backend, service, entry, stage, by_dep, clock)
            L["phase"], L["since"] = "ready", clock
        if L["phase"] == "ready":
            if not ready(service, entry, stage, by_dep, clock):
                return
            L["phase"], L["since"] = "hooks", clock
            start_hooks(service, entry, stage, clock)
        if L["phase"] == "hooks":
            outcome = run_hooks(service, entry, clock)
            if outcome == "wait":
                return
            if outcome != "ok":
                return fail(service, entry, outcome, True, clock)
            L["phase"], L["since"] = "dwell", clock
        if L["phase"] == "dwell":
            if clock - L["since"] < max(t_stage, stage.get("dwell", 0.0)):
                return
            if L["i"] + 1 >= len(L["plan"]):
                return succeed(service, entry, clock)
            L["i"] += 1
            L["phase"], L["since"] = "enter", clock
            lab.record("service_deployment_stage", service=service.name, stage=L["plan"][L["i"]]["shown"])
            return


def index_of(L, kind):
    return next((n for n, s in enumerate(L["plan"]) if s["kind"] == kind), 0)


def enter(backend, service, entry, stage, by_dep, clock):
    L = entry["lab"]
    _lb, adv = advanced(service)
    adv = adv or {}
    if stage["kind"] == "scale":
        service.task_definition = entry["taskDefinition"]
    elif stage["kind"] == "test":
        L["test_weight"] = 100.0
        set_weights(service, adv.get("testListenerRule"), [(L["blue_tg"], 0), (L["green_tg"], 100)])
    elif stage["kind"] == "shift":
        L["prod_weight"] = stage["weight"]
        set_weights(service, adv.get("productionListenerRule"),
                    [(L["blue_tg"], 100.0 - stage["weight"]), (L["green_tg"], stage["weight"])])
        lab.record("traffic_shift", service=service.name, green=stage["weight"])
    elif stage["kind"] == "clean" and L["source"]:
        blue = L["source"]["deploymentId"]
        for task in live(by_dep, blue):
            lab.stop_task(service, dep_of(service, blue), task,
                          f"Scaling activity initiated by (deployment {entry['deploymentId']})")


def ready(service, entry, stage, by_dep, clock):
    if stage["kind"] == "scale":
        green = dep_of(service, entry["deploymentId"])
        return len(healthy(by_dep, green["id"])) >= green["desiredCount"]
    if stage["kind"] == "clean":
        L = entry["lab"]
        if L["source"] and live(by_dep, L["source"]["deploymentId"]):
            return False
        return not any(state["state"] == "draining" for (tg, _ip), state in lab.STATE.targets.items()
                       if tg == L["blue_tg"])
    return True


def start_hooks(service, entry, stage, clock):
    L = entry["lab"]
    L["hooks"] = [h for h in L["hooks"] if h["i"] != L["i"]]
    if not stage.get("hook") or L["creation"]:
        return
    for hook in L["config"].get("lifecycleHooks") or []:
        if stage["hook"] not in (hook.get("lifecycleStages") or []):
            continue
        kind = hook.get("targetType") or "AWS_LAMBDA"
        timeout = hook.get("timeoutConfiguration") or {}
        fault = None
        if kind == "AWS_LAMBDA":
            for f in FAULTS.hooks:
                if f["target"] in (hook.get("hookTargetArn") or "") and f.get("stage") in (None, "", stage["hook"]) \
                        and f.get("count", 1) > 0:
                    f["count"] = f.get("count", 1) - 1 if "count" in f else 1
                    fault = f["kind"]
                    break
        L["hooks"].append({
            "i": L["i"], "stage": stage["hook"], "hookId": rand_id("ecs-pause-" if kind == "PAUSE" else "ecs-hook-"),
            "targetType": kind, "targetArn": hook.get("hookTargetArn") if kind == "AWS_LAMBDA" else None,
            "status": "AWAITING_ACTION" if kind == "PAUSE" else "IN_PROGRESS",
            "expiresAt": clock + minutes(timeout.get("timeoutInMinutes") or 1440),
            "timeoutAction": timeout.get("action") or "ROLLBACK", "started": clock, "fault": fault,
        })
        lab.record("hook_started", service=service.name, stage=stage["hook"], kind=kind)


def run_hooks(service, entry, clock):
    """"wait", "ok", or the failure reason."""
    L = entry["lab"]
    result = "ok"
    for h in [h for h in L["hooks"] if h["i"] == L["i"]]:
        if h["status"] in ("IN_PROGRESS", "AWAITING_ACTION"):
            if clock >= h["expiresAt"]:
                h["status"] = "TIMED_OUT"
                lab.record("hook_timed_out", service=service.name, stage=h["stage"], hook=h["hookId"])
                if h["timeoutAction"] == "ROLLBACK":
                    return f"Lifecycle hook {h['hookId']} at {h['stage']} timed out."
                continue
            if h["targetType"] == "AWS_LAMBDA" and h["fault"] != "timeout" and clock - h["started"] >= timing("hook_s", 0.3):
                h["status"] = "FAILED" if h["fault"] == "fail" else "SUCCEEDED"
                if h["status"] == "FAILED":
                    return f"Lifecycle hook {h['targetArn']} at {h['stage']} returned FAILED."
                continue
            result = "wait"
        elif h["status"] == "FAILED":
            return f"Lifecycle hook {h['hookId']} at {h['stage']} was rolled back."
    return result


def fail(service, entry, reason, rollback, clock):
    L = entry["lab"]
    green = dep_of(service, entry["deploymentId"])
    if green is not None:
        green["rolloutState"] = "FAILED"
        green["rolloutStateReason"] = reason
        green["updatedAt"] = lab.now()
    lab.add_event(service, f"(service {service.name}) (deployment {entry['deploymentId']}) deployment failed: {reason}")
    lab.record("rollout_failed", service=service.name, deployment=entry["deploymentId"], reason=reason)
    entry["statusReason"] = reason
    if rollback:
        request_rollback(service, entry, reason, clock)
    else:
        stop(entry, clock)


def stop(entry, clock):
    entry.update(status="STOP_REQUESTED", stoppedAt=clock, updatedAt=clock)
    entry["lab"]["stop_at"] = clock


def request_rollback(service, entry, reason, clock):
    L = entry["lab"]
    entry.update(status="ROLLBACK_REQUESTED", updatedAt=clock)
    entry.setdefault("statusReason", reason)
    L["rb_at"] = clock
    entry["rollback"] = {"reason": reason, "startedAt": clock,
                         "serviceRevisionArn": (L["source"] or {}).get("targetServiceRevisionArn")}
    lab.record("rollback_requested", service=service.name, arn=entry["serviceDeploymentArn"], reason=reason)


def restore_traffic(service, L):
    _lb, adv = advanced(service)
    adv = adv or {}
    if L["prod_weight"] > 0:
        set_weights(service, adv.get("productionListenerRule"), [(L["blue_tg"], 100), (L["green_tg"], 0)])
    if L["test_weight"] > 0:
        set_weights(service, adv.get("testListenerRule"), [(L["blue_tg"], 100), (L["green_tg"], 0)])
    L["prod_weight"] = L["test_weight"] = 0.0


def roll_back(backend, service, entry, by_dep, clock):
    L = entry["lab"]
    t_stage = timing("stage_s", 0.2)
    if entry["status"] == "ROLLBACK_REQUESTED":
        if clock - L["rb_at"] < t_stage:
            return
        entry["status"] = "ROLLBACK_IN_PROGRESS"
        if L["source"] is None:
            # Nothing to roll back to (the service's first deployment).
            entry.update(status="ROLLBACK_FAILED", finishedAt=clock,
                         statusReason=entry.get("statusReason", "") + " No previous service revision to roll back to.")
            return
        restore_traffic(service, L)
        service.task_definition = L["source"]["taskDefinition"]
        green_id = entry["deploymentId"]
        for task in live(by_dep, green_id):
            lab.stop_task(service, None, task, f"Scaling activity initiated by (deployment {green_id}) rollback")
        blue = dep_of(service, L["source"]["deploymentId"])
        if blue is not None:
            blue["status"] = "PRIMARY"
            blue["updatedAt"] = lab.now()
        lab.add_event(service, f"(service {service.name}) rolling back to task definition {service.task_definition}.")
        return
    blue = dep_of(service, L["source"]["deploymentId"])
    if blue is None:
        entry.update(status="ROLLBACK_FAILED", finishedAt=clock)
        return
    for _ in range(blue["desiredCount"] - len(live(by_dep, blue["id"]))):
        lab.start_task(backend, service, blue)
    draining = any(state["state"] == "draining" for (tg, _ip), state in lab.STATE.targets.items() if tg == L["green_tg"])
    if live(by_dep, entry["deploymentId"]) or draining or len(healthy(by_dep, blue["id"])) < blue["desiredCount"]:
        return
    if clock - L["rb_at"] < 2 * t_stage:
        return
    service.deployments[:] = [blue]
    blue["status"], blue["rolloutState"] = "PRIMARY", "COMPLETED"
    entry.update(status="ROLLBACK_SUCCESSFUL", finishedAt=clock, updatedAt=clock)
    if L["breaker"] == "MONITORING":
        L["breaker"] = "MONITORING_COMPLETE"
    if L["alarm"] == "MONITORING":
        L["alarm"] = "MONITORING_COMPLETE"
    lab.add_event(service, f"(service {service.name}) has reached a steady state.")
    lab.record("service_deployment_finished", service=service.name, status="ROLLBACK_SUCCESSFUL")


def succeed(service, entry, clock):
    L = entry["lab"]
    green = dep_of(service, entry["deploymentId"])
    service.deployments[:] = [green]
    green["rolloutState"] = "COMPLETED"
    green["rolloutStateReason"] = f"ECS deployment {green['id']} completed."
    green["updatedAt"] = lab.now()
    if L["green_tg"]:
        PROD_TG[service.arn] = L["green_tg"]
    lab.STATE.last_completed[service.arn] = green["taskDefinition"]
    entry.update(status="SUCCESSFUL", finishedAt=clock, updatedAt=clock)
    for key in ("breaker", "alarm"):
        if L[key] == "MONITORING":
            L[key] = "MONITORING_COMPLETE"
    lab.add_event(service, f"(service {service.name}) (deployment {green['id']}) deployment completed.")
    lab.add_event(service, f"(service {service.name}) has reached a steady state.")
    lab.record("service_deployment_finished", service=service.name, status="SUCCESSFUL")
    lab.record("rollout_completed", service=service.name, deployment=green["id"], task_definition=green["taskDefinition"])


# --------------------------------------------------------------------------- the API


def summary(service, entry, dep_id, weights):
    dep = dep_of(service, dep_id) if dep_id else None
    out = {"arn": entry["targetServiceRevisionArn"] if entry else None,
           "requestedTaskCount": dep["desiredCount"] if dep else 0,
           "runningTaskCount": dep["runningCount"] if dep else 0,
           "pendingTaskCount": dep["pendingCount"] if dep else 0}
    if weights is not None:
        out["requestedTestTrafficWeight"], out["requestedProductionTrafficWeight"] = weights
    return out


def services_by_arn():
    found = {}
    for _account, regions in list(ecs_models.ecs_backends.items()):
        for _region, backend in list(regions.items()):
            for service in backend.services.values():
                found[service.arn] = service
    return found


def all_entries():
    return [e for history in lab.STATE.history.values() for e in history]


def describe_deployment(service, e):
    L = e.get("lab")
    keys = ("serviceDeploymentArn", "serviceArn", "clusterArn", "createdAt", "startedAt", "updatedAt",
            "finishedAt", "stoppedAt", "status", "statusReason", "rollback")
    out = {k: e[k] for k in keys if e.get(k) is not None}
    history = entries_of(service)
    if L:
        source = entry_for_dep(service, L["source"]["deploymentId"]) if L["source"] else None
        tw, pw = L["test_weight"], L["prod_weight"]
        out["sourceServiceRevisions"] = [summary(service, source, source["deploymentId"], (100.0 - tw, 100.0 - pw))] \
            if source else []
        out["targetServiceRevision"] = summary(service, e, e["deploymentId"], (tw, pw))
        out["lifecycleStage"] = L["plan"][L["i"]]["shown"]
        out["lifecycleHookDetails"] = [
            {k: h[k] for k in ("hookId", "targetType", "targetArn", "status", "expiresAt", "timeoutAction")
             if h.get(k) is not None} for h in L["hooks"] if h["i"] == L["i"]]
        cfg = L["config"]
        breaker, alarm = L["breaker"], L["alarm"]
    else:
        # A ROLLING deployment: no stage, no weights (as AWS reports them).
        before = [x for x in history if x["createdAt"] < e["createdAt"] and x["status"] == "SUCCESSFUL"]
        out["sourceServiceRevisions"] = [summary(service, before[-1], before[-1]["deploymentId"], None)] if before else []
        out["targetServiceRevision"] = summary(service, e, e["deploymentId"], None)
        cfg = getattr(service, "deployment_configuration", None) or {}
        breaker = alarm = None
        dep = dep_of(service, e["deploymentId"])
        if e["status"] == "IN_PROGRESS" and dep is not None:
            breaker = alarm = "MONITORING"
    out["deploymentConfiguration"] = cfg
    cb = cfg.get("deploymentCircuitBreaker") or {}
    dep = dep_of(service, e["deploymentId"])
    out["deploymentCircuitBreaker"] = {
        "status": (breaker or ("MONITORING_COMPLETE" if e["status"] not in ACTIVE else "MONITORING"))
        if cb.get("enable") else "DISABLED",
        "failureCount": (L or {}).get("failures", dep["failedTasks"] if dep else 0),
        "threshold": max(3, min(200, -(-(service.desired_count or 1) // 2)))}
    al = cfg.get("alarms") or {}
    out["alarms"] = {"status": (alarm or ("MONITORING_COMPLETE" if e["status"] not in ACTIVE else "MONITORING"))
                     if al.get("enable") else "DISABLED",
                     "alarmNames": list(al.get("alarmNames") or []),
                     "triggeredAlarmNames": list((L or {}).get("alarm_triggered") or [])}
    return out


def describe_revision(service, e):
    backend = ecs_models.ecs_backends[service._account_id][service.region_name]
    out = {"serviceRevisionArn": e["targetServiceRevisionArn"], "serviceArn": e["serviceArn"],
           "clusterArn": e["clusterArn"], "taskDefinition": e["taskDefinition"], "createdAt": e["createdAt"]}
    if service is None:
        return out
    out["launchType"] = service.launch_type
    if service.network_configuration:
        out["networkConfiguration"] = service.network_configuration
    out["loadBalancers"] = list(service.load_balancers or [])
    try:
        td = backend.describe_task_definition(e["taskDefinition"])
        out["containerImages"] = [{"containerName": c.get("name"), "image": c.get("image")}
                                  for c in td.container_definitions]
    except Exception:
        pass
    L = e.get("lab")
    resolved = []
    if L:
        _lb, adv = advanced(service)
        if L["green_tg"]:
            resolved.append({"targetGroupArn": L["green_tg"],
                             **({"productionListenerRule": adv["productionListenerRule"]}
                                if adv and adv.get("productionListenerRule") else {})})
    else:
        for lb in service.load_balancers or []:
            if lb.get("targetGroupArn"):
                resolved.append({"targetGroupArn": lb["targetGroupArn"]})
    if resolved:
        out["resolvedConfiguration"] = {"loadBalancers": resolved}
    return out


def service_history(action, request, _orig=None):
    """ListServiceDeployments and DescribeServiceRevisions (ecs_lab's middleware answers these two)."""
    services = services_by_arn()
    if action == "ListServiceDeployments":
        name, cluster = request["service"].split("/")[-1], request.get("cluster", "default").split("/")[-1]
        wanted = set(request.get("status") or [])
        created = request.get("createdAt") or {}
        found = [e for e in all_entries() if e["serviceArn"].split("/")[-1] == name
                 and e["clusterArn"].split("/")[-1] == cluster and (not wanted or e["status"] in wanted)
                 and (created.get("after") is None or e["createdAt"] >= float(created["after"]))
                 and (created.get("before") is None or e["createdAt"] <= float(created["before"]))]
        found = [e for e in found if not e.get("lab_rollback_of")]
        found.sort(key=lambda e: e["createdAt"], reverse=True)
        keys = ("serviceDeploymentArn", "serviceArn", "clusterArn", "createdAt", "startedAt", "finishedAt",
                "targetServiceRevisionArn", "status", "statusReason")
        out = {"serviceDeployments": [{k: e[k] for k in keys if e.get(k) is not None} for e in found]}
        if hasattr(lab, "faults") and hasattr(lab.faults, "page"):
            return lab.faults.page(request, out, "serviceDeployments", 20, "ListServiceDeployments")
        return out
    arns = request.get("serviceRevisionArns") or []
    revisions = [describe_revision(services.get(e["serviceArn"]), e) for e in all_entries()
                 if e["targetServiceRevisionArn"] in arns]
    missing = [{"arn": a, "reason": "MISSING"} for a in arns if a not in {r["serviceRevisionArn"] for r in revisions}]
    return {"serviceRevisions": revisions, "failures": missing}


def find_entry(arn):
    if not arn:
        raise LabError("InvalidParameterException", "serviceDeploymentArn is required.")
    for e in all_entries():
        if e["serviceDeploymentArn"] == arn:
            service = services_by_arn().get(e["serviceArn"])
            if service is not None:
                return service, e
    raise LabError("ServiceDeploymentNotFoundException", f"The service deployment {arn} does not exist.")


def api_describe(self):
    arns = self._get_param("serviceDeploymentArns") or []
    services = services_by_arn()
    found, failures = [], []
    for arn in arns:
        e = next((x for x in all_entries() if x["serviceDeploymentArn"] == arn), None)
        if e is None or e["serviceArn"] not in services:
            failures.append({"arn": arn, "reason": "MISSING"})
        else:
            found.append(describe_deployment(services[e["serviceArn"]], e))
    return json.dumps({"serviceDeployments": found, "failures": failures}, default=str)


def api_stop(self):
    service, e = find_entry(self._get_param("serviceDeploymentArn"))
    stop_type = self._get_param("stopType") or "ROLLBACK"
    if stop_type not in ("ROLLBACK", "ABORT"):
        raise LabError("InvalidParameterException", f"Invalid stopType {stop_type}.")
    if e["status"] not in ACTIVE:
        raise LabError("ConflictException", f"The service deployment is {e['status']} and cannot be stopped.")
    clock = time.time()
    lab.record("api_stop_service_deployment", service=service.name, stop_type=stop_type, status=e["status"])
    if "lab" not in e:
        return stop_rolling(service, e, stop_type, clock)
    if e["status"] in ("PENDING", "IN_PROGRESS"):
        if stop_type == "ROLLBACK":
            reason = "Service deployment rolled back: stop requested (StopServiceDeployment ROLLBACK)."
            green = dep_of(service, e["deploymentId"])
            if green is not None:
                green["rolloutState"], green["rolloutStateReason"] = "FAILED", reason
            e["statusReason"] = reason
            request_rollback(service, e, reason, clock)
        else:
            e["statusReason"] = "Service deployment stopped (StopServiceDeployment ABORT)."
            stop(e, clock)
    return json.dumps({"serviceDeploymentArn": e["serviceDeploymentArn"]})


def stop_rolling(service, e, stop_type, clock):
    """A ROLLING deployment in flight: ROLLBACK asks for a deployment of the last successful task
    definition (as ecs_lab's circuit-breaker rollback does). As on AWS the answer only says the stop
    was requested: the entry reads ROLLBACK_REQUESTED and the rollback deployment appears
    `rolling_stop_lag_s` later (`begin_rolling_rollback`); it reads ROLLBACK_SUCCESSFUL once that
    deployment completes."""
    dep = dep_of(service, e["deploymentId"])
    target = lab.STATE.last_completed.get(service.arn)
    if stop_type == "ABORT" or not target or dep is None:
        e.update(status="STOPPED", finishedAt=clock, stoppedAt=clock,
                 statusReason="Service deployment stopped (StopServiceDeployment).")
        return json.dumps({"serviceDeploymentArn": e["serviceDeploymentArn"]})
    if e["status"] in ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"):
        return json.dumps({"serviceDeploymentArn": e["serviceDeploymentArn"]})
    reason = "Service deployment rolled back: stop requested (StopServiceDeployment ROLLBACK)."
    prev = next((x for x in reversed(entries_of(service)) if x["status"] == "SUCCESSFUL"), None)
    e.update(status="ROLLBACK_REQUESTED", statusReason=reason, updatedAt=clock,
             rollback={"reason": reason, "startedAt": clock,
                       "serviceRevisionArn": prev["targetServiceRevisionArn"] if prev else None})
    e["lab_stop"] = {"at": clock, "target": target}
    return json.dumps({"serviceDeploymentArn": e["serviceDeploymentArn"]})


def begin_rolling_rollback(service, clock):
    """A rolling service's requested rollbacks, once `rolling_stop_lag_s` (default 1 s) has passed:
    our deployment FAILED, a new deployment of the recorded task definition."""
    for e in entries_of(service):
        stop_ = e.get("lab_stop")
        lag = FAULTS.stop_lag.get(service.name, timing("rolling_stop_lag_s", 1.0))
        if not stop_ or e["status"] != "ROLLBACK_REQUESTED" or clock - stop_["at"] < lag:
            continue
        e["status"] = "ROLLBACK_IN_PROGRESS"
        dep = dep_of(service, e["deploymentId"])
        if dep is not None:
            dep["rolloutState"], dep["rolloutStateReason"] = "FAILED", e["statusReason"]
        target = stop_["target"]
        service.task_definition = target
        lab.add_event(service, f"(service {service.name}) rolling back to task definition {target}.")
        lab.new_deployment(service, target)
        newest = entries_of(service)[-1]
        newest["lab_rollback_of"] = e["serviceDeploymentArn"]


def finish_history(service, dep_id, status, reason=None, _orig=None):
    _orig(service, dep_id, status, reason)
    for e in entries_of(service):
        if e["deploymentId"] == dep_id and e.get("lab_rollback_of"):
            for orig in entries_of(service):
                if orig["serviceDeploymentArn"] == e["lab_rollback_of"] and orig["status"] == "ROLLBACK_IN_PROGRESS":
                    orig.update(status="ROLLBACK_SUCCESSFUL" if status == "SUCCESSFUL" else "ROLLBACK_FAILED",
                                finishedAt=time.time())


def api_continue(self):
    service, e = find_entry(self._get_param("serviceDeploymentArn"))
    hook_id = self._get_param("hookId")
    action = self._get_param("action") or "CONTINUE"
    if action not in ("CONTINUE", "ROLLBACK"):
        raise LabError("InvalidParameterException", f"Invalid action {action}.")
    if not hook_id:
        raise LabError("InvalidParameterException", "hookId is required.")
    L = e.get("lab")
    hook = next((h for h in (L or {}).get("hooks", []) if h["hookId"] == hook_id), None)
    if hook is None:
        raise LabError("InvalidParameterException", f"The lifecycle hook {hook_id} does not exist in this deployment.")
    if e["status"] != "IN_PROGRESS" or hook["status"] != "AWAITING_ACTION":
        raise LabError("InvalidParameterException",
                       f"The lifecycle hook {hook_id} is {hook['status']} and the deployment is {e['status']}; "
                       "only a hook AWAITING_ACTION in an IN_PROGRESS deployment can be continued.")
    lab.record("api_continue_service_deployment", service=service.name, action=action, stage=hook["stage"])
    if action == "CONTINUE":
        hook["status"] = "SUCCEEDED"
    else:
        hook["status"] = "FAILED"
        reason = f"Service deployment rolled back: ContinueServiceDeployment ROLLBACK at {hook['stage']}."
        fail(service, e, reason, True, time.time())
    return json.dumps({"serviceDeploymentArn": e["serviceDeploymentArn"]})


# --------------------------------------------------------------------------- DescribeServices fields


def _current_service_deployment(self):
    if self.name in FAULTS.hide_current:
        return None
    entries = lab.STATE.history.get(self.arn) if lab else None
    entries = [e for e in entries or [] if not e.get("lab_rollback_of")]
    return max(entries, key=lambda e: e["createdAt"])["serviceDeploymentArn"] if entries else None


def _current_service_revisions(self):
    out = []
    for dep in getattr(self, "deployments", None) or []:
        e = entry_for_dep(self, dep["id"]) if lab else None
        if e is not None:
            out.append({"arn": e["targetServiceRevisionArn"], "requestedTaskCount": dep.get("desiredCount", 0),
                        "runningTaskCount": dep.get("runningCount", 0), "pendingTaskCount": dep.get("pendingCount", 0)})
    return out


# --------------------------------------------------------------------------- configuration checks


def validate(cfg, controller):
    """What ECS rejects at Create/UpdateService (InvalidParameterException)."""
    if not cfg:
        return
    strategy = cfg.get("strategy") or "ROLLING"
    if strategy not in ("ROLLING",) + STRATEGIES:
        raise LabError("InvalidParameterException", f"Invalid deployment strategy {strategy}.")
    if strategy in STRATEGIES and (controller or {}).get("type", "ECS") != "ECS":
        raise LabError("InvalidParameterException", f"The {strategy} strategy requires the ECS deployment controller.")
    if strategy == "BLUE_GREEN" and cfg.get("bakeTimeInMinutes") is None:
        raise LabError("InvalidParameterException", "bakeTimeInMinutes must be provided for BLUE_GREEN deployments.")
    if cfg.get("linearConfiguration") and strategy != "LINEAR":
        raise LabError("InvalidParameterException", "linearConfiguration is only valid with the LINEAR strategy.")
    if cfg.get("canaryConfiguration") and strategy != "CANARY":
        raise LabError("InvalidParameterException", "canaryConfiguration is only valid with the CANARY strategy.")
    for hook in cfg.get("lifecycleHooks") or []:
        kind = hook.get("targetType") or "AWS_LAMBDA"
        stages = hook.get("lifecycleStages") or []
        if not stages or any(s not in HOOK_STAGES for s in stages):
            raise LabError("InvalidParameterException", f"Invalid lifecycleStages {stages}.")
        if kind == "PAUSE" and set(stages) & {"TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"}:
            raise LabError("InvalidParameterException",
                           "PAUSE lifecycle hooks can't be used with the TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT stages.")
        if kind == "AWS_LAMBDA" and not hook.get("hookTargetArn"):
            raise LabError("InvalidParameterException", "hookTargetArn is required for AWS_LAMBDA lifecycle hooks.")


def _checked(orig):
    def response(self):
        validate(self._get_param("deploymentConfiguration"), self._get_param("deploymentController"))
        return orig(self)
    return response


# --------------------------------------------------------------------------- /_lab/ additions


def lab_api(environ, start_response, path, body, _orig=None):
    if path == "/_lab/hook-fault":
        with lab.LOCK:
            FAULTS.hooks.append(json.loads(body or b"{}"))
        return lab.json_response(start_response, {"ok": True})
    if path == "/_lab/stop-lag":
        doc = json.loads(body or b"{}")
        with lab.LOCK:
            FAULTS.stop_lag[doc["service"]] = float(doc["seconds"])
        return lab.json_response(start_response, {"ok": True})
    if path == "/_lab/hide-current-deployment":
        with lab.LOCK:
            FAULTS.hide_current.add(json.loads(body or b"{}")["service"])
        return lab.json_response(start_response, {"ok": True})
    if path == "/_lab/service-deployments":
        # Everything the lab holds about service deployments, for debugging a test.
        from urllib.parse import parse_qs
        name = (parse_qs(environ.get("QUERY_STRING", "")).get("service") or [""])[0]
        with lab.LOCK:
            services = services_by_arn()
            out = [describe_deployment(services[e["serviceArn"]], e) for e in all_entries()
                   if e["serviceArn"] in services and (not name or e["serviceArn"].endswith("/" + name))]
        return lab.json_response(start_response, out)
    if path in ("/_lab/reset", "/_lab/clear-faults"):
        with lab.LOCK:
            FAULTS.__init__()
            if path == "/_lab/reset":
                PROD_TG.clear()
    return _orig(environ, start_response, path, body)


def install(module):
    """Called once by ecs_lab.py with itself (it runs as __main__, so it can't be imported back)."""
    global lab
    lab = module
    for name, fn in (("tick_service", tick_service), ("new_deployment", new_deployment),
                     ("target_groups_of", target_groups_of), ("service_history", service_history),
                     ("finish_history", finish_history), ("lab_api", lab_api)):
        lab.wrap(name, fn)
    EC2ContainerServiceResponse.describe_service_deployments = api_describe
    EC2ContainerServiceResponse.stop_service_deployment = api_stop
    EC2ContainerServiceResponse.continue_service_deployment = api_continue
    EC2ContainerServiceResponse.create_service = _checked(EC2ContainerServiceResponse.create_service)
    EC2ContainerServiceResponse.update_service = _checked(EC2ContainerServiceResponse.update_service)
    ecs_models.Service.current_service_deployment = property(_current_service_deployment)
    ecs_models.Service.current_service_revisions = property(_current_service_revisions)
