"""Energy tables, scaling by bit-width and node, overrides, the new config fields, the area proxy."""
import math

import pytest

from accelsim.config import ENERGY_TABLES, hw_from_dict
from accelsim.cost import tables
from accelsim.cost.area import area_breakdown_mm2, area_mm2
from accelsim.cost.energy import (ENERGY_CATEGORIES, energy_by_action, energy_costs, newton_iterations,
                                  sram_curve_pj_per_bit, tech_energy_factor)
from accelsim.errors import ConfigError

MINIMAL = {"name": "t", "pe_array": {"rows": 4, "cols": 4, "dataflow": "weight_stationary"},
           "precision": {"weight_bits": 8, "activation_bits": 8}}


def hw(**sections):
    d = {k: dict(v) if isinstance(v, dict) else v for k, v in MINIMAL.items()}
    for key, value in sections.items():
        if isinstance(value, dict):
            d.setdefault(key, {}).update(value)
        else:
            d[key] = value
    return hw_from_dict(d)


# ----------------------------------------------------------------------------- tables and sources

def test_config_validates_table_names_owned_by_the_cost_model():
    assert ENERGY_TABLES == tables.TABLE_NAMES == ("horowitz45", "accelergy_aladdin40")
    with pytest.raises(ConfigError, match="energy.table: expected one of horowitz45, accelergy_aladdin40"):
        hw(energy={"table": "horowitz"})


def test_every_shipped_number_carries_a_source_and_a_node():
    for name, table in tables.ENERGY_TABLES.items():
        assert set(table) == {"mult", "add", "reg", "shift", "compare", "sram", "dram"}, name
        for prim, e in table.items():
            assert len(e.source) > 30, (name, prim)
            if prim != "dram":
                assert e.node_nm in (40, 45), (name, prim)
    for e in [*tables.AREA.values(), *tables.DRAM_ENERGY.values()]:
        assert len(e.source) > 30
    assert "Stillmaker" in tables.TECH_SOURCE
    for key, meaning in tables.OVERRIDE_KEYS.items():
        assert meaning and key.endswith(("_pj", "_pj_per_bit"))


def test_horowitz45_at_45nm_reproduces_the_table():
    c = energy_costs(hw())
    assert c["mac_pj"] == 0.2                          # 8-bit multiply
    assert c["acc_add_pj"] == 0.1                      # 32-bit add
    assert c["dram_pj_per_bit"] == 1300 / 64           # 1.3 nJ per 64 bits
    curve = tables.ENERGY_TABLES["horowitz45"]["sram"]
    for kib, pj64 in ((8, 10), (32, 20), (1024, 100)):
        assert sram_curve_pj_per_bit(curve, kib) == pytest.approx(pj64 / 64)
    # 64 KiB lies between 32 KiB and 1 MiB on the log-log line
    assert 20 / 64 < c["ifmap_sram_pj_per_bit"] < 100 / 64
    assert c["ifmap_sram_pj_per_bit"] == pytest.approx(20 / 64 * 2 ** (math.log(5) / math.log(32)))
    assert "Horowitz" in c.source["mac_pj"]


def test_aladdin40_at_its_own_node():
    c = energy_costs(hw(tech_nm=40, energy={"table": "accelergy_aladdin40"}))
    assert c["mac_pj"] == pytest.approx(12.68 * (8 * 8) / (32 * 32))
    assert c["acc_add_pj"] == pytest.approx(0.21)
    assert c["reg_pj_per_bit"] == pytest.approx(0.009)
    assert c["dram_pj_per_bit"] == 8.0


# ----------------------------------------------------------------------------- scaling

def test_multiplier_scales_with_the_product_of_widths_and_adder_with_its_width():
    base = energy_costs(hw())
    w4 = energy_costs(hw(precision={"weight_bits": 4}))
    w4a4 = energy_costs(hw(precision={"weight_bits": 4, "activation_bits": 4}))
    acc16 = energy_costs(hw(precision={"accumulator_bits": 16}))
    assert w4["mac_pj"] == pytest.approx(base["mac_pj"] / 2)
    assert w4a4["mac_pj"] == pytest.approx(base["mac_pj"] / 4)
    assert acc16["acc_add_pj"] == pytest.approx(base["acc_add_pj"] / 2)
    assert w4["acc_add_pj"] == base["acc_add_pj"]


