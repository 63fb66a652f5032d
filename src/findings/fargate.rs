//! The checks of a task on Fargate: the launch type, the task's CPU and memory pair, the
//! containers' sizes against the task's, and the platform FARGATE_SPOT runs.

use serde_json::Value;

use super::Finding;
use super::references::{containers, text};

/// `1024`, `1 vCPU`, `0.25 vcpu` → CPU units.
fn cpu_units(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    match t.strip_suffix("vcpu") {
        Some(n) => n
            .trim()
            .parse::<f64>()
            .ok()
            .map(|v| (v * 1024.0).round() as u64),
        None => t.parse().ok(),
    }
}

/// `2048`, `2 GB`, `0.5gb` → MiB.
fn memory_mib(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    match t.strip_suffix("gb") {
        Some(n) => n
            .trim()
            .parse::<f64>()
            .ok()
            .map(|v| (v * 1024.0).round() as u64),
        None => t.parse().ok(),
    }
}

/// The memory values (MiB) Fargate accepts with this CPU, or None for a CPU it does not offer.
fn fargate_memories(cpu: u64) -> Option<Vec<u64>> {
    let gb = |from: u64, to: u64, step: u64| {
        (from..=to)
            .step_by(step as usize)
            .map(|g| g * 1024)
            .collect()
    };
    Some(match cpu {
        256 => vec![512, 1024, 2048],
        512 => gb(1, 4, 1),
        1024 => gb(2, 8, 1),
        2048 => gb(4, 16, 1),
        4096 => gb(8, 30, 1),
        8192 => gb(16, 60, 4),
        16384 => gb(32, 120, 8),
        _ => return None,
    })
}

fn json_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn on_fargate(td: &Value, service: &Value) -> bool {
    let compat = td
        .get("requiresCompatibilities")
        .and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(|c| c == "FARGATE"));
    let launch = text(service, "launchType") == Some("FARGATE");
    let providers = capacity_providers(service)
        .iter()
        .any(|p| p.starts_with("FARGATE"));
    compat || launch || providers
}

fn capacity_providers(service: &Value) -> Vec<String> {
    service
        .get("capacityProviderStrategy")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| text(p, "capacityProvider").map(String::from))
        .collect()
}

pub(crate) fn check_fargate(td: &Value, service: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(launch_type_incompatible(td, service));
    if !on_fargate(td, service) {
        return out;
    }
    let cpu = json_text(td.get("cpu"));
    let memory = json_text(td.get("memory"));
    let (Some(cpu_text), Some(memory_text)) = (&cpu, &memory) else {
        out.push(size_missing(&cpu, &memory));
        return out;
    };
    out.extend(size_invalid(cpu_text, memory_text));
    out.extend(containers_exceed_task(td, cpu_text, memory_text));
    out.extend(platform_capacity_mismatch(td, service));
    out
}

/// A service launched on EC2 with a task definition that requires FARGATE only.
fn launch_type_incompatible(td: &Value, service: &Value) -> Option<Finding> {
    (text(service, "launchType") == Some("EC2")
        && td
            .get("requiresCompatibilities")
            .and_then(Value::as_array)
            .is_some_and(|l| !l.is_empty() && !l.iter().any(|c| c == "EC2")))
    .then(|| {
        Finding::error(
            "launch-type-incompatible",
            "requiresCompatibilities",
            "FARGATE",
        )
        .says(
            "the service launches on EC2, the task definition requires FARGATE only",
            "add EC2 to requiresCompatibilities, or run the service on Fargate",
        )
    })
}

/// A Fargate task definition without task-level cpu or memory.
fn size_missing(cpu: &Option<String>, memory: &Option<String>) -> Finding {
    Finding::error(
        "fargate-size-missing",
        "cpu/memory",
        &format!(
            "{}/{}",
            cpu.clone().unwrap_or_default(),
            memory.clone().unwrap_or_default()
        ),
    )
    .says(
        "a Fargate task definition needs task-level cpu and memory",
        "set cpu and memory to one of the pairs Fargate accepts, e.g. 256/512 or 1024/2048",
    )
}

/// A CPU and memory pair Fargate does not offer.
fn size_invalid(cpu_text: &str, memory_text: &str) -> Option<Finding> {
    let pair = format!("{cpu_text}/{memory_text}");
    let (task_cpu, task_memory) = (cpu_units(cpu_text), memory_mib(memory_text));
    let valid = match (task_cpu, task_memory) {
        (Some(c), Some(m)) => fargate_memories(c).is_some_and(|ms| ms.contains(&m)),
        _ => false,
    };
    if valid {
        return None;
    }
    let hint = task_cpu
        .and_then(fargate_memories)
        .map(|ms| {
            let (lo, hi) = (ms[0], ms[ms.len() - 1]);
            format!("with cpu {cpu_text} Fargate takes memory {lo} to {hi} MiB")
        })
        .unwrap_or_else(|| "Fargate takes cpu 256, 512, 1024, 2048, 4096, 8192 or 16384".into());
    Some(
        Finding::error("fargate-size-invalid", "cpu/memory", &pair).says(
            "Fargate does not offer this CPU and memory pair",
            format!("pick a supported pair: {hint}"),
        ),
    )
}

/// The containers' cpu, and memory (or memoryReservation), adding up to more than the task's.
fn containers_exceed_task(td: &Value, cpu_text: &str, memory_text: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let (task_cpu, task_memory) = (cpu_units(cpu_text), memory_mib(memory_text));
    let sum = |key: &str| -> u64 {
        containers(td)
            .map(|(_, c)| {
                c.get(key)
                    .or_else(|| {
                        (key == "memory")
                            .then(|| c.get("memoryReservation"))
                            .flatten()
                    })
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            })
            .sum()
    };
    if let Some(limit) = task_cpu
        && sum("cpu") > limit
    {
        out.push(
            Finding::error(
                "container-sizes-exceed-task",
                "containerDefinitions[].cpu",
                &sum("cpu").to_string(),
            )
            .says(
                format!("the containers' cpu adds up to more than the task's {cpu_text}"),
                "lower the containers' cpu or raise the task's",
            ),
        );
    }
    if let Some(limit) = task_memory
        && sum("memory") > limit
    {
        out.push(
            Finding::error(
                "container-sizes-exceed-task",
                "containerDefinitions[].memory",
                &sum("memory").to_string(),
            )
            .says(
                format!("the containers' memory adds up to more than the task's {memory_text} MiB"),
                "lower the containers' memory (or memoryReservation) or raise the task's",
            ),
        );
    }
    out
}

/// FARGATE_SPOT with a platform it does not run (ARM64, or Windows).
fn platform_capacity_mismatch(td: &Value, service: &Value) -> Option<Finding> {
    let platform = td.get("runtimePlatform");
    let arch = platform
        .and_then(|p| text(p, "cpuArchitecture"))
        .unwrap_or("X86_64");
    let os = platform
        .and_then(|p| text(p, "operatingSystemFamily"))
        .unwrap_or("LINUX");
    (capacity_providers(service)
        .iter()
        .any(|p| p == "FARGATE_SPOT")
        && (arch == "ARM64" || os.starts_with("WINDOWS")))
    .then(|| {
        Finding::error(
            "platform-capacity-mismatch",
            "runtimePlatform",
            &format!("{os}/{arch}"),
        )
        .says(
            "FARGATE_SPOT runs only Linux on X86_64",
            "use the FARGATE capacity provider for this platform, or an X86_64 Linux image",
        )
    })
}
