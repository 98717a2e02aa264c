"""The energy vocabulary of the hardware schema: the energy tables a config may name, the DRAM
types, the per-action keys ``energy.overrides`` accepts. Names only (no numbers, no accelsim
imports): config validates against them at the bottom of the package, and ``accelsim.cost.tables``,
which holds the numbers, checks on import that it has exactly these.
"""
from __future__ import annotations

#: ``energy.table``: the named default tables (their entries and sources: accelsim.cost.tables)
ENERGY_TABLES: tuple[str, ...] = ("horowitz45", "accelergy_aladdin40")

#: ``memory.dram_type``: "table" keeps the energy table's own DRAM entry.
DRAM_TYPES: tuple[str, ...] = ("table", "lpddr4", "ddr3", "hbm2", "hbm3")

#: The per-action energies a config resolves to (pJ at its widths and node). These are the
#: names ``energy.overrides`` accepts; an override replaces the resolved value.
OVERRIDE_KEYS: dict[str, str] = {
    "mac_pj": "the multiply of one MAC, at weight_bits x activation_bits (PowerQuant: the widths of its "
              "datapath, see accelsim.cost.energy.power_datapath)",
    "acc_add_pj": "one add at accumulator_bits (accumulation, zero-point window sums and corrections)",
    "reg_pj_per_bit": "PE register read or write, per bit",
    "ifmap_sram_pj_per_bit": "ifmap SRAM read or write, per bit",
    "filter_sram_pj_per_bit": "filter SRAM read or write, per bit",
    "ofmap_sram_pj_per_bit": "ofmap SRAM read or write, per bit",
    "acc_sram_pj_per_bit": "accumulator SRAM read or write, per bit",
    "dram_pj_per_bit": "DRAM read or write, per bit",
    "requant_pj": "requantization of one output (multiply, rounding shift, zero-point, clamp)",
    "zp_mult_pj": "weight zero-point times window sum, per output (weight_bits x accumulator_bits)",
    "power_eval_pj": "one evaluation of the per-output power unit, x -> x^a (PowerQuant; input "
                     "power_output_bits)",
    "product_lut_read_pj": "one read of the product LUT at a PE (PowerQuant product_lut), per MAC",
    "decode_weight_read_pj": "one read of a weight decode table at the array edge (PowerQuant decode_lut)",
    "decode_act_read_pj": "one read of an activation decode table at the array edge (PowerQuant decode_lut)",
    "sum_power_eval_pj": "one 1/a power of an accumulated sum (PowerQuant sum_power ablation), per output",
}