def test_technology_scaling_follows_the_tabulated_factors():
    assert tech_energy_factor(45, 32) == pytest.approx(0.659)
    assert tech_energy_factor(45, 7) == pytest.approx(0.094)
    assert tech_energy_factor(65, 45) == pytest.approx(1 / 1.241)
    # between nodes: linear in nm (28 nm between 32 and 20)
    assert tech_energy_factor(45, 28) == pytest.approx(0.659 + (28 - 32) / (20 - 32) * (0.221 - 0.659))
    # below 7 nm: square root of the node ratio
    assert tech_energy_factor(45, 3.5) == pytest.approx(0.094 * math.sqrt(0.5))
    assert tech_energy_factor(None, 7) == 1.0           # off-chip DRAM is not scaled
    c45, c16 = energy_costs(hw()), energy_costs(hw(tech_nm=16))
    assert c16["mac_pj"] == pytest.approx(c45["mac_pj"] * 0.174)
    assert c16["dram_pj_per_bit"] == c45["dram_pj_per_bit"]
    # a 40 nm entry (Aladdin's register) lands at 45 nm through the same curve
    f40 = 1.0 + (40 - 45) / (32 - 45) * (0.659 - 1.0)
    assert c45["reg_pj_per_bit"] == pytest.approx(0.009 / f40)


def test_sram_energy_grows_with_capacity():
    small = energy_costs(hw(memory={"ifmap_sram_kib": 8}))["ifmap_sram_pj_per_bit"]
    big = energy_costs(hw(memory={"ifmap_sram_kib": 512}))["ifmap_sram_pj_per_bit"]
    assert small == pytest.approx(10 / 64) and big > 4 * small


def test_requantization_is_priced_from_its_parts():
    c = energy_costs(hw())
    mult32x32 = 0.2 * (32 * 32) / 64
    add = lambda b: 0.1 * b / 32  # noqa: E731
    f40 = 1.0 + (40 - 45) / (32 - 45) * (0.659 - 1.0)
    shift32 = 0.417 / f40
    cmp8 = 0.02947 * 8 / 32 / f40
    assert c["requant_pj"] == pytest.approx(mult32x32 + add(32) + shift32 + add(8) + 2 * cmp8)


def test_power_function_energy_by_unit():
    assert energy_costs(hw())["power_eval_pj"] == 0.0
    assert newton_iterations(8) == (2.4, 4) and newton_iterations(32) == (4.0, 6)
    mean4, worst4 = newton_iterations(4)
    assert mean4 == pytest.approx(1.6) and worst4 == 3
    # the per-output unit's input is power_output_bits wide: at 8 bits, the tabulated 2.4 iterations
    newton = energy_costs(hw(quantization={"power_unit": "newton", "power_output_bits": 8}))["power_eval_pj"]
    add8 = 0.1 * 8 / 32
    f40 = 1.0 + (40 - 45) / (32 - 45) * (0.659 - 1.0)
    assert newton == pytest.approx(2.4 * (8 * add8 + add8 + 0.417 * 8 / 32 / f40))
    lut = energy_costs(hw(quantization={"power_unit": "lut", "power_output_bits": 8}))["power_eval_pj"]
    assert 0 < lut < newton
    # at 20 bits the LUT has 2^20 entries of activation_bits = 8 bits (1 MiB: the 1 MB anchor) and
    # outgrows the Newton unit (2.4 + (log2 20 - 3) / 2 x 1.6 iterations at 20 bits)
    lut20 = energy_costs(hw(quantization={"power_unit": "lut", "power_output_bits": 20}))
    assert lut20["power_eval_pj"] == pytest.approx(8 * 100 / 64)
    assert "1048576-entry" in lut20.source["power_eval_pj"] and "derived" in lut20.source["power_eval_pj"]
    mean20 = 2.4 + (math.log2(20) - 3) / 2 * 1.6
    add20 = 0.1 * 20 / 32
    newton20 = energy_costs(hw(quantization={"power_unit": "newton", "power_output_bits": 20}))["power_eval_pj"]
    assert newton20 == pytest.approx(mean20 * (20 * add20 + add20 + 0.417 * 20 / 32 / f40))


