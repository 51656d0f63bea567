#!/usr/bin/env bash
# Benchmark plans that CI compares against the baselines kept in this folder.
#
#   bash benchmarks/baselines/baselines.sh compile DIR   # write DIR/<name>/plan.json (+ report.md)
#   bash benchmarks/baselines/baselines.sh diff DIR      # placer diff each baseline -> DIR/<name>;
#                                                        # Markdown in DIR/diff.md, exit 1 on a regression
#   bash benchmarks/baselines/baselines.sh update        # recompile and replace the baselines (on purpose:
#                                                        # commit the new plan.json files with a reason)
#
# The list below is the one place the benchmark plans are defined (.ci/run uses it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

compile_all() {
    local out="$1"
    placer compile llama-3.1-8b --target wse3 --context 8192 --concurrency 4 -o "$out/llama-3.1-8b"
    placer compile llama-3.1-70b --target wse3 --wafers 4 --context 8192 --concurrency 9 \
        --granularity block --objective min-latency -o "$out/llama-3.1-70b"
}

names() { find "$here" -mindepth 2 -maxdepth 2 -name plan.json -printf '%h\n' | xargs -n1 basename | sort; }

case "${1:-}" in
    compile)
        compile_all "${2:?usage: baselines.sh compile DIR}"
        ;;
    diff)
        out="${2:?usage: baselines.sh diff DIR}"
        status=0
        : > "$out/diff.md"
        for name in $(names); do
            placer diff "$here/$name/plan.json" "$out/$name/plan.json" >> "$out/diff.md" || status=$?
        done
        cat "$out/diff.md"
        if [ "$status" -eq 1 ]; then
            echo "placer: a benchmark plan moved beyond the diff thresholds; if that is intended, run" \
                 "'bash benchmarks/baselines/baselines.sh update' and commit the baselines" >&2
        elif [ "$status" -ne 0 ]; then
            echo "placer: a baseline could not be compared (exit $status: another plan schema?); run" \
                 "'bash benchmarks/baselines/baselines.sh update' and commit the baselines" >&2
        fi
        exit "$status"
        ;;
    update)
        tmp="$(mktemp -d)"
        compile_all "$tmp"
        for dir in "$tmp"/*/; do
            name="$(basename "$dir")"
            mkdir -p "$here/$name"
            cp "$dir/plan.json" "$here/$name/plan.json"   # report.md has wall-clock solve times: not kept
        done
        rm -rf "$tmp"
        echo "updated $(names | tr '\n' ' ')in $here"
        ;;
    *)
        echo "usage: baselines.sh compile DIR | diff DIR | update" >&2
        exit 2
        ;;
esac
