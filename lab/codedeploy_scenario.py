"""scenario.py's part for CodeDeploy blue/green services (see lab/README.md, "CodeDeploy").

  scenario.py create --cluster C --service S --controller CODE_DEPLOY [--ready-wait] [--ready-wait-minutes N]
                     [--termination-wait-minutes N] [--auto-rollback] [--deployment-config NAME] [--no-test-listener]
      an ALB with a production listener (:80) and a test listener (:8080) forwarding to the first of two ip
      target groups, a Fargate service with deploymentController CODE_DEPLOY (its first task set running and
      healthy), the CodeDeploy application AppECS-C-S and deployment group DgpECS-C-S wired to them.
  scenario.py codedeploy (--deployment-id ID | --cluster C --service S)
      the deployment (GetDeployment), its target's status, lifecycle events and task sets (GetDeploymentTarget)
"""

import json
import re
import sys
import time

SERVICE_ROLE = "arn:aws:iam::123456789012:role/ecsCodeDeployRole"


def add_create_args(c):
    c.add_argument("--ready-wait", action="store_true",
                   help="CODE_DEPLOY: deploymentReadyOption STOP_DEPLOYMENT (wait in Ready for ContinueDeployment)")
    c.add_argument("--ready-wait-minutes", type=int, default=60, help="CODE_DEPLOY: waitTimeInMinutes (lab: 1 min = 1 s)")
    c.add_argument("--termination-wait-minutes", type=int, default=0,
                   help="CODE_DEPLOY: terminationWaitTimeInMinutes (lab: 1 min = 1 s)")
    c.add_argument("--auto-rollback", action="store_true",
                   help="CODE_DEPLOY: autoRollbackConfiguration DEPLOYMENT_FAILURE + DEPLOYMENT_STOP_ON_REQUEST")
    c.add_argument("--deployment-config", default="CodeDeployDefault.ECSAllAtOnce",
                   help="CODE_DEPLOY: the deployment group's deploymentConfigName")


def add_subcommands(sub):
    d = sub.add_parser("codedeploy", help="a CodeDeploy deployment: status, lifecycle events, task sets")
    d.add_argument("--deployment-id", default=None)
    d.add_argument("--cluster", default=None)
    d.add_argument("--service", default=None)


def wanted(args):
    return getattr(args, "controller", "ECS") == "CODE_DEPLOY"


def run(args, scenario):
    if args.cmd != "codedeploy":
        return False
    cd = scenario.client("codedeploy")
    dep_id = args.deployment_id
    if not dep_id:
        if not (args.cluster and args.service):
            sys.exit("codedeploy: give --deployment-id or --cluster and --service")
        ids = cd.list_deployments(applicationName=f"AppECS-{args.cluster}-{args.service}",
                                  deploymentGroupName=f"DgpECS-{args.cluster}-{args.service}")["deployments"]
        if not ids:
            sys.exit("codedeploy: no deployment for that service")
        infos = cd.batch_get_deployments(deploymentIds=ids)["deploymentsInfo"]
        dep_id = max(infos, key=lambda i: i["createTime"])["deploymentId"]
    print(json.dumps(describe(cd, dep_id), default=str))
    return True


def describe(cd, dep_id):
    info = cd.get_deployment(deploymentId=dep_id)["deploymentInfo"]
    out = {"deployment_id": dep_id, "status": info["status"], "error": info.get("errorInformation"),
           "rollback_info": info.get("rollbackInfo"), "creator": info.get("creator"), "deployment": info}
    if info["status"] != "Created":
        tid = cd.list_deployment_targets(deploymentId=dep_id)["targetIds"][0]
        t = cd.get_deployment_target(deploymentId=dep_id, targetId=tid)["deploymentTarget"]["ecsTarget"]
        out.update(target_id=tid, target_status=t["status"],
                   lifecycle_events=[{k: e.get(k) for k in ("lifecycleEventName", "status", "diagnostics")}
                                     for e in t["lifecycleEvents"]],
                   task_sets=t.get("taskSetsInfo"))
    return out


