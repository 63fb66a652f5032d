"""`deployer run` speed in the lab: time spent before the deploy starts (first run, and a second run
for the same commit), and how many layers each push uploads (first push, and after a one-file change).
Prints a Markdown table; writes bench/out/run_speed.json.

  .lab/venv/bin/python bench/run_speed.py [--binary target/release/deployer] [--runs 5]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile

from deploy_speed import ENV, ROOT, scenario


def git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "init.defaultBranch=main",
                           *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def deploy_run(binary, cwd, service, repo):
    """Runs `deployer run`; returns (exit, seconds before the deploy step, layers uploaded, layers already there)."""
    out = subprocess.run([binary, "run", "--cluster", "bench", "--service", service, "--context", ".", "--repository", repo,
                          "--create-repository", "--output", "json"], cwd=cwd, env=ENV, capture_output=True, text=True)
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    start = next(e["elapsed_ms"] for e in events if e["event"] == "step" and e["message"].startswith("checking service"))
    uploaded = existing = 0
    for e in events:
        m = re.search(r"(\d+) layer\(s\) uploaded, (\d+) already", e.get("message", ""))
        if m:
            uploaded, existing = uploaded + int(m[1]), existing + int(m[2])
    return out.returncode, start / 1000, uploaded, existing


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/deployer"))
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    rows = {"first": [], "same_commit": [], "one_file_changed": []}
    for n in range(a.runs):
        work = tempfile.mkdtemp(prefix="deployer-bench-")
        shutil.copy("/bin/busybox", os.path.join(work, "busybox"))
        with open(os.path.join(work, "Dockerfile"), "w") as f:
            f.write("FROM scratch\nCOPY busybox /bin/busybox\nCOPY index.html /www/\n"
                    'ENTRYPOINT ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n')
        with open(os.path.join(work, "index.html"), "w") as f:
            f.write(f"run {n} {os.getpid()}")
        git(work, "init", "-q")
        git(work, "add", ".")
        git(work, "commit", "-qm", "v1")
        service, repo = f"br{os.getpid()}x{n}", f"bench-{os.getpid()}-{n}"
        scenario("create", "--cluster", "bench", "--service", service)
        rows["first"].append(deploy_run(a.binary, work, service, repo))
        rows["same_commit"].append(deploy_run(a.binary, work, service, repo))
        with open(os.path.join(work, "index.html"), "a") as f:
            f.write(" changed")
        git(work, "commit", "-qam", "v2")
        rows["one_file_changed"].append(deploy_run(a.binary, work, service, repo))
        shutil.rmtree(work)
    os.makedirs(os.path.join(ROOT, "bench/out"), exist_ok=True)
    with open(os.path.join(ROOT, "bench/out/run_speed.json"), "w") as f:
        json.dump(rows, f, indent=2)
    print(f"binary: {a.binary}; {a.runs} runs; medians (max)\n")
    print("| `deployer run` | exit codes | seconds before the deploy starts | layers uploaded | layers already in the registry |")
    print("|---|---|---|---|---|")
    for key, label in (("first", "first run (build + push)"), ("same_commit", "same commit again"),
                       ("one_file_changed", "one file changed")):
        r = rows[key]
        secs = [x[1] for x in r]
        print(f"| {label} | {sorted({x[0] for x in r})} | {statistics.median(secs):.3f} ({max(secs):.3f}) | "
              f"{statistics.median([x[2] for x in r]):g} | {statistics.median([x[3] for x in r]):g} |")


if __name__ == "__main__":
    main()
