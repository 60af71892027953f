#!/usr/bin/env python3
"""Converts Math-Verify's pytest cases (gold, prediction, expected verdict) into JSON lines.

Usage: scripts/convert_math_verify_tests.py MATH_VERIFY_CHECKOUT > tests/fixtures/rewards/math_verify_cases.jsonl

Reads tests/*.py of a huggingface/Math-Verify checkout without importing or running it: every
@pytest.mark.parametrize whose argument names include gold, pred and expected (or result) becomes one
line per row, with the extraction targets, float rounding, strictness and set/relation flag the test
function passes to its checker (read from the call in the test body). Extraction-only tests (parse()
compared with a sympy object) have no (gold, prediction) pair and are skipped.
"""
import ast
import json
import math
import pathlib
import sys


def value(node):
    try:
        return ast.literal_eval(node)
    except ValueError:  # an f-string such as f"{math.sqrt(17):.15f}"
        return eval(compile(ast.Expression(node), "<case>", "eval"), {"__builtins__": {}, "math": math})


def call_settings(function):
    """Keyword arguments of the compare_strings(...) / verify(...) call in the test body."""
    settings = {"targets": "latex,expr", "precision": 6, "strict": True}
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("compare_strings", "verify"):
            for keyword in node.keywords:
                if keyword.arg == "match_types":
                    settings["targets"] = ",".join(ast.literal_eval(keyword.value))
                elif keyword.arg == "precision" and isinstance(keyword.value, ast.Constant):
                    settings["precision"] = keyword.value.value
                elif keyword.arg == "strict" and isinstance(keyword.value, ast.Constant):
                    settings["strict"] = keyword.value.value
    return settings


def main(root):
    for path in sorted(pathlib.Path(root, "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text())
        for function in tree.body:
            if not isinstance(function, ast.FunctionDef):
                continue
            for decorator in function.decorator_list:
                if not (isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "parametrize"):
                    continue
                names = [n.strip() for n in ast.literal_eval(decorator.args[0]).split(",")]
                if "gold" not in names or "pred" not in names:
                    continue
                verdict = "expected" if "expected" in names else "result"
                settings = call_settings(function)
                for index, row in enumerate(decorator.args[1].elts):
                    values = dict(zip(names, (value(element) for element in row.elts)))
                    case = {
                        "source": f"tests/{path.name}::{function.name}[{index}]",
                        "gold": values["gold"],
                        "predicted": values["pred"],
                        "expected": bool(values[verdict]),
                        "targets": settings["targets"],
                        "precision": values.get("precision", settings["precision"]),
                    }
                    if "strict" in values or not settings["strict"]:
                        case["strict"] = bool(values.get("strict", settings["strict"]))
                    if "allow_set_relation_comp" in values:
                        case["allow_set_relation_comp"] = bool(values["allow_set_relation_comp"])
                    print(json.dumps(case, ensure_ascii=False))
        # The one compare_strings call outside a parametrized test (test_precision).
        for function in tree.body:
            if isinstance(function, ast.FunctionDef) and not function.decorator_list:
                for node in ast.walk(function):
                    if isinstance(node, ast.Compare) and isinstance(node.left, ast.Call) and \
                            getattr(node.left.func, "id", "") == "compare_strings":
                        call = node.left
                        keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
                        print(json.dumps({
                            "source": f"tests/{path.name}::{function.name}",
                            "gold": ast.literal_eval(call.args[0]),
                            "predicted": ast.literal_eval(call.args[1]),
                            "expected": bool(ast.literal_eval(node.comparators[0])),
                            "targets": ",".join(keywords.get("match_types", ["latex", "expr"])),
                            "precision": keywords.get("precision", 6),
                        }, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1])
