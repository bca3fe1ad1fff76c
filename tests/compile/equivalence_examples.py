"""Programs that once failed the equivalence test (tests/compile/test_equivalence.py), kept as its
@examples: each with what it found. Add every new failure here (its report prints the line)."""
from tensorgrad.testing import Input, Program, Step

EXAMPLES = [
    # the kit's sign flips turned a 0-d input into shape (1,) (np.ascontiguousarray does)
    dict(program=Program(
        inputs=[Input("x0", ()), Input("x1", (), "float32")],
        steps=[Step("v2", "transpose", ("x0",), axes=()),
               Step("v3", "mul", ("v2", "x1"))],
        result="v3", features=("zero_dim",), exact=True), seed=0),
    # x ** -0.5 was rsqrt in fast mode and np.power in reference mode: not the same numpy call,
    # so not bitwise (the kit had marked the program exact)
    dict(program=Program(
        inputs=[Input("x0", (4, 2), "float32"), Input("x1", (4, 2), "float32"),
                Input("x3", (4, 2), "float32", requires_grad=False), Input("x16", (), "float32")],
        steps=[Step("v2", "less", ("x0", "x1")),
               Step("v4", "where", ("v2", "x0", "x3")),
               Step("v5", "abs", ("v4",)),
               Step("v6", "add", ("v5", 0.5)),
               Step("v7", "div", ("v4", "v6")),
               Step("v17", "exp", ("x16",)),
               Step("v18", "pow", ("v17", -0.5)),
               Step("v19", "mul", ("v7", "v18"))],
        result="v19", features=("where", "shared", "zero_dim", "float32"), exact=False),
        seed=0),
    # a comparison passes no gradient: where(c > 0, c, 0) of a constant c needs no gradient
    # (the kit counted one through the comparison and called backward() on a constant)
    dict(program=Program(
        inputs=[Input("x1", (3, 2)), Input("x7", (5,)), Input("x9", (5,), requires_grad=False),
                Input("x11", (5,))],
        steps=[Step("v2", "getitem", ("x1",), index=-2),
               Step("v3", "pad", ("v2",), pad_width=((1, 2),)),
               Step("v8", "greater", ("v3", "x7")),
               Step("v10", "where", ("v8", "x9", 0.0)),
               Step("v12", "add", ("v10", "x11"))],
        result="v12", features=("indexing", "where"), exact=True), seed=0),
    # Linear -> BatchNorm1d -> ReLU as nn modules (a fused chain in fast mode) against the
    # functional forms (fused by tg.fuse): second-order gradients of a batch of two; in float32
    # they differed by 5 ulp (batch norm's gradients cancel), so the chain runs in float64
    dict(program=Program(
        inputs=[Input("x0", (3, 3)), Input("x4", (3, 4)),
                Input("w5", (2, 4), kind="param", order="F"), Input("w6", (2,), kind="param"),
                Input("w7", (2,), kind="param"), Input("w8", (2,), kind="param"),
                Input("x13", (3, 3, 1)), Input("x15", ())],
        steps=[Step("v1", "expand_dims", ("x0",), axis=2),
               Step("v2", "mean", ("v1",), axis=(1,), keepdims=True),
               Step("v9", "linear_bn_relu", ("x4", "w5", "w6", "w7", "w8"), form="nn",
                    bias=True, training=True),
               Step("v10", "mul", ("v9", "v2")),
               Step("v11", "mul", ("v10", 0.5)),
               Step("v12", "elu", ("v11",), alpha=1.0),
               Step("v14", "concatenate", ("v11", "x13", "v1"), axis=2),
               Step("v16", "mul", ("v12", "x15")),
               Step("v18", "var", ("v14",), axis=-1, keepdims=True, ddof=1),
               Step("v19", "add", ("v18", "v16"))],
        result="v19", features=("broadcasting", "keepdims", "linear_bn_relu", "nn_modules",
                                "reduction_axis", "shared", "zero_dim"), exact=False),
        seed=767),
    # two backward() calls: x2 has two terms per call, and the second call adds them to .grad
    # one by one in reference mode, already summed by the fused node in fast mode (1 ulp apart:
    # that quantity is compared within tolerance, never bitwise)
    dict(program=Program(
        inputs=[Input("x0", (1,)), Input("x1", (), requires_grad=False), Input("x2", ()),
                Input("x4", (2, 1), requires_grad=False),
                Input("m7", (), kind="mask", p=0.5, seed=42539)],
        steps=[Step("v3", "add", ("x1", "x2")),
               Step("v5", "getitem", ("x4",), index=(slice(None, None, None), [0, 0, 0, 0, 0])),
               Step("v6", "stack", ("v3", "x2"), axis=-1),
               Step("v8", "dropout", ("x1", "m7"), p=0.5, seed=42539, form="functional"),
               Step("v9", "tanh", ("v6",)),
               Step("v10", "sub", ("v6", "v9"))],
        result="v10", features=("dropout", "indexing", "integer_array_index", "shared",
                                "zero_dim"), exact=True), seed=0),
    # float32, batch norm in eval mode with an L2 term on its parameters: two backward() calls
    # sum six terms per parameter, 5 ulp apart between the modes (8 allowed for that quantity)
    dict(program=Program(
        inputs=[Input("x0", (3, 2), "float32"),
                Input("x1", (3, 3, 2), "float32", requires_grad=False),
                Input("w3", (3, 2), "float32", kind="param", order="F"),
                Input("w4", (3,), "float32", kind="param"),
                Input("w5", (3,), "float32", kind="param"),
                Input("w6", (3,), "float32", kind="param"),
                Input("x7", (3,), "float32", requires_grad=False),
                Input("x8", (3,), "float32", kind="variance"),
                Input("x13", (1, 2), "float32", requires_grad=False),
                Input("m14", (1, 2), "float32", kind="mask", p=0.2, seed=24425)],
        steps=[Step("v2", "add", ("x0", "x1")),
               Step("v9", "linear_bn_relu", ("x0", "w3", "w4", "w5", "w6", "x7", "x8"),
                    form="functional", bias=True, training=False),
               Step("v10", "sum_squares", ("w5", "w6", "w4")),
               Step("v11", "mul", ("v10", 0.1)),
               Step("v12", "add", ("v2", "v11")),
               Step("v15", "dropout", ("x13", "m14"), p=0.2, seed=24425, form="mask"),
               Step("v16", "mul", ("v11", "v11")),
               Step("v17", "mean", ("v9",), axis=None, keepdims=False),
               Step("v18", "add", ("v16", "v17")),
               Step("v19", "mean", ("v12",), axis=None, keepdims=False),
               Step("v20", "add", ("v18", "v19")),
               Step("v21", "mean", ("v15",), axis=None, keepdims=False),
               Step("v22", "add", ("v20", "v21"))],
        result="v22", features=("broadcasting", "dropout", "float32", "l2_penalty",
                                "linear_bn_relu", "shared", "zero_dim"), exact=False),
        seed=89456),
    # sub's lowered vjp took a mean's compact (1, 1) gradient for a full one: every compiled
    # backward of a fused (x - c).mean() with c of shape (1,) gave c 1/6 of its gradient
    dict(program=Program(
        inputs=[Input("x0", (2, 3)), Input("x1", (1,))],
        steps=[Step("v2", "sub", ("x0", "x1")),
               Step("v3", "mean", ("v2",), axis=None, keepdims=False)],
        result="v3", features=("broadcasting",), exact=False), seed=0),
    # a float32 standard deviation of a narrow sample (std 0.21 for values up to 3.7): second-
    # order gradients 12 ulp apart between the modes; float32 variances now get well spread
    # samples (Program.well_conditioned)
    dict(program=Program(
            inputs=[
                Input('x0', (), 'float32'),
                Input('x1', (4,), 'float32'),
                Input('x6', (3, 4), 'float32'),
            ],
            steps=[
                Step('v2', 'max', ('x1',), axis=-1, keepdims=True),
                Step('v3', 'broadcast_to', ('v2',), shape=(3, 2)),
                Step('v4', 'mul', ('v2', 'v2')),
                Step('v5', 'getitem', ('x1',), index=[-3]),
                Step('v7', 'add', ('x1', 'x6')),
                Step('v8', 'std', ('v7',), axis=(0,), keepdims=True, ddof=0),
                Step('v9', 'max', ('x1',), axis=None, keepdims=False),
                Step('v10', 'sub', ('x1', 'v9')),
                Step('v11', 'neg', ('x1',)),
                Step('v12', 'mean', ('v3',), axis=None, keepdims=False),
                Step('v13', 'add', ('v11', 'v12')),
                Step('v14', 'mean', ('v4',), axis=None, keepdims=False),
                Step('v15', 'add', ('v13', 'v14')),
                Step('v16', 'mean', ('v5',), axis=None, keepdims=False),
                Step('v17', 'add', ('v15', 'v16')),
                Step('v18', 'mean', ('v8',), axis=None, keepdims=False),
                Step('v19', 'add', ('v17', 'v18')),
                Step('v20', 'mean', ('v10',), axis=None, keepdims=False),
                Step('v21', 'add', ('v19', 'v20')),
            ],
            result='v21', exact=False, features=(
                'broadcasting', 'float32', 'indexing', 'integer_array_index', 'keepdims',
                'reduction_axis', 'shared', 'zero_dim',
            )),
         seed=1),
    # a float32 variance of exact copies (a broadcast) is rounding noise, 9 ulp apart between
    # the modes: variances now take values without copies (here in float64, where it is fine)
    dict(program=Program(
            inputs=[
                Input('x0', (1, 1, 4), 'float64'),
                Input('m1', (1, 1, 4), 'float64', kind='mask', p=0.9, seed=47345),
            ],
            steps=[
                Step('v2', 'dropout', ('x0', 'm1'), p=0.9, seed=47345, form='functional'),
                Step('v3', 'broadcast_to', ('v2',), shape=(3, 1, 4)),
                Step('v4', 'astype', ('v3',), dtype='float64'),
                Step('v5', 'astype', ('v4',), dtype='float64'),
                Step('v6', 'getitem', ('x0',), index=0),
                Step('v7', 'mul', ('v5', 0.25)),
                Step('v8', 'var', ('v7',), axis=2, keepdims=True, ddof=1),
                Step('v9', 'mul', ('v3', 0.1)),
                Step('v10', 'add', ('v9', 'v9')),
                Step('v11', 'sigmoid', ('x0',)),
                Step('v12', 'log_softmax', ('v6',), axis=1),
                Step('v13', 'sum', ('v12',), axis=0, keepdims=True),
                Step('v14', 'sum_squares', ('x0',)),
                Step('v15', 'mul', ('v14', 0.005)),
                Step('v16', 'add', ('x0', 'v15')),
                Step('v17', 'mul', ('v3', 0.25)),
                Step('v18', 'var', ('v17',), axis=0, keepdims=True, ddof=1),
            ],
            result='v18', exact=False, features=(
                'broadcasting', 'dropout', 'float64', 'indexing', 'keepdims', 'l2_penalty',
                'reduction_axis', 'shared', 'zero_dim',
            )),
         seed=1478),
    # float32: a sum of several means, 6 ulp apart between the modes (rounded on either side of
    # the exact value: each is within 4 ulp of the program run in float64, which passes)
    dict(program=Program(
            inputs=[
                Input('x0', (2, 3, 4), 'float32'),
                Input('x1', (2, 3, 4), 'float32', requires_grad=False),
                Input('m2', (2, 3, 4), 'float32', kind='mask', p=0.9, seed=1137),
                Input('x6', (4, 3), 'float32'),
                Input('w7', (4, 3), 'float32', kind='param'),
                Input('w8', (4,), 'float32', kind='param'),
                Input('w9', (4,), 'float32', kind='param'),
                Input('w10', (4,), 'float32', kind='param'),
                Input('x11', (4,), 'float32', requires_grad=False),
                Input('x12', (4,), 'float32', kind='variance'),
                Input('x17', (1, 3, 4), 'float32'),
                Input('x21', (1, 4, 1), 'float32'),
                Input('x24', (), 'float32'),
            ],
            steps=[
                Step('v3', 'dropout', ('x1', 'm2'), p=0.9, seed=1137, form='module'),
                Step('v4', 'swapaxes', ('x1',), axis1=0, axis2=-1),
                Step('v5', 'getitem', ('x0',), index=[0, 1, 1]),
                Step('v13', 'linear_bn_relu', ('x6', 'w7', 'w8', 'w9', 'w10', 'x11', 'x12'),
                     form='nn', bias=True, training=False),
                Step('v14', 'sum_squares', ('w10', 'w7')),
                Step('v15', 'mul', ('v14', 0.1)),
                Step('v16', 'add', ('x11', 'v15')),
                Step('v18', 'mul', ('v3', 0.25)),
                Step('v19', 'mul', ('v18', 'x17')),
                Step('v20', 'mul', ('v14', 0.1)),
                Step('v22', 'greater', ('v20', 'x21')),
                Step('v23', 'mul', ('v14', 0.1)),
                Step('v25', 'where', ('v22', 'v23', 'x24')),
                Step('v26', 'mean', ('v4',), axis=None, keepdims=False),
                Step('v27', 'add', ('v25', 'v26')),
                Step('v28', 'mean', ('v5',), axis=None, keepdims=False),
                Step('v29', 'add', ('v27', 'v28')),
                Step('v30', 'mean', ('v13',), axis=None, keepdims=False),
                Step('v31', 'add', ('v29', 'v30')),
                Step('v32', 'mean', ('v16',), axis=None, keepdims=False),
                Step('v33', 'add', ('v31', 'v32')),
                Step('v34', 'mean', ('v19',), axis=None, keepdims=False),
                Step('v35', 'add', ('v33', 'v34')),
            ],
            result='v35', exact=False, features=(
                'broadcasting', 'dropout', 'float32', 'indexing', 'integer_array_index',
                'l2_penalty', 'linear_bn_relu', 'nn_modules', 'shared', 'where', 'zero_dim',
            )),
         seed=777),
    # fuse: a tensor passed as two arguments got each argument's gradient twice under
    # create_graph (x * x gave 4x), so every second-order gradient through it was doubled
    dict(program=Program(
        inputs=[Input("x0", (2,)), Input("a1", (2,), alias="x0")],
        steps=[Step("v2", "mul", ("x0", "a1"))],
        result="v2", exact=True, features=("aliased_input", "shared")), seed=0),
    # fuse: a result that no input requiring grad reaches required grad in fast mode only (and
    # its create_graph backward raised)
    dict(program=Program(
        inputs=[Input("x0", (2,)), Input("x1", (2,), requires_grad=False)],
        steps=[Step("v2", "greater", ("x1", 0.0)), Step("v3", "where", ("v2", "x1", 0.0))],
        result="v3", exact=True), seed=0),
    # a fused program returned a read-only broadcast as an input's gradient; the walk kept it
    # as the leaf's own .grad, and the same leaf's second gradient (passed twice) was added
    # into it in place: "output array is read-only" in fast mode only
    dict(program=Program(
        inputs=[Input("x0", (2,), "float64"), Input("a1", (2,), "float64", alias="x0"),
                Input("x13", (), "float64"), Input("x18", (), "float64")],
        steps=[Step("v2", "mul", ("x0", "a1")),
               Step("v3", "expand_dims", ("x0",), axis=0),
               Step("v14", "sum", ("v3",), axis=None, keepdims=False),
               Step("v15", "add", ("x13", "v14")),
               Step("v16", "sum_squares", ("x0",)),
               Step("v17", "mul", ("v16", 0.005)),
               Step("v19", "add", ("x18", "v17")),
               Step("v22", "mul", ("v14", "v14"))],
        result="v22", features=("aliased_input", "broadcasting", "l2_penalty", "shared",
                                "zero_dim"), exact=False), seed=0),
    # eval-mode batch norm's (running_var + eps) ** -0.5 was rsqrt in fast mode and np.power in
    # reference mode: in float32 the values were 5 ulp apart
    dict(program=Program(
        inputs=[
            Input('x0', (), 'float32'),
            Input('x1', (1,), 'float32'),
            Input('x3', (), 'float32'),
            Input('a5', (), 'float32', alias='x0'),
            Input('x7', (), 'float32'),
            Input('x10', (2, 1), 'float32'),
            Input('w11', (1, 1), 'float32', kind='param'),
            Input('w12', (1,), 'float32', kind='param'),
            Input('w13', (1,), 'float32', kind='param'),
            Input('x14', (1,), 'float32', requires_grad=False),
            Input('x15', (1,), 'float32', kind='variance'),
            Input('x17', (), 'float32'),
            Input('x20', (1,), 'float32'),
            Input('x22', (), 'float32'),
            Input('x24', (), 'float32'),
            Input('x25', (), 'float32'),
            Input('x27', (), 'float32'),
        ],
        steps=[
            Step('v2', 'sum', ('x1',), axis=0, keepdims=True),
            Step('v4', 'abs', ('x3',)),
            Step('v6', 'mul', ('x0', 'a5')),
            Step('v8', 'neg', ('x7',)),
            Step('v9', 'getitem', ('v2',), index=0),
            Step('v16', 'linear_bn_relu', ('x10', 'w11', 'w12', 'w13', 'x14', 'x15'),
                 form='functional', bias=False, training=False),
            Step('v18', 'broadcast_to', ('x17',), shape=(1,)),
            Step('v19', 'broadcast_to', ('v16',), shape=(1, 2, 1)),
            Step('v21', 'getitem', ('x20',), index=[0]),
            Step('v23', 'abs', ('x22',)),
            Step('v26', 'greater', ('x24', 'x25')),
            Step('v28', 'where', ('v26', 'x27', 0.0)),
            Step('v29', 'mean', ('v4',), axis=None, keepdims=False),
            Step('v30', 'add', ('v28', 'v29')),
            Step('v31', 'mean', ('v6',), axis=None, keepdims=False),
            Step('v32', 'add', ('v30', 'v31')),
            Step('v33', 'mean', ('v8',), axis=None, keepdims=False),
            Step('v34', 'add', ('v32', 'v33')),
            Step('v35', 'mean', ('v9',), axis=None, keepdims=False),
            Step('v36', 'add', ('v34', 'v35')),
            Step('v37', 'mean', ('v18',), axis=None, keepdims=False),
            Step('v38', 'add', ('v36', 'v37')),
            Step('v39', 'mean', ('v19',), axis=None, keepdims=False),
            Step('v40', 'add', ('v38', 'v39')),
            Step('v41', 'mean', ('v21',), axis=None, keepdims=False),
            Step('v42', 'add', ('v40', 'v41')),
            Step('v43', 'mean', ('v23',), axis=None, keepdims=False),
            Step('v44', 'add', ('v42', 'v43')),
        ],
        result='v44', exact=False, features=(
            'aliased_input', 'broadcasting', 'float32', 'indexing',
            'integer_array_index', 'keepdims', 'linear_bn_relu', 'reduction_axis',
            'shared', 'where', 'zero_dim',
        )),
         seed=22688220),
]