def create(args, scenario):
    ecs, elb, cd = scenario.client("ecs"), scenario.client("elbv2"), scenario.client("codedeploy")
    name = re.sub("[^A-Za-z0-9-]", "-", args.service)[:26].strip("-")
    net = scenario.network(args.service, with_lb=False)
    subnets, sg = net["subnets"], net["security_group"]
    alb = elb.create_load_balancer(Name=f"{name}-alb", Subnets=subnets, SecurityGroups=[sg])["LoadBalancers"][0]
    tgs = [elb.create_target_group(Name=f"{name}-tg{i}", Protocol="HTTP", Port=8080, VpcId=net["vpc"], TargetType="ip",
                                   HealthCheckPath="/health")["TargetGroups"][0] for i in (1, 2)]
    forward = [{"Type": "forward", "TargetGroupArn": tgs[0]["TargetGroupArn"]}]
    prod = elb.create_listener(LoadBalancerArn=alb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                               DefaultActions=forward)["Listeners"][0]["ListenerArn"]
    test = None
    if not getattr(args, "no_test_listener", False):
        test = elb.create_listener(LoadBalancerArn=alb["LoadBalancerArn"], Protocol="HTTP", Port=8080,
                                   DefaultActions=forward)["Listeners"][0]["ListenerArn"]
    ecs.create_cluster(clusterName=args.cluster)
    td = args.task_definition or ecs.register_task_definition(
        family=args.family or args.service, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", executionRoleArn="arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        containerDefinitions=[scenario.container("web", args.image, 8080)])["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=args.cluster, serviceName=args.service, taskDefinition=td, desiredCount=args.desired,
        launchType="FARGATE", deploymentController={"type": "CODE_DEPLOY"},
        loadBalancers=[{"targetGroupArn": tgs[0]["TargetGroupArn"], "containerName": "web", "containerPort": 8080}],
        networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg],
                                                      "assignPublicIp": "DISABLED"}})
    app, group = f"AppECS-{args.cluster}-{args.service}", f"DgpECS-{args.cluster}-{args.service}"
    cd.create_application(applicationName=app, computePlatform="ECS")
    pair = {"targetGroups": [{"name": tg["TargetGroupName"]} for tg in tgs], "prodTrafficRoute": {"listenerArns": [prod]}}
    if test:
        pair["testTrafficRoute"] = {"listenerArns": [test]}
    ready = ({"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": args.ready_wait_minutes} if args.ready_wait
             else {"actionOnTimeout": "CONTINUE_DEPLOYMENT", "waitTimeInMinutes": 0})
    bg = {"terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE",
                                                         "terminationWaitTimeInMinutes": args.termination_wait_minutes},
          "deploymentReadyOption": ready}
    rollback = ({"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST"]} if args.auto_rollback
                else {"enabled": False, "events": []})
    group_id = cd.create_deployment_group(
        applicationName=app, deploymentGroupName=group, serviceRoleArn=SERVICE_ROLE,
        deploymentConfigName=args.deployment_config,
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        blueGreenDeploymentConfiguration=bg, autoRollbackConfiguration=rollback,
        ecsServices=[{"serviceName": args.service, "clusterName": args.cluster}],
        loadBalancerInfo={"targetGroupPairInfoList": [pair]})["deploymentGroupId"]
    deadline = time.time() + 30
    while time.time() < deadline:
        svc = ecs.describe_services(cluster=args.cluster, services=[args.service])["services"][0]
        sets = svc.get("taskSets") or []
        if len(sets) == 1 and sets[0].get("stabilityStatus") == "STEADY_STATE":
            break
        time.sleep(0.1)
    else:
        sys.exit(f"lab: the first task set of {args.service} was not steady in 30 s")
    print(json.dumps({
        "cluster": args.cluster, "service": args.service, "controller": "CODE_DEPLOY", "task_definition_arn": td,
        "task_set_id": sets[0]["id"], "application_name": app, "deployment_group_name": group,
        "deployment_group_id": group_id, "deployment_config_name": args.deployment_config,
        "target_group_arn": tgs[0]["TargetGroupArn"], "alternate_target_group_arn": tgs[1]["TargetGroupArn"],
        "target_group_names": [tg["TargetGroupName"] for tg in tgs], "load_balancer_arn": alb["LoadBalancerArn"],
        "production_listener_arn": prod, "test_listener_arn": test, "production_url": f"http://{alb['DNSName']}:80",
        "test_url": test and f"http://{alb['DNSName']}:8080", "container_name": "web", "container_port": 8080,
        "ready_wait": args.ready_wait, "ready_wait_minutes": args.ready_wait_minutes if args.ready_wait else None,
        "termination_wait_minutes": args.termination_wait_minutes, "auto_rollback": rollback, "subnets": subnets}))
