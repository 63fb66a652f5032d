"""Deploy speed of deployer in the lab: startup, exit lag after the rollout completes (rolling) or
after ECS's SUCCESSFUL / ROLLBACK_SUCCESSFUL (blue/green), rollback lag after the failure signal, peak
memory. Prints a Markdown table; writes bench/out/deploy_speed.json.

  bench/run [--binary target/release/deployer] [--runs 5]

Times come from the lab's own timeline (lab/ecs_lab.py records when a rollout completed, when the
second task failed or a target turned unhealthy, and when each UpdateService or StopServiceDeployment arrived), so "lag" is
measured against what the lab did, not against what deployer printed.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.join(ROOT, ".lab/venv/bin/python")
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5055")
ENV = {"PATH": os.environ["PATH"], "AWS_ENDPOINT_URL": ENDPOINT, "AWS_ACCESS_KEY_ID": "bench",
       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
       "NO_COLOR": "1", "HOME": "/tmp"}


def scenario(*args):
    out = subprocess.run([PY, os.path.join(ROOT, "lab/scenario.py"), *args], capture_output=True, text=True,
                         env={**os.environ, "AWS_ENDPOINT_URL": ENDPOINT}, check=True)
    return json.loads(out.stdout)


def timeline():
    return json.loads(urllib.request.urlopen(f"{ENDPOINT}/_lab/timeline", timeout=10).read())


def run(binary, args):
    """Runs deployer; returns (exit code, wall seconds, end epoch, peak RSS MiB, CPU seconds)."""
    # GNU time, not this process's wait4: a child forked from Python keeps Python's resident set
    # in ru_maxrss, which inflated the figure (see compare.py's measure).
    start = time.time()
    stats = tempfile.mktemp(suffix=".time")
    code = subprocess.call(["/usr/bin/time", "-f", "%M %U %S", "-o", stats, binary, *args], env=ENV,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time()
    with open(stats) as f:
        kib, user, system = f.read().split()[-3:]
    os.unlink(stats)
    return code, end - start, end, int(kib) / 1024, float(user) + float(system)


def happy(binary, n):
    name = f"bh{os.getpid()}x{n}"
    scenario("create", "--cluster", "bench", "--service", name)
    code, wall, end, rss, cpu = run(binary, ["deploy", "--cluster", "bench", "--service", name,
                                             "--image", f"registry.lab/app:ok{n}"])
    done = [e["t"] for e in timeline() if e["what"] == "rollout_completed" and e.get("service") == name]
    return {"exit": code, "wall_s": wall, "exit_lag_s": end - done[-1], "rss_mib": rss, "cpu_s": cpu}


def failing(binary, n, kind):
    name = f"bf{os.getpid()}x{n}{kind}"
    image = f"registry.lab/app:{kind}-{name}"
    scenario("create", "--cluster", "bench", "--service", name)
    scenario("fault", "--image", image, "--kind", kind, "--exit-code", "1")
    code, wall, end, rss, cpu = run(binary, ["deploy", "--cluster", "bench", "--service", name, "--image", image])
    events = timeline()
    signal = min(e["t"] for e in events if e["what"] == "failure_signal" and e.get("service") == name)
    # The rollback call: StopServiceDeployment (ECS's own rollback of the rolling update) or UpdateService.
    updates = sorted(e["t"] for e in events if e["what"] == "api_write"
                     and e.get("action") in ("UpdateService", "StopServiceDeployment") and e.get("service") == name)
    rollback_call = next(t for t in updates if t >= signal)
    return {"exit": code, "wall_s": wall, "rollback_lag_s": rollback_call - signal, "rss_mib": rss, "cpu_s": cpu}


def staged(binary, n, kind):
    """A BLUE_GREEN deploy: `ok` ends SUCCESSFUL, `alarm` makes ECS roll back during the bake
    (ROLLBACK_SUCCESSFUL). The lag is from the lab's service_deployment_finished to deployer's exit."""
    name = f"bs{os.getpid()}x{n}{kind}"
    image = f"registry.lab/app:{kind}-{name}"
    extra = ["--bake-minutes", "1"] if kind == "ok" else ["--bake-minutes", "4", "--alarms", "rollback"]
    scenario("create", "--cluster", "bench", "--service", name, "--strategy", "BLUE_GREEN", *extra)
    if kind == "alarm":
        scenario("fault", "--image", image, "--kind", "alarm")
    code, wall, end, rss, cpu = run(binary, ["deploy", "--cluster", "bench", "--service", name, "--image", image])
    want = "SUCCESSFUL" if kind == "ok" else "ROLLBACK_SUCCESSFUL"
    done = [e["t"] for e in timeline() if e["what"] == "service_deployment_finished"
            and e.get("service") == name and e.get("status") == want]
    return {"exit": code, "wall_s": wall, "exit_lag_s": end - done[-1], "rss_mib": rss, "cpu_s": cpu}


def startup(binary, runs=30):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([binary, "--version"], stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/deployer"))
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    results = {"binary": a.binary, "startup_median_ms": startup(a.binary) * 1000, "happy": [], "crash": [], "unhealthy": [],
               "bluegreen": [], "bluegreen_rollback": []}
    for n in range(a.runs):
        results["happy"].append(happy(a.binary, n))
        results["crash"].append(failing(a.binary, n, "exit"))
        results["unhealthy"].append(failing(a.binary, n, "unhealthy"))
        results["bluegreen"].append(staged(a.binary, n, "ok"))
        results["bluegreen_rollback"].append(staged(a.binary, n, "alarm"))
    os.makedirs(os.path.join(ROOT, "bench/out"), exist_ok=True)
    with open(os.path.join(ROOT, "bench/out/deploy_speed.json"), "w") as f:
        json.dump(results, f, indent=2)

    def col(rows, key):
        vals = [r[key] for r in rows]
        return f"{statistics.median(vals):.3f} (max {max(vals):.3f})"

    print(f"binary: {a.binary}; {a.runs} runs per scenario; medians (max)\n")
    print("| scenario | exit codes | wall s | lag s | peak RSS MiB | CPU s |")
    print("|---|---|---|---|---|---|")
    print(f"| healthy rollout, desired 2 | {sorted({r['exit'] for r in results['happy']})} | {col(results['happy'], 'wall_s')} | "
          f"{col(results['happy'], 'exit_lag_s')} (exit after rollout COMPLETED) | {col(results['happy'], 'rss_mib')} | {col(results['happy'], 'cpu_s')} |")
    for kind, label in (("crash", "container exits 1"), ("unhealthy", "target unhealthy")):
        rows = results[kind]
        print(f"| {label} | {sorted({r['exit'] for r in rows})} | {col(rows, 'wall_s')} | {col(rows, 'rollback_lag_s')} "
              f"(rollback call after failure signal) | {col(rows, 'rss_mib')} | {col(rows, 'cpu_s')} |")
    for kind, label, after in (("bluegreen", "blue/green, bake 1 min (lab: 1 s)", "SUCCESSFUL"),
                               ("bluegreen_rollback", "blue/green, alarm in the bake", "ROLLBACK_SUCCESSFUL")):
        rows = results[kind]
        print(f"| {label} | {sorted({r['exit'] for r in rows})} | {col(rows, 'wall_s')} | {col(rows, 'exit_lag_s')} "
              f"(exit after ECS's {after}) | {col(rows, 'rss_mib')} | {col(rows, 'cpu_s')} |")
    print(f"\nstartup (`deployer --version`, median of 30): {results['startup_median_ms']:.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
