"""Self-check of the lab's deployment strategies (lab/strategies.py) through boto3.

  .lab/venv/bin/python lab/strategies_check.py [--endpoint http://127.0.0.1:5255] [--only NAME_SUBSTRING]

Drives each strategy's happy path and each fault (unhealthy green, crashing green, green that cannot pull,
an alarm during the bake, a PAUSE hook continued / rolled back / timing out, a Lambda hook failing or
timing out, a user stop with ROLLBACK and ABORT, a superseding deployment), plus a rolling service,
and exits 1 on any mismatch. Every case uses its own cluster, service and image, arms only faults
scoped to its own image or hook ARN, and never resets the lab or changes its timing, so it may run
against a lab that tests are using. The lab must be running (lab/up, or lab/ecs_lab.py --port N).
"""

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time
import traceback
import urllib.request
import uuid

import boto3
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5055")
TERMINAL = {"SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"}
ORDER = ["RECONCILE_SERVICE", "PRE_SCALE_UP", "SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT",
         "POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"]


class Mismatch(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Mismatch(what)


def client(name):
    return boto3.client(name, endpoint_url=ENDPOINT, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def lab(path, body):
    req = urllib.request.Request(f"{ENDPOINT}/_lab/{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=10).read())


def scenario(*args):
    out = subprocess.run([sys.executable, os.path.join(HERE, "scenario.py"), *args], capture_output=True, text=True,
                         env={**os.environ, "AWS_ENDPOINT_URL": ENDPOINT}, timeout=60)
    if out.returncode != 0:
        raise Mismatch(f"scenario.py {' '.join(args)} failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout)


class Case:
    def __init__(self, name, strategy, *create_args):
        self.name = name
        self.cluster = f"chk-{uuid.uuid4().hex[:6]}"
        self.service = f"{name.replace('_', '-')}-{uuid.uuid4().hex[:4]}"[:28]
        self.ecs, self.elb = client("ecs"), client("elbv2")
        args = ["create", "--cluster", self.cluster, "--service", self.service, "--image",
                f"registry.lab/{self.service}:v1"]
        if strategy:
            args += ["--strategy", strategy]
        if strategy in EXTRA and not any(a.startswith(("--step", "--canary")) for a in create_args):
            create_args = EXTRA[strategy] + tuple(create_args)
        self.made = scenario(*args, *create_args)
        self.stages, self.prod_weights, self.test_weights, self.statuses = [], [], [], []

    def svc(self):
        return self.ecs.describe_services(cluster=self.cluster, services=[self.service])["services"][0]

    def deploy(self, tag, fault=None, **fault_args):
        image = f"registry.lab/{self.service}:{tag}"
        if fault:
            lab("task-fault", {"image": image, "kind": fault, **fault_args})
        before = self.svc()
        td = self.ecs.describe_task_definition(taskDefinition=before["taskDefinition"])["taskDefinition"]
        defs = td["containerDefinitions"]
        defs[0]["image"] = image
        new = self.ecs.register_task_definition(
            family=td["family"], networkMode=td["networkMode"], requiresCompatibilities=td["requiresCompatibilities"],
            cpu=td["cpu"], memory=td["memory"], containerDefinitions=defs)["taskDefinition"]["taskDefinitionArn"]
        answer = self.ecs.update_service(cluster=self.cluster, service=self.service, taskDefinition=new)["service"]
        arn = answer.get("currentServiceDeployment")
        expect(arn and arn != before.get("currentServiceDeployment"),
               f"UpdateService answered currentServiceDeployment {arn} (before: {before.get('currentServiceDeployment')})")
        return arn, before["taskDefinition"], new

    def sd(self, arn):
        got = self.ecs.describe_service_deployments(serviceDeploymentArns=[arn])
        expect(len(got["serviceDeployments"]) == 1, f"DescribeServiceDeployments found {arn}: {got}")
        return got["serviceDeployments"][0]

    def weights(self, rule):
        if not rule:
            return None
        actions = self.elb.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"]
        return {g["TargetGroupArn"]: g["Weight"] for a in actions for g in a.get("ForwardConfig", {}).get("TargetGroups", [])}

    def watch(self, arn, until, timeout=40):
        """Polls until until(sd) is true; records stages, statuses and production weights seen."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            sd = self.sd(arn)
            if sd.get("lifecycleStage") and (not self.stages or self.stages[-1] != sd["lifecycleStage"]):
                self.stages.append(sd["lifecycleStage"])
            if not self.statuses or self.statuses[-1] != sd["status"]:
                self.statuses.append(sd["status"])
            w = sd["targetServiceRevision"].get("requestedProductionTrafficWeight")
            if w is not None and (not self.prod_weights or self.prod_weights[-1] != w):
                self.prod_weights.append(w)
            if until(sd):
                return sd
            time.sleep(0.05)
        raise Mismatch(f"timed out; stages {self.stages}, statuses {self.statuses}, last {json.dumps(sd, default=str)[:600]}")

    def done(self, arn, timeout=40):
        return self.watch(arn, lambda sd: sd["status"] in TERMINAL, timeout)

    def revision_tg(self, sd):
        rev = self.ecs.describe_service_revisions(serviceRevisionArns=[sd["targetServiceRevision"]["arn"]])["serviceRevisions"][0]
        return rev["resolvedConfiguration"]["loadBalancers"][0]["targetGroupArn"]

    def green_ips_healthy_in(self, tg):
        health = self.elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
        return [h["Target"]["Id"] for h in health if h["TargetHealth"]["State"] == "healthy"]

    def rolled_back(self, arn, old_td, reason_has):
        sd = self.done(arn)
        expect(sd["status"] == "ROLLBACK_SUCCESSFUL", f"status {sd['status']} ({sd.get('statusReason')}), want ROLLBACK_SUCCESSFUL")
        expect(reason_has.lower() in (sd.get("statusReason") or "").lower(),
               f"statusReason {sd.get('statusReason')!r} does not name {reason_has!r}")
        expect(sd.get("rollback", {}).get("serviceRevisionArn") == sd["sourceServiceRevisions"][0]["arn"],
               f"rollback {sd.get('rollback')} does not name the source revision")
        svc = self.svc()
        expect(svc["taskDefinition"] == old_td, f"service on {svc['taskDefinition']}, want {old_td}")
        expect(len(svc["deployments"]) == 1 and svc["deployments"][0]["rolloutState"] == "COMPLETED",
               f"deployments after rollback: {svc['deployments']}")
        blue = self.made["target_group_arn"]
        pw = self.weights(self.made.get("production_listener_rule"))
        expect(pw is None or pw.get(blue) == 100, f"production weights after rollback {pw}")
        green = self.made.get("alternate_target_group_arn")
        if green:
            left = self.elb.describe_target_health(TargetGroupArn=green)["TargetHealthDescriptions"]
            expect(not left, f"green targets left after rollback: {left}")
        running = self.ecs.list_tasks(cluster=self.cluster, serviceName=self.service)["taskArns"]
        tasks = self.ecs.describe_tasks(cluster=self.cluster, tasks=running)["tasks"] if running else []
        expect(all(t["taskDefinitionArn"] == old_td for t in tasks), "a green task still runs after rollback")
        return sd


# --------------------------------------------------------------------------- the cases


def happy(strategy, *extra):
    def run():
        c = Case(f"ok-{strategy.lower()}", strategy, "--breaker", "rollback", *extra)
        blue, green = c.made["target_group_arn"], c.made["alternate_target_group_arn"]
        first = c.sd(c.made["service_deployment_arn"])
        expect(first["status"] == "SUCCESSFUL", f"creation deployment {first['status']}")
        arn, old_td, new_td = c.deploy("v2")
        seen_bake = {}

        def until(sd):
            if sd.get("lifecycleStage") == "BAKE_TIME" and not seen_bake:
                seen_bake["prod"] = c.weights(c.made["production_listener_rule"])
                seen_bake["test"] = c.weights(c.made["test_listener_rule"])
                seen_bake["tg"] = c.revision_tg(sd)
                seen_bake["healthy"] = c.green_ips_healthy_in(green)
                seen_bake["blue_running"] = sd["sourceServiceRevisions"][0]["runningTaskCount"]
            return sd["status"] in TERMINAL
        sd = c.watch(arn, until)
        expect(sd["status"] == "SUCCESSFUL", f"status {sd['status']} ({sd.get('statusReason')})")
        positions = [ORDER.index(s) for s in c.stages]
        expect(positions == sorted(positions), f"stages out of order: {c.stages}")
        for must in ("SCALE_UP", "PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"):
            expect(must in c.stages, f"stage {must} never seen: {c.stages}")
        expect(c.statuses[0] in ("PENDING", "IN_PROGRESS") and c.statuses[-1] == "SUCCESSFUL", f"statuses {c.statuses}")
        expect(seen_bake, "BAKE_TIME never seen")
        expect(seen_bake["tg"] == green, f"revision's target group {seen_bake['tg']}, want the alternate {green}")
        expect(seen_bake["prod"] == {blue: 0, green: 100}, f"production weights in bake {seen_bake['prod']}")
        expect(seen_bake["test"] == {blue: 0, green: 100}, f"test weights in bake {seen_bake['test']}")
        expect(len(seen_bake["healthy"]) == 2, f"healthy green targets in bake {seen_bake['healthy']}")
        expect(seen_bake["blue_running"] == 2, f"blue tasks running in bake: {seen_bake['blue_running']}")
        expect(c.svc()["taskDefinition"] == new_td, "service not on the new task definition")
        expect(not c.elb.describe_target_health(TargetGroupArn=blue)["TargetHealthDescriptions"], "blue targets left")
        expect(sd["deploymentCircuitBreaker"]["status"] == "MONITORING_COMPLETE", f"breaker {sd['deploymentCircuitBreaker']}")
        listed = c.ecs.list_service_deployments(cluster=c.cluster, service=c.service)["serviceDeployments"]
        expect([b["serviceDeploymentArn"] for b in listed][:1] == [arn] and len(listed) == 2, f"listing {listed}")
        # The next deployment alternates: green is the first group again.
        arn2, _, _ = c.deploy("v3")
        sd2 = c.done(arn2)
        expect(sd2["status"] == "SUCCESSFUL", f"second deployment {sd2['status']}")
        expect(c.revision_tg(sd2) == blue, "the second deployment's tasks are not in the first target group")
        expect(c.weights(c.made["production_listener_rule"]) == {blue: 100, green: 0}, "weights after 2nd deployment")
        return {"stages": c.stages, "production_weights": c.prod_weights}
    return run


def weights_case(strategy, expected, *extra):
    def run():
        c = Case(f"w-{strategy.lower()}", strategy, "--breaker", "rollback", *extra)
        arn, _, _ = c.deploy("v2")
        sd = c.done(arn)
        expect(sd["status"] == "SUCCESSFUL", f"status {sd['status']}")
        expect(c.prod_weights == expected, f"production weights seen {c.prod_weights}, want {expected}")
        return {"production_weights": c.prod_weights}
    return run


def fault_case(strategy, kind, reason):
    def run():
        c = Case(f"{kind[:6]}-{strategy.lower()[:3]}", strategy, "--breaker", "rollback", "--alarms", "rollback")
        arn, old_td, _ = c.deploy("v2", kind)
        sd = c.rolled_back(arn, old_td, reason)
        expect("ROLLBACK_IN_PROGRESS" in c.statuses or "ROLLBACK_REQUESTED" in c.statuses, f"statuses {c.statuses}")
        if kind == "alarm":
            expect("BAKE_TIME" in c.stages, f"alarm fired outside the bake: {c.stages}")
            expect(sd["alarms"]["status"] == "TRIGGERED" and sd["alarms"]["triggeredAlarmNames"] == ["web-5xx"],
                   f"alarms {sd['alarms']}")
        else:
            expect(sd["deploymentCircuitBreaker"]["status"] == "TRIGGERED" and sd["deploymentCircuitBreaker"]["failureCount"] >= 3,
                   f"breaker {sd['deploymentCircuitBreaker']}")
        return {"statuses": c.statuses, "reason": sd["statusReason"]}
    return run


def pause_case(strategy, action):
    def run():
        c = Case(f"p{action[:3].lower()}-{strategy.lower()[:3]}", strategy, "--pause-hook", "POST_TEST_TRAFFIC_SHIFT")
        blue, green = c.made["target_group_arn"], c.made["alternate_target_group_arn"]
        arn, old_td, new_td = c.deploy("v2")
        sd = c.watch(arn, lambda sd: any(h["status"] == "AWAITING_ACTION" for h in sd.get("lifecycleHookDetails", [])))
        expect(sd["status"] == "IN_PROGRESS" and sd["lifecycleStage"] == "POST_TEST_TRAFFIC_SHIFT", f"paused at {sd['lifecycleStage']}")
        hook = sd["lifecycleHookDetails"][0]
        expect(hook["targetType"] == "PAUSE" and hook["hookId"].startswith("ecs-pause-") and "targetArn" not in hook
               and hook["timeoutAction"] == "ROLLBACK" and hook.get("expiresAt"), f"hook {hook}")
        expect(c.weights(c.made["test_listener_rule"]) == {blue: 0, green: 100}, "test traffic not on green while paused")
        expect(c.weights(c.made["production_listener_rule"]) == {blue: 100, green: 0}, "production moved while paused")
        time.sleep(0.5)
        expect(c.sd(arn)["status"] == "IN_PROGRESS", "the pause did not hold")
        try:
            c.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId="ecs-pause-nope", action="CONTINUE")
            raise Mismatch("ContinueServiceDeployment accepted an unknown hook")
        except ClientError as err:
            expect(err.response["Error"]["Code"] == "InvalidParameterException", f"unknown hook: {err}")
        c.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"], action=action)
        if action == "CONTINUE":
            sd = c.done(arn)
            expect(sd["status"] == "SUCCESSFUL", f"status {sd['status']}")
            expect(c.svc()["taskDefinition"] == new_td, "not on the new task definition")
        else:
            c.rolled_back(arn, old_td, "ContinueServiceDeployment ROLLBACK")
        return {"stages": c.stages}
    return run


def pause_timeout(strategy, timeout_action):
    def run():
        c = Case(f"pto-{strategy.lower()[:3]}-{timeout_action[:3].lower()}", strategy, "--pause-hook", "POST_SCALE_UP",
                 "--hook-timeout-minutes", "1", "--hook-timeout-action", timeout_action)
        arn, old_td, new_td = c.deploy("v2")
        if timeout_action == "ROLLBACK":
            sd = c.rolled_back(arn, old_td, "timed out")
            expect(sd["lifecycleHookDetails"][0]["status"] == "TIMED_OUT", f"hook {sd['lifecycleHookDetails']}")
        else:
            sd = c.done(arn)
            expect(sd["status"] == "SUCCESSFUL", f"status {sd['status']} after a CONTINUE timeout")
        return {"statuses": c.statuses}
    return run


def lambda_case(strategy, kind):
    def run():
        name = f"lam{(kind or 'ok')[:3]}-{strategy.lower()[:3]}"
        c = Case(name, strategy, "--lambda-hook", "PRODUCTION_TRAFFIC_SHIFT", "--lambda-hook", "POST_SCALE_UP",
                 "--hook-timeout-minutes", "2")
        fn = f"function:{c.service}-hook"
        if kind:
            lab("hook-fault", {"target": fn, "kind": kind, "stage": "PRODUCTION_TRAFFIC_SHIFT"})
        arn, old_td, _ = c.deploy("v2")
        hooks_seen = []
        sd = c.watch(arn, lambda sd: hooks_seen.extend(sd.get("lifecycleHookDetails", [])) or sd["status"] in TERMINAL)
        expect(any(h["targetType"] == "AWS_LAMBDA" and h["targetArn"].endswith(fn) for h in hooks_seen), "no Lambda hook shown")
        if not kind:
            expect(sd["status"] == "SUCCESSFUL", f"status {sd['status']} ({sd.get('statusReason')})")
        else:
            c.rolled_back(arn, old_td, "FAILED" if kind == "fail" else "timed out")
            want = "FAILED" if kind == "fail" else "TIMED_OUT"
            expect(any(h["status"] == want for h in c.sd(arn)["lifecycleHookDetails"]), f"no {want} hook shown")
        return {"statuses": c.statuses}
    return run


def stop_case(strategy, stop_type):
    def run():
        c = Case(f"stop{stop_type[:2].lower()}-{strategy.lower()[:3]}", strategy, "--bake-minutes", "5")
        arn, old_td, new_td = c.deploy("v2")
        c.watch(arn, lambda sd: sd.get("lifecycleStage") == "BAKE_TIME")
        c.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType=stop_type)
        if stop_type == "ROLLBACK":
            sd = c.rolled_back(arn, old_td, "stop requested")
        else:
            sd = c.done(arn)
            expect(sd["status"] == "STOPPED" and sd.get("stoppedAt"), f"ABORT: {sd['status']}")
            expect(c.svc()["taskDefinition"] == new_td, "ABORT moved the service")
        try:
            c.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
            raise Mismatch("StopServiceDeployment accepted a finished deployment")
        except ClientError as err:
            expect(err.response["Error"]["Code"] == "ConflictException", f"stop after end: {err}")
        return {"statuses": c.statuses}
    return run


def superseded(strategy):
    def run():
        c = Case(f"sup-{strategy.lower()[:3]}", strategy, "--pause-hook", "POST_SCALE_UP")
        arn1, _, _ = c.deploy("v2")
        c.watch(arn1, lambda sd: sd.get("lifecycleStage") == "POST_SCALE_UP")
        arn2, _, td3 = c.deploy("v3")
        sd1 = c.sd(arn1)
        expect(sd1["status"] == "STOPPED" and "superseded" in sd1["statusReason"], f"first: {sd1['status']} {sd1.get('statusReason')}")
        sd2 = c.watch(arn2, lambda sd: any(h["status"] == "AWAITING_ACTION" for h in sd.get("lifecycleHookDetails", [])))
        expect(c.stages[0] in ("RECONCILE_SERVICE", "PRE_SCALE_UP"), f"second starts at {c.stages}")
        c.ecs.continue_service_deployment(serviceDeploymentArn=arn2, hookId=sd2["lifecycleHookDetails"][0]["hookId"])
        sd2 = c.done(arn2)
        expect(sd2["status"] == "SUCCESSFUL", f"second: {sd2['status']}")
        svc = c.svc()
        expect(svc["currentServiceDeployment"] == arn2 and svc["taskDefinition"] == td3, "service not on the newer deployment")
        expect(len(svc["deployments"]) == 1, f"deployments {svc['deployments']}")
        return {"stages": c.stages}
    return run


def rolling():
    c = Case("rolling", None)
    arn, old_td, new_td = c.deploy("v2")
    sd = c.done(arn)
    expect(sd["status"] == "SUCCESSFUL" and "lifecycleStage" not in sd, f"rolling: {sd['status']} {sd.get('lifecycleStage')}")
    expect("requestedProductionTrafficWeight" not in sd["targetServiceRevision"], "rolling deployment has weights")
    expect(c.revision_tg(sd) == c.made["target_group_arn"], "rolling revision's target group")
    arn, _, _ = c.deploy("v3", "pending")
    c.watch(arn, lambda sd: sd["targetServiceRevision"]["pendingTaskCount"] >= 1)
    c.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    sd = c.done(arn)
    expect(sd["status"] == "ROLLBACK_SUCCESSFUL", f"rolling stop: {sd['status']}")
    expect("ROLLBACK_REQUESTED" in c.statuses, f"rolling stop was never only requested: {c.statuses}")
    expect(c.svc()["taskDefinition"] == new_td, "rolling stop did not go back to the previous task definition")
    expect(c.svc()["currentServiceDeployment"] == arn, "rolling stop changed currentServiceDeployment")
    return {"statuses": c.statuses}


def validation():
    ecs = client("ecs")
    c = Case("valid", "BLUE_GREEN")
    bad = [({"strategy": "BLUE_GREEN"}, "bakeTimeInMinutes"),
           ({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1,
             "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"]}]}, "PAUSE"),
           ({"strategy": "LINEAR", "canaryConfiguration": {"canaryPercent": 5}}, "canaryConfiguration")]
    for cfg, word in bad:
        try:
            ecs.update_service(cluster=c.cluster, service=c.service, deploymentConfiguration=cfg)
            raise Mismatch(f"UpdateService accepted {cfg}")
        except ClientError as err:
            expect(err.response["Error"]["Code"] == "InvalidParameterException" and word in err.response["Error"]["Message"],
                   f"{cfg}: {err}")
    got = ecs.describe_service_deployments(serviceDeploymentArns=["arn:aws:ecs:us-east-1:123456789012:service-deployment/x/y/1"])
    expect(got["failures"][0]["reason"] == "MISSING", f"unknown deployment: {got}")
    return {}


EXTRA = {"BLUE_GREEN": (), "LINEAR": ("--step-percent", "50", "--step-bake-minutes", "1"),
         "CANARY": ("--canary-percent", "20", "--canary-bake-minutes", "1")}


def cases():
    out = {}
    for s in ("BLUE_GREEN", "LINEAR", "CANARY"):
        k = s.lower().replace("_", "-")
        extra = EXTRA[s]
        out[f"happy-{k}"] = happy(s, *extra)
        for kind, reason in (("unhealthy", "circuit breaker"), ("exit", "circuit breaker"), ("alarm", "web-5xx")):
            out[f"{kind}-{k}"] = fault_case(s, kind, reason)
        out[f"pause-continue-{k}"] = pause_case(s, "CONTINUE")
        out[f"pause-rollback-{k}"] = pause_case(s, "ROLLBACK")
        out[f"pause-timeout-{k}"] = pause_timeout(s, "ROLLBACK")
        out[f"lambda-fail-{k}"] = lambda_case(s, "fail")
        out[f"stop-rollback-{k}"] = stop_case(s, "ROLLBACK")
        out[f"superseded-{k}"] = superseded(s)
    out["cannot_pull-blue_green"] = fault_case("BLUE_GREEN", "cannot_pull", "circuit breaker")
    out["pause-timeout-continue-blue_green"] = pause_timeout("BLUE_GREEN", "CONTINUE")
    out["lambda-ok-linear"] = lambda_case("LINEAR", None)
    out["lambda-timeout-blue_green"] = lambda_case("BLUE_GREEN", "timeout")
    out["stop-abort-canary"] = stop_case("CANARY", "ABORT")
    out["weights-linear-33"] = weights_case("LINEAR", [0.0, 33.0, 66.0, 99.0, 100.0],
                                            "--step-percent", "33", "--step-bake-minutes", "0")
    out["weights-canary-10"] = weights_case("CANARY", [0.0, 10.0, 100.0], "--canary-percent", "10",
                                            "--canary-bake-minutes", "1")
    out["rolling"] = rolling
    out["validation"] = validation
    return out


def main():
    global ENDPOINT
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", default=ENDPOINT)
    p.add_argument("--only", default="")
    p.add_argument("--jobs", type=int, default=8)
    args = p.parse_args()
    ENDPOINT = args.endpoint
    todo = {k: v for k, v in cases().items() if args.only in k}
    failed = 0
    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(fn): name for name, fn in todo.items()}
        for fut in concurrent.futures.as_completed(futures):
            name = futures[fut]
            try:
                detail = fut.result()
                print(f"ok   {name} {json.dumps(detail, default=str)[:200]}", flush=True)
            except Mismatch as err:
                failed += 1
                print(f"FAIL {name}: {err}", flush=True)
            except Exception:
                failed += 1
                print(f"FAIL {name}: {traceback.format_exc()}", flush=True)
    print(f"{len(todo) - failed}/{len(todo)} passed in {time.time() - started:.1f} s")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
