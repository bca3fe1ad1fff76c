"""compile.liveness: last uses found from what each statement declares it reads, not its text."""
import numpy as np

import tensorgrad as tg
from tensorgrad.autograd.xp import numpy_ns
from tensorgrad.compile import codegen
from tensorgrad.compile.liveness import Statement, last_uses, values_read, with_frees
from tensorgrad.compile.plan import probe
from tensorgrad.compile.trace import trace


def test_each_variable_is_deleted_after_the_statement_that_last_mentions_it():
    body = [Statement("    v2 = f(v0)", (2, 0)),
            Statement("    v3 = h(v2, v1)", (3, 2, 1)),
            Statement("    g3 = g4 * v2", (2,), (3, 4)),
            Statement("    v5 = k(v3)", (5, 3))]
    returned = Statement("    return [v0, v1, v5, g3]", (0, 1, 5), (3,))
    # the returned variables are kept; the others go after their last mention
    assert last_uses(body, returned) == {2: ["g4", "v2"], 3: ["v3"]}
    assert with_frees(body, returned) == [
        "    v2 = f(v0)", "    v3 = h(v2, v1)", "    g3 = g4 * v2", "    del g4, v2",
        "    v5 = k(v3)", "    del v3"]
    assert values_read(body) == {0, 1, 2, 3, 5}


def test_the_declarations_decide_not_the_text():
    # a line whose text names v7 but does not declare it: v7 is not considered read there
    body = [Statement("    v8 = f(v7)", (8,)), Statement("    v9 = f(v8)", (9, 8))]
    assert last_uses(body, Statement("    return [v9]", (9,))) == {1: ["v8"]}


def test_a_written_out_vjp_reads_only_the_values_its_body_names():
    # relu's vjp reads its output, not its input: the backward does not read x * 2.0, so a
    # lean forward may free it once relu has run
    x = tg.tensor(np.linspace(-1.0, 1.0, 6).reshape(3, 2), requires_grad=True)
    program, _, examples = trace(lambda x: tg.relu(x * 2.0).sum(), (x,), {})
    _, plan = probe(program, (True,), numpy_ns, np.asarray(1.0), examples)
    backward = codegen.backward(program, (True,), plan, frozenset())
    assert program.slot(0) not in backward.reads and program.slot(1) in backward.reads
    with tg.fast_mode(False, paths=["inlined_lambda"]):  # called, a vjp reads all it is given
        backward = codegen.backward(program, (True,), plan, tg.mode.OFF)
    assert program.slot(0) in backward.reads


def test_a_lean_forward_keeps_what_a_backward_reads_and_frees_the_rest():
    x = tg.tensor(np.ones((3, 2)), requires_grad=True)
    program, _, examples = trace(lambda x: (x.exp() * 2.0).exp().sum(), (x,), {})
    source = codegen.forward_source(program, examples, frozenset())
    e1, e2 = program.slot(0), program.slot(2)
    forward = codegen.assemble_forward(program, source, {e1})
    vals = forward(np.ones((3, 2)))
    freed = [i for i, v in enumerate(vals) if v is codegen.FREED]
    assert freed == [program.slot(1), e2]  # the product and the second exp: read by no one
    np.testing.assert_array_equal(vals[e1], np.exp(np.ones((3, 2))))
    assert "del v" in forward.source
