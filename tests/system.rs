//! Whole systems: several services in one `deployer run`, a first deploy that creates what is
//! missing, a one-off task before the update, revision hygiene, and the zone-spread warning.

use crate::lab::{Lab, run, scenario, unique};
use serde_json::Value;

/// deployer.toml for two independent services `a` (image v2) and `b` (image `b_image`).
fn independent(a: &Lab, b: &Lab, b_image: &str, extra: &str) -> String {
    format!(
        "timeout = \"60s\"\n{extra}\n\
         [services.a]\ncluster = \"{}\"\nservice = \"{}\"\nimage = \"{}\"\n\n\
         [services.b]\ncluster = \"{}\"\nservice = \"{}\"\nimage = \"{b_image}\"\n",
        a.cluster,
        a.service,
        a.image("v2"),
        b.cluster,
        b.service
    )
}

/// deployer.toml for two services, `web` depending on `api`, each in its own lab cluster.
fn two_services(api: &Lab, web: &Lab, api_image: &str, web_image: &str, extra: &str) -> String {
    format!(
        "name = \"shop\"\ntimeout = \"60s\"\n{extra}\n\
         [services.api]\ncluster = \"{}\"\nservice = \"{}\"\nimage = \"web={api_image}\"\n\n\
         [services.web]\ncluster = \"{}\"\nservice = \"{}\"\ndepends-on = [\"api\"]\nimage = \"web={web_image}\"\n",
        api.cluster, api.service, web.cluster, web.service
    )
}

fn system_run(dir: &Lab, args: &[&str]) -> crate::lab::Run {
    let mut cmd = crate::lab::deployer(dir.dir.path());
    cmd.arg("run").args(args);
    run(cmd)
}

fn first_write(lab: &Lab, action: &str) -> f64 {
    lab.writes()
        .iter()
        .find(|w| w["action"] == action)
        .and_then(|w| w["t"].as_f64())
        .unwrap_or_else(|| panic!("no {action} for {}", lab.service))
}

fn service_results(result: &Value) -> Vec<(String, String)> {
    result["services"]
        .as_array()
        .expect("a services array in the result")
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap_or_default().to_string(),
                s["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn two_services_with_depends_on_second_failing_both_rolled_back() {
    let api = Lab::service(&[]);
    let web = Lab::service(&[]);
    let bad = web.image("crash");
    web.fault(&bad, "exit", &["--log", "web: cannot reach api"]);
    api.write(
        "deployer.toml",
        &two_services(&api, &web, &api.image("v2"), &bad, ""),
    );
    let run = system_run(&api, &["--output", "json"]);
    run.code(1)
        .says("deploying 2 services of `shop`: api, then web")
        .says("web | ==> deploy failed: 2 of the new tasks stopped")
        .says("| web: cannot reach api")
        .says("api | ==> rolling back `api` because `web` failed")
        .says(
            "rolled back: every service this run changed is back on its previous task definition",
        );
    let result = run.result();
    assert_eq!(result["outcome"], "rolled_back");
    assert_eq!(
        service_results(&result),
        vec![
            (api.service.clone(), "rolled_back".to_string()),
            (web.service.clone(), "rolled_back".to_string())
        ]
    );
    assert!(
        result["reason"]
            .as_str()
            .unwrap()
            .starts_with("`web` failed: 2 of the new tasks stopped"),
        "{result}"
    );
    // How each came back: web (failing in flight) through ECS's own rollback, api (deployed, then
    // undone) with UpdateService.
    let rollbacks: Vec<_> = result["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| s["rollback"].clone())
        .collect();
    assert_eq!(
        rollbacks,
        ["UpdateService", "StopServiceDeployment"],
        "{result}"
    );
    // Nothing is left half new: both run what they ran before.
    assert_eq!(api.running_task_definition(), api.task_definition_arn);
    assert_eq!(web.running_task_definition(), web.task_definition_arn);
    // depends-on: web's update waited for api's.
    assert!(
        first_write(&api, "ecs:UpdateService") < first_write(&web, "ecs:UpdateService"),
        "api must be updated before web"
    );
    // One event stream: every line of a service carries its name, and each service has its result.
    let named = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "service_result")
        .count();
    assert!(named >= 2, "{}", run.stdout);
}

#[test]
fn independent_services_deploy_side_by_side_and_scope_service_keeps_the_healthy_one() {
    let a = Lab::service(&[]);
    let b = Lab::service(&[]);
    let bad = b.image("unhealthy");
    b.fault(&bad, "unhealthy", &[]);
    a.write(
        "deployer.toml",
        &independent(&a, &b, &bad, "rollback-scope = \"service\""),
    );
    let run = system_run(&a, &["--output", "json"]);
    run.code(1).says("deploying 2 services");
    let result = run.result();
    assert_eq!(
        service_results(&result),
        vec![
            (a.service.clone(), "deployed".to_string()),
            (b.service.clone(), "rolled_back".to_string())
        ]
    );
    assert_ne!(a.running_task_definition(), a.task_definition_arn);
    assert_eq!(b.running_task_definition(), b.task_definition_arn);
    // Side by side: both services were updated before either rollout finished.
    let a_done = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "service_result" && e["service"] == a.service.as_str())
        .expect("a's result");
    let both_updated =
        first_write(&a, "ecs:UpdateService").max(first_write(&b, "ecs:UpdateService"));
    let a_update = first_write(&a, "ecs:UpdateService");
    let a_took = a_done["elapsed_ms"].as_f64().unwrap() / 1000.0;
    assert!(
        both_updated - a_update < a_took,
        "b was updated {:.2}s after a, but a's rollout finished after {a_took:.2}s: not side by side",
        both_updated - a_update
    );
}

