"""deployer against the tools people use today, in the same lab, on the same scenarios, runs alternating.

  bench/compare [--runs 3] [--cap 90] [--scale 1,5,20]

Peers (installed by bench/compare into .bench/venv at run time, never committed):
  awscli      register-task-definition, update-service, then `aws ecs wait services-stable`
              (the waiter the official GitHub action uses: 15 s between polls)
  ecs-deploy  `ecs deploy CLUSTER SERVICE --image web IMAGE --timeout CAP --rollback` (PyPI ecs-deploy)

Scenarios: a healthy rollout with desired 2 and 10; unhealthy targets with the ECS circuit breaker
rolling back; a crash loop without the breaker; throttling on DescribeServices. What really
happened comes from the lab, not from the tool: the service's final task definition and the lab's
timeline (rollout completed, failure signal, every write call).

Writes bench/out/compare.json, bench/out/compare.md (the tables) and bench/out/compare.png (the chart).
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy_speed import startup  # noqa: E402  (one definition of "startup time")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB_PY = os.path.join(ROOT, ".lab/venv/bin/python")
BENCH_BIN = os.path.join(ROOT, ".bench/venv/bin")
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5055")
ENV = {"PATH": f"{BENCH_BIN}:{os.environ['PATH']}", "AWS_ENDPOINT_URL": ENDPOINT, "AWS_ACCESS_KEY_ID": "bench",
       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_EC2_METADATA_DISABLED": "true", "NO_COLOR": "1", "HOME": "/tmp", "AWS_PAGER": ""}
TOOLS = ["deployer", "awscli", "ecs-deploy"]
# name: (scenario create options, fault kind or None, what really happens, label)
SCENARIOS = {
    "healthy-2": (["--desired", "2"], None, "deployed", "healthy rollout, desired 2"),
    "healthy-10": (["--desired", "10"], None, "deployed", "healthy rollout, desired 10"),
    "breaker": (["--desired", "2", "--breaker", "rollback"], "unhealthy", "failed",
                "unhealthy targets, ECS circuit breaker rolls back"),
    "crashloop": (["--desired", "2"], "exit", "failed", "crash loop, no circuit breaker"),
    "throttled": (["--desired", "2"], "throttle", "deployed", "DescribeServices throttled (6 in a row)"),
}


def lab_get(path):
    return json.loads(urllib.request.urlopen(f"{ENDPOINT}/_lab/{path}", timeout=10).read())


def lab_clear_calls():
    urllib.request.urlopen(urllib.request.Request(f"{ENDPOINT}/_lab/calls", method="DELETE"), timeout=10).read()


def scenario(*args):
    out = subprocess.run([LAB_PY, os.path.join(ROOT, "lab/scenario.py"), *args], capture_output=True, text=True,
                         env={**os.environ, "AWS_ENDPOINT_URL": ENDPOINT}, check=True)
    return json.loads(out.stdout)


def measure(argv, cap, cwd=None):
    """Runs a command; (exit code or None when killed at the cap, wall s, end epoch, peak RSS MiB, CPU s).

    Memory and CPU come from GNU time, not from this Python process's wait4: a child forked from a
    big Python process starts life with the parent's resident set, and ru_maxrss keeps that peak.
    GNU time's peak covers the command and every process it waited for (awscli's three commands)."""
    start = time.time()
    fd, stats = tempfile.mkstemp(suffix=".time")
    os.close(fd)
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M %U %S", "-o", stats, *argv], env=ENV, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    killed = False
    try:
        proc.wait(timeout=cap)
    except subprocess.TimeoutExpired:
        # SIGINT first: GNU time ignores it and still writes the tool's figures once the tool is gone.
        killed = True
        os.killpg(proc.pid, 2)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
    end = time.time()
    rss = cpu = None
    with open(stats) as f:
        fields = f.read().split()
    os.unlink(stats)
    if len(fields) >= 3 and fields[-3].isdigit() and fields[-2].replace(".", "").isdigit():
        rss, cpu = int(fields[-3]) / 1024, float(fields[-2]) + float(fields[-1])
    code = None if killed else proc.returncode
    return code, end - start, end, rss, cpu


def command(tool, binary, cluster, service, image, cap, workdir):
    cap = cap - 15  # each tool's own timeout, so its own give-up path (and rollback) runs before the harness stops it
    if tool == "deployer":
        return [binary, "deploy", "--cluster", cluster, "--service", service, "--image", image,
                "--timeout", f"{cap}s"]
    if tool == "ecs-deploy":
        return [os.path.join(BENCH_BIN, "ecs"), "deploy", cluster, service, "--image", "web", image,
                "--timeout", str(cap), "--rollback"]
    # awscli: the official workflow's steps. The render step (a new image in the task definition
    # file) is done here, outside the timing, as amazon-ecs-render-task-definition does it locally.
    import boto3
    ecs = boto3.client("ecs", endpoint_url=ENDPOINT, region_name="us-east-1",
                       aws_access_key_id="bench", aws_secret_access_key="bench")
    svc = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    td["containerDefinitions"][0]["image"] = image
    keep = ("family", "networkMode", "containerDefinitions", "requiresCompatibilities", "cpu", "memory",
            "executionRoleArn")
    path = os.path.join(workdir, f"{service}-td.json")
    with open(path, "w") as f:
        json.dump({k: td[k] for k in keep if k in td}, f)
    aws = os.path.join(BENCH_BIN, "aws")
    script = (f"set -e\n"
              f"arn=$({aws} ecs register-task-definition --cli-input-json file://{path} "
              f"--query taskDefinition.taskDefinitionArn --output text)\n"
              f"{aws} ecs update-service --cluster {cluster} --service {service} --task-definition \"$arn\" >/dev/null\n"
              f"{aws} ecs wait services-stable --cluster {cluster} --services {service}\n")
    return ["/bin/sh", "-c", script]


def one(tool, name, n, binary, cap, workdir):
    options, fault, truth, _ = SCENARIOS[name]
    service = f"b{os.getpid() % 10000}{tool[:3]}{name.replace('-', '')}{n}"
    cluster = "bench"
    made = scenario("create", "--cluster", cluster, "--service", service, *options)
    old = made["task_definition_arn"]
    image = f"registry.lab/app:{name}-{service}"
    argv = command(tool, binary, cluster, service, image, cap, workdir)
    if fault in ("unhealthy", "exit"):
        scenario("fault", "--image", image, "--kind", fault, "--exit-code", "1")
    if fault == "throttle":
        scenario("api-fault", "--action", "DescribeServices", "--kind", "throttle", "--count", "6",
                 "--match", service)
    lab_clear_calls()
    started = time.time()
    code, wall, end, rss, cpu = measure(argv, cap)
    calls = lab_get("calls")
    # Faults a tool did not use up (a throttle storm it never reached) must not hit the next reads.
    urllib.request.urlopen(urllib.request.Request(f"{ENDPOINT}/_lab/clear-faults", data=b"{}", method="POST"),
                           timeout=10).read()
    events = [e for e in lab_get("timeline") if e.get("service") == service and e["t"] >= started]
    final = scenario("service", "--cluster", cluster, "--service", service)
    # UpdateService, and deployer's StopServiceDeployment (ECS's own rollback of a rolling update).
    updates = [e["t"] for e in events if e["what"] == "api_write"
               and e.get("action") in ("UpdateService", "StopServiceDeployment")]
    rollout = None
    if truth == "deployed":
        completed = [e["t"] for e in events if e["what"] == "rollout_completed"]
        lag = end - completed[0] if completed and code is not None else None
        # The lab's own rollout time: from the tool's UpdateService to ECS's COMPLETED.
        rollout = completed[0] - updates[0] if completed and updates else None
        right = code == 0 and final["task_definition_arn"] != old
    else:
        signal = [e["t"] for e in events if e["what"] == "failure_signal"]
        after = [t for t in updates[1:] if signal and t >= signal[0]]  # updates[0] is the deploy itself
        reaction = min([end] + after) if code is not None or after else None
        lag = reaction - signal[0] if signal and reaction else None
        right = code not in (0, None)
    return {"tool": tool, "scenario": name, "run": n, "exit": code, "right": right, "wall_s": wall,
            "lag_s": lag, "rollout_s": rollout, "over_rollout_s": wall - rollout if rollout else None, "rss_mib": rss, "cpu_s": cpu, "calls": calls,
            "ends_on_old": final["task_definition_arn"] == old}


SCALE_RUNS = []


def scale(binary, count, workdir, cap):
    SCALE_RUNS.append(count)
    # A fresh lab: its controller ticks every service it holds, so earlier runs' services would
    # slow the rollouts being measured.
    urllib.request.urlopen(urllib.request.Request(f"{ENDPOINT}/_lab/reset", data=b"{}", method="POST"),
                           timeout=30).read()
    names = [f"sc{os.getpid() % 10000}r{len(SCALE_RUNS)}n{count}s{i}" for i in range(count)]
    for name in names:
        scenario("create", "--cluster", "bench-scale", "--service", name, "--desired", "2")
    toml = "timeout = \"120s\"\ncluster = \"bench-scale\"\n" + "".join(
        f"\n[services.{name}]\nimage = \"registry.lab/app:scale-{name}\"\n" for name in names)
    d = tempfile.mkdtemp(dir=workdir)
    with open(os.path.join(d, "deployer.toml"), "w") as f:
        f.write(toml)
    lab_clear_calls()
    started = time.time()
    code, wall, _end, rss, cpu = measure([binary, "run"], cap, cwd=d)
    log = lab_get("call-log")
    events = [e for e in lab_get("timeline") if e.get("service") in names and e["t"] >= started]
    updates = [e["t"] for e in events if e["what"] == "api_write" and e.get("action") == "UpdateService"]
    completed = [e["t"] for e in events if e["what"] == "rollout_completed"]
    # The lab's own part: from the first UpdateService to the last rollout COMPLETED.
    lab_span = max(completed) - min(updates) if completed and updates else None
    ecs = [t for t, key in log if key.startswith("ecs:")]
    per_action = {}
    for t, key in log:
        per_action.setdefault(key, []).append(t)

    def peak(times):  # the most calls in any one-second window
        times = sorted(times)
        best, j = 0, 0
        for i, t in enumerate(times):
            while times[j] < t - 1.0:
                j += 1
            best = max(best, i - j + 1)
        return best

    # Where the wall time went: the first and last UpdateService and the last COMPLETED, from the start.
    phases = {"first_update_s": min(updates) - started if updates else None,
              "last_update_s": max(updates) - started if updates else None,
              "last_completed_s": max(completed) - started if completed else None}
    return {"services": count, "exit": code, "wall_s": wall, "lab_span_s": lab_span, "rss_mib": rss, "cpu_s": cpu,
            "phases": phases,
            "ecs_calls": len(ecs), "ecs_calls_per_min": len(ecs) / (wall / 60),
            "peak_per_s": {k: peak(v) for k, v in sorted(per_action.items())},
            "calls": {k: len(v) for k, v in sorted(per_action.items())}}


def med(rows, key):
    vals = [r[key] for r in rows if r[key] is not None]
    return statistics.median(vals) if vals else None


def fmt(v, unit="", digits=2):
    return "—" if v is None else f"{v:.{digits}f}{unit}"


def markdown(results, cap):
    lines = [f"Lab: moto + the project's ECS controller; each cell is the median of {results['runs']} runs "
             f"(tools alternate run by run). A run still going after {cap} s is stopped and counts as no verdict.", ""]
    lines.append("| scenario | tool | right outcome | exit codes | wall s | wall − lab rollout s | lag s | ECS calls | peak RSS MiB | CPU s |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for name, (_, _, truth, label) in SCENARIOS.items():
        for tool in TOOLS:
            rows = [r for r in results["runs_data"] if r["tool"] == tool and r["scenario"] == name]
            if not rows:
                continue
            right = sum(r["right"] for r in rows)
            codes = sorted({"none (stopped at cap)" if r["exit"] is None else str(r["exit"]) for r in rows})
            calls = statistics.median(sum(v for k, v in r["calls"].items() if k.startswith("ecs:")) for r in rows)
            wall = f"≥ {cap} (stopped)" if any(r["exit"] is None for r in rows) else fmt(med(rows, "wall_s"))
            lines.append(f"| {label} | {tool} | {right}/{len(rows)} | {', '.join(codes)} | {wall} | "
                         f"{fmt(med(rows, 'over_rollout_s'))} | {fmt(med(rows, 'lag_s'))} | {calls:.0f} | {fmt(med(rows, 'rss_mib'), digits=1)} | "
                         f"{fmt(med(rows, 'cpu_s'))} |")
    lines += ["", "wall − lab rollout: the tool's wall time minus the lab's own rollout time (its UpdateService to "
              "ECS's COMPLETED), for the rollouts that complete. "
              "lag: for a healthy rollout, from the lab's rollout COMPLETED to the tool's exit; for a failure, from "
              "the lab's failure signal (second failed task, first unhealthy target) to the tool's rollback "
              "UpdateService or its exit, whichever came first.", ""]
    lines.append("API calls by action (median per run):")
    lines.append("")
    actions = sorted({k for r in results["runs_data"] for k in r["calls"]})
    lines.append("| scenario | tool | " + " | ".join(a.split(":", 1)[1] for a in actions) + " |")
    lines.append("|---|---|" + "---|" * len(actions))
    for name, (_, _, _, label) in SCENARIOS.items():
        for tool in TOOLS:
            rows = [r for r in results["runs_data"] if r["tool"] == tool and r["scenario"] == name]
            if rows:
                lines.append(f"| {label} | {tool} | " + " | ".join(
                    f"{statistics.median(r['calls'].get(a, 0) for r in rows):.0f}" for a in actions) + " |")
    lines += ["", f"deployer startup (`--version`, median of 30): {results['startup_ms']:.1f} ms", ""]
    if results["scale"]:
        lines.append("| services in one `deployer run` | exit | wall s | lab: first update → last COMPLETED s | ECS calls | ECS calls/min | busiest action, peak calls in one second | peak RSS MiB |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for count in sorted({s["services"] for s in results["scale"]}):
            runs = [s for s in results["scale"] if s["services"] == count]
            peaks = {}
            for s in runs:
                for k, v in s["peak_per_s"].items():
                    peaks[k] = max(peaks.get(k, 0), v)
            busiest = max(peaks.items(), key=lambda kv: kv[1]) if peaks else ("—", 0)
            exits = ", ".join(sorted({str(s["exit"]) for s in runs}))
            lines.append(f"| {count} | {exits} | {fmt(med(runs, 'wall_s'))} | {fmt(med(runs, 'lab_span_s'))} | "
                         f"{statistics.median(s['ecs_calls'] for s in runs):.0f} | "
                         f"{med(runs, 'ecs_calls_per_min'):.0f} | {busiest[0]}: {busiest[1]} | "
                         f"{fmt(med(runs, 'rss_mib'), digits=1)} |")
        lines += ["", f"Scale figures are medians of {len(results['scale']) // max(1, len({s['services'] for s in results['scale']}))} "
                  "runs each; the peak is the highest of them."]
    return "\n".join(lines) + "\n"


SHORT = {"healthy-2": "healthy\ndesired 2", "healthy-10": "healthy\ndesired 10",
         "breaker": "unhealthy, breaker\nrolls back", "crashloop": "crash loop,\nno breaker",
         "throttled": "6 DescribeServices\nthrottled"}


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [n for n in SCENARIOS if any(r["scenario"] == n for r in results["runs_data"])]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    width = 0.27
    colors = {"deployer": "#2b8a3e", "awscli": "#e8590c", "ecs-deploy": "#1c7ed6"}
    cap = results["cap_s"]
    for ax, key, title in ((axes[0], "wall_s", f"wall time, s (hatched: no verdict, stopped at {cap} s)"),
                           (axes[1], "lag_s", "lag after the lab's verdict, s (none: never reacted)")):
        for i, tool in enumerate(TOOLS):
            for x, name in enumerate(names):
                rows = [r for r in results["runs_data"] if r["tool"] == tool and r["scenario"] == name]
                if not rows:
                    continue
                capped = any(r["exit"] is None for r in rows)
                v = cap if capped and key == "wall_s" else med(rows, key)
                pos = x + (i - 1) * width
                bar = ax.bar([pos], [v or 0], width, color=colors[tool], label=tool if x == 0 else None,
                             hatch="//" if capped and key == "wall_s" else None)[0]
                right = sum(r["right"] for r in rows) == len(rows)
                mark = "✓" if right else "✗ wrong"
                top = v if v else 0.06
                ax.text(pos, top * 1.15, mark if key == "wall_s" else ("" if v else "none"), ha="center",
                        va="bottom", fontsize=7, rotation=90 if not right or not v else 0,
                        color="#2b8a3e" if right else "#c92a2a")
        ax.set_yscale("log")
        ax.set_ylim(0.05, 1000)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([SHORT[n] for n in names], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("deployer vs awscli (services-stable waiter) vs ecs-deploy in the same lab: "
                 "✓ right outcome, ✗ wrong (exit code against what ECS really did)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/deployer"))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--cap", type=int, default=90, help="seconds before a run is stopped as no verdict")
    p.add_argument("--scale", default="1,5,20")
    p.add_argument("--only", default="", help="comma-separated scenarios")
    p.add_argument("--render", action="store_true", help="only re-render the table and chart from bench/out/compare.json")
    p.add_argument("--scale-only", action="store_true", help="measure only the scale part into bench/out/compare.json")
    a = p.parse_args()
    a.binary = os.path.abspath(a.binary)
    out = os.path.join(ROOT, "bench/out")
    if a.render or a.scale_only:
        with open(os.path.join(out, "compare.json")) as f:
            results = json.load(f)
        if a.scale_only:
            workdir = tempfile.mkdtemp(prefix="deployer-bench-")
            results["scale"] = []
            for _ in range(a.runs):
                for count in [int(c) for c in a.scale.split(",") if c]:
                    results["scale"].append(scale(a.binary, count, workdir, 300))
            with open(os.path.join(out, "compare.json"), "w") as f:
                json.dump(results, f, indent=2)
        md = markdown(results, results["cap_s"])
        with open(os.path.join(out, "compare.md"), "w") as f:
            f.write(md)
        chart(results, os.path.join(out, "compare.png"))
        print(md)
        return
    names = [n for n in SCENARIOS if not a.only or n in a.only.split(",")]
    workdir = tempfile.mkdtemp(prefix="deployer-bench-")
    results = {"binary": a.binary, "runs": a.runs, "cap_s": a.cap, "startup_ms": startup(a.binary) * 1000,
               "runs_data": [], "scale": []}
    for n in range(a.runs):
        order = TOOLS[n % len(TOOLS):] + TOOLS[:n % len(TOOLS)]  # alternate who goes first
        for name in names:
            for tool in order:
                r = one(tool, name, n, a.binary, a.cap, workdir)
                results["runs_data"].append(r)
                print(f"{name:11} {tool:10} exit={r['exit']} right={r['right']} wall={r['wall_s']:.2f}s "
                      f"lag={fmt(r['lag_s'])}s rss={fmt(r['rss_mib'], digits=1)}MiB", file=sys.stderr, flush=True)
    for count in [int(c) for _ in range(a.runs) for c in a.scale.split(",") if c]:
        s = scale(a.binary, count, workdir, 300)
        results["scale"].append(s)
        print(f"scale {count:3} services: exit={s['exit']} wall={s['wall_s']:.2f}s "
              f"ecs calls/min={s['ecs_calls_per_min']:.0f} peak/s={s['peak_per_s']}", file=sys.stderr, flush=True)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "compare.json"), "w") as f:
        json.dump(results, f, indent=2)
    md = markdown(results, a.cap)
    with open(os.path.join(out, "compare.md"), "w") as f:
        f.write(md)
    chart(results, os.path.join(out, "compare.png"))
    print(md)


if __name__ == "__main__":
    sys.exit(main())
