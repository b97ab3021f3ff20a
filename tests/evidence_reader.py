"""Read a notebook's claim checks statically: is each control measured, and by the claim's own rule?

A control must be able to come out either way: its outcome has to depend on a value the notebook
computed, through the same rule as the claim. :class:`ControlReader` reads the expression passed as
``control_holds`` (and ``testable``) down to each outcome, following names to their last assignment
*before* the call, the ``return`` of functions the notebook defines, ``lambda`` bodies and
``x.append(...)`` calls, and flags the shapes that cannot move with the data:

- a constant (``False``, ``[False for s in SEEDS]``, ``[False] * 3``, ``x or True``);
- a comparison with no measured value on either side (``0.0 <= PADDING``: names in CAPITALS are the
  notebook's parameters and thresholds, loop and lambda variables over ``SEEDS`` or ``range`` are
  indices, imported modules and names are tools, not measurements);
- a value compared with itself, up to scaling by constants (``uniform[s] >= FOCUS * uniform[s]``);
- a call of a notebook function whose every ``return`` is a constant.

:func:`rule_signature` lists a rule's comparison operators and thresholds, so a test can demand that
the control is decided by the same rule as the claim (not the claim reversed, not a laxer bar).

What it cannot see: code inside ``course_utils`` (a library call with constant arguments counts as a
measurement; the library's own tests vouch for it) and values built by loops other than ``append``.
"""

from __future__ import annotations

import ast
import builtins

BUILTINS = set(dir(builtins))
INDEX_SOURCES = {"SEEDS"}


class ControlReader:
    """Why an outcome expression cannot come out the other way (no reasons: it can)."""

    def __init__(
        self,
        assignments: dict[str, ast.expr],
        functions: dict[str, ast.FunctionDef] | None = None,
        imports: set[str] | None = None,
        appends: dict[str, list[ast.expr]] | None = None,
    ):
        self.assignments = assignments
        self.functions = functions or {}
        self.imports = imports or set()
        self.appends = appends or {}

    # -- what counts as measured -------------------------------------------------------------
    def constant_function(self, name: str) -> bool:
        """A notebook function whose every ``return`` gives a constant (or that returns nothing)."""
        returns = [
            n.value for n in ast.walk(self.functions[name]) if isinstance(n, ast.Return) and n.value
        ]
        return all(_literal(r) for r in returns)

    def measured(self, node: ast.AST, index: set[str]) -> set[str]:
        """The measured names (and measuring calls) in ``node``."""
        called = {
            id(n.func)
            for n in ast.walk(node)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        found = set()
        for n in ast.walk(node):
            if isinstance(n, ast.Lambda):
                index = index | {a.arg for a in n.args.args}
        for n in ast.walk(node):
            if not isinstance(n, ast.Name):
                continue
            name = n.id
            if id(n) in called:
                if name in self.functions:
                    if not self.constant_function(name):
                        found.add(f"{name}()")
                elif name not in BUILTINS:
                    found.add(f"{name}()")  # a library measurement (its own tests vouch for it)
                continue
            if name in index or name in BUILTINS or name.isupper() or name in self.imports:
                continue
            if name in self.functions:
                continue
            found.add(name)
        return found

    # -- reading outcomes ----------------------------------------------------------------------
    def problems(self, expr: ast.expr | None, depth: int = 0) -> list[str]:
        if expr is None:
            return ["no control_holds given (or passed through **kwargs, which cannot be read)"]
        if depth > 8:
            return []
        if isinstance(expr, ast.Name) and expr.id in self.assignments:
            value = self.assignments[expr.id]
            if isinstance(value, ast.List) and not value.elts and expr.id in self.appends:
                return [p for v in self.appends[expr.id] for p in self.problems(v, depth + 1)]
            return self.problems(value, depth + 1)
        if isinstance(expr, ast.List | ast.Tuple | ast.Set):
            return [p for e in expr.elts for p in self.problems(e, depth)]
        if isinstance(expr, ast.Dict):
            return [p for v in expr.values for p in self.problems(v, depth)]
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mult):
            # [False] * 3
            return [
                p
                for side in (expr.left, expr.right)
                if _sequence(side)
                for p in self.problems(side, depth)
            ]
        if isinstance(expr, ast.ListComp | ast.GeneratorExp | ast.SetComp | ast.DictComp):
            index = self.index_names(expr.generators)
            return self.leaf(expr.value if isinstance(expr, ast.DictComp) else expr.elt, index)
        return self.leaf(expr, set())

    def index_names(self, generators: list[ast.comprehension]) -> set[str]:
        """Loop variables over ``SEEDS``, ``range`` or constants: indices, not measurements."""
        return {
            n.id
            for g in generators
            if not self.measured(g.iter, set())
            for n in ast.walk(g.target)
            if isinstance(n, ast.Name)
        }

    def unscaled(self, node: ast.expr, index: set[str]) -> ast.expr:
        """A comparison's side without scaling or shifting by constants (``FOCUS * x`` -> ``x``)."""
        if isinstance(node, ast.BinOp) and isinstance(
            node.op, ast.Mult | ast.Div | ast.Add | ast.Sub
        ):
            for const, rest in ((node.left, node.right), (node.right, node.left)):
                if not self.measured(const, index) and not _uses(const, index):
                    return self.unscaled(rest, index)
        return node

    def leaf(self, expr: ast.expr, index: set[str]) -> list[str]:
        if _literal(expr):
            return [f"the constant {ast.unparse(expr)}"]
        if isinstance(expr, ast.Name) and expr.id in self.assignments:
            return self.problems(expr)
        if not self.measured(expr, index):
            return [f"{ast.unparse(expr)!r} uses no measured value"]
        found = []
        for node in ast.walk(expr):
            if isinstance(node, ast.BoolOp):
                fixed = [v for v in node.values if isinstance(v, ast.Constant)]
                if any(v.value is True for v in fixed) and isinstance(node.op, ast.Or):
                    found.append(f"{ast.unparse(node)!r} is always True")
                if any(v.value is False for v in fixed) and isinstance(node.op, ast.And):
                    found.append(f"{ast.unparse(node)!r} is always False")
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                forms = [ast.dump(self.unscaled(side, index)) for side in sides]
                if len(set(forms)) < len(forms):
                    found.append(f"{ast.unparse(node)!r} compares a value with itself")
                elif not any(self.measured(side, index) for side in sides):
                    found.append(f"{ast.unparse(node)!r} compares constants")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id in self.functions and self.constant_function(node.func.id):
                    found.append(f"{node.func.id}() returns a constant")
        return found


