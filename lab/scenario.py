"""Build a running ECS service in the lab and print what was made as JSON.

  scenario.py create --cluster C --service S [--desired 2] [--image app:v1] [--containers 1]
                     [--breaker off|on|rollback] [--alarms off|on|rollback] [--no-lb] [--controller ECS]
                     [--misconfigure KIND]   (a service `deployer verify` refuses; KIND below)
  scenario.py misconfigurations                            (the kinds --misconfigure takes, and what each seeds)
  scenario.py fault  --image SUBSTR --kind exit|cannot_pull|pending|unhealthy|alarm [--exit-code N] [--log LINE]...
  scenario.py api-fault --action DescribeServices --kind throttle|error5xx|delay|hang|stale|apply_then_error
                     [--count N] [--delay-ms MS] [--jitter-ms MS] [--after] [--apply] [--drop] [--match NAME]...
  scenario.py api-faults                                   (every API fault armed: remaining and fired counts)
  scenario.py release [--id N]                             (let requests held by `hang` faults answer now)
  scenario.py update --cluster C --service S --image IMG   (start a deployment the way another tool would)
  scenario.py reads --cluster NAME                         (ECS DescribeServices/ListTasks/DescribeTasks of a cluster)
  scenario.py writes --name NAME                           (write calls naming this cluster/service/family/repository)
  scenario.py service --cluster C --service S              (what the service runs now)

The lab must be running (lab/up). Endpoint: $AWS_ENDPOINT_URL (default http://127.0.0.1:5055).
"""

import argparse
import json
import os
import sys
import time
import urllib.request

import boto3

import strategy_scenario  # lab/strategy_scenario.py: --strategy BLUE_GREEN|LINEAR|CANARY, hook-fault, service-deployment
import codedeploy_scenario  # lab/codedeploy_scenario.py: --controller CODE_DEPLOY, codedeploy
import shape_scenario  # lab/shape_scenario.py: --launch-type EC2, --network-mode, --nlb, --no-load-balancer, --health-check

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5055")
REGION = os.environ.get("AWS_REGION", "us-east-1")


