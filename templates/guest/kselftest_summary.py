"""Per-target summary of kselftest TAP output (run_kselftest.sh), for `kdevbox-vm selftest`.

    python3 kselftest_summary.py TAP_LOG

Prints pass/fail/skip counts per selftest target, then each failed test. Exits 1 when a test failed
or when the log holds no results at all (the guest did not run them), else 0. Standard library only:
it runs on the dev box, where kdevbox itself is not installed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

# The runner's own result lines; the tests' output is prefixed with "# " and ignored.
RESULT = re.compile(
    r"^(?P<not>not )?ok \d+ selftests: (?P<target>\S+): (?P<test>.*?)(?: # (?P<directive>.*))?$"
)


def summarize(lines: Iterable[str]) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Counts per target ({target: {pass, fail, skip}}) and the failed tests with their reason."""
    counts: dict[str, dict[str, int]] = {}
    failures: list[str] = []
    for line in lines:
        match = RESULT.match(line.rstrip("\n"))
        if not match:
            continue
        directive = match["directive"] or ""
        if match["not"]:
            outcome = "fail"
            failures.append(f"{match['target']}: {match['test']} ({directive or 'failed'})")
        elif directive.upper().startswith("SKIP"):
            outcome = "skip"
        else:
            outcome = "pass"
        target = counts.setdefault(match["target"], {"pass": 0, "fail": 0, "skip": 0})
        target[outcome] += 1
    return counts, failures


def report(counts: dict[str, dict[str, int]], failures: list[str]) -> str:
    width = max([len("target"), *(len(t) for t in counts)])
    rows = [f"{'target':<{width}}  pass  fail  skip"]
    rows += [f"{t:<{width}}  {c['pass']:4d}  {c['fail']:4d}  {c['skip']:4d}" for t, c in counts.items()]
    rows += [f"FAILED {failure}" for failure in failures]
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    with open(argv[1], errors="replace") as log:
        counts, failures = summarize(log)
    if not counts:
        print(f"no selftest results in {argv[1]}: see it for what the guest printed", file=sys.stderr)
        return 1
    print(report(counts, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
