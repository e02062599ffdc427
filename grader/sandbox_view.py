"""The copy of a test file that runs inside the grading sandbox: no oracle, no expected values.

In `tito grade` a checkpoint runs twice: trusted, against the reference (grader.judge), and in
the sandbox against the student's code, where every expect_* call only records the student's
value. What the sandbox must never compute is the answer: if it did, the student's code,
which shares that process, could read it and record it as its own. So the sandbox runs this
rewritten copy of the test file:

1. The oracle is absent. `import torch`, `import torch.nn.functional as F`, `import tiktoken`
   (and the like) bind an inert stand-in instead: every attribute, call, index or operation on
   it gives the stand-in again. (The packages themselves are also hidden from the sandbox's
   file system, so nothing can import them.)
2. Every expect_* call keeps only what the student's code produced: the value under test of
   `expect_close`, `expect_equal` and `expect_that`, the action of `expect_raises`. The
   expected value, the predicate, the tolerance and the messages are removed.
3. A local variable that is no longer read after step 2 (an `expected = ...` computed with
   numpy, say) is not computed at all.

Inputs stay: they come from each test's own seeded generator, so the student's code sees the
same inputs as the reference did in the trusted run. The suite proves the rewrite harmless:
the reference solution, graded through the sandbox, gets full marks in every module.
"""

from __future__ import annotations

import ast

ORACLE_PACKAGES = ("torch", "tiktoken")
EXPECTATIONS = {"expect_close", "expect_equal", "expect_that", "expect_raises"}

STAND_IN = '''
class _OracleAbsent:
    """The oracle is not part of the sandbox: any use of it gives this inert stand-in."""

    def __getattr__(self, name): return self
    def __setattr__(self, name, value): pass
    def __call__(self, *args, **kwargs): return self
    def __getitem__(self, key): return self
    def __setitem__(self, key, value): pass
    def __iter__(self): return iter(())
    def __len__(self): return 0
    def __bool__(self): return False
    def __enter__(self): return self
    def __exit__(self, *exc): return False
    def __repr__(self): return "<oracle: not in the sandbox>"
    def __float__(self): return 0.0
    def __int__(self): return 0
    def __index__(self): return 0
    def __mro_entries__(self, bases): return (object,)


def _stand_in_operator(self, *args):
    return self


for _name in ("add radd sub rsub mul rmul truediv rtruediv floordiv rfloordiv pow rpow matmul rmatmul "
              "neg pos abs mod rmod lt le gt ge and rand or ror xor rxor invert").split():
    setattr(_OracleAbsent, f"__{_name}__", _stand_in_operator)
_ORACLE = _OracleAbsent()
del _name
'''


def _is_oracle_module(name: str) -> bool:
    return name.split(".")[0] in ORACLE_PACKAGES


def _expectation_name(call: ast.Call) -> str:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return name if name in EXPECTATIONS else ""


class _Rewrite(ast.NodeTransformer):
    """Steps 1 and 2: oracle imports bind the stand-in; expect_* calls keep only the student's side."""

    def visit_Import(self, node: ast.Import) -> ast.AST | list[ast.AST]:
        kept = [alias for alias in node.names if not _is_oracle_module(alias.name)]
        stand_ins = [_bind(alias.asname or alias.name.split(".")[0], node)
                     for alias in node.names if _is_oracle_module(alias.name)]
        if kept:
            node.names = kept
            return [node, *stand_ins]
        return stand_ins

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST | list[ast.AST]:
        if node.module and _is_oracle_module(node.module):
            return [_bind(alias.asname or alias.name, node) for alias in node.names]
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        name = _expectation_name(node)
        if not name:
            return node
        empty = ast.Constant("")
        if name == "expect_raises":
            action = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "action"), ast.Constant(None))
            node.args = [ast.Constant(None), action]
            node.keywords = [ast.keyword("call", empty)]
        else:
            got = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "got"), ast.Constant(None))
            node.args = [got, ast.Constant(None)]
            node.keywords = [ast.keyword("call", empty)] + ([ast.keyword("expected", empty)] if name == "expect_that" else [])
        return node


def _bind(name: str, where: ast.AST) -> ast.Assign:
    return ast.copy_location(ast.Assign([ast.Name(name, ast.Store())], ast.Name("_ORACLE", ast.Load())), where)


def _loaded_names(node: ast.AST) -> set[str]:
    names = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and not isinstance(child.ctx, ast.Store):
            names.add(child.id)
        elif isinstance(child, (ast.Global, ast.Nonlocal)):
            names.update(child.names)
        elif isinstance(child, ast.AugAssign) and isinstance(child.target, ast.Name):
            names.add(child.target.id)
    return names


def _target_names(target: ast.AST) -> list[str] | None:
    """The plain names an assignment binds, or None if it binds anything else (an attribute, an item)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        names: list[str] = []
        for element in target.elts:
            inner = _target_names(element.value if isinstance(element, ast.Starred) else element)
            if inner is None:
                return None
            names += inner
        return names
    return None


def _is_dead(statement: ast.stmt, read: set[str]) -> bool:
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        targets = [statement.target]
    else:
        return False
    names = [_target_names(t) for t in targets]
    if any(n is None for n in names):
        return False
    flat = [name for group in names for name in group]
    return bool(flat) and not any(name in read or name.startswith("_") for name in flat)


def _drop_dead(body: list[ast.stmt], read: set[str]) -> tuple[list[ast.stmt], bool]:
    kept, changed = [], False
    for statement in body:
        if _is_dead(statement, read):
            changed = True
            continue
        for field in ("body", "orelse", "finalbody"):
            inner = getattr(statement, field, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt) \
                    and not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                new, inner_changed = _drop_dead(inner, read)
                setattr(statement, field, new or [ast.Pass()])
                changed |= inner_changed
        for handler in getattr(statement, "handlers", []):
            new, inner_changed = _drop_dead(handler.body, read)
            handler.body, changed = new or [ast.Pass()], changed | inner_changed
        kept.append(statement)
    return kept, changed


def _eliminate_dead_locals(function: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    """Step 3, repeated until nothing changes: an assignment nobody reads is not made."""
    changed = True
    while changed:
        function.body, changed = _drop_dead(function.body, _loaded_names(function))
        function.body = function.body or [ast.Pass()]


def sandbox_source(source: str, filename: str = "<test file>") -> str:
    """The sandbox's copy of a test file's source (see the module docstring)."""
    tree = _Rewrite().visit(ast.parse(source, filename))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _eliminate_dead_locals(node)
    insert_at = 0
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        insert_at = 1  # after the module docstring
    while insert_at < len(body) and isinstance(body[insert_at], ast.ImportFrom) and body[insert_at].module == "__future__":
        insert_at += 1
    tree.body[insert_at:insert_at] = ast.parse(STAND_IN).body
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"