def client(name):
    return boto3.client(name, endpoint_url=ENDPOINT, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")


def lab(path, body):
    req = urllib.request.Request(f"{ENDPOINT}/_lab/{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=10).read())


def container(name, image, port):
    return {
        "name": name, "image": image, "essential": True, "memory": 256,
        "portMappings": [{"containerPort": port, "protocol": "tcp"}],
        "environment": [{"name": "GREETING", "value": "hello"}],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/lab", "awslogs-region": REGION, "awslogs-stream-prefix": "app"}},
    }


EXECUTION_ROLE = "ecsTaskExecutionRole"
ECS_TASKS_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}

# What `create --misconfigure KIND` seeds: each is something `deployer verify` refuses (its finding code).
MISCONFIGURATIONS = {
    "missing-secret": "a secrets[].valueFrom naming a Secrets Manager secret that does not exist (secret-not-found); "
                      "the container also has an SSM parameter and a secret (with :json-key::) that do exist",
    "missing-log-group": "awslogs-group /ecs/SERVICE-missing, which does not exist (log-group-not-found)",
    "unpushed-tag": "image ACCOUNT.dkr.ecr.REGION.amazonaws.com/SERVICE:never-pushed; the repository exists, the tag "
                    "does not (image-not-found)",
    "untrusted-role": "taskRoleArn SERVICE-task, a role that trusts ec2.amazonaws.com only (role-not-trusted)",
    "wrong-port": "the container maps port 9090; the service's load balancer sends to 8080 (lb-port-missing)",
    "bad-fargate-pair": "FARGATE with cpu 256 and memory 4096, a pair Fargate does not offer (fargate-size-invalid)",
    "instance-target-group": "an instance target group under an awsvpc service (target-type-mismatch)",
}


def execution_role():
    """The role the lab's task definitions name, trusting ecs-tasks.amazonaws.com (made once)."""
    iam = client("iam")
    try:
        iam.create_role(RoleName=EXECUTION_ROLE, AssumeRolePolicyDocument=json.dumps(ECS_TASKS_TRUST))
    except iam.exceptions.EntityAlreadyExistsException:
        pass


def misconfigure(kind, service, td, containers):
    """Puts misconfiguration KIND into the task definition arguments (and makes what it needs)."""
    web = containers[0]
    if kind == "missing-secret":
        sm, ssm = client("secretsmanager"), client("ssm")
        present = sm.create_secret(Name=f"{service}-present", SecretString='{"password": "never-read"}')["ARN"]
        ssm.put_parameter(Name=f"/{service}/api-key", Value="never-read", Type="SecureString")
        web["secrets"] = [
            {"name": "API_KEY", "valueFrom": f"/{service}/api-key"},
            {"name": "PRESENT", "valueFrom": f"{present}:password::"},
            {"name": "DB_PASSWORD",
             "valueFrom": f"arn:aws:secretsmanager:{REGION}:123456789012:secret:{service}-db-AbCdEf"},
        ]
    elif kind == "missing-log-group":
        web["logConfiguration"]["options"]["awslogs-group"] = f"/ecs/{service}-missing"
    elif kind == "unpushed-tag":
        ecr = client("ecr")
        try:
            ecr.create_repository(repositoryName=service)
        except ecr.exceptions.RepositoryAlreadyExistsException:
            pass
        web["image"] = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/{service}:never-pushed"
    elif kind == "untrusted-role":
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        role = client("iam").create_role(RoleName=f"{service}-task", AssumeRolePolicyDocument=json.dumps(trust))
        td["taskRoleArn"] = role["Role"]["Arn"]
    elif kind == "wrong-port":
        web["portMappings"] = [{"containerPort": 9090, "protocol": "tcp"}]
    elif kind == "bad-fargate-pair":
        td["memory"] = "4096"
    elif kind not in ("instance-target-group", ""):
        sys.exit(f"unknown --misconfigure {kind!r} (one of {', '.join(MISCONFIGURATIONS)})")


def network(name, with_lb=True, target_type="ip"):
    """A VPC with two subnets in two zones, a security group, the log group, the execution role, and
    an ALB target group."""
    ec2, elb, logs = client("ec2"), client("elbv2"), client("logs")
    execution_role()
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")
               ["Subnet"]["SubnetId"] for i, az in ((1, "a"), (2, "b"))]
    sg = ec2.create_security_group(GroupName=f"{name}-sg", Description="lab", VpcId=vpc)["GroupId"]
    try:
        logs.create_log_group(logGroupName="/ecs/lab")
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    tg_arn = None
    if with_lb:
        alb = elb.create_load_balancer(Name=f"{name}-alb"[:32], Subnets=subnets, SecurityGroups=[sg])
        alb_arn = alb["LoadBalancers"][0]["LoadBalancerArn"]
        tg_arn = elb.create_target_group(Name=f"{name}-tg"[:32], Protocol="HTTP", Port=8080, VpcId=vpc,
                                         TargetType=target_type, HealthCheckPath="/health")["TargetGroups"][0]["TargetGroupArn"]
        elb.create_listener(LoadBalancerArn=alb_arn, Protocol="HTTP", Port=80,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
    return {"vpc": vpc, "subnets": subnets, "security_group": sg, "target_group_arn": tg_arn}


def register(args):
    """New revisions of a family, copied from its latest, without deploying them."""
    ecs = client("ecs")
    arns = []
    for image in args.image:
        td = ecs.describe_task_definition(taskDefinition=args.family)["taskDefinition"]
        defs = td["containerDefinitions"]
        defs[0]["image"] = image
        arns.append(ecs.register_task_definition(
            family=td["family"], networkMode=td["networkMode"], requiresCompatibilities=td.get("requiresCompatibilities", []),
            cpu=td.get("cpu"), memory=td.get("memory"), containerDefinitions=defs,
            **{k: td[k] for k in ("executionRoleArn", "taskRoleArn") if td.get(k)})["taskDefinition"]["taskDefinitionArn"])
    print(json.dumps({"task_definition_arns": arns}))


def revisions(args):
    ecs = client("ecs")
    arns = ecs.list_task_definitions(familyPrefix=args.family, status="ACTIVE")["taskDefinitionArns"]
    print(json.dumps({"active": [int(a.rsplit(":", 1)[1]) for a in arns if a.rsplit(":", 1)[0].endswith("/" + args.family)]}))


def create(args):
    if codedeploy_scenario.wanted(args):  # CodeDeploy blue/green: lab/codedeploy_scenario.py
        return codedeploy_scenario.create(args, sys.modules[__name__])
    if args.strategy:  # deployment strategies: lab/strategy_scenario.py
        return strategy_scenario.create(args, sys.modules[__name__])
    if shape_scenario.wanted(args):  # EC2, NLB, no load balancer, health checks: lab/shape_scenario.py
        return shape_scenario.create(args, sys.modules[__name__])
    ecs = client("ecs")
    net = network(args.service, not args.no_lb,
                  "instance" if args.misconfigure == "instance-target-group" else "ip")
    subnets, sg, tg_arn = net["subnets"], net["security_group"], net["target_group_arn"]
    ecs.create_cluster(clusterName=args.cluster)
    names = ["web"] + [f"side{i}" for i in range(1, args.containers)]
    family = args.family or args.service
    existing = None
    if args.family:
        try:
            existing = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["taskDefinitionArn"]
        except Exception:
            existing = None
    td_args = dict(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        executionRoleArn=f"arn:aws:iam::123456789012:role/{EXECUTION_ROLE}",
        containerDefinitions=[container(n, args.image if i == 0 else f"sidecar:{i}", 8080 + i)
                              for i, n in enumerate(names)])
    misconfigure(args.misconfigure, args.service, td_args, td_args["containerDefinitions"])
    td = existing or ecs.register_task_definition(**td_args)["taskDefinition"]["taskDefinitionArn"]
    if args.task_definition:
        td = args.task_definition
    load_balancers = []
    if tg_arn:
        load_balancers = [{"targetGroupArn": tg_arn, "containerName": "web", "containerPort": 8080}]
    config = {"maximumPercent": 200, "minimumHealthyPercent": 100}
    if args.breaker != "off":
        config["deploymentCircuitBreaker"] = {"enable": True, "rollback": args.breaker == "rollback"}
    if args.alarms != "off":
        config["alarms"] = {"alarmNames": ["web-5xx"], "enable": True, "rollback": args.alarms == "rollback"}
    ecs.create_service(
        cluster=args.cluster, serviceName=args.service, taskDefinition=td, desiredCount=args.desired,
        launchType="FARGATE", loadBalancers=load_balancers, deploymentConfiguration=config,
        deploymentController={"type": args.controller},
        networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg],
                                                      "assignPublicIp": "DISABLED"}})
    if args.controller == "ECS":
        deadline = time.time() + 30
        while time.time() < deadline:
            svc = ecs.describe_services(cluster=args.cluster, services=[args.service])["services"][0]
            if len(svc["deployments"]) == 1 and svc["deployments"][0].get("rolloutState") == "COMPLETED":
                break
            time.sleep(0.1)
        else:
            sys.exit(f"lab: service {args.service} did not reach COMPLETED in 30 s")
    print(json.dumps({"cluster": args.cluster, "service": args.service, "task_definition_arn": td,
                      "target_group_arn": tg_arn, "subnets": subnets}))


