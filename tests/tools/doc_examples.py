#!/usr/bin/env python3
"""Runs the examples of the project's Markdown pages, so that every example in the docs works as written.

A fenced block says what it is in its info string, after the language:

  ```lua file=sum_rules.lua            written to that file (in a folder of its own per page), for later blocks
  ```lua run=x.lua set=train.steps=2   written, then `grpo run x.lua` with these --set overrides (comma-
                                       separated: the page shows the full run, the test a short one)
  ```lua fragment                      a piece of a larger script (a stage's one-line example): not run
  ```console                           "$ command" lines, each followed by the output it must print
                                       exactly (trailing spaces aside); run in the page's folder

Every `lua` block must be one of the first three, so a new example cannot silently go untested. Blocks
are written first, then the experiments and commands run in page order.

usage: doc_examples.py GRPO_BINARY WORK_DIR PAGE.md...
"""
import os
import re
import shlex
import subprocess
import sys

FENCE = re.compile(r"^```(\S*)\s*(.*)$")


def blocks(path):
    """(line number, language, attributes, body lines) of each fenced block of a page."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group(1):
            i += 1
            continue
        start, language, info = i + 1, m.group(1), m.group(2)
        attributes = {}
        for word in info.split():
            key, _, value = word.partition("=")
            attributes[key] = value
        body = []
        i += 1
        while i < len(lines) and lines[i] != "```":
            body.append(lines[i])
            i += 1
        yield start, language, attributes, body
        i += 1


def run_console(page, line, body, folder, env):
    """Each "$ command" of the block, its output compared with the lines below it."""
    failures = []
    commands = []
    for text in body:
        if text.startswith("$ "):
            commands.append((text[2:], []))
        elif commands:
            commands[-1][1].append(text)
    for command, expected in commands:
        result = subprocess.run(command, shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
        got = [l.rstrip() for l in (result.stdout + result.stderr).rstrip("\n").split("\n")]
        want = [l.rstrip() for l in expected]
        while want and not want[-1]:
            want.pop()
        if got != want:
            failures.append(f"{page}:{line}: `{command}` printed\n  " + "\n  ".join(got) +
                            "\nbut the page shows\n  " + "\n  ".join(want))
    return failures


def main():
    grpo, work, pages = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3:]
    bin_dir = os.path.join(work, "bin")
    os.makedirs(bin_dir, exist_ok=True)
    link = os.path.join(bin_dir, "grpo")
    if not os.path.exists(link):
        os.symlink(grpo, link)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"])
    failures, ran = [], 0
    for page in pages:
        folder = os.path.join(work, re.sub(r"[^A-Za-z0-9]+", "_", page))
        os.makedirs(folder, exist_ok=True)
        page_blocks = list(blocks(page))
        for line, language, attributes, body in page_blocks:  # every file first: a page may show data last
            name = attributes.get("file") or attributes.get("run")
            if name:
                with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
                    f.write("\n".join(body) + "\n")
        for line, language, attributes, body in page_blocks:
            name = attributes.get("file") or attributes.get("run")
            if language == "lua" and not name and "fragment" not in attributes:
                failures.append(f"{page}:{line}: a lua block is neither runnable (file=NAME or run=NAME) nor marked fragment")
                continue
            if "run" in attributes:
                command = [grpo, "run", name, "--out", "run-" + os.path.splitext(name)[0]]
                for override in filter(None, attributes.get("set", "").split(",")):
                    command += ["--set", override]
                result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
                ran += 1
                if result.returncode != 0:
                    failures.append(f"{page}:{line}: `{shlex.join(command[1:])}` failed:\n" + result.stderr[-3000:])
            elif language == "console":
                ran += 1
                failures += run_console(page, line, body, folder, env)
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    print(f"{ran} examples run from {len(pages)} pages, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