#[test]
fn bad_system_configs_are_refused_before_any_write() {
    let api = Lab::service(&[]);
    let web = Lab::service(&[]);
    let base = two_services(&api, &web, &api.image("v2"), &web.image("v2"), "");
    for (text, args, expect) in [
        (
            base.replace("depends-on = [\"api\"]", "depends-on = [\"db\"]"),
            vec![],
            "`services.web.depends-on` in ",
        ),
        (
            base.replace(
                "[services.api]\n",
                "[services.api]\ndepends-on = [\"web\"]\n",
            ),
            vec![],
            "goes in a circle: api → web → api",
        ),
        (
            base.clone(),
            vec!["--image", "registry.lab/app:v3"],
            "--image (or DEPLOYER_IMAGE) cannot be used with `[services]`",
        ),
        (
            base.replace("[services.web]", "[services.web]\nimgae = \"x\""),
            vec![],
            "unknown field `imgae`",
        ),
        (
            base.clone(),
            vec!["--github-deployment"],
            "--github-deployment records one service's GitHub deployment",
        ),
        (
            format!("rollback-scope = \"all\"\n{base}"),
            vec![],
            "invalid `rollback-scope = \"all\"`",
        ),
    ] {
        api.write("deployer.toml", &text);
        let mut args = args.clone();
        args.extend(["--output", "json"]);
        let run = system_run(&api, &args);
        run.code(2).says(expect);
        assert_eq!(run.result()["outcome"], "refused");
    }
    api.assert_no_writes();
    web.assert_no_writes();
}

#[test]
fn a_bad_file_of_the_second_service_is_refused_before_the_first_deploys() {
    let api = Lab::service(&[]);
    let web = Lab::service(&[]);
    let base = two_services(&api, &web, &api.image("v2"), &web.image("v2"), "");
    let task = |containers_key: &str| {
        serde_json::json!({
            "family": web.service, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
            "cpu": "256", "memory": "512",
            containers_key: [{"name": "web", "image": web.image("v1"), "essential": true}]
        })
        .to_string()
    };
    let with_files = |files: &str| base.replace("depends-on", &format!("{files}\ndepends-on"));
    for (files, task_text, service_text, expect) in [
        (
            "task-definition = \"web-task.json\"",
            "{\"family\": \"web\", \"containerDefinitions\": [".to_string(),
            String::new(),
            "web-task.json`: not valid JSON",
        ),
        (
            "task-definition = \"web-task.json\"",
            task("containerDefnitions"),
            String::new(),
            "unknown field `containerDefnitions`",
        ),
        (
            "task-definition = \"missing-task.json\"",
            task("containerDefinitions"),
            String::new(),
            "failed to read task definition file `",
        ),
        (
            "task-definition = \"web-task.json\"\nservice-definition = \"web-service.json\"",
            task("containerDefinitions"),
            format!(
                "{{\"serviceName\": \"{}\", \"desiredCuont\": 2}}",
                web.service
            ),
            "web-service.json`: unknown field `desiredCuont`",
        ),
    ] {
        api.write("web-task.json", &task_text);
        api.write("web-service.json", &service_text);
        api.write("deployer.toml", &with_files(files));
        let run = system_run(&api, &["--output", "json"]);
        run.code(2).says("`[services.web]`: ").says(expect);
        let result = run.result();
        assert_eq!(result["outcome"], "refused", "{files}: {result}");
    }
    // `plan` acts on one service: with `[services]` and no --service it is refused, asking nothing.
    let mut plan = crate::lab::deployer(api.dir.path());
    plan.args(["plan", "--output", "json"]);
    run(plan)
        .code(2)
        .says("describes several services (`[services]`)");
    // Not even the first service was registered or updated, in any of the runs.
    api.assert_no_writes();
    web.assert_no_writes();
}

