//! Single-service commands (`deploy`, `plan`, `verify`, `status`, `rollback`, `continue`) in a
//! deployer.toml with `[services.NAME]` tables: `--service` picks one table, whose keys go over the
//! top-level ones (as `deployer run` merges them); a `--service` no table describes is refused.

use super::*;

/// Which `[services.NAME]` table a `--service` (and a `--cluster`, when given) names.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Choice<'a> {
    /// The one table: its name.
    Table(&'a str),
    /// No table: its key and its `service` differ from `--service`, or its own `cluster` from `--cluster`.
    NoTable,
    /// Several tables (one by its key, another by its `service`, or one ECS service in two clusters).
    Several(Vec<&'a str>),
}

/// The table whose key or whose `service` equals `service`, and whose own `cluster` (when it sets
/// one) equals `cluster` (when one was given on the command line or in the environment). Of
/// several, the one table that sets that very cluster is chosen.
pub(super) fn choose<'a>(
    sections: &'a BTreeMap<String, FileConfig>,
    service: &str,
    cluster: Option<&str>,
) -> Choice<'a> {
    let found: Vec<&str> = sections
        .iter()
        .filter(|(name, s)| name.as_str() == service || s.service.as_deref() == Some(service))
        .filter(|(_, s)| match (cluster, s.cluster.as_deref()) {
            (Some(wanted), Some(own)) => wanted == own,
            _ => true,
        })
        .map(|(name, _)| name.as_str())
        .collect();
    let own_cluster: Vec<&str> = found
        .iter()
        .copied()
        .filter(|name| cluster.is_some() && sections[*name].cluster.as_deref() == cluster)
        .collect();
    match (found.as_slice(), own_cluster.as_slice()) {
        ([], _) => Choice::NoTable,
        ([one], _) | (_, [one]) => Choice::Table(one),
        _ => Choice::Several(found),
    }
}

/// One table's keys over the top level's, as `deployer run` deploys that service: the table's own
/// value wins, the top level fills `cluster`, `env`, `timeout` and the other run-wide keys, and
/// `service` defaults to the table's name.
pub(super) fn merge(top: &FileConfig, name: &str, section: &FileConfig) -> FileConfig {
    let mut values = section.clone();
    values.inherit(top);
    if values.service.is_none() {
        values.service = Some(name.to_string());
    }
    values
}

