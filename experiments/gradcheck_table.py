"""S1: whole-network gradient check of the course MLP, 2 to 9 layers, with and without batch norm.

    python -m experiments.gradcheck_table                # 2, 3, 4, 9 layers x BN / no BN
    python -m experiments.gradcheck_table --layers 4 --no-bn

Each network is checked in float64 by models.checks.mlp_gradient_table: relative error
|ga - gn| / max(1e-6, |ga| + |gn|) per element (max over each parameter) and max absolute
error, against the target rel < 1e-6 (abs < 1e-8 for a bias feeding a batch norm, whose true
gradient is 0). The inputs are standard-normal samples the check draws itself (redrawn until
every ReLU input is away from its kink), the size of the reports' reduced images; --data is
accepted as by every study but not read, because mlp_gradient_table takes no input batch.
"""
import argparse

import numpy as np

from models.checks import ABS_TOL_VANISHING, REL_TOL, format_gradient_table, mlp_gradient_table

from . import common

NAME, SID, TITLE = "gradcheck_table", "S1", "Gradient check of the k-layer MLP"
WIDTHS = [50, 30, 20, 20, 10, 10, 10, 10]   # R0/R1 widths; 3-layer is the course's 50-50
REPORT = ("R1 (4-layer, no BN, 5 images x 30 dims, lambda 0): relative errors 0.02e-6 to 9.1e-6 "
          "(one outlier 9.5e-2 from their numerical code); R2 (2-layer): max absolute "
          "difference 1.2e-9 to 4.5e-8")


def hidden_widths(layers: int) -> list:
    return [50, 50] if layers == 3 else WIDTHS[:layers - 1]


def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser(NAME, __doc__.split("\n")[0])
    p.add_argument("--layers", type=int, nargs="+", default=[2, 3, 4, 9], choices=range(2, 10),
                   metavar="K", help="network depths (2..9)")
    p.add_argument("--bn", action=argparse.BooleanOptionalAction, default=None,
                   help="only with (--bn) or only without (--no-bn) batch norm; default both")
    p.add_argument("--n", type=common.positive_int, default=5,
                   help="samples in the checked batch")
    p.add_argument("--input-dim", type=common.positive_int, default=20,
                   help="input dimensions (reports: 20-30)")
    p.add_argument("--lam", type=common.non_negative_float, default=0.01,
                   help="L2 coefficient in the checked cost (R1 used 0; >0 also checks the L2 "
                        "term)")
    p.add_argument("--eps", type=common.positive_float, default=1e-5,
                   help="central-difference step h")
    p.add_argument("--stencil", type=int, choices=(2, 4), default=4,
                   help="points of the centred difference (2: the course's (f(x+h)-f(x-h))/2h)")
    p.add_argument("--float64-numeric", action="store_true",
                   help="finite differences in float64 instead of extended precision")
    return p


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    study = common.start(NAME, SID, TITLE, args, argv)
    input_dim = min(args.input_dim, 10) if args.quick else args.input_dim
    summary, sections, rows, checks = [], [], [], []
    for layers in args.layers:
        for bn in common.bn_choice(args.bn):
            widths = hidden_widths(layers)
            if args.quick:
                widths = [min(w, 8) for w in widths]
            dims = [input_dim, *widths, 10]
            table = mlp_gradient_table(dims, batch_norm=bn, n=args.n, lam=args.lam,
                                       seed=args.seed, eps=args.eps, stencil=args.stencil,
                                       numeric_dtype=None if args.float64_numeric
                                       else np.longdouble)
            net = f"{layers}-layer {'with' if bn else 'without'} BN"
            rel = max((r["max_rel_error"] for r in table if not r["vanishing"]), default=0.0)
            abs_err = max(r["max_abs_error"] for r in table)
            ok = all(r["ok"] for r in table)
            print(f"  {net}: max rel. error {rel:.2e}, max abs. error {abs_err:.2e}"
                  f"{'' if ok else '  FAILED'}", flush=True)
            checks.append({"layers": layers, "batch_norm": bn, "dims": dims, "rows": table})
            summary.append([net, "-".join(map(str, dims)), f"{rel:.2e}", f"{abs_err:.2e}",
                            "yes" if ok else "NO"])
            sections.append(f"### {net} (dims {'-'.join(map(str, dims))})\n\n"
                            + format_gradient_table(table))
            rows.append(common.result_row(
                net, {"max_rel_error": rel, "max_abs_error": abs_err, "ok": ok},
                ours_text=f"max rel. {rel:.1e}, max abs. {abs_err:.1e}"
                          f"{', all below target' if ok else ', ABOVE TARGET'}",
                report_text="R1 rel. 0.02e-6 to 9.1e-6; R2 abs. 1.2e-9 to 4.5e-8"))
    table = (f"Target: max relative error < {REL_TOL:g} per parameter (absolute error < "
             f"{ABS_TOL_VANISHING:g} for a bias feeding a batch norm). float64, {args.n} "
             f"standard-normal samples of {input_dim} dims, lambda {args.lam}, "
             f"{args.stencil}-point centred difference with h {args.eps} evaluated in "
             f"{'float64' if args.float64_numeric else 'extended precision (np.longdouble)'}.\n"
             f"Reports: {REPORT}.\n\n"
             + common.markdown_table(["network", "dims", "max rel. error (excl. vanishing)",
                                      "max abs. error", "all ok"], summary)
             + "\n\n" + "\n\n".join(sections))
    return common.finish(study, table, rows, extra={"checks": checks, "all_ok": all(
        r["ours"]["ok"] for r in rows)})


if __name__ == "__main__":
    common.run_cli(main, lambda results: results["all_ok"])