/// `deployer ARGS` in `dir`'s directory, whose deployer.toml describes a system: no --cluster or
/// --service added (`Lab::deployer` adds this lab's).
fn one_service(dir: &Lab, args: &[&str]) -> crate::lab::Run {
    let mut cmd = crate::lab::deployer(dir.dir.path());
    cmd.args(args);
    run(cmd)
}

/// A system of `api` (image v2 from its table) and `web` (its table's task-definition file, with
/// `file_image` and the variable `FROM_FILE`), with a top-level timeout both inherit.
fn one_of_a_system(api: &Lab, web: &Lab, file_image: &str) -> String {
    let task = serde_json::json!({
        "family": web.service, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512",
        "containerDefinitions": [{"name": "web", "image": file_image, "memory": 256,
            "portMappings": [{"containerPort": 8080}],
            "environment": [{"name": "FROM_FILE", "value": "yes"}]}]
    });
    api.write("ecs-web-task.json", &task.to_string());
    format!(
        "timeout = \"60s\"\n\n\
         [services.api]\ncluster = \"{}\"\nservice = \"{}\"\nimage = \"web={}\"\n\n\
         [services.web]\ncluster = \"{}\"\nservice = \"{}\"\ntask-definition = \"ecs-web-task.json\"\ndepends-on = [\"api\"]\n",
        api.cluster,
        api.service,
        api.image("v2"),
        web.cluster,
        web.service
    )
}

/// `plan`, `deploy` and `status` with `--service` in a directory whose deployer.toml has
/// `[services]`: the table `--service` names (by its key or its `service`) is used over the top
/// level, never the top level alone; the other services are not touched.
#[test]
fn plan_and_deploy_of_one_service_use_its_table() {
    let api = Lab::service(&[]);
    let web = Lab::service(&[]);
    let file_image = web.image("file");
    api.write("deployer.toml", &one_of_a_system(&api, &web, &file_image));
    // plan by the table's name: the table's image, against what the service runs.
    let plan = one_service(&api, &["plan", "--service", "api", "--output", "json"]);
    plan.code(0).says(&format!(
        "~ containerDefinitions.web.image: \"registry.lab/app:v1\" -> \"{}\"",
        api.image("v2")
    ));
    assert_eq!(plan.result()["outcome"], "planned");
    assert_eq!(plan.result()["service"], api.service.as_str());
    // plan by the table's `service`: the table's task-definition file (relative to the file).
    let plan = one_service(&api, &["plan", "--service", &web.service]);
    plan.code(0)
        .says(&file_image)
        .says("+ containerDefinitions.web.environment.FROM_FILE");
    api.assert_no_writes();
    web.assert_no_writes();
    // deploy one service: the table's file is what ECS runs; the table's cluster is used.
    let deploy = one_service(&api, &["deploy", "--service", "web", "--output", "json"]);
    deploy.code(0).says("deployed");
    assert_eq!(deploy.result()["cluster"], web.cluster.as_str());
    let described = web.describe();
    assert_eq!(
        described["images"]["web"],
        file_image.as_str(),
        "{described}"
    );
    assert_eq!(web.environment("web")["FROM_FILE"], "yes");
    assert_ne!(web.running_task_definition(), web.task_definition_arn);
    // Only that service: api was not touched.
    api.assert_no_writes();
    // status of one service by its table.
    one_service(&api, &["status", "--service", "api"])
        .code(0)
        .says(&api.service);
    // The manual test's case: a bad task-definition file of the table is refused, not "no change".
    api.write(
        "ecs-web-task.json",
        "{\"family\": \"web\", \"containerDefinitions\": [",
    );
    one_service(&api, &["plan", "--service", "web"])
        .code(2)
        .says("ecs-web-task.json`: not valid JSON");
}

/// A `--service` no table describes is refused before anything is read or written: exit 2, the
/// file and the tables named.
#[test]
fn a_service_no_table_describes_is_refused_with_no_writes() {
    let api = Lab::service(&[]);
    let web = Lab::service(&[]);
    api.write(
        "deployer.toml",
        &one_of_a_system(&api, &web, &web.image("file")),
    );
    let toml = api.dir.path().join("deployer.toml");
    for command in ["plan", "deploy", "verify", "status", "rollback"] {
        let mut args = vec![command, "--service", "backend", "--output", "json"];
        if command == "deploy" {
            args.extend(["--cluster", &api.cluster, "--image", "registry.lab/app:v9"]);
        }
        let refused = one_service(&api, &args);
        refused
            .code(2)
            .says("--service `backend`")
            .says(&format!(
                "names no `[services.NAME]` table of {}",
                toml.display()
            ))
            .says(&format!(
                "(tables: `api` (service `{}`, cluster `{}`), `web` (service `{}`, cluster `{}`))",
                api.service, api.cluster, web.service, web.cluster
            ));
        assert_eq!(refused.result()["outcome"], "refused", "{command}");
    }
    // A table's service asked for in another cluster than the table's own is no table either.
    one_service(
        &api,
        &["deploy", "--service", "api", "--cluster", &web.cluster],
    )
    .code(2)
    .says(&format!("in cluster `{}` names no", web.cluster));
    api.assert_no_writes();
    web.assert_no_writes();
}

