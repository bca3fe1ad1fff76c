"""benchmarks.micro: every case runs and reports its variants; results go to --out only."""
import json

import pytest

from benchmarks import micro


def test_cases_report_each_variant(tmp_path):
    results = micro.main(["--only", "take,typed_number,flat_update", "--repeat", "1",
                          "--number", "20",
                          "--out", str(tmp_path)])
    assert set(results) == {"take", "typed_number", "flat_update"}
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["cases"]["take"]["us_per_call"].keys() == {"table[y]", "table.take(y, axis=0)"}
    assert all(us > 0 for case in saved["cases"].values() for us in case["us_per_call"].values())


def test_unknown_case_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        micro.main(["--only", "nonsense", "--out", str(tmp_path)])
