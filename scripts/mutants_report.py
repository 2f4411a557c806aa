"""`make mutants`: turn cargo-mutants' outcomes into docs/mutants.md.

Reads one or more `mutants.out` directories (a later one's outcome for a mutant replaces an
earlier one's: a pass over the survivors after tests were added), and
scripts/mutants_explained.txt, which gives each mutant that survives on purpose a one-line
reason (`<file>: <mutation> | <reason>`, the mutant named without its line and column, so the
reason outlives edits elsewhere in the file). Writes the caught / missed / unviable / timeout
counts per module and every survivor with its reason. Exits non-zero when a survivor has no
reason, or when fewer than 95% of the viable mutants are caught (equivalent mutants, which no
test can catch, are left out of that share and listed).
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPLAINED = ROOT / "scripts" / "mutants_explained.txt"
CONFIG = ROOT / ".cargo" / "mutants.toml"
GOAL = 0.95
SUMMARIES = {
    "CaughtMutant": "caught",
    "MissedMutant": "missed",
    "Unviable": "unviable",
    "Timeout": "timeout",
}


def without_position(name):
    """`crates/x.rs:12:5: replace ...` -> `crates/x.rs: replace ...`."""
    return re.sub(r"^([^:]+):\d+:\d+:", r"\1:", name)


def load_outcomes(dirs):
    """Every mutant's latest outcome, by name, and when each pass ran: only the mutants the
    configuration examines now (a pass made before a file joined, or an exclusion was added,
    may hold others). A whole pass replaces everything earlier passes said of the files it
    tested (their mutants' names, which carry lines, may have moved); a retest pass (its
    directory named with a leading `+`, or ending in `-retest`) only replaces the outcomes of
    the mutants it tested again."""
    config = tomllib.loads(CONFIG.read_text())
    examined = set(config.get("examine_globs", []))
    excluded = [re.compile(r) for r in config.get("exclude_re", [])]
    latest, passes = {}, []
    for directory in dirs:
        retest = directory.startswith("+") or directory.rstrip("/").endswith("-retest")
        directory = directory.removeprefix("+")
        data = json.loads((Path(directory) / "outcomes.json").read_text())
        if not retest:
            tested = {
                o["scenario"]["Mutant"]["file"]
                for o in data["outcomes"]
                if isinstance(o["scenario"], dict) and "Mutant" in o["scenario"]
            }
            latest = {n: v for n, v in latest.items() if v[0] not in tested}
        passes.append((data.get("start_time"), data.get("end_time"), data.get("cargo_mutants_version")))
        for outcome in data["outcomes"]:
            scenario = outcome["scenario"]
            if not isinstance(scenario, dict) or "Mutant" not in scenario:
                continue
            mutant = scenario["Mutant"]
            if mutant["file"] not in examined or any(r.search(mutant["name"]) for r in excluded):
                continue
            summary = SUMMARIES.get(outcome["summary"], outcome["summary"])
            earlier = latest.get(mutant["name"])
            killers = []
            if retest and summary == "caught" and earlier and earlier[1] == "missed":
                killers = failing_tests(Path(directory) / outcome["log_path"])
            elif earlier and earlier[2] and summary == "caught":
                killers = earlier[2]
            latest[mutant["name"]] = (mutant["file"], summary, killers)
    return latest, passes


FAIL = re.compile(r"^\s+FAIL \[[^]]*\] \(\s*\d+/\d+\) \S+ (\S+)$")


def failing_tests(log):
    """The tests that failed on a mutant (nextest's FAIL lines in its log), in order, once."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        match = FAIL.match(line)
        if match and match.group(1) not in found:
            found.append(match.group(1))
    return found


def load_explained():
    """Reasons for survivors, by mutant name without its position."""
    reasons = {}
    for line in EXPLAINED.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" | ")
        reasons[name.strip()] = reason.strip()
    return reasons