def update(args):
    ecs = client("ecs")
    svc = ecs.describe_services(cluster=args.cluster, services=[args.service])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    defs = td["containerDefinitions"]
    defs[0]["image"] = args.image
    new = ecs.register_task_definition(family=td["family"], networkMode=td["networkMode"],
                                       requiresCompatibilities=td.get("requiresCompatibilities", []),
                                       cpu=td.get("cpu"), memory=td.get("memory"), containerDefinitions=defs,
                                       **{k: td[k] for k in ("executionRoleArn", "taskRoleArn") if td.get(k)},
                                       )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=args.cluster, service=args.service, taskDefinition=new)
    print(json.dumps({"task_definition_arn": new}))


def reads(args):
    with urllib.request.urlopen(f"{ENDPOINT}/_lab/reads?cluster={args.cluster}", timeout=10) as resp:
        print(resp.read().decode())


def writes(args):
    req = urllib.request.Request(f"{ENDPOINT}/_lab/writes")
    found = [w for w in json.loads(urllib.request.urlopen(req, timeout=10).read())
             if args.name in (w.get("cluster"), w.get("service"), w.get("family"), w.get("serviceName"), w.get("clusterName"),
                              w.get("repositoryName"))]
    print(json.dumps(found))


def service(args):
    ecs = client("ecs")
    svc = ecs.describe_services(cluster=args.cluster, services=[args.service])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    print(json.dumps({"task_definition_arn": svc["taskDefinition"], "running": svc["runningCount"],
                      "images": {c["name"]: c["image"] for c in td["containerDefinitions"]},
                      "environment": {c["name"]: {e["name"]: e["value"] for e in c.get("environment", [])}
                                      for c in td["containerDefinitions"]},
                      "desired": svc["desiredCount"],
                      "deployments": [{"id": d["id"], "status": d["status"], "rollout_state": d.get("rolloutState"),
                                       "task_definition": d["taskDefinition"]} for d in svc["deployments"]]},
                     default=str))


