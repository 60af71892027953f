#!/usr/bin/env python3
"""Converts public answer checkers' pytest cases (gold, prediction, expected verdict) into JSON lines.

Usage: scripts/convert_checker_tests.py math-verify MATH_VERIFY_CHECKOUT > tests/fixtures/rewards/math_verify_cases.jsonl
       scripts/convert_checker_tests.py nemo-skills TEST_MATH_EQUAL_PY >> tests/fixtures/rewards/math_verify_cases.jsonl

math-verify: huggingface/Math-Verify's tests/*.py.

Reads tests/*.py of a huggingface/Math-Verify checkout without importing or running it: every
@pytest.mark.parametrize whose argument names include gold, pred and expected (or result) becomes one
line per row, with the extraction targets, float rounding, strictness and set/relation flag the test
function passes to its checker (read from the call in the test body). Extraction-only tests (parse()
compared with a sympy object) have no (gold, prediction) pair and are skipped.

nemo-skills: NVIDIA/NeMo-Skills' tests/test_math_equal.py, whose math_equal(a, b) is called on bare
answers (no extraction, "extract": false) in both orders: each output_pair row of test_correct_examples
(expected true) and test_incorrect_examples (expected false) becomes two lines, one per order. Numbers
are written as Python prints them (5/2 as "2.5"), None as "".
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
                        "source": f"math-verify/tests/{path.name}::{function.name}[{index}]",
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
                            "source": f"math-verify/tests/{path.name}::{function.name}",
                            "gold": ast.literal_eval(call.args[0]),
                            "predicted": ast.literal_eval(call.args[1]),
                            "expected": bool(ast.literal_eval(node.comparators[0])),
                            "targets": ",".join(keywords.get("match_types", ["latex", "expr"])),
                            "precision": keywords.get("precision", 6),
                        }, ensure_ascii=False))


def text(value):
    return "" if value is None else str(value)


def nemo_skills(path):
    tree = ast.parse(pathlib.Path(path).read_text())
    for function in tree.body:
        if not isinstance(function, ast.FunctionDef) or function.name not in ("test_correct_examples",
                                                                               "test_incorrect_examples"):
            continue
        expected = function.name == "test_correct_examples"
        for decorator in function.decorator_list:
            if not (isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "parametrize"):
                continue
            for index, row in enumerate(decorator.args[1].elts):
                first, second = (value(element) for element in row.elts)
                for order, (gold, predicted) in enumerate(((second, first), (first, second))):
                    print(json.dumps({
                        "source": f"nemo-skills/tests/test_math_equal.py::{function.name}[{index}]"
                                  f"{'' if order == 0 else '(reversed)'}",
                        "gold": text(gold),
                        "predicted": text(predicted),
                        "expected": expected,
                        "extract": False,
                    }, ensure_ascii=False))


if __name__ == "__main__":
    if sys.argv[1] == "math-verify":
        main(sys.argv[2])
    elif sys.argv[1] == "nemo-skills":
        nemo_skills(sys.argv[2])
    else:
        sys.exit("usage: convert_checker_tests.py math-verify|nemo-skills PATH")