def commit():
    """The commit the run tested (with `+` when the work tree had changes)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    return head + ("+" if dirty else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "outs", nargs="+", help="mutants.out directories, earliest first; `+DIR`: a retest pass"
    )
    parser.add_argument("--write", default=str(ROOT / "docs" / "mutants.md"))
    args = parser.parse_args()

    latest, passes = load_outcomes(args.outs)
    kinds = ["Retest" if d.startswith("+") or d.rstrip("/").endswith("-retest") else "Whole" for d in args.outs]
    reasons = load_explained()
    per_file = defaultdict(Counter)
    survivors = []
    killed = []
    for name, (path, summary, killers) in sorted(latest.items()):
        if killers:
            killed.append((name, killers))
        reason = reasons.get(without_position(name))
        if summary == "missed" and reason:
            summary = "equivalent"
        per_file[path][summary] += 1
        if summary in ("missed", "equivalent", "timeout"):
            survivors.append((name, summary, reason))

    totals = Counter()
    for counts in per_file.values():
        totals.update(counts)
    viable = totals["caught"] + totals["missed"] + totals["timeout"]
    share = totals["caught"] / viable if viable else 1.0

    out = [
        "# Mutation testing of the security core",
        "",
        "Written by `make mutants` (cargo-mutants, pinned in the Makefile) from its real runs on "
        "this machine; do not edit by hand. Each mutant of the modules listed in "
        "`.cargo/mutants.toml` was built and tested against cooper-core's own tests (the unit "
        "tests and the use cases over the in-memory ports; the end-to-end tests against moto "
        "would catch more, but at minutes per mutant). A mutant is *caught* when a test fails, "
        "*missed* when every test still passes, *unviable* when it does not compile, and "
        "*equivalent* when it survives because no behaviour can tell it from the original "
        "(the reason is given; scripts/mutants_explained.txt).",
        "",
        f"- Written at commit `{commit()}` (the last pass tested its tests); cargo-mutants "
        f"{passes[-1][2]}; {platform.machine()}, {platform.system()}, {os.cpu_count()} cores.",
    ]
    for (start, end, _), kind in zip(passes, kinds):
        out.append(f"- {kind} pass: {start} to {end}")
    out += [
        "- Reproduce: `make mutants` (hours on 2 cores; `MUTANTS_ARGS=-j2` runs two at once) "
        "and a pass over what earlier passes did not catch: `make mutants MUTANTS_ARGS=--iterate`.",
        "",
        f"**{totals['caught']} of {viable} viable mutants caught ({share:.1%}); goal {GOAL:.0%}.** "
        f"{totals['equivalent']} equivalent (left out of the share), {totals['unviable']} unviable. "
        f"The whole passes alone caught {totals['caught'] - len(killed)} "
        f"({(totals['caught'] - len(killed)) / viable if viable else 1:.1%}); the tests added for "
        f"the {len(killed)} they missed are listed at the end.",
        "",
        "| module | caught | missed | timeout | equivalent | unviable | caught of viable |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for path in sorted(per_file):
        c = per_file[path]
        v = c["caught"] + c["missed"] + c["timeout"]
        pct = f"{c['caught'] / v:.0%}" if v else "n/a"
        module = path.removeprefix("crates/core/src/")
        out.append(f"| {module} | {c['caught']} | {c['missed']} | {c['timeout']} | {c['equivalent']} | {c['unviable']} | {pct} |")
    out += ["", "## Survivors", ""]
    if not survivors:
        out.append("None.")
    for name, summary, reason in survivors:
        out.append(f"- `{name}`: **{summary}**. {reason or 'No reason yet: a test should catch it.'}")
    out += [
        "",
        "## Missed at first, caught by tests added since",
        "",
        f"{len(killed)} mutants survived a whole pass and were caught when tested again after "
        "tests were added; each with the tests that failed on it (the first three).",
        "",
    ]
    for name, killers in killed:
        shown = ", ".join(f"`{k}`" for k in killers[:3])
        out.append(f"- `{name}`: {shown}")
    Path(args.write).write_text("\n".join(out) + "\n")
    print(f"{totals['caught']}/{viable} caught ({share:.1%}); {totals['missed']} missed, "
          f"{totals['timeout']} timeout, {totals['equivalent']} equivalent -> {args.write}")

    unexplained = [n for n, s, r in survivors if s == "missed"]
    if share < GOAL or unexplained:
        for name in unexplained:
            print(f"missed: {name}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
