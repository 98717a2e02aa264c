"""Hardware configs: shipped files, SCALE-Sim .cfg import, validation messages, API."""
from __future__ import annotations

import dataclasses
import importlib.util
import pickle
import warnings
from pathlib import Path

import pytest

from accelsim.config import (
    AccumulatorWarning,
    EnergySpec,
    HwConfig,
    find_hw,
    hw_from_dict,
    load_hw,
)
from accelsim.errors import AccelsimError, ConfigError

REPO = Path(__file__).resolve().parents[1]
HWCONFIGS = sorted((REPO / "hwconfigs").glob("*.yaml"))
# reference data is copied into tests/fixtures so that a clean checkout runs on its own
SCALESIM = REPO / "tests" / "fixtures" / "reference" / "scalesim"
needs_scalesim = pytest.mark.skipif(not SCALESIM.is_dir(), reason="no SCALE-Sim reference data")

_spec = importlib.util.spec_from_file_location("broken_configs", REPO / "tools/broken_configs.py")
broken = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(broken)

MINIMAL = {
    "name": "t",
    "pe_array": {"rows": 16, "cols": 8, "dataflow": "output_stationary"},
    "precision": {"weight_bits": 8, "activation_bits": 8},
}


def _error(path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_hw(path)
    return info.value


# --- shipped configs -----------------------------------------------------------------------

def test_the_four_shipped_configs_exist():
    assert {p.stem for p in HWCONFIGS} >= {
        "edge-npu-16x16", "tpu-v1-like", "nvdla-small-like", "scalesim-32x32-ws"}


@pytest.mark.parametrize("path", HWCONFIGS, ids=lambda p: p.stem)
def test_shipped_config_loads_and_is_named_after_its_file(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # shipped configs must not warn
        hw = load_hw(path)
    assert hw.name == path.stem
    assert hw.source_file == str(path)
    assert "#" in path.read_text(), "every shipped config cites its sources in comments"


def test_edge_npu_is_the_design_md_example():
    hw = load_hw("edge-npu-16x16")  # by bare name, from the repo's hwconfigs/
    assert (hw.clock_mhz, hw.tech_nm) == (800, 45)
    assert (hw.pe_array.rows, hw.pe_array.cols, hw.pe_array.dataflow) == (
        16, 16, "weight_stationary")
    assert hw.pe_array.weight_preload == "serial" and hw.pe_array.group_packing == "packed"
    assert hw.precision.accumulator_bits == 32 and hw.precision.accumulator_overflow == "wrap"
    assert hw.quantization.activation_scheme == "asymmetric"
    assert hw.quantization.weight_granularity == "per_channel"
    assert (hw.memory.ifmap_sram_kib, hw.memory.dram_bandwidth_gbps) == (64, 16)
    assert hw.energy == EnergySpec(table="horowitz45", overrides=())


def test_tpu_v1_like_numbers():
    hw = load_hw("tpu-v1-like")
    assert hw.pe_array.num_pes == 65536 and hw.clock_mhz == 700 and hw.tech_nm == 28
    m = hw.memory
    assert m.ifmap_sram_kib + m.ofmap_sram_kib == 24 * 1024  # the 24 MiB unified buffer
    assert m.accumulator_sram_kib == 4096 and m.accumulator_kib == 4096
    assert m.dram_bandwidth_gbps == 34


def test_nvdla_small_like_numbers():
    hw = load_hw("nvdla-small-like")
    assert hw.pe_array.num_pes == 64
    assert hw.memory.ifmap_sram_kib + hw.memory.filter_sram_kib == 128  # conv buffer
    # 64-bit interface at the clock: 8 bytes × clock_mhz MHz
    assert hw.memory.dram_bandwidth_gbps == pytest.approx(8 * hw.clock_mhz / 1000)
    assert hw.memory.accumulator_kib == hw.memory.ofmap_sram_kib  # null: use the ofmap SRAM


def test_find_hw_search_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_hw("tpu-v1-like") == REPO / "hwconfigs" / "tpu-v1-like.yaml"
    assert find_hw("hwconfigs/tpu-v1-like.yaml") == REPO / "hwconfigs" / "tpu-v1-like.yaml"
    (tmp_path / "hwconfigs").mkdir()
    local = tmp_path / "hwconfigs" / "tpu-v1-like.yaml"
    local.write_text("name: local\n")
    assert find_hw("tpu-v1-like").resolve() == local  # ./hwconfigs wins over the repo's
    given = tmp_path / "tpu-v1-like"
    given.write_text("name: given\n")
    assert find_hw("tpu-v1-like") == Path("tpu-v1-like")  # the path as given wins


def test_unknown_name_lists_the_shipped_configs():
    e = _error("edge-npu-99x99")
    assert "edge-npu-99x99" in str(e) and "edge-npu-16x16" in str(e)


# --- SCALE-Sim .cfg ------------------------------------------------------------------------

@needs_scalesim
@pytest.mark.parametrize("flow, dataflow", [
    ("ws", "weight_stationary"), ("os", "output_stationary"), ("is", "input_stationary")])
def test_reference_cfg_fields(flow, dataflow):
    hw = load_hw(SCALESIM / f"r32x32_{flow}_calc.cfg")
    assert hw.name == f"r32x32_{flow}_calc"
    assert (hw.pe_array.rows, hw.pe_array.cols, hw.pe_array.dataflow) == (32, 32, dataflow)
    assert hw.pe_array.weight_preload == "serial"
    m = hw.memory
    assert (m.ifmap_sram_kib, m.filter_sram_kib, m.ofmap_sram_kib) == (64, 64, 64)
    assert hw.clock_mhz == 1000
    assert m.dram_bandwidth_gbps == 10.0  # Bandwidth 10 one-byte words/cycle at 1 GHz
    assert m.interface_bandwidth == "calc"
    assert (hw.precision.weight_bits, hw.precision.activation_bits,
            hw.precision.accumulator_bits) == (8, 8, 32)
    assert hw.quantization.weight_granularity == "per_tensor"


@needs_scalesim
def test_scalesim_yaml_equals_the_ws_cfg():
    cfg = load_hw(SCALESIM / "r32x32_ws_calc.cfg")
    yml = load_hw("scalesim-32x32-ws")
    assert cfg.pe_array == yml.pe_array
    assert cfg.memory == yml.memory
    assert dataclasses.replace(cfg, name=yml.name) == yml  # the rest agrees too


@needs_scalesim
def test_embedded_cfg_copy_matches_the_reference_file(tmp_path):
    (tmp_path / "copy.cfg").write_text(broken.CFG)
    assert load_hw(tmp_path / "copy.cfg") == load_hw(SCALESIM / "r32x32_ws_calc.cfg")


def test_cfg_bandwidth_follows_the_words_per_cycle(tmp_path):
    text = broken.cfg_with("Bandwidth : 10", "Bandwidth : 4").replace(
        "InterfaceBandwidth: CALC", "InterfaceBandwidth: USER")
    (tmp_path / "bw.cfg").write_text(text)
    hw = load_hw(tmp_path / "bw.cfg")
    assert hw.memory.dram_bandwidth_gbps == 4.0 and hw.memory.interface_bandwidth == "user"


# --- broken configs ------------------------------------------------------------------------

@pytest.mark.parametrize("case", broken.CASES, ids=[c.name for c in broken.CASES])
def test_broken_config_message(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    broken.write_case(case, Path("."))
    e = _error(case.file)
    message = str(e)
    assert isinstance(e, AccelsimError) and e.exit_status == 2
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(case.file + ": ")  # names the file first
    if case.field:
        assert f": {case.field}: " in message
        assert e.field == case.field or e.field.startswith(case.field)
    assert "expected " in message and "found " in message
    assert case.fragment in message


@pytest.mark.parametrize("case", broken.OK_CASES, ids=[c.name for c in broken.OK_CASES])
def test_ok_cases_load(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    broken.write_case(case, Path("."))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AccumulatorWarning)
        assert load_hw(case.file).name == "ok"


@pytest.mark.parametrize("text, typo, suggestion", [
    (broken._with("pe_array:", "pe_aray:"), "pe_aray", "pe_array"),
    (broken._with("rows:", "rwos:"), "rwos", "rows"),
    (broken._with("weight_bits:", "weigth_bits:"), "weigth_bits", "weight_bits"),
])
def test_did_you_mean(tmp_path, text, typo, suggestion):
    (tmp_path / "typo.yaml").write_text(text)
    message = str(_error(tmp_path / "typo.yaml"))
    assert f"unknown key '{typo}' (did you mean '{suggestion}'?)" in message


def test_unknown_key_without_a_close_match_lists_the_valid_keys(tmp_path):
    (tmp_path / "x.yaml").write_text(broken.VALID + "  zzz: 1\n")
    message = str(_error(tmp_path / "x.yaml"))
    assert "did you mean" not in message
    assert "weight_bits, activation_bits, accumulator_bits, accumulator_overflow" in message


@pytest.mark.parametrize("lines_before", [0, 3, 7])
def test_yaml_syntax_error_reports_its_line(tmp_path, lines_before):
    text = "# comment\n" * lines_before + "name: x\npe_array: {rows: 16\n"
    (tmp_path / "s.yaml").write_text(text)
    message = str(_error(tmp_path / "s.yaml"))
    # the flow mapping is still open at the end of the stream: line after the last one
    assert f"line {lines_before + 3}, column 1" in message


def test_duplicate_key_names_both_lines(tmp_path):
    (tmp_path / "d.yaml").write_text(broken.VALID + "name: again\n")
    message = str(_error(tmp_path / "d.yaml"))
    assert "line 9, column 1" in message and "'name' (first defined on line 1)" in message


def test_bool_and_integral_float_are_not_ints():
    for bad in (True, 16.0, "16", None):
        d = {**MINIMAL, "pe_array": {**MINIMAL["pe_array"], "rows": bad}}
        with pytest.raises(ConfigError, match="pe_array.rows: expected a positive integer"):
            hw_from_dict(d, file="d.yaml")


def test_floats_are_allowed_for_sizes_and_null_for_the_accumulator_sram():
    hw = hw_from_dict({**MINIMAL, "memory": {"ifmap_sram_kib": 0.5,
                                             "accumulator_sram_kib": None}})
    assert hw.memory.ifmap_sram_kib == 0.5 and hw.memory.accumulator_kib == 64


def test_defaults_fill_everything_but_the_required_keys():
    hw = hw_from_dict(MINIMAL)
    assert (hw.clock_mhz, hw.tech_nm) == (1000, 45)
    assert (hw.pe_array.weight_preload, hw.pe_array.group_packing) == ("serial", "packed")
    assert (hw.precision.accumulator_bits, hw.precision.accumulator_overflow) == (32, "wrap")
    q = hw.quantization
    assert (q.weight_scheme, q.activation_scheme, q.weight_granularity, q.power_unit) == (
        "symmetric", "asymmetric", "per_channel", "none")
    m = hw.memory
    assert (m.ifmap_sram_kib, m.filter_sram_kib, m.ofmap_sram_kib, m.dram_bandwidth_gbps) == (
        64, 64, 64, 16)
    assert m.accumulator_sram_kib is None and m.interface_bandwidth == "user"
    assert hw.energy.table == "horowitz45" and hw.energy.overrides_dict() == {}
    assert hw.source_file is None


@pytest.mark.parametrize("missing", ["name", "pe_array.rows", "pe_array.cols",
                                     "pe_array.dataflow", "precision.weight_bits",
                                     "precision.activation_bits"])
def test_required_keys(missing):
    d = hw_from_dict(MINIMAL).to_dict()
    section, _, key = missing.rpartition(".")
    del (d[section] if section else d)[key]
    with pytest.raises(ConfigError) as info:
        hw_from_dict(d, file="f.yaml")
    assert info.value.field == missing and "the key is missing" in str(info.value)


def test_energy_overrides_are_validated_and_kept():
    hw = hw_from_dict({**MINIMAL, "energy": {"overrides": {"mac_pj": 0.2, "dram_pj_per_bit": 8}}})
    assert hw.energy.overrides == (("dram_pj_per_bit", 8.0), ("mac_pj", 0.2))  # sorted pairs
    assert hw.energy.overrides_dict() == {"dram_pj_per_bit": 8.0, "mac_pj": 0.2}
    with pytest.raises(ConfigError, match="energy.overrides.mac_pj: expected a non-negative"):
        hw_from_dict({**MINIMAL, "energy": {"overrides": {"mac_pj": -1}}})
    with pytest.raises(ConfigError, match="energy.overrides: expected a mapping"):
        hw_from_dict({**MINIMAL, "energy": {"overrides": [1, 2]}})


# --- accumulator warning -------------------------------------------------------------------

def test_narrow_accumulator_warns_and_names_the_field():
    d = {**MINIMAL, "precision": {**MINIMAL["precision"], "accumulator_bits": 15}}
    with pytest.warns(AccumulatorWarning, match=r"f\.yaml: precision\.accumulator_bits: a 15-bit"):
        hw = hw_from_dict(d, file="f.yaml")
    assert hw.precision.accumulator_bits == 15  # allowed


def test_accumulator_as_wide_as_the_product_does_not_warn():
    d = {**MINIMAL, "precision": {**MINIMAL["precision"], "accumulator_bits": 16}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hw_from_dict(d)


# --- replace, to_dict, pickling, hashing ---------------------------------------------------

def test_to_dict_round_trips():
    for path in HWCONFIGS:
        hw = load_hw(path)
        d = hw.to_dict()
        assert "source_file" not in d and isinstance(d["energy"]["overrides"], dict)
        assert hw_from_dict(d) == hw


def test_replace_returns_a_new_validated_config():
    hw = load_hw("edge-npu-16x16")
    wide = hw.replace("pe_array.rows", 32)
    assert wide.pe_array.rows == 32 and hw.pe_array.rows == 16
    assert wide.pe_array.cols == hw.pe_array.cols and wide != hw
    assert wide.source_file == hw.source_file
    assert hw.replace("energy.overrides.dram_pj_per_bit", 8).energy.overrides_dict() == {
        "dram_pj_per_bit": 8.0}
    assert hw.replace("memory.accumulator_sram_kib", 256).memory.accumulator_kib == 256
    assert wide.get("pe_array.rows") == 32


def test_replace_rejects_what_a_file_would():
    hw = load_hw("edge-npu-16x16")
    with pytest.raises(ConfigError, match=r"weight_bits: expected an integer in 1\.\.32"):
        hw.replace("precision.weight_bits", 0)
    with pytest.raises(ConfigError, match=r"did you mean 'rows'\?"):
        hw.replace("pe_array.rwos", 32)
    with pytest.raises(ConfigError, match="name"):
        hw.replace("name.first", "x")


def test_hwconfig_is_frozen_hashable_and_picklable():
    hw = load_hw("nvdla-small-like")
    again = pickle.loads(pickle.dumps(hw))
    assert again == hw and hash(again) == hash(hw) and again.source_file == hw.source_file
    assert len({hw, again, hw.replace("pe_array.rows", 4)}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        hw.pe_array.rows = 4  # type: ignore[misc]
    # where it was loaded from is not part of its identity
    assert dataclasses.replace(hw, source_file="elsewhere.yaml") == hw


def test_energy_spec_normalises_a_mapping():
    spec = EnergySpec(table="horowitz45", overrides={"b": 2.0, "a": 1.0})
    assert spec.overrides == (("a", 1.0), ("b", 2.0))
    assert hash(spec) == hash(EnergySpec(table="horowitz45", overrides=(("b", 2.0), ("a", 1.0))))


def test_hwconfig_type():
    assert isinstance(load_hw("scalesim-32x32-ws"), HwConfig)


@pytest.mark.parametrize("short, full", [("ws", "weight_stationary"), ("os", "output_stationary"),
                                         ("is", "input_stationary")])
def test_dataflow_abbreviations_normalised_everywhere(tmp_path, short, full, capsys):
    text = (REPO / "hwconfigs" / "edge-npu-16x16.yaml").read_text()
    assert "dataflow: weight_stationary" in text
    path = tmp_path / "short.yaml"
    path.write_text(text.replace("dataflow: weight_stationary", f"dataflow: {short}"))
    assert load_hw(path).pe_array.dataflow == full  # YAML
    base = load_hw("edge-npu-16x16")
    assert base.replace("pe_array.dataflow", short).pe_array.dataflow == full  # replace (sweeps)
    assert base.replace("pe_array.dataflow", short) == base.replace("pe_array.dataflow", full)
    from accelsim.cli import main

    assert main(["simulate", "alexnet", "--set", f"pe_array.dataflow={short}", "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert main(["simulate", "alexnet", "--set", f"pe_array.dataflow={full}", "--format", "json"]) == 0
    same = capsys.readouterr().out
    import json

    a, b = json.loads(out), json.loads(same)
    assert a["layers"] == b["layers"] and a["totals"] == b["totals"]  # --set: the same machine


def test_unknown_dataflow_names_the_abbreviations():
    with pytest.raises(ConfigError, match=r"pe_array.dataflow: expected one of weight_stationary, "
                                          r"output_stationary, input_stationary \(or ws, os, is\); found the string 'xs'"):
        load_hw("edge-npu-16x16").replace("pe_array.dataflow", "xs")
