"""Every check in a graded test tells the student what was expected and the likely mistake (ARENA
style): a bare ``assert`` or an ``assert_close`` without ``msg`` is refused here, by reading the tests."""
import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _graded_functions(tree: ast.Module):
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "points" for d in node.decorator_list):
            yield node


def _checks_without_hint(path: Path) -> list[str]:
    source = path.read_text()
    found = []
    for function in _graded_functions(ast.parse(source)):
        for node in ast.walk(function):
            bare_assert = isinstance(node, ast.Assert) and node.msg is None
            bare_close = (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "assert_close"
                          and not any(keyword.arg == "msg" for keyword in node.keywords))
            if bare_assert or bare_close:
                found.append(f"{path.name}:{node.lineno} in {function.name}: {ast.get_source_segment(source, node)[:100]}")
    return found


def test_every_check_in_a_graded_test_has_a_hint():
    missing = [line for path in sorted(TESTS.glob("test_*.py")) for line in _checks_without_hint(path)]
    assert not missing, "give these checks a message (what was expected, the likely mistake):\n  " + "\n  ".join(missing)


def test_the_hint_check_finds_a_bare_assert(tmp_path):
    (tmp_path / "test_x.py").write_text("import pytest\n\n@pytest.mark.points(1)\ndef test_a():\n    assert 1 == 1\n"
                                        "    torch.testing.assert_close(a, b, msg=lambda m: m)\n")
    assert _checks_without_hint(tmp_path / "test_x.py") == ["test_x.py:5 in test_a: assert 1 == 1"]