#[test]
fn services_are_built_from_their_containers_build_tables() {
    let api = Lab::service(&[]);
    let web = Lab::service(&[]);
    let sha = crate::run::app(&api, crate::run::DOCKERFILE);
    let (api_repo, web_repo) = (format!("api-{}", api.tag), format!("web-{}", web.tag));
    api.write(
        "deployer.toml",
        &format!(
            "create-missing = true\n\n\
             [services.api]\ncluster = \"{}\"\nservice = \"{}\"\n\
             [services.api.containers.web.build]\ncontext = \"app\"\nrepository = \"{api_repo}\"\nbuild-args = {{ GREETING = \"hi\" }}\n\n\
             [services.web]\ncluster = \"{}\"\nservice = \"{}\"\ndepends-on = [\"api\"]\n\
             [services.web.containers.web.build]\ncontext = \"app\"\nrepository = \"{web_repo}\"\nbuild-args = {{ GREETING = \"hi\" }}\n",
            api.cluster, api.service, web.cluster, web.service
        ),
    );
    let run = system_run(&api, &["--output", "json"]);
    run.code(0)
        .says("deployed: every service's new tasks are running and healthy");
    for (lab, repo) in [(&api, &api_repo), (&web, &web_repo)] {
        let digest = scenario(&["digest", "--repository", repo, "--tag", &sha[..12]])["digest"]
            .as_str()
            .map(String::from)
            .expect("pushed to the repository --create-missing made");
        let image = crate::run::image_in_service(lab);
        assert!(image.ends_with(&format!("{repo}@{digest}")), "{image}");
    }
}

/// Files for a service that does not exist yet, on a lab network made for it.
fn first_deploy_files(lab_dir: &Lab, name: &str, extra_service: &str) -> (String, String) {
    let net_name = unique("net");
    let net = scenario(&["network", "--name", &net_name]);
    let subnets: Vec<&str> = net["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let td = lab_dir.write(
        &format!("{net_name}-task.json"),
        &serde_json::json!({
            "family": name, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
            "cpu": "256", "memory": "512", "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
            "containerDefinitions": [{
                "name": "api", "image": "registry.lab/app:first", "essential": true,
                "portMappings": [{"containerPort": 8080, "name": "api"}],
                "logConfiguration": {"logDriver": "awslogs", "options": {
                    "awslogs-group": "/ecs/lab", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "api"}}
            }]
        })
        .to_string(),
    );
    let mut service = serde_json::json!({
        "serviceName": name, "desiredCount": 2, "launchType": "FARGATE",
        "loadBalancers": [{"targetGroupArn": net["target_group_arn"], "containerName": "api", "containerPort": 8080}],
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": subnets, "securityGroups": [net["security_group"]], "assignPublicIp": "DISABLED"}},
        "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true},
                                    "maximumPercent": 200, "minimumHealthyPercent": 100},
        "healthCheckGracePeriodSeconds": 30,
        "serviceConnectConfiguration": {"enabled": true, "namespace": "shop",
                                        "services": [{"portName": "api", "clientAliases": [{"port": 8080}]}]}
    });
    if !extra_service.is_empty() {
        let extra: Value = serde_json::from_str(extra_service).unwrap();
        for (k, v) in extra.as_object().unwrap() {
            service[k] = v.clone();
        }
    }
    let svc = lab_dir.write(&format!("{net_name}-service.json"), &service.to_string());
    (td.display().to_string(), svc.display().to_string())
}

/// A cluster and service that do not exist yet, with their files written.
struct NewService {
    /// Only for its temp dir and helpers.
    dir: Lab,
    cluster: String,
    name: String,
    task_definition: String,
    service_definition: String,
}

impl NewService {
    fn new() -> NewService {
        let dir = Lab::service(&["--no-lb"]);
        let name = unique("first");
        let (task_definition, service_definition) = first_deploy_files(&dir, &name, "");
        NewService {
            dir,
            cluster: unique("new"),
            name,
            task_definition,
            service_definition,
        }
    }

    /// `deployer deploy` of it from its task definition file, plus `extra`.
    fn deploy(&self, extra: &[&str]) -> crate::lab::Run {
        let mut cmd = crate::lab::deployer(self.dir.dir.path());
        cmd.args([
            "deploy",
            "--cluster",
            &self.cluster,
            "--service",
            &self.name,
            "--task-definition",
            &self.task_definition,
            "--output",
            "json",
        ])
        .args(extra);
        run(cmd)
    }
}