def image_digest(args):
    try:
        detail = client("ecr").describe_images(repositoryName=args.repository,
                                               imageIds=[{"imageTag": args.tag}])["imageDetails"][0]
        print(json.dumps({"digest": detail["imageDigest"]}))
    except (client("ecr").exceptions.ImageNotFoundException, client("ecr").exceptions.RepositoryNotFoundException):
        print(json.dumps({"digest": None}))


def registry_fault(args):
    findings = {}
    for spec in args.finding:
        key, severity, name = spec.split("=", 1)[0], *spec.split("=", 1)[1].split(":", 1)
        findings.setdefault(key, []).append({"severity": severity, "name": name})
    cut = {spec.split("=")[0]: int(spec.split("=")[1]) for spec in args.cut}
    scan = dict(spec.split("=", 1) for spec in args.scan)
    for spec in args.findings_count:  # REPO:TAG=SEVERITY:N, e.g. 150 LOW findings
        key, rest = spec.split("=", 1)
        severity, n = rest.split(":")
        findings.setdefault(key, []).extend({"severity": severity, "name": f"CVE-LAB-{severity}-{i}"} for i in range(int(n)))
    print(json.dumps(lab("registry", {"down": args.down, "findings": findings, "cut": cut, "scan": scan})))


FORGE = os.environ.get("DEPLOYER_FORGE_URL", "http://127.0.0.1:5080")


