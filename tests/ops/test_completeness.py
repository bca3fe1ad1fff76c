"""No op can be added untested: the issue's public op list, the registry and the cases agree."""
import tensorgrad as tg
from tensorgrad.autograd.registry import REGISTRY

from .op_cases import CASES, NONDIFF_CASES

# the ops the core issue lists (composites such as var, softmax, logsumexp, indexing, pad included)
REQUIRED = """add sub mul div pow matmul neg exp log sqrt abs tanh sigmoid relu leaky_relu elu
maximum minimum where clip sum mean var std max min logsumexp softmax log_softmax reshape
transpose permute matrix_transpose flatten broadcast_to expand squeeze unsqueeze getitem
concatenate stack pad""".split()


def test_required_ops_are_registered():
    missing = [n for n in REQUIRED if n not in tg.DIFFERENTIABLE]
    assert not missing, f"ops of the public list missing from tg.DIFFERENTIABLE: {missing}"


def test_every_registered_op_has_a_property_case():
    missing = sorted(set(tg.DIFFERENTIABLE) - set(CASES))
    assert not missing, f"ops without an entry in tests/ops/op_cases.py: {missing}"


def test_every_case_names_its_numpy_reference():
    missing = sorted(name for name, case in CASES.items() if not callable(case.get("ref")))
    assert not missing, f"op cases without a numpy reference (ref=): {missing}"


def test_every_op_is_a_function_and_method():
    for name in ["exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "sum", "mean", "var",
                 "std", "max", "min", "logsumexp", "softmax", "log_softmax", "reshape",
                 "transpose", "permute", "flatten", "squeeze", "unsqueeze", "clip", "clamp",
                 "maximum", "minimum", "broadcast_to", "expand"]:
        assert callable(getattr(tg, name, None)) or name in ("permute", "expand")
        assert hasattr(tg.Tensor, name), name
    for alias, canonical in [("cat", "concatenate"), ("clamp", "clip")]:
        assert getattr(tg, alias) is getattr(tg, canonical)


def test_every_nondifferentiable_function_has_a_case():
    differentiable = {id(fn) for fn in tg.DIFFERENTIABLE.values()}
    nondiff = {name for name, entry in REGISTRY.items()
               if not entry.listed and id(entry.fn) not in differentiable}
    missing = sorted(nondiff - set(NONDIFF_CASES))
    assert not missing, f"functions without gradient lacking an entry in NONDIFF_CASES: {missing}"


def test_torch_names_of_the_predicates():
    for name in ["argmax", "argmin", "all", "any", "eq", "ne", "lt", "le", "gt", "ge",
                 "allclose"]:
        assert callable(getattr(tg, name)) and hasattr(tg.Tensor, name), name
