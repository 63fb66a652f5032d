//! `Lab`: a unique cluster/service in the shared lab, and the deployer binary run against it
//! with a hermetic environment (no real credentials, no real endpoints, no DEPLOYER_* leaking in).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn endpoint() -> String {
    std::env::var("DEPLOYER_LAB_URL").unwrap_or_else(|_| "http://127.0.0.1:5055".into())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    let venv = repo().join(".lab/venv/bin/python");
    assert!(
        venv.exists(),
        "the lab is not installed ({} is missing): run `lab/up` (or `scripts/test`) first",
        venv.display()
    );
    venv
}

/// Fails loudly when the lab is not answering: a missing lab must never look like a pass.
fn require_lab() {
    let out = Command::new(python())
        .args([
            "-c",
            &format!(
                "import urllib.request; urllib.request.urlopen('{}/_lab/health', timeout=3)",
                endpoint()
            ),
        ])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "the lab is not running at {}: start it with `lab/up` (or run the suite with `scripts/test`)\n{}",
        endpoint(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fails loudly when the Docker engine is not running.
pub fn require_docker() {
    let ok = Command::new("docker")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the Docker engine is not running (docker version failed): start it with `lab/up` (or run the suite with `scripts/test`)"
    );
}

pub struct Lab {
    pub cluster: String,
    pub service: String,
    /// A tag unique to this test, for images that carry faults.
    pub tag: String,
    pub task_definition_arn: String,
    pub dir: tempfile::TempDir,
    /// Writes the scenario itself made while setting up.
    setup_writes: usize,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Run {
        assert_eq!(
            self.code, expected,
            "exit code\n--- stderr:\n{}\n--- stdout:\n{}",
            self.stderr, self.stdout
        );
        self
    }

    #[track_caller]
    pub fn says(&self, text: &str) -> &Run {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}\n--- stderr:\n{}",
            self.stderr
        );
        self
    }

    /// The `{"event":"result"}` line of `--output json`.
    #[track_caller]
    pub fn result(&self) -> Value {
        let last = self
            .stdout
            .lines()
            .last()
            .unwrap_or_else(|| panic!("no JSON on stdout\n{}", self.stderr));
        let value: Value = serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("last stdout line is not JSON ({e}): {last}"));
        assert_eq!(
            value["event"], "result",
            "last line is not the result: {last}"
        );
        value
    }
}

/// A name unique to this process and call. It ends with a letter, so no name is a prefix of
/// another (`…x3z` is not a prefix of `…x31z`): a fault scoped to one test's name or image never
/// reaches another's (tests-audit C1).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}z",
        std::process::id() % 100_000,
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// GET a lab control path (e.g. `/_lab/timeline`) and return its JSON.
pub fn lab_get(path: &str) -> Value {
    require_lab();
    let out = Command::new(python())
        .args([
            "-c",
            &format!(
                "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen('{}{path}', timeout=10).read().decode())",
                endpoint()
            ),
        ])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "GET {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e})"))
}

/// The API fault armed with `--match name` for `action`: (fired, remaining), from `scenario.py api-faults`.
#[track_caller]
pub fn api_fault_counts(name: &str, action: &str) -> (u64, u64) {
    let all = scenario(&["api-faults"]);
    let fault = all
        .as_array()
        .expect("a list of faults")
        .iter()
        .find(|f| f["action"] == action && f["match"].to_string().contains(name))
        .unwrap_or_else(|| panic!("no {action} fault for {name} in {all}"));
    (
        fault["fired"].as_u64().expect("fired"),
        fault["remaining"].as_u64().expect("remaining"),
    )
}

