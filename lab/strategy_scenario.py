"""scenario.py's part for ECS-native deployment strategies (see lab/README.md, "Deployment strategies").

  scenario.py create --cluster C --service S --strategy BLUE_GREEN|LINEAR|CANARY|ROLLING
                     [--bake-minutes 1] [--step-percent 50 --step-bake-minutes 1] [--canary-percent 20 --canary-bake-minutes 1]
                     [--pause-hook STAGE]... [--lambda-hook STAGE[=ARN]]... [--hook-timeout-minutes N]
                     [--hook-timeout-action ROLLBACK|CONTINUE] [--no-test-listener] [--breaker rollback] [--alarms rollback]
      an ALB with a production listener (:80) and rule, a test listener (:8080) and rule, a blue (primary)
      and a green (alternate) ip target group, and a Fargate service with that strategy, COMPLETED.
  scenario.py hook-fault --target SUBSTR --kind fail|timeout [--stage STAGE] [--count N]
      the lab's simulated Lambda hooks whose hookTargetArn contains SUBSTR fail (FAILED) or never answer
  scenario.py stop-lag --service S --seconds N
      a rolling StopServiceDeployment(ROLLBACK) of S stays ROLLBACK_REQUESTED N s (default 1 s) before
      ECS's rollback deployment appears
  scenario.py stop-service-deployment --cluster C --service S [--stop-type ROLLBACK|ABORT]
      a user's own StopServiceDeployment of the service's current service deployment (console, CLI)
  scenario.py service-deployment --cluster C --service S
      the service's currentServiceDeployment (DescribeServiceDeployments), the target group its revision's
      tasks are in, and the production/test rules' forward weights
"""

import json
import os
import re
import sys
import time

STAGES = ("RECONCILE_SERVICE", "PRE_SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT",
          "PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT")
ROLE = "arn:aws:iam::123456789012:role/ecsInfrastructureRoleForLoadBalancers"


def add_create_args(c):
    c.add_argument("--strategy", choices=["ROLLING", "BLUE_GREEN", "LINEAR", "CANARY"], default=None,
                   help="deploymentConfiguration.strategy; with BLUE_GREEN/LINEAR/CANARY: blue/green target groups, "
                        "production and test listener rules")
    c.add_argument("--bake-minutes", type=int, default=None, help="bakeTimeInMinutes (default 1; lab: 1 min = 1 s)")
    c.add_argument("--step-percent", type=float, default=None, help="LINEAR stepPercent")
    c.add_argument("--step-bake-minutes", type=int, default=None, help="LINEAR stepBakeTimeInMinutes")
    c.add_argument("--canary-percent", type=float, default=None, help="CANARY canaryPercent")
    c.add_argument("--canary-bake-minutes", type=int, default=None, help="CANARY canaryBakeTimeInMinutes")
    c.add_argument("--pause-hook", action="append", default=[], metavar="STAGE", help="a PAUSE hook at STAGE")
    c.add_argument("--lambda-hook", action="append", default=[], metavar="STAGE[=ARN]",
                   help="an AWS_LAMBDA hook at STAGE (ARN default arn:aws:lambda:…:function:SERVICE-hook)")
    c.add_argument("--hook-timeout-minutes", type=int, default=None, help="timeoutConfiguration.timeoutInMinutes")
    c.add_argument("--hook-timeout-action", choices=["ROLLBACK", "CONTINUE"], default=None)
    c.add_argument("--no-test-listener", action="store_true", help="no test listener rule")


def add_subcommands(sub):
    h = sub.add_parser("hook-fault", help="simulated Lambda hooks whose hookTargetArn contains TARGET fail or time out")
    h.add_argument("--target", required=True)
    h.add_argument("--kind", choices=["fail", "timeout"], required=True)
    h.add_argument("--stage", default=None)
    h.add_argument("--count", type=int, default=None)
    us = sub.add_parser("stop-service-deployment",
                        help="a user's own StopServiceDeployment of the service's current service deployment")
    us.add_argument("--cluster", required=True)
    us.add_argument("--service", required=True)
    us.add_argument("--stop-type", choices=["ROLLBACK", "ABORT"], default="ROLLBACK")
    sl = sub.add_parser("stop-lag", help="a rolling stop of SERVICE stays ROLLBACK_REQUESTED this long")
    sl.add_argument("--service", required=True)
    sl.add_argument("--seconds", type=float, required=True)
    hc = sub.add_parser("hide-current-deployment", help="answers about SERVICE leave out currentServiceDeployment")
    hc.add_argument("--service", required=True)
    d = sub.add_parser("service-deployment", help="the current service deployment, its target group and the rule weights")
    d.add_argument("--cluster", required=True)
    d.add_argument("--service", required=True)


