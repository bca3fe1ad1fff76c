"""The study scripts' command lines: every number checked by argparse before any data is read,
and help text that documents every flag and prints each default once."""
import argparse
import importlib

import pytest

from experiments import common

STUDIES = ["gradcheck_table", "two_layer_cyclic", "lambda_search", "k_layer_bn",
           "init_sensitivity", "improvements", "architectures", "final_r0", "best_mlp",
           "parallel", "reproduce", "search"]


def parser_of(name) -> argparse.ArgumentParser:
    if name == "build_cifar10":
        return importlib.import_module("tensorgrad.data.build_cifar10").build_parser()
    return importlib.import_module(f"experiments.{name}").build_parser()


def expanded_help(parser, action) -> str:
    return parser._get_formatter()._expand_help(action)


@pytest.mark.parametrize("name", [*STUDIES, "build_cifar10"])
def test_every_flag_has_help_and_one_default(name):
    parser = parser_of(name)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flag = "/".join(action.option_strings) or action.dest
        assert action.help and action.help is not argparse.SUPPRESS, f"{name}: {flag} has no help"
        text = expanded_help(parser, action)
        assert text.lower().count("default") <= 1, f"{name}: {flag}: {text!r}"
        assert "(default: None)" not in text, f"{name}: {flag}: {text!r}"
        if action.nargs == 0 and not isinstance(action, argparse.BooleanOptionalAction):
            # a switch: its presence is the setting, '(default: True)' reads backwards
            assert "(default: True)" not in text and "(default: False)" not in text, (
                f"{name}: {flag}: {text!r}")
    parser.format_help()  # every help string formats


def test_switches_read_the_right_way_round():
    text = " ".join(parser_of("k_layer_bn").format_help().split())
    assert "--no-progress no progress bar during training" in text
    assert "(default: True)" not in text
    switch = argparse.ArgumentParser(formatter_class=common.HelpFormatter)
    switch.add_argument("--tta", action=argparse.BooleanOptionalAction, default=True,
                        help="flip test-time augmentation")
    assert "(default: --tta)" in " ".join(switch.format_help().split())


def test_reproduce_help_names_s1_to_s7_and_publish():
    text = parser_of("reproduce").format_help()
    assert "S1..S5" not in text and "S1-S7" in text and "--publish" in text


def test_output_folders_in_help_are_the_untracked_runs_folder():
    text = " ".join(parser_of("k_layer_bn").format_help().split())
    assert "runs/k_layer_bn/" in text and "experiments/results" not in text
    text = " ".join(parser_of("search").format_help().split())
    assert "runs/search_<study-name>/" in text and "runs/search/" not in text


# (study, flags, the flag named in the error)
BAD = [
    ("k_layer_bn", ["--n-s", "0"], "--n-s"),
    ("k_layer_bn", ["--n-s", "abc"], "--n-s"),
    ("k_layer_bn", ["--seeds", "0"], "--seeds"),
    ("k_layer_bn", ["--r1-lam", "-1"], "--r1-lam"),
    ("k_layer_bn", ["--lam", "-1"], "--lam"),
    ("k_layer_bn", ["--lam", "nan"], "--lam"),
    ("k_layer_bn", ["--batch-size", "0"], "--batch-size"),
    ("k_layer_bn", ["--eta-max", "0"], "--eta-max"),
    ("k_layer_bn", ["--eta-min", "-1e-5"], "--eta-min"),
    ("k_layer_bn", ["--cycles", "0"], "--cycles"),
    ("k_layer_bn", ["--bn-eps", "0"], "--bn-eps"),
    ("k_layer_bn", ["--bn-momentum", "1.5"], "--bn-momentum"),
    ("k_layer_bn", ["--seed", "-1"], "--seed"),
    ("k_layer_bn", ["--r4-epochs", "0"], "--r4-epochs"),
    ("k_layer_bn", ["--r4-eta", "0"], "--r4-eta"),
    ("k_layer_bn", ["--r4-two-layer-etas", "0.01", "-1"], "--r4-two-layer-etas"),
    ("k_layer_bn", ["--r4-lam", "-0.1"], "--r4-lam"),
    ("two_layer_cyclic", ["--n-s", "0"], "--n-s"),
    ("two_layer_cyclic", ["--lam", "-1"], "--lam"),
    ("two_layer_cyclic", ["--hidden", "0"], "--hidden"),
    ("two_layer_cyclic", ["--cycles", "0"], "--cycles"),
    ("two_layer_cyclic", ["--seeds", "0"], "--seeds"),
    ("lambda_search", ["--r2-coarse-count", "0"], "--r2-coarse-count"),
    ("lambda_search", ["--r2-coarse-range", "0", "0.1"], "--r2-coarse-range"),
    ("lambda_search", ["--r2-final-lam", "-1"], "--r2-final-lam"),
    ("lambda_search", ["--r2-fine-batch", "0"], "--r2-fine-batch"),
    ("lambda_search", ["--r2-final-n-val", "0"], "--r2-final-n-val"),
    ("lambda_search", ["--r1-best-lam", "-1"], "--r1-best-lam"),
    ("lambda_search", ["--r2-coarse-batch", "0"], "--r2-coarse-batch"),
    ("lambda_search", ["--seeds", "0"], "--seeds"),
    ("init_sensitivity", ["--inits", "0"], "--inits"),
    ("init_sensitivity", ["--lam", "-1"], "--lam"),
    ("init_sensitivity", ["--seeds", "-1"], "--seeds"),
    ("gradcheck_table", ["--n", "0"], "--n"),
    ("gradcheck_table", ["--eps", "0"], "--eps"),
    ("gradcheck_table", ["--lam", "-1"], "--lam"),
    ("gradcheck_table", ["--input-dim", "0"], "--input-dim"),
    ("improvements", ["--workers", "0"], "--workers"),
    ("improvements", ["--threads", "0"], "--threads"),
    ("improvements", ["--seeds", "0"], "--seeds"),
    ("architectures", ["--workers", "0"], "--workers"),
    ("final_r0", ["--seeds", "0"], "--seeds"),
    ("final_r0", ["--lam", "-1"], "--lam"),
    ("final_r0", ["--n-s", "0"], "--n-s"),
    ("best_mlp", ["--seeds", "0"], "--seeds"),
    ("best_mlp", ["--candidates", "huge"], "--candidates"),
    ("best_mlp", ["--candidates", "wide", "wide"], "--candidates"),
    ("best_mlp", ["--time-limit", "0"], "--time-limit"),
    ("best_mlp", ["--time-limit", "inf"], "--time-limit"),
    ("best_mlp", ["--workers", "0"], "--workers"),
    ("parallel", ["--speed", "--n-s", "0"], "--n-s"),
    ("search", ["--workers", "0"], "--workers"),
    ("search", ["--trials", "-1"], "--trials"),
    ("search", ["--trials", "0"], "--trials"),
    ("search", ["--fine-trials", "-1"], "--fine-trials"),
    ("search", ["--heartbeat", "0"], "--heartbeat"),
    ("search", ["--storage-retry-seconds", "-1"], "--storage-retry-seconds"),
    ("search", ["--set", "epochs=abc"], "--set"),
    ("search", ["--set", "epochs=2.5"], "--set"),
    ("search", ["--set", "lam=-1"], "--set"),
    ("search", ["--set", "eta=0"], "--set"),
    ("search", ["--set", "dropout=1"], "--set"),
    ("search", ["--set", "batch_norm=maybe"], "--set"),
    ("search", ["--set", "optimizer=sgdx"], "--set"),
    ("search", ["--set", "split=d"], "--set"),
    ("search", ["--set", "learning_rate=0.1"], "--set"),
]