/// The tables as the refusals list them: `api` (service `shop-api`, cluster `shop`).
pub(super) fn describe(sections: &BTreeMap<String, FileConfig>, names: &[&str]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names
        .iter()
        .map(|name| {
            let s = &sections[*name];
            let mut parts = Vec::new();
            if let Some(service) = s.service.as_deref().filter(|s| s != name) {
                parts.push(format!("service `{service}`"));
            }
            if let Some(cluster) = &s.cluster {
                parts.push(format!("cluster `{cluster}`"));
            }
            match parts.is_empty() {
                true => format!("`{name}`"),
                false => format!("`{name}` ({})", parts.join(", ")),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// With `[services]`, no top-level `service`, `image`, `[build]` or `[containers]`: they would be
/// no service's (`deployer run` and the single-service commands refuse them alike).
pub(super) fn check_top_keys(file: &File) -> Result<()> {
    let top = &file.values;
    if top.service.is_some()
        || top.image.is_some()
        || top.build.is_some()
        || top.containers.is_some()
    {
        bail!(
            "{} has `[services]` and also a top-level `service`, `image`, `[build]` or `[containers]`; move them under `[services.NAME]`",
            file.name()
        );
    }
    Ok(())
}

impl File {
    /// For a single-service command: the file as that service sees it. Without `[services]`, none
    /// (the file as it is); with them, the table `--service` names merged over the top level, or a
    /// refusal naming the file and its tables. Nothing is read from AWS either way.
    pub(super) fn one_service(
        &self,
        args: &ServiceArgs,
        matches: &ArgMatches,
    ) -> Result<Option<File>> {
        let Some(sections) = &self.values.services else {
            return Ok(None);
        };
        check_top_keys(self)?;
        let all: Vec<&str> = sections.keys().map(String::as_str).collect();
        let flag = |id: &str, value: &Option<String>| {
            value
                .clone()
                .filter(|v| given(matches, id) && !v.trim().is_empty())
        };
        let Some(service) = flag("service", &args.service) else {
            bail!(
                "missing service: {} describes several services (`[services]`), which `deployer run` deploys together; this command acts on one: pass --service NAME (tables: {})",
                self.name(),
                describe(sections, &all)
            );
        };
        let cluster = flag("cluster", &args.cluster);
        let name = match choose(sections, &service, cluster.as_deref()) {
            Choice::Table(name) => name,
            Choice::NoTable => bail!(
                "--service `{service}`{} names no `[services.NAME]` table of {} (tables: {}); pass a table's name or its `service`, or deploy that service with `--config` naming another file",
                cluster
                    .as_ref()
                    .map(|c| format!(" in cluster `{c}`"))
                    .unwrap_or_default(),
                self.name(),
                describe(sections, &all)
            ),
            Choice::Several(names) => bail!(
                "--service `{service}` names several `[services.NAME]` tables of {}: {}; pass {} to choose one",
                self.name(),
                describe(sections, &names),
                match cluster {
                    Some(_) => "the table's name as --service",
                    None => "--cluster, or the table's name as --service,",
                }
            ),
        };
        let section = &sections[name];
        if section.services.is_some() || section.name.is_some() || section.rollback_scope.is_some()
        {
            bail!(
                "`services.{name}.*` in {}: `services`, `name` and `rollback-scope` belong at the top of the file",
                self.name()
            );
        }
        Ok(Some(File {
            path: self.path.clone(),
            values: merge(&self.values, name, section),
            table: Some(name.to_string()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(text: &str) -> BTreeMap<String, FileConfig> {
        toml::from_str::<FileConfig>(text)
            .expect("a valid deployer.toml")
            .services
            .expect("[services]")
    }

    const FILE: &str = r#"
        cluster = "shop"
        [services.api]
        service = "shop-api"
        [services.web]
        [services.web-eu]
        service = "web"
        cluster = "eu"
        [services.worker]
        cluster = "jobs"
    "#;

    #[test]
    fn a_table_is_chosen_by_its_key_or_its_service_and_its_own_cluster() {
        let sections = sections(FILE);
        for (service, cluster, expected) in [
            ("api", None, Choice::Table("api")),
            ("shop-api", None, Choice::Table("api")),
            ("shop-api", Some("anywhere"), Choice::Table("api")),
            ("web", Some("shop"), Choice::Table("web")),
            ("web", Some("eu"), Choice::Table("web-eu")),
            ("web", Some("staging"), Choice::Table("web")),
            ("web", None, Choice::Several(vec!["web", "web-eu"])),
            ("web-eu", Some("eu"), Choice::Table("web-eu")),
            ("web-eu", Some("shop"), Choice::NoTable),
            ("worker", Some("jobs"), Choice::Table("worker")),
            ("worker", Some("shop"), Choice::NoTable),
            ("backend", None, Choice::NoTable),
            ("API", None, Choice::NoTable),
            ("", None, Choice::NoTable),
        ] {
            assert_eq!(
                choose(&sections, service, cluster),
                expected,
                "--service {service} --cluster {cluster:?}"
            );
        }
    }

    #[test]
    fn a_table_goes_over_the_top_level_as_run_merges_it() {
        let top: FileConfig = toml::from_str(
            "cluster = \"shop\"\ntimeout = \"10m\"\nenv = \"web:A=1\"\nmax-failed-tasks = 3\ntask-definition = \"top.json\"\n",
        )
        .unwrap();
        let table = |text: &str| -> FileConfig { toml::from_str(text).unwrap() };
        type Row = (
            &'static str,
            &'static str,
            fn(&FileConfig) -> String,
            &'static str,
        );
        let rows: [Row; 9] = [
            (
                "",
                "service",
                |v| format!("{:?}", v.service),
                "Some(\"api\")",
            ),
            (
                "service = \"shop-api\"",
                "service",
                |v| format!("{:?}", v.service),
                "Some(\"shop-api\")",
            ),
            (
                "",
                "cluster",
                |v| format!("{:?}", v.cluster),
                "Some(\"shop\")",
            ),
            (
                "cluster = \"eu\"",
                "cluster",
                |v| format!("{:?}", v.cluster),
                "Some(\"eu\")",
            ),
            (
                "",
                "timeout",
                |v| format!("{:?}", v.timeout),
                "Some(\"10m\")",
            ),
            (
                "timeout = \"90s\"",
                "timeout",
                |v| format!("{:?}", v.timeout),
                "Some(\"90s\")",
            ),
            (
                "image = \"web=registry.lab/app:v2\"",
                "image",
                |v| format!("{:?}", v.image),
                "Some(One(\"web=registry.lab/app:v2\"))",
            ),
            // Not inherited, as in `deployer run`: a top-level task-definition is no service's.
            (
                "",
                "task-definition",
                |v| format!("{:?}", v.task_definition),
                "None",
            ),
            (
                "task-definition = \"api.json\"",
                "task-definition",
                |v| format!("{:?}", v.task_definition),
                "Some(\"api.json\")",
            ),
        ];
        for (text, field, get, expected) in rows {
            let merged = merge(&top, "api", &table(text));
            assert_eq!(get(&merged), expected, "table `{text}`: {field}");
        }
    }

    const SYSTEM: &str = r#"
        cluster = "shop"
        timeout = "10m"
        max-failed-tasks = 4
        [services.api]
        service = "shop-api"
        task-definition = "ecs/api.json"
        image = "api=registry.lab/api:v2"
        env = "api:MODE=fast"
        max-failed-tasks = 3
        [services.web]
        timeout = "bad"
        [services.front]
        cluster = "edge"
        [services.front.containers.web]
        image = "registry.lab/web:v3"
        [services.front.containers.envoy.build]
        repository = "envoy"
    "#;

    /// `deployer ARGS` against `text` as /shop/deployer.toml, resolved as dispatch resolves it.
    fn resolve(text: &str, argv: &[&str]) -> std::result::Result<String, String> {
        use crate::cli::{Cli, Command};
        use clap::{CommandFactory, FromArgMatches};
        let argv = std::iter::once("deployer").chain(argv.iter().copied());
        let matches = Cli::command()
            .try_get_matches_from(argv)
            .expect("valid flags");
        let cli = Cli::from_arg_matches(&matches).expect("valid flags");
        let sub = matches.subcommand().expect("a command").1;
        let file = File {
            path: Some(PathBuf::from("/shop/deployer.toml")),
            values: toml::from_str(text).expect("valid TOML"),
            table: None,
        };
        let shown = match &cli.command {
            Command::Plan(args) => deploy(args, sub, &file).map(|c| {
                let images: Vec<_> = c
                    .images
                    .iter()
                    .map(|i| format!("{:?}={}", i.container, i.image.0))
                    .collect();
                let file = c.task_definition_file.map(|p| p.display().to_string());
                format!(
                    "{}/{} {images:?} envs={} file={file:?} timeout={:?} max={} not_built={}",
                    c.target.cluster,
                    c.target.service,
                    c.envs.len(),
                    c.timeout,
                    c.max_failed_tasks,
                    c.not_built.len()
                )
            }),
            Command::Rollback(args) => rollback(args, sub, &file).map(|c| {
                format!(
                    "{}/{} timeout={:?} max={}",
                    c.target.cluster, c.target.service, c.timeout, c.max_failed_tasks
                )
            }),
            Command::Status(args) => {
                target(args, sub, &file).map(|t| format!("{}/{}", t.cluster, t.service))
            }
            Command::Init(args) => init_target(&args.target, sub, &file)
                .map(|t| format!("{}/{}", t.cluster, t.service)),
            other => panic!("not a single-service command: {other:?}"),
        };
        shown.map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn single_service_commands_act_on_the_table_service_names() {
        let api = "shop/shop-api [\"Some(\\\"api\\\")=registry.lab/api:v2\"] envs=1 file=Some(\"/shop/ecs/api.json\") timeout=600s max=3 not_built=0";
        for (argv, expected) in [
            (vec!["plan", "--service", "api"], api),
            (vec!["plan", "--service", "shop-api"], api),
            (vec!["plan", "--service", "api", "--cluster", "shop"], api),
            (
                vec![
                    "plan",
                    "--service",
                    "api",
                    "--timeout",
                    "5m",
                    "--max-failed-tasks",
                    "7",
                    "--image",
                    "api=registry.lab/api:v9",
                ],
                "shop/shop-api [\"Some(\\\"api\\\")=registry.lab/api:v9\"] envs=1 file=Some(\"/shop/ecs/api.json\") timeout=300s max=7 not_built=0",
            ),
            (
                vec!["plan", "--service", "front"],
                "edge/front [\"Some(\\\"web\\\")=registry.lab/web:v3\"] envs=0 file=None timeout=600s max=4 not_built=1",
            ),
            (
                vec![
                    "plan",
                    "--service",
                    "front",
                    "--image",
                    "envoy=registry.lab/envoy:v1",
                ],
                "edge/front [\"Some(\\\"envoy\\\")=registry.lab/envoy:v1\"] envs=0 file=None timeout=600s max=4 not_built=0",
            ),
            (
                vec!["plan", "--service", "front", "--cluster", "other"],
                "in cluster `other` names no `[services.NAME]` table",
            ),
            // A table without its own cluster takes --cluster like any other key.
            (
                vec!["plan", "--service", "api", "--cluster", "staging"],
                "staging/shop-api [\"Some(\\\"api\\\")=registry.lab/api:v2\"] envs=1 file=Some(\"/shop/ecs/api.json\") timeout=600s max=3 not_built=0",
            ),
            (
                vec!["rollback", "--service", "shop-api"],
                "shop/shop-api timeout=600s max=3",
            ),
            (vec!["status", "--service", "front"], "edge/front"),
            (
                vec!["status", "--service", "front", "--cluster", "c2"],
                "names no `[services.NAME]` table",
            ),
            // `init` makes a new service's files: the tables do not bound it.
            (
                vec!["init", "--service", "new", "--cluster", "c2"],
                "c2/new",
            ),
        ] {
            let shown = resolve(SYSTEM, &argv).unwrap_or_else(|e| e);
            let refused = expected.contains("names no");
            assert!(
                shown == expected || refused && shown.contains(expected),
                "{argv:?}:\n  {shown}\n  expected {expected}"
            );
        }
    }

    #[test]
    fn a_service_no_table_describes_is_refused_naming_the_file_and_the_tables() {
        let tables = "(tables: `api` (service `shop-api`), `front` (cluster `edge`), `web`)";
        for (text, argv, expected) in [
            (SYSTEM.to_string(), vec!["plan", "--service", "backend"], format!("--service `backend` names no `[services.NAME]` table of /shop/deployer.toml {tables}")),
            (SYSTEM.to_string(), vec!["plan", "--service", "front", "--cluster", "x"], "--service `front` in cluster `x` names no".to_string()),
            (SYSTEM.to_string(), vec!["status", "--service", "backend"], "names no `[services.NAME]` table".to_string()),
            (SYSTEM.to_string(), vec!["rollback", "--service", "backend"], "names no `[services.NAME]` table".to_string()),
            (SYSTEM.to_string(), vec!["plan"], format!("missing service: /shop/deployer.toml describes several services (`[services]`), which `deployer run` deploys together; this command acts on one: pass --service NAME {tables}")),
            (SYSTEM.to_string(), vec!["plan", "--service", "web"], "in `[services.web]` of /shop/deployer.toml: invalid `timeout` in /shop/deployer.toml".to_string()),
            (format!("service = \"x\"\n{SYSTEM}"), vec!["plan", "--service", "api"], "has `[services]` and also a top-level `service`".to_string()),
            (
                SYSTEM.replace("[services.web]", "[services.web]\nrollback-scope = \"run\""),
                vec!["plan", "--service", "web"],
                "`services.web.*` in /shop/deployer.toml: `services`, `name` and `rollback-scope` belong at the top".to_string(),
            ),
            (
                SYSTEM.replace("[services.web]\n", "[services.web]\nservice = \"shop-api\"\n"),
                vec!["plan", "--service", "shop-api"],
                "names several `[services.NAME]` tables of /shop/deployer.toml: `api` (service `shop-api`), `web` (service `shop-api`); pass --cluster, or the table's name as --service, to choose one".to_string(),
            ),
        ] {
            let err = resolve(&text, &argv).expect_err(&format!("{argv:?} is refused"));
            assert!(err.contains(&expected), "{argv:?}:\n  {err}\n  expected {expected}");
        }
        // A file without `[services]` is as it was: the top level, the flags over it.
        let single = "cluster = \"c\"\nservice = \"s\"\ntimeout = \"1m\"\n";
        assert_eq!(
            resolve(single, &["rollback"]).unwrap(),
            "c/s timeout=60s max=2"
        );
        assert_eq!(
            resolve(single, &["status", "--service", "t"]).unwrap(),
            "c/t"
        );
    }

    #[test]
    fn the_refusals_list_the_tables() {
        let sections = sections(FILE);
        assert_eq!(
            describe(&sections, &["api", "web", "web-eu", "worker"]),
            "`api` (service `shop-api`), `web`, `web-eu` (service `web`, cluster `eu`), `worker` (cluster `jobs`)"
        );
        assert_eq!(describe(&sections, &[]), "none");
    }
}