def run(args, scenario):
    """Runs this module's subcommands; False when the command is not one of them."""
    if args.cmd == "hook-fault":
        fault = {"target": args.target, "kind": args.kind}
        if args.stage:
            fault["stage"] = args.stage
        if args.count is not None:
            fault["count"] = args.count
        print(json.dumps(scenario.lab("hook-fault", fault)))
        return True
    if args.cmd == "stop-lag":
        print(json.dumps(scenario.lab("stop-lag", {"service": args.service, "seconds": args.seconds})))
        return True
    if args.cmd == "stop-service-deployment":
        ecs = scenario.client("ecs")
        svc = ecs.describe_services(cluster=args.cluster, services=[args.service])["services"][0]
        arn = svc["currentServiceDeployment"]
        ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType=args.stop_type)
        print(json.dumps({"service_deployment_arn": arn, "stop_type": args.stop_type}))
        return True
    if args.cmd == "hide-current-deployment":
        print(json.dumps(scenario.lab("hide-current-deployment", {"service": args.service})))
        return True
    if args.cmd == "service-deployment":
        print(json.dumps(current(scenario, args.cluster, args.service), default=str))
        return True
    return False


def weights(elb, rule_arn):
    if not rule_arn:
        return None
    rule = elb.describe_rules(RuleArns=[rule_arn])["Rules"][0]
    out = {}
    for action in rule["Actions"]:
        for tg in (action.get("ForwardConfig") or {}).get("TargetGroups") or []:
            out[tg["TargetGroupArn"]] = tg.get("Weight", 1)
        if action.get("TargetGroupArn") and not action.get("ForwardConfig"):
            out[action["TargetGroupArn"]] = 100
    return out


def current(scenario, cluster, service):
    ecs, elb = scenario.client("ecs"), scenario.client("elbv2")
    svc = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    arn = svc.get("currentServiceDeployment")
    sd = ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0] if arn else None
    rev = None
    if sd:
        rev = ecs.describe_service_revisions(serviceRevisionArns=[sd["targetServiceRevision"]["arn"]])["serviceRevisions"][0]
    adv = next((lb.get("advancedConfiguration") for lb in svc.get("loadBalancers") or [] if lb.get("advancedConfiguration")), {})
    return {"service_deployment_arn": arn, "status": sd and sd["status"], "stage": sd and sd.get("lifecycleStage"),
            "status_reason": sd and sd.get("statusReason"),
            "hooks": sd and sd.get("lifecycleHookDetails"), "task_definition_arn": svc["taskDefinition"],
            "target_group_arn": rev and ((rev.get("resolvedConfiguration") or {}).get("loadBalancers") or [{}])[0].get("targetGroupArn"),
            "production_weights": weights(elb, adv.get("productionListenerRule")),
            "test_weights": weights(elb, adv.get("testListenerRule"))}


def deployment_configuration(args):
    cfg = {"maximumPercent": 200, "minimumHealthyPercent": 100, "strategy": args.strategy}
    if args.breaker != "off":
        cfg["deploymentCircuitBreaker"] = {"enable": True, "rollback": args.breaker == "rollback"}
    if args.alarms != "off":
        cfg["alarms"] = {"alarmNames": ["web-5xx"], "enable": True, "rollback": args.alarms == "rollback"}
    if args.strategy == "ROLLING":
        return cfg
    cfg["bakeTimeInMinutes"] = 1 if args.bake_minutes is None else args.bake_minutes
    if args.strategy == "LINEAR":
        cfg["linearConfiguration"] = {k: v for k, v in (("stepPercent", args.step_percent),
                                                        ("stepBakeTimeInMinutes", args.step_bake_minutes)) if v is not None}
    if args.strategy == "CANARY":
        cfg["canaryConfiguration"] = {k: v for k, v in (("canaryPercent", args.canary_percent),
                                                        ("canaryBakeTimeInMinutes", args.canary_bake_minutes)) if v is not None}
    timeout = {k: v for k, v in (("timeoutInMinutes", args.hook_timeout_minutes),
                                 ("action", args.hook_timeout_action)) if v is not None}
    hooks = []
    for stage in args.pause_hook:
        hooks.append({"targetType": "PAUSE", "lifecycleStages": [stage],
                      **({"timeoutConfiguration": timeout} if timeout else {})})
    for spec in args.lambda_hook:
        stage, _, arn = spec.partition("=")
        hooks.append({"targetType": "AWS_LAMBDA", "lifecycleStages": [stage],
                      "hookTargetArn": arn or f"arn:aws:lambda:{scenario_region()}:123456789012:function:{args.service}-hook",
                      "roleArn": "arn:aws:iam::123456789012:role/ecsLambdaHookRole",
                      "hookDetails": {"service": args.service, "stage": stage},
                      **({"timeoutConfiguration": timeout} if timeout else {})})
    if hooks:
        cfg["lifecycleHooks"] = hooks
    return cfg