def _literal(node: ast.AST) -> bool:
    """A constant, or a list/tuple of constants, or a comprehension of a constant."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return all(_literal(e) for e in node.elts)
    if isinstance(node, ast.ListComp | ast.GeneratorExp):
        return _literal(node.elt)
    if isinstance(node, ast.UnaryOp):
        return _literal(node.operand)
    return False


def _sequence(node: ast.AST) -> bool:
    return isinstance(node, ast.List | ast.Tuple | ast.Name)


def _uses(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


def rule_signature(expr: ast.expr | None, reader: ControlReader, depth: int = 0) -> list[tuple]:
    """A rule's comparison operators with their thresholds (numbers and CAPITALS outside indexing).

    The claim and its control must share it: the same rule measured on other data, not the claim's
    comparison reversed (``x < T`` against ``x >= T``) or a laxer bar for the control.
    """
    if expr is None:
        return []
    sig: list[tuple] = []
    subscripts = {
        id(n) for s in ast.walk(expr) if isinstance(s, ast.Subscript) for n in ast.walk(s.slice)
    }
    for node in ast.walk(expr):
        if isinstance(node, ast.Name) and node.id in reader.assignments and depth < 4:
            sig += rule_signature(reader.assignments[node.id], reader, depth + 1)
        if isinstance(node, ast.Compare):
            consts = sorted(
                ast.unparse(x)
                for x in ast.walk(node)
                if id(x) not in subscripts
                and (
                    (
                        isinstance(x, ast.Constant)
                        and isinstance(x.value, int | float)
                        and not isinstance(x.value, bool)
                    )
                    or (isinstance(x, ast.Name) and x.id.isupper() and x.id not in INDEX_SOURCES)
                )
            )
            sig.append((tuple(type(o).__name__ for o in node.ops), tuple(consts)))
    return sorted(sig)


def claim_check_calls(nb) -> list[tuple[int, dict[str, ast.expr], ControlReader]]:
    """``(cell index, keyword arguments, reader)`` of every ``claim_check(...)`` call, in order.

    The reader of each call knows the assignments made before it (earlier cells, earlier statements
    of its own cell), so a name reused later in the notebook does not change what the call read.
    """
    trees = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            source = "\n".join(
                ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!"))
            )
            trees.append((i, ast.parse(source)))
    functions: dict[str, ast.FunctionDef] = {}
    imports: set[str] = set()
    appends: dict[str, list[ast.expr]] = {}
    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                functions[node.name] = node
            elif isinstance(node, ast.Import | ast.ImportFrom):
                imports |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "append"
                and isinstance(node.func.value, ast.Name)
                and node.args
            ):
                appends.setdefault(node.func.value.id, []).append(node.args[0])
    calls = []
    assignments: dict[str, ast.expr] = {}
    for i, tree in trees:
        for statement in tree.body:
            for node in ast.walk(statement):
                if isinstance(node, ast.Call) and _is_claim_check(node.func):
                    reader = ControlReader(dict(assignments), functions, imports, appends)
                    calls.append((i, {k.arg: k.value for k in node.keywords if k.arg}, reader))
            targets = (
                statement.targets
                if isinstance(statement, ast.Assign)
                else [statement.target]
                if isinstance(statement, ast.AnnAssign) and statement.value
                else []
            )
            for target in targets:
                if isinstance(target, ast.Name):
                    assignments[target.id] = statement.value
    return calls


def _is_claim_check(func: ast.expr) -> bool:
    return (isinstance(func, ast.Name) and func.id == "claim_check") or (
        isinstance(func, ast.Attribute) and func.attr == "claim_check"
    )


CLOCKS = {"perf_counter", "perf_counter_ns", "time", "monotonic", "process_time", "timeit"}
TIME_WORDS = ("sec", "secs", "seconds", "elapsed", "wall", "timing", "timings", "ms", "runtime")


def clock_readings(expr: ast.expr | None, reader: ControlReader, depth: int = 0) -> set[str]:
    """Names or calls in an outcome expression that read a clock (no verdict from wall-clock time).

    Follows names to their assignments before the call and into notebook functions it calls.
    """
    if expr is None or depth > 6:
        return set()
    found = set()
    for node in ast.walk(expr):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in CLOCKS:
                found.add(f"{name}()")
            if name in reader.functions:
                found |= clock_readings(reader.functions[name], reader, depth + 1)
        if isinstance(node, ast.Name):
            words = node.id.lower().split("_")
            if any(w in TIME_WORDS for w in words):
                found.add(node.id)
            if node.id in reader.assignments:
                found |= clock_readings(reader.assignments[node.id], reader, depth + 1)
    return found