/// Runs lab/scenario.py and returns its JSON output.
#[track_caller]
pub fn scenario(args: &[&str]) -> Value {
    try_scenario(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs lab/scenario.py; its JSON output, or why it failed (for polling a state that may not exist yet).
pub fn try_scenario(args: &[&str]) -> Result<Value, String> {
    require_lab();
    let out = Command::new(python())
        .arg(repo().join("lab/scenario.py"))
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint())
        .output()
        .expect("python runs");
    if !out.status.success() {
        return Err(format!(
            "scenario.py {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("scenario.py {args:?} printed no JSON ({e})"))
}

impl Lab {
    /// A fresh service with `extra` scenario options (e.g. `--breaker rollback`), COMPLETED and healthy.
    pub fn service(extra: &[&str]) -> Lab {
        let cluster = unique("c");
        let service = unique("s");
        let mut args = vec!["create", "--cluster", &cluster, "--service", &service];
        args.extend_from_slice(extra);
        let made = scenario(&args);
        let mut lab = Lab {
            tag: unique("t"),
            task_definition_arn: made["task_definition_arn"]
                .as_str()
                .unwrap_or_else(|| {
                    panic!("scenario.py create printed no task_definition_arn: {made}")
                })
                .to_string(),
            cluster,
            service,
            dir: tempfile::tempdir().expect("a temp dir"),
            setup_writes: 0,
        };
        lab.setup_writes = lab.all_writes().len();
        lab
    }

    /// An image reference unique to this test: `registry.lab/app:<what>-<tag>`.
    pub fn image(&self, what: &str) -> String {
        format!("registry.lab/app:{what}-{}", self.tag)
    }

    pub fn fault(&self, image: &str, kind: &str, extra: &[&str]) {
        let mut args = vec!["fault", "--image", image, "--kind", kind];
        args.extend_from_slice(extra);
        scenario(&args);
    }

    /// The service as the lab describes it (`scenario.py service`).
    pub fn describe(&self) -> Value {
        scenario(&[
            "service",
            "--cluster",
            &self.cluster,
            "--service",
            &self.service,
        ])
    }

    /// What the service runs now, as the lab says.
    #[track_caller]
    pub fn running_task_definition(&self) -> String {
        let described = self.describe();
        described["task_definition_arn"]
            .as_str()
            .unwrap_or_else(|| panic!("the lab names no task definition: {described}"))
            .to_string()
    }

    /// The environment of `container` in the task definition the service runs now.
    #[track_caller]
    pub fn environment(&self, container: &str) -> serde_json::Map<String, Value> {
        let described = self.describe();
        described["environment"][container]
            .as_object()
            .unwrap_or_else(|| panic!("no container {container} in {described}"))
            .clone()
    }

    /// The ECR repository name a `run` test of this lab pushes to.
    pub fn repository(&self) -> String {
        format!("app-{}", self.tag)
    }

    /// Write calls (any non-read API call) since set-up that named this test's cluster, service,
    /// family or ECR repository (`repository()`).
    pub fn writes(&self) -> Vec<Value> {
        self.all_writes().split_off(self.setup_writes)
    }

    /// In the order the lab saw them; a write naming several of the names once.
    fn all_writes(&self) -> Vec<Value> {
        let mut all: Vec<Value> = Vec::new();
        for name in [&self.cluster, &self.service, &self.repository()] {
            let found = scenario(&["writes", "--name", name]);
            let Value::Array(found) = found else {
                panic!("scenario.py writes printed no list: {found}");
            };
            for write in found {
                if !all.contains(&write) {
                    all.push(write);
                }
            }
        }
        all.sort_by(|a, b| {
            a["t"]
                .as_f64()
                .partial_cmp(&b["t"].as_f64())
                .expect("times")
        });
        all
    }

    /// Waits (up to 30 s) until the service was read with DescribeServices after its last write:
    /// the watch (or the rollback's watch) has begun. Instead of a fixed sleep (tests-audit C3).
    pub fn wait_for_a_look_after_the_last_write(&self) {
        let last = self
            .writes()
            .last()
            .and_then(|w| w["t"].as_f64())
            .expect("a write to wait after");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let reads = scenario(&["reads", "--cluster", &self.cluster]);
            let looked = reads.as_array().into_iter().flatten().any(|r| {
                r["action"] == "DescribeServices"
                    && r["t"].as_f64().is_some_and(|t| t > last)
                    && r["services"].as_array().is_some_and(|s| {
                        s.iter().any(|n| {
                            n.as_str()
                                .is_some_and(|n| n.ends_with(self.service.as_str()))
                        })
                    })
            });
            if looked {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no DescribeServices of {} after its last write",
                self.service
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    #[track_caller]
    pub fn assert_no_writes(&self) {
        let writes = self.writes();
        assert!(
            writes.is_empty(),
            "expected no write calls to AWS, found {writes:?}"
        );
    }

    /// `deployer ARGS --cluster C --service S` with a hermetic environment, in this test's temp dir.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = deployer(self.dir.path());
        cmd.args(args)
            .args(["--cluster", &self.cluster, "--service", &self.service]);
        cmd
    }

    /// `deployer ARGS` started in the background with its output piped (see `ended`).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("deployer starts")
    }

    pub fn deployer(&self, args: &[&str]) -> Run {
        run(self.command(args))
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write a fixture");
        path
    }
}

/// A finished test's service leaves the lab's controller round (`POST /_lab/retire`: INACTIVE, no
/// tasks, no call or write recorded), so the services of a long suite do not pile up in every
/// controller pass. Best effort and quick: a plain HTTP request, any failure ignored (a drop never
/// panics, and the next `scripts/test` starts from a reset lab anyway).
impl Drop for Lab {
    fn drop(&mut self) {
        let body =
            serde_json::json!({"cluster": self.cluster, "service": self.service}).to_string();
        let _ = lab_post("/_lab/retire", &body);
    }
}

/// POST `body` (JSON) to a lab control path with std's TCP stream: no Python start-up (about 1 ms
/// against 0.2 s for a `scenario.py` call).
fn lab_post(path: &str, body: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let url = endpoint();
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)?
        .next()
        .ok_or(std::io::ErrorKind::NotFound)?;
    let timeout = std::time::Duration::from_secs(2);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    // Read the answer to its end: the service is retired before the next test's set-up is timed.
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(())
}

/// An empty deployer.toml outside every test's directory.
fn no_config() -> PathBuf {
    let path = std::env::temp_dir().join("deployer-tests-empty.toml");
    if !path.is_file() {
        std::fs::write(&path, "").expect("write an empty deployer.toml");
    }
    path
}

/// The binary, with only what it needs from the environment. DEPLOYER_CONFIG names `dir`'s
/// deployer.toml, or an empty file when `dir` has none: a stray deployer.toml in a parent of the
/// temp dir never reaches a test (tests-audit C4). A test of the upward search removes it.
pub fn deployer(dir: &Path) -> Command {
    require_lab();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deployer"));
    let config = dir.join("deployer.toml");
    let config = if config.is_file() {
        config
    } else {
        no_config()
    };
    cmd.current_dir(dir)
        .env_clear()
        .env("DEPLOYER_CONFIG", config)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1");
    cmd
}

pub fn run(mut cmd: Command) -> Run {
    Run::from(cmd.output().expect("deployer runs"))
}

/// The run of a deployer started with `Lab::spawn`, once it ends.
pub fn ended(child: std::process::Child) -> Run {
    Run::from(child.wait_with_output().expect("deployer ends"))
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
