"""Inline a lambda into generated source: `expression(fn, args, kwargs, env, prefix)` gives the
lambda's body with its parameters replaced by the argument names, or None when it cannot.

Fused programs (tensorgrad/compile/codegen.py) are compiled to straight-line Python, one line
per primitive and per vjp. Most vjps are one-expression lambdas (`lambda xp, g, out, a, b: g *
b`); writing `g5 * v3` in the program instead of calling the lambda saves the Python call (a
9-layer MLP's backward program makes over a hundred). The maths stays where it is written,
beside its op: this only reads the lambda's source. Which arguments the body reads is reported
too (`reads`): a value the body does not read need not be kept for that line.

The lambda's other names (module globals such as `np`, or values it closed over) are bound
once, as they are now, under fresh names in the program's globals `env`. Lambdas that cannot be
found unambiguously in their source, that take *args or **kwargs, or whose body has its own
scopes (nested lambdas, comprehensions) are left as calls. The source is read from the
lambda's file: fuse writes out only tensorgrad's own lambdas (a user's file may have changed
since it was imported).
"""
import ast
import builtins
import inspect

__all__ = ["expression"]

_FOUND = {}  # code object -> (ast.Lambda, parameter names, defaults by name) or None
_LAMBDAS = {}  # module name -> {line: [ast.Lambda, ...]} (each module's source parsed once)


def expression(fn, args, kwargs, env, prefix, reads=None):
    """Source of `fn(*args, **kwargs)` as fn's body (args, kwargs: source expressions that are
    plain names, so substituting them cannot evaluate anything twice), or None. `reads`: a set
    to which the argument expressions the body reads are added."""
    found = _lambda_of(fn)
    if found is None:
        return None
    node, params, defaults = found
    if len(args) > len(params) or any(k not in params[len(args):] for k in kwargs):
        return None
    names = dict(zip(params, args))
    names.update(kwargs)
    for p in params:
        if p not in names:
            if p not in defaults:
                return None
            names[p] = _bind(env, f"{prefix}_{p}", defaults[p])
    rename = _Rename(names, fn, env, prefix)
    body = rename.visit(_copy(node.body))
    if body is None:
        return None
    if reads is not None:
        reads.update(names[p] for p in rename.used)
    return f"({ast.unparse(body)})"


def _copy(node):
    return ast.parse(ast.unparse(node), mode="eval").body


def _bind(env, name, value):
    env[name] = value
    return name


class _Rename(ast.NodeTransformer):
    """Parameters -> argument expressions; any other name -> its current value, bound in env."""

    def __init__(self, names, fn, env, prefix):
        self.names, self.fn, self.env, self.prefix = names, fn, env, prefix
        self.ok = True
        self.used = set()  # the parameters the body reads

    def visit_Name(self, node):
        if node.id in self.names:
            self.used.add(node.id)
            return ast.parse(self.names[node.id], mode="eval").body
        found, value = _value(self.fn, node.id)
        if not found:
            self.ok = False
            return node
        return ast.Name(_bind(self.env, f"{self.prefix}_{node.id}", value), ast.Load())

    def visit(self, node):
        result = super().visit(node)
        return result if self.ok else None


def _value(fn, name):
    """(True, the value) of a name fn's body reads besides its parameters, looked up as Python
    does: a closure cell, then fn's module globals, then builtins; (False, None) if unbound."""
    code = fn.__code__
    if name in code.co_freevars:
        try:
            return True, fn.__closure__[code.co_freevars.index(name)].cell_contents
        except ValueError:  # an empty cell
            return False, None
    for scope in (fn.__globals__, vars(builtins)):
        if name in scope:
            return True, scope[name]
    return False, None


def _lambda_of(fn):
    code = getattr(fn, "__code__", None)
    if code is None or fn.__name__ != "<lambda>":
        return None
    if code in _FOUND:
        return _FOUND[code]
    _FOUND[code] = found = _find(fn, code)
    return found


def _find(fn, code):
    if code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS) or code.co_kwonlyargcount:
        return None
    params = code.co_varnames[:code.co_argcount]
    matches = [n for n in _lambdas(inspect.getmodule(fn)).get(code.co_firstlineno, ())
               if tuple(a.arg for a in n.args.args) == params]
    if len(matches) != 1:
        return None
    node = matches[0]
    if node.args.posonlyargs or node.args.vararg or node.args.kwarg or node.args.kwonlyargs or \
            any(isinstance(n, (ast.Lambda, ast.comprehension, ast.NamedExpr))
                for n in ast.walk(node.body)):
        return None
    defaults = dict(zip(params[len(params) - len(fn.__defaults__ or ()):], fn.__defaults__ or ()))
    return node, params, defaults


def _lambdas(module):
    """The lambdas of a module's source by their first line ({} without a readable source)."""
    name = getattr(module, "__name__", None)
    if name not in _LAMBDAS:
        by_line = {}
        try:
            tree = ast.parse(inspect.getsource(module))
        except (OSError, TypeError, SyntaxError):
            tree = None
        for n in ast.walk(tree) if tree is not None else ():
            if isinstance(n, ast.Lambda):
                by_line.setdefault(n.lineno, []).append(n)
        _LAMBDAS[name] = by_line
    return _LAMBDAS[name]