/// verify's DescribeTargetGroups of the services of one run is shared; ELB (and the lab, as moto
/// does) answers a call naming one target group it does not know with TargetGroupNotFound for the
/// whole call. The unknown one is refused for its own service only, with its ARN; the service's
/// other target group and the other service are checked and deploy.
#[test]
fn an_unknown_target_group_refuses_its_own_service_only() {
    let a = Lab::service(&[]);
    let (name, cluster) = (unique("first"), unique("new"));
    let (task_definition, svc) = first_deploy_files(&a, &name, "");
    let gone = format!(
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{}/0123456789abcdef",
        unique("gone")
    );
    // b names its own network's target group and one ELB does not know.
    let mut service: Value =
        serde_json::from_str(&std::fs::read_to_string(&svc).expect("the file")).expect("JSON");
    service["loadBalancers"].as_array_mut().unwrap().push(
        serde_json::json!({"targetGroupArn": gone, "containerName": "api", "containerPort": 8080}),
    );
    std::fs::write(&svc, service.to_string()).expect("written");
    a.write(
        "deployer.toml",
        &format!(
            "timeout = \"60s\"\nrollback-scope = \"service\"\n\n\
             [services.a]\ncluster = \"{}\"\nservice = \"{}\"\nimage = \"{}\"\n\n\
             [services.b]\ncluster = \"{}\"\nservice = \"{}\"\nimage = \"api={}\"\n\
             task-definition = \"{}\"\nservice-definition = \"{svc}\"\n",
            a.cluster,
            a.service,
            a.image("v2"),
            cluster,
            name,
            a.image("v2"),
            task_definition
        ),
    );
    let run = system_run(&a, &["--create-missing", "--output", "json"]);
    run.says("[target-group-not-found]").says(&gone);
    let findings: Vec<Value> = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "verify")
        .flat_map(|e| e["findings"].as_array().cloned().unwrap_or_default())
        .collect();
    let named: Vec<&str> = findings
        .iter()
        .filter(|f| f["code"] == "target-group-not-found" || f["code"] == "check-failed")
        .map(|f| f["value"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        named,
        vec![gone.as_str()],
        "only the unknown one: {findings:?}"
    );
    assert_eq!(
        service_results(&run.result()),
        vec![
            (a.service.clone(), "deployed".to_string()),
            (name.clone(), "refused".to_string())
        ]
    );
    assert_ne!(a.running_task_definition(), a.task_definition_arn);
    let writes = scenario(&["writes", "--name", &name]);
    assert_eq!(
        writes.as_array().map(Vec::len),
        Some(0),
        "the refused service was written to: {writes}"
    );
}