def forge(path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{FORGE}/_forge/{path}", data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=10).read())


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("--cluster", required=True)
    c.add_argument("--service", required=True)
    c.add_argument("--desired", type=int, default=2)
    c.add_argument("--image", default="registry.lab/app:v1")
    c.add_argument("--containers", type=int, default=1)
    c.add_argument("--breaker", choices=["off", "on", "rollback"], default="off")
    c.add_argument("--alarms", choices=["off", "on", "rollback"], default="off")
    c.add_argument("--controller", default="ECS")
    c.add_argument("--no-lb", action="store_true")
    c.add_argument("--family", default="", help="task definition family (default: the service name); reused if it exists")
    c.add_argument("--task-definition", default="", help="run this task definition ARN")
    c.add_argument("--misconfigure", default="", choices=[""] + list(MISCONFIGURATIONS),
                   help="seed one misconfiguration `deployer verify` refuses (see `misconfigurations`)")
    sub.add_parser("misconfigurations", help="the kinds `create --misconfigure` takes")
    strategy_scenario.add_create_args(c)  # --strategy, --bake-minutes, --pause-hook, ...
    shape_scenario.add_create_args(c)  # --launch-type, --network-mode, --instances, --nlb, --no-load-balancer, ...
    strategy_scenario.add_subcommands(sub)  # hook-fault, service-deployment
    codedeploy_scenario.add_create_args(c)  # --ready-wait, --termination-wait-minutes, --auto-rollback
    codedeploy_scenario.add_subcommands(sub)  # codedeploy
    n = sub.add_parser("network", help="a VPC, two subnets in two zones, a security group, an ALB target group")
    n.add_argument("--name", required=True)
    rg = sub.add_parser("register", help="register revisions of FAMILY (copies of its latest with another image)")
    rg.add_argument("--family", required=True)
    rg.add_argument("--image", action="append", required=True)
    cl = sub.add_parser("cluster", help="a cluster's capacity providers and settings")
    cl.add_argument("--name", required=True)
    rv = sub.add_parser("revisions", help="the ACTIVE revision numbers of FAMILY")
    rv.add_argument("--family", required=True)
    f = sub.add_parser("fault")
    f.add_argument("--image", required=True)
    f.add_argument("--kind", required=True)
    f.add_argument("--exit-code", type=int, default=1)
    f.add_argument("--log", action="append", default=[])
    a = sub.add_parser("api-fault")
    a.add_argument("--action", required=True)
    a.add_argument("--kind", required=True)
    a.add_argument("--count", type=int, default=1)
    a.add_argument("--delay-ms", type=int, default=None, help="delay 500, hang 600000 unless given")
    a.add_argument("--jitter-ms", type=int, default=0, help="delay: +/- this much at random")
    a.add_argument("--after", action="store_true", help="delay: apply the request first, then wait to answer")
    a.add_argument("--apply", action="store_true", help="hang: apply the request first, then hold the answer")
    a.add_argument("--drop", action="store_true", help="apply_then_error: close the connection instead of a 500")
    a.add_argument("--after-write", action="store_true",
                   help="fire only on requests after the next write to the matched service (arm before the run)")
    a.add_argument("--match", action="append", default=[],
                   help="only requests naming exactly this cluster/service/family/repository (repeatable)")
    af = sub.add_parser("api-faults", help="the armed API faults with remaining and fired counts")
    rl = sub.add_parser("release", help="let requests held by hang faults answer now")
    rl.add_argument("--id", type=int, default=None)
    fh = sub.add_parser("forge-hang", help="the fake GitHub/GitLab accepts matching requests and never answers")
    fh.add_argument("--method", default=None)
    fh.add_argument("--path-regex", required=True, help="must match the whole path")
    fh.add_argument("--count", type=int, default=1)
    fh.add_argument("--delay-ms", type=int, default=600000)
    sub.add_parser("forge-hangs", help="the forge's hang faults with fired counts")
    u = sub.add_parser("update")
    u.add_argument("--cluster", required=True)
    u.add_argument("--service", required=True)
    u.add_argument("--image", required=True)
    rd = sub.add_parser("reads", help="the ECS reads of one cluster: action, services named, tasks asked")
    rd.add_argument("--cluster", required=True)
    w = sub.add_parser("writes", help="the write calls that named this cluster, service or family")
    w.add_argument("--name", required=True)
    d = sub.add_parser("service", help="the service's task definition and deployments")
    d.add_argument("--cluster", required=True)
    d.add_argument("--service", required=True)
    r = sub.add_parser("digest", help="the digest of repository:tag in the lab's ECR (the registry behind it)")
    r.add_argument("--repository", required=True)
    r.add_argument("--tag", required=True)
    g = sub.add_parser("registry", help="registry faults: --down REPO, --finding REPO:TAG=SEVERITY:NAME")
    g.add_argument("--down", action="append", default=[])
    g.add_argument("--finding", action="append", default=[])
    g.add_argument("--cut", action="append", default=[], help="REPO=BYTES: the registry goes down after BYTES of upload")
    g.add_argument("--scan", action="append", default=[],
                   help="REPO:TAG=MODE: complete, in_progress:N, unsupported, enhanced, not_found, findings_unavailable, failed")
    g.add_argument("--findings-count", action="append", default=[], help="REPO:TAG=SEVERITY:N: N findings of SEVERITY")
    fr = sub.add_parser("forge-requests", help="what deployer sent the fake GitHub for this repository")
    fr.add_argument("--repo", required=True)
    ff = sub.add_parser("forge-fail", help="make the fake GitHub refuse calls for a repository")
    ff.add_argument("--repo", required=True)
    ff.add_argument("--path-contains", default="")
    ff.add_argument("--status", type=int, default=403)
    fp = sub.add_parser("forge-pulls", help="open pull requests whose head is this commit")
    fp.add_argument("--repo", required=True)
    fp.add_argument("--sha", required=True)
    fp.add_argument("--number", type=int, action="append", default=[])
    args = p.parse_args()
    if strategy_scenario.run(args, sys.modules[__name__]):
        return
    if codedeploy_scenario.run(args, sys.modules[__name__]):
        return
    if args.cmd == "create":
        create(args)
    elif args.cmd == "misconfigurations":
        print(json.dumps(MISCONFIGURATIONS))
    elif args.cmd == "network":
        print(json.dumps(network(args.name)))
    elif args.cmd == "register":
        register(args)
    elif args.cmd == "revisions":
        revisions(args)
    elif args.cmd == "cluster":
        found = client("ecs").describe_clusters(clusters=[args.name], include=["SETTINGS"])["clusters"]
        print(json.dumps(found[0] if found else None, default=str))
    elif args.cmd == "fault":
        print(json.dumps(lab("task-fault", {"image": args.image, "kind": args.kind, "exit_code": args.exit_code,
                                            "log_lines": args.log})))
    elif args.cmd == "api-fault":
        fault = {"action": args.action, "kind": args.kind, "count": args.count, "match": args.match}
        if args.delay_ms is not None:
            fault["delay_ms"] = args.delay_ms
        for flag in ("jitter_ms", "after", "apply", "drop", "after_write"):
            if getattr(args, flag):
                fault[flag] = getattr(args, flag)
        print(json.dumps(lab("api-fault", fault)))
    elif args.cmd == "api-faults":
        with urllib.request.urlopen(f"{ENDPOINT}/_lab/api-faults", timeout=10) as resp:
            print(resp.read().decode())
    elif args.cmd == "release":
        print(json.dumps(lab("release", {"id": args.id} if args.id is not None else {})))
    elif args.cmd == "forge-hang":
        hang = {"path_regex": args.path_regex, "count": args.count, "delay_ms": args.delay_ms}
        if args.method:
            hang["method"] = args.method
        print(json.dumps(forge("hang", hang)))
    elif args.cmd == "forge-hangs":
        print(json.dumps(forge("hangs")))
    elif args.cmd == "reads":
        reads(args)
    elif args.cmd == "writes":
        writes(args)
    elif args.cmd == "service":
        service(args)
    elif args.cmd == "forge-requests":
        print(json.dumps(forge(f"requests?repo={args.repo}")))
    elif args.cmd == "forge-fail":
        print(json.dumps(forge("fail", {"repo": args.repo, "path_contains": args.path_contains, "status": args.status})))
    elif args.cmd == "forge-pulls":
        print(json.dumps(forge("pulls", {"repo": args.repo, "sha": args.sha, "numbers": args.number})))
    elif args.cmd == "digest":
        image_digest(args)
    elif args.cmd == "registry":
        registry_fault(args)
    else:
        update(args)


if __name__ == "__main__":
    main()
