"""`scenario.py create` for the service shapes of issue 15 (lab/README.md "Service shapes"): EC2 container
instances with bridge, host or awsvpc networking, instance or ip target groups behind an ALB or an NLB, and
services with no load balancer, with or without a container health check.

  scenario.py create --cluster C --service S --launch-type EC2 --network-mode bridge|host|awsvpc [--instances 2]
                     [--nlb] [--target-type ip|instance] [--no-load-balancer] [--health-check]
"""

import json
import sys
import time


def add_create_args(c):
    c.add_argument("--launch-type", choices=["FARGATE", "EC2"], default="FARGATE")
    c.add_argument("--network-mode", choices=["awsvpc", "bridge", "host"], default="awsvpc")
    c.add_argument("--instances", type=int, default=2, help="EC2: container instances registered in the cluster")
    c.add_argument("--nlb", action="store_true", help="a Network Load Balancer and a TCP target group")
    c.add_argument("--target-type", choices=["ip", "instance"], default=None,
                   help="default: instance for bridge/host networking, else ip")
    c.add_argument("--no-load-balancer", action="store_true", help="a service with no load balancer")
    c.add_argument("--health-check", action="store_true", help="the web container gets a healthCheck")


def wanted(args):
    return (args.launch_type != "FARGATE" or args.network_mode != "awsvpc" or args.nlb or args.no_load_balancer
            or args.health_check or args.target_type)


def create(args, scenario):
    ecs, ec2, elb = scenario.client("ecs"), scenario.client("ec2"), scenario.client("elbv2")
    no_lb = args.no_load_balancer or args.no_lb
    net = scenario.network(args.service, with_lb=False)
    subnets, sg, vpc = net["subnets"], net["security_group"], net["vpc"]
    ecs.create_cluster(clusterName=args.cluster)
    instances = []
    if args.launch_type == "EC2" and args.instances:
        made = ec2.run_instances(ImageId="ami-12c6146b", MinCount=args.instances, MaxCount=args.instances,
                                 InstanceType="t3.medium", SubnetId=subnets[0])["Instances"]
        for inst in made:
            doc = {"instanceId": inst["InstanceId"], "region": scenario.REGION, "instanceType": "t3.medium"}
            ci = ecs.register_container_instance(cluster=args.cluster, instanceIdentityDocument=json.dumps(doc))
            instances.append({"instance_id": inst["InstanceId"],
                              "container_instance_arn": ci["containerInstance"]["containerInstanceArn"]})
    target_type = args.target_type or ("instance" if args.network_mode in ("bridge", "host") else "ip")
    tg_arn = None
    if not no_lb:
        kind = "network" if args.nlb else "application"
        lb = elb.create_load_balancer(Name=f"{args.service}-{'nlb' if args.nlb else 'alb'}"[:32], Subnets=subnets,
                                      Type=kind, **({} if args.nlb else {"SecurityGroups": [sg]}))
        lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
        group = dict(Name=f"{args.service}-tg"[:32], Port=8080, VpcId=vpc, TargetType=target_type)
        group.update(Protocol="TCP", HealthCheckProtocol="TCP") if args.nlb else group.update(
            Protocol="HTTP", HealthCheckPath="/health")
        tg_arn = elb.create_target_group(**group)["TargetGroups"][0]["TargetGroupArn"]
        elb.create_listener(LoadBalancerArn=lb_arn, Protocol="TCP" if args.nlb else "HTTP", Port=80,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
    web = scenario.container("web", args.image, 8080)
    if args.network_mode == "bridge":
        web["portMappings"][0]["hostPort"] = 0  # dynamic host port
    elif args.network_mode == "host":
        web["portMappings"][0]["hostPort"] = 8080
    if args.health_check:
        web["healthCheck"] = {"command": ["CMD-SHELL", "curl -f http://localhost:8080/health || exit 1"],
                              "interval": 5, "timeout": 2, "retries": 2, "startPeriod": 0}
    compat = "EC2" if args.launch_type == "EC2" else "FARGATE"
    td = ecs.register_task_definition(
        family=args.service, networkMode=args.network_mode, requiresCompatibilities=[compat], cpu="256",
        memory="512", executionRoleArn="arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        containerDefinitions=[web])["taskDefinition"]["taskDefinitionArn"]
    service = dict(cluster=args.cluster, serviceName=args.service, taskDefinition=td, desiredCount=args.desired,
                   launchType=args.launch_type,
                   deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 100},
                   loadBalancers=[{"targetGroupArn": tg_arn, "containerName": "web", "containerPort": 8080}]
                   if tg_arn else [])
    if args.breaker != "off":
        service["deploymentConfiguration"]["deploymentCircuitBreaker"] = {"enable": True,
                                                                          "rollback": args.breaker == "rollback"}
    if args.network_mode == "awsvpc":
        service["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg],
                                                                   "assignPublicIp": "DISABLED"}}
    ecs.create_service(**service)
    deadline = time.time() + 30
    while time.time() < deadline:
        svc = ecs.describe_services(cluster=args.cluster, services=[args.service])["services"][0]
        if len(svc["deployments"]) == 1 and svc["deployments"][0].get("rolloutState") == "COMPLETED":
            break
        time.sleep(0.1)
    else:
        sys.exit(f"lab: service {args.service} did not reach COMPLETED in 30 s")
    print(json.dumps({"cluster": args.cluster, "service": args.service, "task_definition_arn": td,
                      "target_group_arn": tg_arn, "target_type": target_type if tg_arn else None,
                      "subnets": subnets, "instances": instances}))