#[test]
fn from_nothing_to_healthy_with_create_missing() {
    let new = NewService::new();
    let (dir, cluster, name, svc) = (&new.dir, &new.cluster, &new.name, &new.service_definition);
    let deploy = |extra: &[&str]| new.deploy(extra);
    // Writes naming the cluster, or the service and its task-definition family (both `name`), so a
    // RegisterTaskDefinition before a refusal would count too (A7).
    let writes = || {
        let mut all: Vec<Value> = Vec::new();
        for n in [cluster, name] {
            for w in scenario(&["writes", "--name", n]).as_array().unwrap() {
                if !all.contains(w) {
                    all.push(w.clone());
                }
            }
        }
        all.len()
    };

    // Without the flag: exit 2, what to do, nothing created.
    deploy(&[]).code(2).says("pass --create-missing");
    // A typo in the service definition is named before anything is created.
    let (_, typo) = first_deploy_files(dir, name, r#"{"desiredCount": "two"}"#);
    deploy(&["--create-missing", "--service-definition", &typo])
        .code(2)
        .says("`desiredCount` is \"two\"");
    assert_eq!(writes(), 0, "nothing may be created on a refusal");
    // So is a blue/green service ECS would reject (no bake time), and one not wired for it.
    let (_, staged) = first_deploy_files(
        dir,
        name,
        r#"{"deploymentConfiguration": {"strategy": "BLUE_GREEN"}}"#,
    );
    deploy(&["--create-missing", "--service-definition", &staged])
        .code(2)
        .says(
            "`deploymentConfiguration`: the service's BLUE_GREEN strategy has no bakeTimeInMinutes",
        );
    let (_, unwired) = first_deploy_files(
        dir,
        name,
        r#"{"deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5}}"#,
    );
    deploy(&["--create-missing", "--service-definition", &unwired])
        .code(2)
        .says("advancedConfiguration.alternateTargetGroupArn` is missing");
    assert_eq!(writes(), 0, "nothing may be created on a refusal");

    let run = deploy(&["--create-missing", "--service-definition", svc]);
    run.code(0)
        .says(&format!(
            "creating cluster `{cluster}` (FARGATE and FARGATE_SPOT, Container Insights on)"
        ))
        .says(&format!("creating service `{name}`"))
        .says("deployed: the new tasks are running and healthy");
    let result = run.result();
    assert_eq!(result["outcome"], "deployed");
    assert!(result["previous_task_definition_arn"].is_null());
    let made = scenario(&["cluster", "--name", cluster]);
    assert_eq!(
        made["capacityProviders"],
        serde_json::json!(["FARGATE", "FARGATE_SPOT"])
    );
    assert_eq!(
        made["settings"],
        serde_json::json!([{"name": "containerInsights", "value": "enabled"}])
    );
    let service = scenario(&["service", "--cluster", cluster, "--service", name]);
    assert_eq!(service["running"], 2);
    assert_eq!(service["deployments"][0]["rollout_state"], "COMPLETED");
    // A second run finds everything and deploys as usual.
    deploy(&[
        "--create-missing",
        "--service-definition",
        svc,
        "--image",
        "registry.lab/app:second",
    ])
    .code(0)
    .says("(the rollback target)");
}

#[test]
fn a_failing_migration_task_leaves_the_service_untouched() {
    let lab = Lab::service(&[]);
    let bad = lab.image("migrate-bad");
    lab.fault(
        &bad,
        "exit",
        &[
            "--log",
            "applying 0042_add_email",
            "--log",
            "ERROR: column \"email\" already exists",
        ],
    );
    let run = lab.deployer(&[
        "deploy",
        "--image",
        &format!("web={bad}"),
        "--run-task",
        "web",
        "--run-task-command",
        "./manage migrate",
        "--output",
        "json",
    ]);
    run.code(2)
        .says("running a one-off task before the update: container `web` with `./manage migrate`")
        .says("web> running: ./manage migrate")
        .says("container `web`: exit code 1")
        .says("ERROR: column \"email\" already exists")
        .says("so the service was not updated");
    assert_eq!(run.result()["outcome"], "refused");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    let actions: Vec<Value> = lab.writes().iter().map(|w| w["action"].clone()).collect();
    assert!(actions.contains(&"ecs:RunTask".into()), "{actions:?}");
    assert!(
        !actions.contains(&"ecs:UpdateService".into()),
        "{actions:?}"
    );

    // A migration that passes runs to its end before the service moves.
    let good = lab.image("migrate-good");
    lab.deployer(&[
        "deploy",
        "--image",
        &format!("web={good}"),
        "--run-task",
        "web",
        "--run-task-command",
        "./manage migrate",
    ])
    .code(0)
    .says("one-off task")
    .says("finished: every essential container exited 0")
    .says("deployed");
    let writes = lab.writes();
    let t = |action: &str| {
        writes
            .iter()
            .rev()
            .find(|w| w["action"] == action)
            .and_then(|w| w["t"].as_f64())
            .unwrap()
    };
    assert!(t("ecs:RunTask") < t("ecs:UpdateService"));
    // An unknown container is bad input: refused before anything is registered.
    let before = lab.writes().len();
    lab.deployer(&[
        "deploy",
        "--image",
        &format!("web={}", lab.image("v5")),
        "--run-task",
        "migrator",
    ])
    .code(2)
    .says("invalid --run-task `migrator`: task definition family");
    assert_eq!(lab.writes().len(), before);
}

#[test]
fn revision_cleanup_keeps_the_rollback_target_and_what_is_in_use() {
    let lab = Lab::service(&[]);
    let family = lab.service.clone();
    // Revisions 2-4 registered by other pipelines but never deployed; revision 2 runs elsewhere.
    let registered = scenario(&[
        "register", "--family", &family, "--image", "a:2", "--image", "a:3", "--image", "a:4",
    ]);
    let rev2 = registered["task_definition_arns"][0]
        .as_str()
        .unwrap()
        .to_string();
    scenario(&[
        "create",
        "--cluster",
        &unique("other"),
        "--service",
        &unique("other"),
        "--family",
        &family,
        "--task-definition",
        &rev2,
        "--no-lb",
    ]);
    lab.deployer(&[
        "deploy",
        "--image",
        &lab.image("v5"),
        "--keep-revisions",
        "1",
    ])
    .code(0)
    .says("deregistered 2 old revision(s)")
    .says("deployed");
    let active = scenario(&["revisions", "--family", &family])["active"].clone();
    // 5 is new, 1 is the rollback target, 2 is in use by another service; 3 and 4 are gone.
    assert_eq!(active, serde_json::json!([1, 2, 5]));
}

#[test]
fn tasks_in_one_zone_of_two_are_a_warning() {
    let lab = Lab::service(&[]);
    lab.deployer(&["deploy", "--image", &lab.image("v2")])
        .code(0)
        .says("deployed");
    let spread = lab.deployer(&["deploy", "--image", &lab.image("v3")]);
    spread.code(0).says("deployed");
    assert!(
        !spread.stderr.contains("availability zone"),
        "{}",
        spread.stderr
    );
    let one = lab.image("onezone");
    lab.fault(&one, "one_zone", &[]);
    let run = lab.deployer(&["deploy", "--image", &one, "--output", "json"]);
    run.code(0).says(
        "warning: all 2 healthy tasks run in us-east-1a, although the service's subnets span us-east-1a, us-east-1b",
    );
    assert_eq!(run.result()["outcome"], "deployed");
}

#[test]
fn under_scope_run_a_failure_stops_and_rolls_back_the_services_beside_it() {
    let a = Lab::service(&[]);
    let b = Lab::service(&[]);
    let bad = b.image("nopull");
    b.fault(&bad, "cannot_pull", &[]);
    a.write("deployer.toml", &independent(&a, &b, &bad, ""));
    let run = system_run(&a, &["--output", "json"]);
    run.code(1).says("CannotPullContainerError");
    let result = run.result();
    assert_eq!(
        service_results(&result),
        vec![
            (a.service.clone(), "rolled_back".to_string()),
            (b.service.clone(), "rolled_back".to_string())
        ]
    );
    assert!(
        result["services"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("because `b` failed"),
        "{result}"
    );
    // The run names the service that failed, not the first one in the file.
    assert!(
        result["reason"]
            .as_str()
            .unwrap()
            .starts_with("`b` failed: "),
        "{result}"
    );
    assert_eq!(a.running_task_definition(), a.task_definition_arn);
    assert_eq!(b.running_task_definition(), b.task_definition_arn);
}

#[test]
fn a_failed_first_deploy_scales_the_new_service_to_zero() {
    let new = NewService::new();
    let crash = new.dir.image("first-crash");
    new.dir
        .fault(&crash, "exit", &["--log", "missing DATABASE_URL"]);
    new.deploy(&[
        "--service-definition",
        &new.service_definition,
        "--create-missing",
        "--image",
        &crash,
    ])
    .code(1)
    .says("| missing DATABASE_URL")
    .says("was created by this run: nothing earlier to return to; scaling it to 0 tasks");
    assert_eq!(
        scenario(&["service", "--cluster", &new.cluster, "--service", &new.name])["desired"],
        0
    );
}

#[test]
fn the_services_of_one_run_share_their_reads_and_keep_to_ecs_rates() {
    // Eight services in one cluster: unbatched, their looks would make 30-60 DescribeServices
    // and as many task reads a second, and two ListTasks each per look.
    let first = Lab::service(&[]);
    let mut names = vec![first.service.clone()];
    for _ in 0..7 {
        let name = unique("s");
        scenario(&["create", "--cluster", &first.cluster, "--service", &name]);
        names.push(name);
    }
    let mut toml = format!("timeout = \"60s\"\ncluster = \"{}\"\n", first.cluster);
    for (i, name) in names.iter().enumerate() {
        toml += &format!(
            "\n[services.svc{i}]\nservice = \"{name}\"\nimage = \"{}\"\n",
            first.image("v2")
        );
    }
    first.write("deployer.toml", &toml);
    let run = system_run(&first, &["--output", "json"]);
    run.code(0);
    assert_eq!(run.result()["outcome"], "deployed");

    let reads = scenario(&["reads", "--cluster", &first.cluster]);
    let reads = reads.as_array().expect("a list of reads");
    let of = |actions: &[&str]| -> Vec<f64> {
        reads
            .iter()
            .filter(|r| actions.contains(&r["action"].as_str().unwrap_or_default()))
            .map(|r| r["t"].as_f64().expect("a time"))
            .collect()
    };
    let busiest_second = |mut times: Vec<f64>| {
        times.sort_by(|a, b| a.partial_cmp(b).expect("times"));
        busiest(&times, 1.0)
    };
    let shared = reads
        .iter()
        .filter(|r| r["action"] == "DescribeServices")
        .map(|r| r["services"].as_array().map_or(0, Vec::len))
        .max()
        .unwrap_or(0);
    assert!(
        shared >= 2,
        "no DescribeServices call asked for more than one service: {reads:?}"
    );
    let described = of(&["DescribeServices"]);
    let task_reads = of(&["ListTasks", "DescribeTasks"]);
    assert!(
        busiest_second(described.clone()) <= 20,
        "DescribeServices went over 20 calls in one second: {described:?}"
    );
    assert!(
        busiest_second(task_reads.clone()) <= 20,
        "ListTasks and DescribeTasks went over 20 calls in one second: {task_reads:?}"
    );
    let listings = of(&["ListTasks"]).len();
    assert!(
        listings <= 2 * names.len(),
        "{listings} ListTasks calls for {} services: tasks already seen were listed again",
        names.len()
    );
    for name in &names {
        let service = scenario(&["service", "--cluster", &first.cluster, "--service", name]);
        let running = service["task_definition_arn"].as_str().unwrap_or_default();
        assert!(
            running.ends_with(":2"),
            "{name} runs {running}, not the new revision"
        );
    }
}

/// README: `--timeout` during `--run-task` stops the one-off task (StopTask) and leaves the service.
#[test]
fn a_one_off_task_past_the_timeout_is_stopped() {
    let lab = Lab::service(&[]);
    // Every DescribeTasks of this cluster is held: the task is never seen to stop.
    let hang = scenario(&[
        "api-fault",
        "--action",
        "DescribeTasks",
        "--kind",
        "hang",
        "--count",
        "50",
        "--match",
        &lab.cluster,
    ]);
    let hang = hang["id"].as_u64().expect("the fault's id").to_string();
    let run = lab.deployer(&[
        "deploy",
        "--image",
        &format!("web={}", lab.image("migrate-slow")),
        "--run-task",
        "web",
        "--timeout",
        "3s",
        "--output",
        "json",
    ]);
    // Only this test's hang: releasing every hang would cut parallel tests' hangs short.
    scenario(&["release", "--id", &hang]);
    run.code(2)
        .says("did not stop within")
        .says("it was stopped and the service was not changed");
    assert_eq!(run.result()["outcome"], "refused");
    let actions: Vec<Value> = lab.writes().iter().map(|w| w["action"].clone()).collect();
    assert!(actions.contains(&"ecs:RunTask".into()), "{actions:?}");
    assert!(actions.contains(&"ecs:StopTask".into()), "{actions:?}");
    assert!(
        !actions.contains(&"ecs:UpdateService".into()),
        "{actions:?}"
    );
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

/// The times of the reads of `actions` across `clusters` since `since` (epoch seconds), sorted.
fn read_times(clusters: &[String], actions: &[&str], since: f64) -> Vec<f64> {
    let mut times: Vec<f64> = clusters
        .iter()
        .flat_map(|cluster| {
            let reads = scenario(&["reads", "--cluster", cluster]);
            reads.as_array().expect("a list of reads").clone()
        })
        .filter(|r| actions.contains(&r["action"].as_str().unwrap_or_default()))
        .map(|r| r["t"].as_f64().expect("a time"))
        .filter(|t| *t >= since)
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).expect("times"));
    times
}

/// The most calls within any `window` seconds.
fn busiest(times: &[f64], window: f64) -> usize {
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t < times[i] + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn services_in_many_clusters_keep_to_half_of_ecs_sustained_rates() {
    // Twelve services in twelve clusters: no read can be shared between them (ECS reads name one
    // cluster), so only the pace keeps the run to half of ECS's refill rates: 10 DescribeServices
    // and 10 ListTasks/DescribeTasks a second, after a burst of 10. Unpaced, twelve watches
    // looking every 0.25-0.5 s make 24-48 of each a second.
    let first = Lab::service(&[]);
    let mut targets = vec![(first.cluster.clone(), first.service.clone())];
    for _ in 0..11 {
        let (cluster, name) = (unique("c"), unique("s"));
        scenario(&["create", "--cluster", &cluster, "--service", &name]);
        targets.push((cluster, name));
    }
    let image = first.image("v2");
    let mut toml = "timeout = \"120s\"\n".to_string();
    for (i, (cluster, name)) in targets.iter().enumerate() {
        toml += &format!(
            "\n[services.svc{i}]\ncluster = \"{cluster}\"\nservice = \"{name}\"\nimage = \"{image}\"\n"
        );
    }
    first.write("deployer.toml", &toml);
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    let started = std::time::Instant::now();
    system_run(&first, &["--output", "json"]).code(0);
    let took = started.elapsed().as_secs_f64();
    let clusters: Vec<String> = targets.iter().map(|(c, _)| c.clone()).collect();
    for (group, actions) in [
        ("DescribeServices", &["DescribeServices"][..]),
        (
            "ListTasks and DescribeTasks",
            &["ListTasks", "DescribeTasks"][..],
        ),
    ] {
        let times = read_times(&clusters, actions, since);
        let window = busiest(&times, 3.0);
        eprintln!(
            "{group}: {} calls in {took:.1} s, at most {window} in any 3 s",
            times.len()
        );
        // The burst (10) and 3 s at 10 a second, with one call of slack for clock rounding.
        assert!(
            window <= 41,
            "{group}: {window} calls within 3 s, over half of ECS's rate: {times:?}"
        );
    }
    for (cluster, name) in &targets {
        let service = scenario(&["service", "--cluster", cluster, "--service", name]);
        let running = service["task_definition_arn"].as_str().unwrap_or_default();
        assert!(
            running.ends_with(":2"),
            "{name} runs {running}, not the new revision"
        );
    }
}