def test_power_datapath_prices_carry_their_derivation():
    # every PowerQuant per-action energy says how it was derived, and the unused ones say so
    for products, key, words in (("product_lut", "product_lut_read_pj", "32386 entries x 16 bits"),
                                 ("decode_lut", "decode_weight_read_pj", "256 entries x 11 bits"),
                                 ("decode_lut", "decode_act_read_pj", "256 entries x 10 bits"),
                                 ("sum_power", "sum_power_eval_pj", "Newton")):
        c = energy_costs(hw(quantization={"power_unit": "lut", "power_products": products}))
        assert c[key] > 0 and "derived" in c.source[key] and words in c.source[key], (products, key)
        others = {"product_lut_read_pj", "decode_weight_read_pj", "decode_act_read_pj", "sum_power_eval_pj"}
        for k in others - {key} - ({"decode_weight_read_pj", "decode_act_read_pj"} if products == "decode_lut" else set()):
            assert c[k] == 0 and "not in this datapath" in c.source[k]
    off = energy_costs(hw())
    assert all(off[k] == 0 for k in ("product_lut_read_pj", "decode_weight_read_pj", "sum_power_eval_pj"))
    # the override keys cover them
    c = energy_costs(hw(quantization={"power_unit": "lut"}, energy={"overrides": {"product_lut_read_pj": 1.5}}))
    assert c["product_lut_read_pj"] == 1.5 and c.source["product_lut_read_pj"].startswith("override")
    assert "product_lut" in energy_costs(hw(quantization={"power_unit": "lut"})).source["mac_pj"]


# ----------------------------------------------------------------------------- overrides, config

def test_overrides_replace_the_resolved_value_and_say_so():
    c = energy_costs(hw(energy={"overrides": {"dram_pj_per_bit": 8.0, "mac_pj": 0.05}}))
    assert c["dram_pj_per_bit"] == 8.0 and c["mac_pj"] == 0.05
    assert c.source["dram_pj_per_bit"].startswith("override")
    assert c["acc_add_pj"] == energy_costs(hw())["acc_add_pj"]


def test_unknown_override_keys_are_config_errors_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"energy.overrides.dram_pj_per_bt: .*did you mean 'dram_pj_per_bit'"):
        hw(energy={"overrides": {"dram_pj_per_bt": 8.0}})
    with pytest.raises(ConfigError, match="energy.overrides.joules: expected one of the keys mac_pj"):
        hw(energy={"overrides": {"joules": 1.0}})


def test_dram_type_picks_the_dram_entry():
    assert energy_costs(hw(memory={"dram_type": "lpddr4"}))["dram_pj_per_bit"] == 8.0
    assert energy_costs(hw(memory={"dram_type": "hbm3"}))["dram_pj_per_bit"] == 4.05
    assert energy_costs(hw(memory={"dram_type": "ddr3"}))["dram_pj_per_bit"] == 70.0
    with pytest.raises(ConfigError, match="memory.dram_type: expected one of table, lpddr4"):
        hw(memory={"dram_type": "ddr5"})


def test_new_quantization_fields_have_defaults_and_are_validated():
    q = hw().quantization
    assert (q.zero_point_unit, q.power_unit_throughput) == ("extra_column", "pipelined")
    assert hw().memory.dram_type == "table"
    with pytest.raises(ConfigError, match=r"quantization.zero_point_unit: .*did you mean 'adder_tree'"):
        hw(quantization={"zero_point_unit": "adder-tree"})
    with pytest.raises(ConfigError, match="quantization.power_unit_throughput: expected one of pipelined, iterative"):
        hw(quantization={"power_unit_throughput": 1})
    assert hw().replace("quantization.zero_point_unit", "adder_tree").quantization.zero_point_unit == "adder_tree"


# ----------------------------------------------------------------------------- actions x energy