@pytest.fixture
def no_data(monkeypatch):
    """Every way a study reads data or starts its outputs fails the test if it is reached."""
    from tensorgrad.data import cifar10

    def reached(*args, **kwargs):
        raise AssertionError("data loaded (or outputs started) before the flags were checked")
    for module, name in [(common, "load_data"), (common, "load_cifar10"), (common, "start"),
                         (cifar10, "load_cifar10")]:
        monkeypatch.setattr(module, name, reached)


@pytest.mark.parametrize("name, argv, flag", BAD, ids=[f"{n} {' '.join(a)}" for n, a, _ in BAD])
def test_bad_numbers_are_refused_by_argparse_before_any_data(name, argv, flag, no_data, capsys):
    main = importlib.import_module(f"experiments.{name}").main
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--quick"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"python -m experiments.{name}: error: argument {flag}"), err


def test_good_numbers_still_parse():
    args = parser_of("k_layer_bn").parse_args(["--n-s", "3", "--lam", "0", "--seed", "0",
                                                "--eta-min", "1e-6", "--bn-momentum", "0"])
    assert (args.n_s, args.lam, args.eta_min, args.bn_momentum) == (3, 0.0, 1e-6, 0.0)
    args = parser_of("best_mlp").parse_args(["--candidates", "wide", "present", "--seeds", "1",
                                              "--time-limit", "600"])
    assert (args.candidates, args.seeds, args.time_limit) == (["wide", "present"], 1, 600.0)
    args = parser_of("search").parse_args(
        ["--set", "epochs=5", "--set", "lam=0", "--set", "eta=1", "--set", "widths=50",
         "--set", "batch_norm=false", "--set", "depth=null", "--fine-trials", "0"])
    assert args.fixed == [("epochs", 5), ("lam", 0.0), ("eta", 1.0), ("widths", "50"),
                          ("batch_norm", False), ("depth", None)]
    assert type(args.fixed[2][1]) is float and args.fine_trials == 0


@pytest.mark.parametrize("helper, good, bad", [
    ("positive_int", {"1": 1, "12": 12}, ["0", "-1", "1.5", "x", ""]),
    ("non_negative_int", {"0": 0, "3": 3}, ["-1", "2.0", "x"]),
    ("positive_float", {"1e-5": 1e-5, "2": 2.0}, ["0", "-1", "nan", "inf", "x"]),
    ("non_negative_float", {"0": 0.0, "0.5": 0.5}, ["-1e-9", "nan", "-inf", "x"]),
    ("probability", {"0": 0.0, "1": 1.0, "0.5": 0.5}, ["1.01", "-0.1", "nan"]),
    ("probability_below_one", {"0": 0.0, "0.5": 0.5}, ["1", "-0.1", "nan"]),
])
def test_shared_argparse_types(helper, good, bad):
    helper = getattr(common, helper)
    for text, value in good.items():
        assert helper(text) == value and type(helper(text)) is type(value)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=repr(text).replace(".", r"\.")):
            helper(text)
