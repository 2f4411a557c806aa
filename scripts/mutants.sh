#!/usr/bin/env bash
# `make mutants`: cargo-mutants (pinned, installed under .tools/) over the modules in
# .cargo/mutants.toml, then docs/mutants.md from every pass. Arguments go to cargo-mutants:
# with `--iterate` (or `-F`) only what earlier passes did not catch (or what matches) is tested
# again, and the report merges the passes (the latest outcome of a mutant wins); without it, a
# fresh run replaces them.
set -uo pipefail
cd "$(dirname "$0")/.."

version=27.1.0
out=.run/mutants
if ! .tools/bin/cargo-mutants --version 2>/dev/null | grep -qx "cargo-mutants $version"; then
    cargo install --quiet --locked cargo-mutants --version "$version" --root .tools || exit 1
fi
mkdir -p "$out/passes"
case " $* " in
    *" --iterate "*) ;;
    *) rm -rf "$out/passes" "$out/mutants.out" && mkdir -p "$out/passes" ;;
esac

PATH="$PWD/.tools/bin:$PATH" cargo mutants --output "$out" "$@"
status=$?
# 0: every mutant caught; 2: some missed; 3: some timed out. Anything else: the run failed.
case $status in 0 | 2 | 3) ;; *) exit "$status" ;; esac

pass="$out/passes/$(printf '%03d' "$(ls "$out/passes" | wc -l)")"
case " $* " in *" --iterate "* | *" -F "* | *" --re "*) pass="$pass-retest" ;; esac
cp -r "$out/mutants.out" "$pass"
exec "${PYTHON:-python3}" scripts/mutants_report.py "$out"/passes/*
