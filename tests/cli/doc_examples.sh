#!/usr/bin/env bash
# Every example in the docs runs as written: tests/tools/doc_examples.py writes the pages' file= blocks,
# runs their run= experiments (with the short --set step counts the block names) and their console
# blocks (comparing the output), and fails on a lua block marked neither runnable nor fragment.
set -euo pipefail
grpo=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$root"
/usr/bin/python3 tests/tools/doc_examples.py "$grpo" "$dir" README.md docs/*.md docs/stages/*.md examples/*/README.md