def test_energy_is_linear_in_the_action_counts():
    c = energy_costs(hw(quantization={"power_unit": "lut"}))
    counts = {"macs": 10, "acc_adds": 12, "reg_bits": 100, "ifmap_sram_bytes": 3, "filter_sram_bytes": 4,
              "ofmap_sram_bytes": 5, "acc_sram_bytes": 6, "dram_bytes": 7, "requants": 2,
              "zp_window_adds": 9, "zp_mults": 2, "zp_adds": 2, "power_evals": 2,
              "product_lut_reads": 10, "decode_weight_reads": 0, "decode_act_reads": 0, "sum_power_evals": 0}
    e = energy_by_action(counts, c)
    assert tuple(e) == ENERGY_CATEGORIES
    assert e["mac"] == 10 * c["mac_pj"]
    assert e["power_products"] == 10 * c["product_lut_read_pj"] > 0
    assert e["dram"] == 7 * 8 * c["dram_pj_per_bit"]
    assert e["zero_point"] == pytest.approx(11 * c["acc_add_pj"] + 2 * c["zp_mult_pj"])
    double = energy_by_action({k: 2 * v for k, v in counts.items()}, c)
    assert all(double[k] == pytest.approx(2 * e[k]) for k in e)


# ----------------------------------------------------------------------------- area proxy

def test_area_proxy_scales_with_widths_capacity_and_units():
    base = area_breakdown_mm2(hw())
    assert set(base) == {"pe_array", "sram", "requant", "zero_point", "power_products", "power_unit"}
    assert base["zero_point"] == base["power_products"] == base["power_unit"] == 0
    assert area_mm2(hw()) == pytest.approx(sum(base.values()))
    # SRAM: linear in capacity (default 3 x 64 KiB)
    big = area_breakdown_mm2(hw(memory={"ifmap_sram_kib": 128, "filter_sram_kib": 128, "ofmap_sram_kib": 128}))
    assert big["sram"] == pytest.approx(2 * base["sram"])
    # 4-bit weights: the multiplier halves, adders and registers shrink less
    w4 = area_breakdown_mm2(hw(precision={"weight_bits": 4}))
    assert 0.5 * base["pe_array"] < w4["pe_array"] < base["pe_array"]
    # asymmetric weights: the extra column reuses the array's PEs (it costs cycles, not area), so
    # only the per-lane output-stage multiply-add remains; an adder tree adds R-1 adders per lane
    col = area_breakdown_mm2(hw(quantization={"weight_scheme": "asymmetric"}))
    tree = area_breakdown_mm2(hw(quantization={"weight_scheme": "asymmetric", "zero_point_unit": "adder_tree"}))
    assert tree["zero_point"] > col["zero_point"] > 0
    assert col["pe_array"] == base["pe_array"] == tree["pe_array"]
    lut = area_breakdown_mm2(hw(quantization={"power_unit": "lut"}))["power_unit"]
    assert lut > 0
    # node scaling: 45 -> 16 nm shrinks everything by the tabulated area factor
    assert area_mm2(hw(tech_nm=16)) == pytest.approx(area_mm2(hw()) * 0.19, rel=0.02)


def test_technology_scaling_above_the_largest_node_and_its_provenance():
    # above 130 nm: the 130 nm factor times sqrt(node ratio), as below 7 nm
    assert tech_energy_factor(45, 180) == pytest.approx(3.068 * math.sqrt(180 / 130))
    assert tech_energy_factor(45, 260) == pytest.approx(3.068 * math.sqrt(2))
    # exactly on tabulated nodes: the tabulated factors
    assert tech_energy_factor(45, 130) == pytest.approx(3.068) and tech_energy_factor(45, 20) == pytest.approx(0.221)
    # the provenance says when a node factor was applied, and only then
    c45, c32 = energy_costs(hw()), energy_costs(hw(tech_nm=32))
    assert "45 -> 32 nm" in c32.source["mac_pj"] and "nm" not in c45.source["mac_pj"].split("bits")[-1]
    assert "45 -> 32 nm" in c32.source["ifmap_sram_pj_per_bit"] and "->" not in c45.source["ifmap_sram_pj_per_bit"]
    assert "40 -> 45 nm" in c45.source["reg_pj_per_bit"]