def scenario_region():
    return os.environ.get("AWS_REGION", "us-east-1")


def forward(groups):
    return [{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": a, "Weight": w} for a, w in groups]}}]


def create(args, scenario):
    """An ALB with production and test listener rules over a blue and a green target group, and the service."""
    ecs, elb = scenario.client("ecs"), scenario.client("elbv2")
    name = args.service
    net = scenario.network(name, with_lb=args.strategy == "ROLLING")
    subnets, sg = net["subnets"], net["security_group"]
    out = {"cluster": args.cluster, "service": args.service, "subnets": subnets, "strategy": args.strategy}
    load_balancers = []
    if args.strategy == "ROLLING":
        out["target_group_arn"] = net["target_group_arn"]
        load_balancers = [{"targetGroupArn": net["target_group_arn"], "containerName": "web", "containerPort": 8080}]
    else:
        alb = elb.create_load_balancer(Name=re.sub("[^A-Za-z0-9-]", "-", name)[:28].strip("-") + "-alb", Subnets=subnets, SecurityGroups=[sg])["LoadBalancers"][0]
        tgs = [elb.create_target_group(Name=re.sub("[^A-Za-z0-9-]", "-", name)[:28].strip("-") + f"-tg{i}", Protocol="HTTP", Port=8080, VpcId=net["vpc"],
                                       TargetType="ip", HealthCheckPath="/health")["TargetGroups"][0]["TargetGroupArn"]
               for i in (1, 2)]
        blue, green = tgs
        fixed = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"}}]
        prod = elb.create_listener(LoadBalancerArn=alb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                   DefaultActions=fixed)["Listeners"][0]["ListenerArn"]
        prod_rule = elb.create_rule(ListenerArn=prod, Priority=1,
                                    Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
                                    Actions=forward([(blue, 100), (green, 0)]))["Rules"][0]["RuleArn"]
        adv = {"alternateTargetGroupArn": green, "productionListenerRule": prod_rule, "roleArn": ROLE}
        test_rule = test = None
        if not args.no_test_listener:
            test = elb.create_listener(LoadBalancerArn=alb["LoadBalancerArn"], Protocol="HTTP", Port=8080,
                                       DefaultActions=fixed)["Listeners"][0]["ListenerArn"]
            test_rule = elb.create_rule(ListenerArn=test, Priority=1,
                                        Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
                                        Actions=forward([(blue, 0), (green, 100)]))["Rules"][0]["RuleArn"]
            adv["testListenerRule"] = test_rule
        load_balancers = [{"targetGroupArn": blue, "containerName": "web", "containerPort": 8080,
                           "advancedConfiguration": adv}]
        out.update(target_group_arn=blue, alternate_target_group_arn=green, load_balancer_arn=alb["LoadBalancerArn"],
                   dns_name=alb["DNSName"], production_listener_arn=prod, production_listener_rule=prod_rule,
                   test_listener_arn=test, test_listener_rule=test_rule,
                   production_url=f"http://{alb['DNSName']}:80", test_url=test and f"http://{alb['DNSName']}:8080")
    ecs.create_cluster(clusterName=args.cluster)
    family = args.family or args.service
    names = ["web"] + [f"side{i}" for i in range(1, args.containers)]
    td = args.task_definition or ecs.register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        executionRoleArn="arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        containerDefinitions=[scenario.container(n, args.image if i == 0 else f"sidecar:{i}", 8080 + i)
                              for i, n in enumerate(names)])["taskDefinition"]["taskDefinitionArn"]
    config = deployment_configuration(args)
    ecs.create_service(
        cluster=args.cluster, serviceName=args.service, taskDefinition=td, desiredCount=args.desired,
        launchType="FARGATE", loadBalancers=load_balancers, deploymentConfiguration=config,
        deploymentController={"type": "ECS"},
        networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg],
                                                      "assignPublicIp": "DISABLED"}})
    deadline = time.time() + 30
    while time.time() < deadline:
        svc = ecs.describe_services(cluster=args.cluster, services=[args.service])["services"][0]
        if len(svc["deployments"]) == 1 and svc["deployments"][0].get("rolloutState") == "COMPLETED":
            break
        time.sleep(0.1)
    else:
        sys.exit(f"lab: service {args.service} did not reach COMPLETED in 30 s")
    out.update(task_definition_arn=td, deployment_configuration=config,
               service_deployment_arn=svc.get("currentServiceDeployment"))
    print(json.dumps(out))
