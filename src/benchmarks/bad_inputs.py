"""make bench-errors: run the bad-input suite (tests/test_bad_inputs*.py) and write every case it
ran -- its class (the test it belongs to), CLI, arguments, exit status, the one error line -- to
experiments/benchmarks/bad_inputs.md and .json (temporary paths shortened to <tmp>)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter

from src.utils.config import PROJECT_ROOT

OUT_DIR = PROJECT_ROOT / "experiments" / "benchmarks"
SUITE = sorted(str(p.relative_to(PROJECT_ROOT)) for p in (PROJECT_ROOT / "tests").glob("test_bad_inputs*.py"))


def shorten(text: str) -> str:
    return re.sub(r"/tmp/pytest-of-[^/]+/pytest-\d+/[^/\s'\"]+", "<tmp>", text)


def class_of(test: str) -> str:
    """The class of bad input a case belongs to: its test's name in words."""
    return test.split("::")[-1].removeprefix("test_").replace("_", " ")


def main() -> None:
    log_path = PROJECT_ROOT / "outputs" / "bad_inputs.jsonl"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.unlink(missing_ok=True)
    started = time.time()
    env = {**os.environ, "PROGRESTORE_BAD_INPUT_LOG": str(log_path)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITE], cwd=PROJECT_ROOT, env=env
    )
    seconds = time.time() - started
    cases = [json.loads(line) for line in log_path.read_text().splitlines()]
    for case in cases:
        case["args"] = [shorten(a) for a in case["args"]]
        case["error"] = shorten(case["error"])
        case["test"] = case.get("test", "").split("[")[0]  # one class per test, whatever its parameters
    by_test = Counter(case.get("test", "") for case in cases)
    by_cli = Counter(case["cli"] for case in cases)
    by_exit = Counter(case["exit"] for case in cases)
    summary = {
        "pytest_exit": result.returncode,
        "seconds": round(seconds, 1),
        "suite": SUITE,
        "cases": len(cases),
        "classes": [
            {"test": test, "class": class_of(test), "cases": count} for test, count in by_test.items()
        ],
        "by_cli": dict(sorted(by_cli.items())),
        "by_exit_status": {str(k): v for k, v in sorted(by_exit.items())},
        "tracebacks": sum(case["traceback"] for case in cases),
    }
    (OUT_DIR / "bad_inputs.json").write_text(json.dumps({**summary, "cases_run": cases}, indent=2) + "\n")
    lines = [
        "# Bad-input suite (make bench-errors)",
        "",
        f"{len(cases)} CLI invocations in {', '.join(SUITE)} ({seconds:.0f} s with pytest, this machine); "
        f"pytest exit {result.returncode}; tracebacks: {summary['tracebacks']}.",
        "By CLI: " + ", ".join(f"{k} {v}" for k, v in summary["by_cli"].items()) + ".",
        "By exit status: "
        + ", ".join(f"{k}: {v}" for k, v in summary["by_exit_status"].items())
        + " (2 = a user error, one line; 0 = handled, e.g. scored what it could; 1 = a sweep with failed jobs, "
        "or the deliberate bug of test_a_bug_keeps_its_traceback, the one case meant to show a traceback).",
        "",
        "## Classes of bad input",
        "",
        "| class (the test that holds it) | cases |",
        "|---|---|",
    ]
    for entry in summary["classes"]:
        name = entry["test"].split("::")[-1]
        lines.append(f"| {entry['class']} (`{name}`) | {entry['cases']} |")
    lines += [
        "",
        "## Every case",
        "",
        "| class | CLI | arguments | exit | error line |",
        "|---|---|---|---|---|",
    ]
    for case in cases:
        args = " ".join(case["args"]).replace("|", "\\|")
        error = case["error"].replace("|", "\\|")
        name = case.get("test", "").split("::")[-1].removeprefix("test_")
        lines.append(f"| {name} | {case['cli']} | `{args}` | {case['exit']} | {error} |")
    (OUT_DIR / "bad_inputs.md").write_text("\n".join(lines) + "\n")
    print(f"{len(cases)} cases, pytest exit {result.returncode}: {OUT_DIR / 'bad_inputs.md'}")
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
