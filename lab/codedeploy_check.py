"""Drive the lab's CodeDeploy blue/green through boto3 and check what the API shows; exits non-zero on any
mismatch. Uses its own names (cdchk-<random>) and never resets the lab.

  .lab/venv/bin/python lab/codedeploy_check.py --endpoint http://127.0.0.1:5455
"""

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import time

import boto3
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)
    return cond


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", default="http://127.0.0.1:5455")
    args = p.parse_args()
    env = dict(os.environ, AWS_ENDPOINT_URL=args.endpoint)
    kw = dict(endpoint_url=args.endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    ecs, elb, cd = boto3.client("ecs", **kw), boto3.client("elbv2", **kw), boto3.client("codedeploy", **kw)
    tag = "".join(random.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(5))
    cluster = f"cdchk-{tag}"

    def lab(path, body):
        import urllib.request
        req = urllib.request.Request(f"{args.endpoint}/_lab/{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(req, timeout=10).read())

    def scenario(*a):
        out = subprocess.run([sys.executable, os.path.join(HERE, "scenario.py"), *a], env=env, capture_output=True,
                             text=True, timeout=120)
        if out.returncode:
            sys.exit(f"scenario.py {' '.join(a)} failed: {out.stderr}")
        return json.loads(out.stdout)

    def make(service, *flags):
        return scenario("create", "--cluster", cluster, "--service", service, "--controller", "CODE_DEPLOY",
                        "--image", f"registry.lab/{service}:v1", *flags)

    def new_td(svc, image):
        td = ecs.describe_task_definition(taskDefinition=svc["task_definition_arn"])["taskDefinition"]
        defs = td["containerDefinitions"]
        defs[0]["image"] = image
        return ecs.register_task_definition(family=td["family"], networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
                                            cpu="256", memory="512", containerDefinitions=defs)["taskDefinition"]["taskDefinitionArn"]

    def appspec(td, yaml_form=False, name="web", port=8080):
        if yaml_form:
            content = (f"version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n"
                       f"        TaskDefinition: \"{td}\"\n        LoadBalancerInfo:\n          ContainerName: \"{name}\"\n"
                       f"          ContainerPort: {port}\n")
        else:
            content = json.dumps({"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {
                "TaskDefinition": td, "LoadBalancerInfo": {"ContainerName": name, "ContainerPort": port}}}}]})
        return {"revisionType": "AppSpecContent",
                "appSpecContent": {"content": content, "sha256": hashlib.sha256(content.encode()).hexdigest()}}

    def deploy(svc, td, **extra):
        return cd.create_deployment(applicationName=svc["application_name"], deploymentGroupName=svc["deployment_group_name"],
                                    revision=appspec(td, **{k: extra.pop(k) for k in list(extra) if k == "yaml_form"}),
                                    **extra)["deploymentId"]

    def info(dep):
        return cd.get_deployment(deploymentId=dep)["deploymentInfo"]

    def target(dep, svc):
        return cd.get_deployment_target(deploymentId=dep, targetId=f"{cluster}:{svc['service']}")["deploymentTarget"]["ecsTarget"]

    def wait(dep, statuses, timeout=30):
        deadline = time.time() + timeout
        seen = set()
        while time.time() < deadline:
            i = info(dep)
            seen.add(i["status"])
            if i["status"] in statuses:
                return i, seen
            time.sleep(0.1)
        return info(dep), seen

    def events(dep, svc):
        return {e["lifecycleEventName"]: e["status"] for e in target(dep, svc)["lifecycleEvents"]}

    def listener_weights(listener):
        out = {}
        for a in elb.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"]:
            for g in (a.get("ForwardConfig") or {}).get("TargetGroups") or []:
                out[g["TargetGroupArn"]] = g.get("Weight")
            if a.get("TargetGroupArn") and not a.get("ForwardConfig"):
                out[a["TargetGroupArn"]] = 100
        return out

    def service(svc):
        return ecs.describe_services(cluster=cluster, services=[svc["service"]])["services"][0]

    def error_code(fn):
        try:
            fn()
        except ClientError as err:
            return err.response["Error"]["Code"], err.response["Error"]["Message"]
        return None, None

    all_events = ["BeforeInstall", "Install", "AfterInstall", "AllowTestTraffic", "AfterAllowTestTraffic",
                  "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]

    # ---- 1. happy path (YAML AppSpec), with a 2-minute termination wait ended by ContinueDeployment
    s1 = make("happy", "--termination-wait-minutes", "30")
    svc = service(s1)
    check(svc["deploymentController"]["type"] == "CODE_DEPLOY", "happy: service has the CODE_DEPLOY controller")
    check(len(svc["taskSets"]) == 1 and svc["taskSets"][0]["status"] == "PRIMARY"
          and svc["taskSets"][0]["runningCount"] == 2, "happy: one PRIMARY task set running 2 tasks")
    check(cd.get_deployment_group(applicationName=s1["application_name"], deploymentGroupName=s1["deployment_group_name"])
          ["deploymentGroupInfo"]["ecsServices"][0]["serviceName"] == "happy", "happy: deployment group names the service")
    td2 = new_td(s1, "registry.lab/happy:v2")
    dep = deploy(s1, td2, yaml_form=True)
    check(dep.startswith("d-") and len(dep) == 11, f"happy: deployment id {dep}")
    check(cd.list_deployments(applicationName=s1["application_name"], deploymentGroupName=s1["deployment_group_name"])
          ["deployments"] == [dep], "happy: ListDeployments lists it")
    code, _ = error_code(lambda: deploy(s1, td2))
    check(code == "DeploymentLimitExceededException", f"happy: a second deployment while one runs is refused ({code})")
    i, seen = wait(dep, {"InProgress"})
    check(i["status"] == "InProgress" and i.get("startTime"), "happy: Created -> InProgress")
    check(cd.list_deployment_targets(deploymentId=dep)["targetIds"] == [f"{cluster}:happy"], "happy: ListDeploymentTargets")
    # While Install runs, a replacement task set appears with tasks startedBy its id.
    deadline = time.time() + 20
    green = None
    while time.time() < deadline:
        sets = service(s1)["taskSets"]
        green = next((t for t in sets if t["taskDefinition"] == td2), None)
        if green and green["runningCount"] == 2:
            break
        time.sleep(0.1)
    check(green is not None and green["status"] == "ACTIVE" and green["startedBy"] == "CodeDeploy"
          and green["loadBalancers"][0]["targetGroupArn"] == s1["alternate_target_group_arn"],
          "happy: replacement task set ACTIVE in the alternate target group")
    arns = ecs.list_tasks(cluster=cluster, serviceName="happy")["taskArns"]
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
    check(sum(1 for t in tasks if t.get("startedBy") == (green or {}).get("id")) >= 1,
          "happy: replacement tasks have startedBy = the task set id")
    # Weights move and the termination wait holds the original.
    deadline = time.time() + 20
    while time.time() < deadline and not info(dep).get("instanceTerminationWaitTimeStarted"):
        time.sleep(0.1)
    i = info(dep)
    check(i["status"] == "InProgress" and i["instanceTerminationWaitTimeStarted"], "happy: termination wait started")
    check(listener_weights(s1["production_listener_arn"]) == {s1["alternate_target_group_arn"]: 100,
                                                               s1["target_group_arn"]: 0}, "happy: production listener 100 on green")
    check(listener_weights(s1["test_listener_arn"]).get(s1["alternate_target_group_arn"]) == 100, "happy: test listener on green")
    t = target(dep, s1)
    labels = {x["taskSetLabel"]: x for x in t["taskSetsInfo"]}
    check(set(labels) == {"Blue", "Green"} and labels["Green"]["trafficWeight"] == 100.0 and labels["Blue"]["trafficWeight"] == 0.0
          and labels["Green"]["status"] == "PRIMARY" and labels["Green"]["identifer"] == green["id"]
          and labels["Green"]["targetGroup"]["name"] == "happy-tg2", "happy: taskSetsInfo Blue/Green with weights")
    check(all(v == "Succeeded" for v in events(dep, s1).values()), "happy: every lifecycle event Succeeded")
    check(service(s1)["taskDefinition"] == td2, "happy: service taskDefinition is the new one")
    code, _ = error_code(lambda: cd.continue_deployment(deploymentId=dep, deploymentWaitType="READY_WAIT"))
    check(code == "DeploymentIsNotInReadyStateException", f"happy: READY_WAIT continue refused when not Ready ({code})")
    cd.continue_deployment(deploymentId=dep, deploymentWaitType="TERMINATION_WAIT")
    i, _ = wait(dep, {"Succeeded", "Failed", "Stopped"})
    check(i["status"] == "Succeeded" and i.get("completeTime"), "happy: Succeeded after TERMINATION_WAIT continue")
    sets = service(s1)["taskSets"]
    check(len(sets) == 1 and sets[0]["taskDefinition"] == td2 and sets[0]["status"] == "PRIMARY",
          "happy: the original task set drained and deleted")
    health = elb.describe_target_health(TargetGroupArn=s1["alternate_target_group_arn"])["TargetHealthDescriptions"]
    check(len(health) == 2 and all(h["TargetHealth"]["State"] == "healthy" for h in health), "happy: green targets healthy")
    code, _ = error_code(lambda: cd.stop_deployment(deploymentId=dep))
    check(code == "DeploymentAlreadyCompletedException", f"happy: stop after success refused ({code})")

    # ---- 2. AppSpec and API errors
    bad = {"revisionType": "AppSpecContent", "appSpecContent": {"content": "Resources: [", "sha256": ""}}
    code, _ = error_code(lambda: cd.create_deployment(applicationName=s1["application_name"],
                                                      deploymentGroupName=s1["deployment_group_name"], revision=bad))
    check(code == "InvalidRevisionException", f"errors: unparsable AppSpec -> {code}")
    rev = appspec(td2)
    rev["appSpecContent"]["sha256"] = "0" * 64
    code, _ = error_code(lambda: cd.create_deployment(applicationName=s1["application_name"],
                                                      deploymentGroupName=s1["deployment_group_name"], revision=rev))
    check(code == "InvalidRevisionException", f"errors: sha256 mismatch -> {code}")
    code, _ = error_code(lambda: cd.create_deployment(applicationName=s1["application_name"],
                                                      deploymentGroupName=s1["deployment_group_name"], revision=appspec(td2),
                                                      deploymentConfigName="CodeDeployDefault.Nope"))
    check(code == "DeploymentConfigDoesNotExistException", f"errors: unknown deployment config -> {code}")
    code, _ = error_code(lambda: cd.get_deployment(deploymentId="d-AAAAAAAAA"))
    check(code == "DeploymentDoesNotExistException", f"errors: unknown deployment -> {code}")
    code, _ = error_code(lambda: cd.create_deployment(applicationName="nope", deploymentGroupName="x", revision=appspec(td2)))
    check(code == "ApplicationDoesNotExistException", f"errors: unknown application -> {code}")

    # ---- 3. UpdateService with a new task definition is refused
    td3 = new_td(s1, "registry.lab/happy:v3")
    code, msg = error_code(lambda: ecs.update_service(cluster=cluster, service="happy", taskDefinition=td3))
    check(code == "InvalidParameterException" and "CODE_DEPLOY deployment controller" in (msg or ""),
          f"update-service: refused ({code}: {msg})")
    check(service(s1)["taskDefinition"] == td2, "update-service: task definition unchanged")
    ecs.update_service(cluster=cluster, service="happy", desiredCount=3)
    deadline = time.time() + 15
    while time.time() < deadline and service(s1)["taskSets"][0]["runningCount"] != 3:
        time.sleep(0.1)
    check(service(s1)["taskSets"][0]["runningCount"] == 3, "update-service: desiredCount accepted, task set scales to 3")

    # ---- 4. ready wait + ContinueDeployment READY_WAIT
    s2 = make("ready", "--ready-wait")
    td = new_td(s2, "registry.lab/ready:v2")
    dep = deploy(s2, td)
    i, _ = wait(dep, {"Ready", "Succeeded", "Failed", "Stopped"})
    check(i["status"] == "Ready", f"ready: deployment waits in Ready ({i['status']})")
    ev = events(dep, s2)
    check(ev["AllowTestTraffic"] == "Succeeded" and ev["AfterAllowTestTraffic"] == "Succeeded"
          and ev["BeforeAllowTraffic"] == "Pending" and target(dep, s2)["status"] == "Ready", f"ready: events {ev}")
    check(listener_weights(s2["test_listener_arn"]).get(s2["alternate_target_group_arn"]) == 100
          and listener_weights(s2["production_listener_arn"]).get(s2["target_group_arn"], 100) == 100,
          "ready: test traffic on green, production still on blue")
    time.sleep(1)
    check(info(dep)["status"] == "Ready", "ready: still Ready a second later")
    cd.continue_deployment(deploymentId=dep, deploymentWaitType="READY_WAIT")
    i, _ = wait(dep, {"Succeeded", "Failed", "Stopped"})
    check(i["status"] == "Succeeded" and service(s2)["taskDefinition"] == td, "ready: Succeeded after ContinueDeployment")

    # ---- 5. crashing replacement with auto-rollback
    s3 = make("crash", "--auto-rollback")
    td = new_td(s3, "registry.lab/crash:v2")
    lab("task-fault", {"image": "registry.lab/crash:v2", "kind": "exit", "exit_code": 3, "log_lines": ["boom: db down"]})
    dep = deploy(s3, td)
    i, _ = wait(dep, {"Succeeded", "Failed", "Stopped"})
    check(i["status"] == "Failed" and i["errorInformation"]["code"] == "ECS_UPDATE_ERROR",
          f"crash: deployment Failed ({i['status']}, {i.get('errorInformation')})")
    t = target(dep, s3)
    inst = next(e for e in t["lifecycleEvents"] if e["lifecycleEventName"] == "Install")
    check(inst["status"] == "Failed" and "exit code 3" in inst["diagnostics"]["message"]
          and "boom: db down" in inst["diagnostics"]["logTail"], f"crash: Install Failed with diagnostics {inst.get('diagnostics')}")
    rb = (i.get("rollbackInfo") or {}).get("rollbackDeploymentId")
    check(bool(rb), f"crash: rollbackInfo names the rollback deployment ({i.get('rollbackInfo')})")
    if rb:
        r, _ = wait(rb, {"Succeeded", "Failed", "Stopped"})
        check(r["status"] == "Succeeded" and r["creator"] == "codeDeployRollback"
              and r["rollbackInfo"]["rollbackTriggeringDeploymentId"] == dep, "crash: rollback deployment Succeeded")
        sets = service(s3)["taskSets"]
        check(len(sets) == 1 and sets[0]["taskDefinition"] == s3["task_definition_arn"] and sets[0]["status"] == "PRIMARY",
              "crash: only the original task set is left")
        check(service(s3)["taskDefinition"] == s3["task_definition_arn"], "crash: service task definition is the original")
        w = listener_weights(s3["production_listener_arn"])
        check(w.get(s3["target_group_arn"]) == 100 and w.get(s3["alternate_target_group_arn"], 0) == 0,
              f"crash: production traffic on the original ({w})")

    # ---- 6. unhealthy replacement without auto-rollback: AllowTestTraffic fails
    s4 = make("sick")
    td = new_td(s4, "registry.lab/sick:v2")
    lab("task-fault", {"image": "registry.lab/sick:v2", "kind": "unhealthy"})
    dep = deploy(s4, td)
    i, _ = wait(dep, {"Succeeded", "Failed", "Stopped"})
    ev = events(dep, s4)
    check(i["status"] == "Failed" and i["errorInformation"]["code"] == "TIMEOUT" and ev["AllowTestTraffic"] == "Failed"
          and not i.get("rollbackInfo"), f"unhealthy: AllowTestTraffic Failed, no rollback ({ev}, {i.get('errorInformation')})")
    diag = next(e for e in target(dep, s4)["lifecycleEvents"] if e["lifecycleEventName"] == "AllowTestTraffic")["diagnostics"]
    check("Target.ResponseCodeMismatch" in diag["message"], f"unhealthy: diagnostics name the target reason ({diag})")
    check(w := listener_weights(s4["production_listener_arn"]), "unhealthy: production listener readable")
    check(w.get(s4["target_group_arn"], 100) == 100, "unhealthy: production traffic never moved")

    # ---- 7. StopDeployment with rollback (stopped while Ready, after test traffic moved)
    s5 = make("stop", "--ready-wait")
    td = new_td(s5, "registry.lab/stop:v2")
    dep = deploy(s5, td)
    i, _ = wait(dep, {"Ready", "Succeeded", "Failed", "Stopped"})
    check(i["status"] == "Ready", "stop: Ready before the stop")
    out = cd.stop_deployment(deploymentId=dep, autoRollbackEnabled=True)
    check(out["status"] in ("Pending", "Succeeded") and out.get("statusMessage"), f"stop: StopDeployment answers {out}")
    i = info(dep)
    check(i["status"] == "Stopped" and i["errorInformation"]["code"] == "MANUAL_STOP", f"stop: Stopped ({i['status']})")
    rb = (i.get("rollbackInfo") or {}).get("rollbackDeploymentId")
    check(bool(rb), "stop: rollback deployment started")
    if rb:
        r, _ = wait(rb, {"Succeeded", "Failed", "Stopped"})
        check(r["status"] == "Succeeded" and r["rollbackInfo"]["rollbackTriggeringDeploymentId"] == dep,
              "stop: rollback Succeeded")
        check(listener_weights(s5["test_listener_arn"]).get(s5["target_group_arn"]) == 100,
              "stop: test traffic back on the original")
        sets = service(s5)["taskSets"]
        check(len(sets) == 1 and sets[0]["taskDefinition"] == s5["task_definition_arn"], "stop: replacement deleted")
    code, _ = error_code(lambda: cd.continue_deployment(deploymentId=dep))
    check(code == "DeploymentAlreadyCompletedException", f"stop: continue after stop refused ({code})")

    # ---- 8. scenario.py codedeploy (newest deployment of a service)
    out = scenario("codedeploy", "--cluster", cluster, "--service", "stop")
    check(out["deployment_id"] == rb and out["status"] == "Succeeded" and len(out["lifecycle_events"]) == 8,
          "scenario: codedeploy prints the newest deployment with its events")

    print(f"\n{len(FAILS)} failure(s)" if FAILS else "\nall CodeDeploy checks passed")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
