"""Energy and area tables: data only, each number with its source and technology node.

The names a hardware config may use (table names, DRAM types, override keys) belong to the
config schema, at the bottom of the package (``accelsim.config.energy_names``); this module
holds the numbers behind them and checks, on import, that the two agree.

Conventions: energies in pJ, areas in µm². An entry is measured at ``node_nm`` and at the
reference widths in ``bits``; ``accelsim.cost.energy`` scales it to the config's widths
(multiplier: product of operand widths; adder, shifter, comparator: width) and node.
"""
from __future__ import annotations

from dataclasses import dataclass

from accelsim.config import energy_names as names

HOROWITZ = "Horowitz, 'Computing's energy problem', ISSCC 2014, 45 nm, 0.9 V"
ALADDIN = ("Aladdin (Shao et al., ISCA 2014) 40 nm table at 1 ns, as shipped in Accelergy's "
           "hwcomponents-library (aladdin.py)")
STILLMAKER = ("Stillmaker & Baas, 'Scaling equations for the accurate prediction of CMOS device "
              "performance from 180nm to 7nm', Integration 58, 2017, as tabulated in Accelergy's "
              "hwcomponents (scaling.py) at Vdd 0.8 V")
ACCELERGY_DRAM = "Accelergy hwcomponents DRAM table (CACTI-based), per bit transferred"


@dataclass(frozen=True)
class Entry:
    """One measured number: ``value`` (pJ, pJ/bit, µm² or µm²/bit) at ``node_nm`` and ``bits``."""

    value: float
    node_nm: float | None          # None: off-chip, not scaled with the logic node
    source: str
    bits: tuple[int, ...] = ()     # reference widths: (a, b) multiplier, (n,) adder/shifter


@dataclass(frozen=True)
class SramCurve:
    """SRAM energy per bit read or written versus capacity: log-log interpolation between
    (KiB, pJ/bit) anchors, extrapolated with the nearest segment's slope."""

    anchors: tuple[tuple[float, float], ...]
    node_nm: float
    source: str


# --------------------------------------------------------------------------- shared entries

_ALADDIN_MULT = Entry(12.68, 40, ALADDIN + ": 32x32-bit integer multiply 12.68 pJ", (32, 32))
_ALADDIN_ADD = Entry(0.21, 40, ALADDIN + ": 32-bit adder 0.21 pJ", (32,))
_ALADDIN_REG = Entry(0.009, 40, ALADDIN + ": register 0.009 pJ per bit read", (1,))
_ALADDIN_SHIFT = Entry(0.417, 40, ALADDIN + ": 32-bit shifter 0.417 pJ", (32,))
_ALADDIN_CMP = Entry(0.02947, 40, ALADDIN + ": 32-bit comparator 0.02947 pJ", (32,))

# Horowitz's 64-bit SRAM reads (10 / 20 / 100 pJ at 8 KB / 32 KB / 1 MB) per bit; writes are
# priced like reads (the table gives reads only).
_HOROWITZ_SRAM = SramCurve(
    anchors=((8.0, 10 / 64), (32.0, 20 / 64), (1024.0, 100 / 64)),
    node_nm=45,
    source=HOROWITZ + ": 64-bit SRAM read 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB); the 32 KB "
    "and 1 MB figures from secondary copies, not checked against the paper; writes priced as reads",
)

# --------------------------------------------------------------------------- energy tables

#: name -> {primitive: Entry | SramCurve}. Primitives: mult, add, reg, shift, compare, sram, dram.
ENERGY_TABLES: dict[str, dict[str, Entry | SramCurve]] = {
    "horowitz45": {
        "mult": Entry(0.2, 45, HOROWITZ + ": 8-bit integer multiply 0.2 pJ", (8, 8)),
        # linear in width from the 32-bit anchor; Horowitz's 8-bit add (0.03 pJ) is 20% above it
        "add": Entry(0.1, 45, HOROWITZ + ": 32-bit integer add 0.1 pJ", (32,)),
        "reg": Entry(_ALADDIN_REG.value, 40, _ALADDIN_REG.source + " (Horowitz has no register figure)", (1,)),
        "shift": Entry(_ALADDIN_SHIFT.value, 40, _ALADDIN_SHIFT.source + " (not in Horowitz)", (32,)),
        "compare": Entry(_ALADDIN_CMP.value, 40, _ALADDIN_CMP.source + " (not in Horowitz)", (32,)),
        "sram": _HOROWITZ_SRAM,
        "dram": Entry(1300 / 64, None, HOROWITZ + ": DRAM 1.3-2.6 nJ per 64-bit access; the low end, per bit"),
    },
    "accelergy_aladdin40": {
        "mult": _ALADDIN_MULT,
        "add": _ALADDIN_ADD,
        "reg": _ALADDIN_REG,
        "shift": _ALADDIN_SHIFT,
        "compare": _ALADDIN_CMP,
        # Aladdin has no SRAM model (Accelergy uses CACTI): Horowitz's curve stands in
        "sram": SramCurve(_HOROWITZ_SRAM.anchors, _HOROWITZ_SRAM.node_nm,
                          _HOROWITZ_SRAM.source + " (Aladdin has no SRAM model)"),
        "dram": Entry(8.0, None, ACCELERGY_DRAM + ": LPDDR4 8 pJ/bit"),
    },
}

TABLE_NAMES: tuple[str, ...] = names.ENERGY_TABLES
if tuple(ENERGY_TABLES) != TABLE_NAMES:  # the schema's names and the data must agree
    raise ImportError(f"accelsim.cost.tables: tables {tuple(ENERGY_TABLES)} != the config's names {TABLE_NAMES}")

#: ``memory.dram_type``: "table" keeps the energy table's own DRAM entry.
DRAM_ENERGY: dict[str, Entry] = {
    "lpddr4": Entry(8.0, None, ACCELERGY_DRAM + ": LPDDR4 8 pJ/bit"),
    "ddr3": Entry(70.0, None, ACCELERGY_DRAM + ": DDR3 70 pJ/bit"),
    "hbm2": Entry(6.25, None, ACCELERGY_DRAM + ": HBM2 6.25 pJ/bit"),
    "hbm3": Entry(4.05, None, ACCELERGY_DRAM + ": HBM3 4.05 pJ/bit"),
}
DRAM_TYPES: tuple[str, ...] = names.DRAM_TYPES
if ("table", *DRAM_ENERGY) != DRAM_TYPES:
    raise ImportError(f"accelsim.cost.tables: DRAM entries {tuple(DRAM_ENERGY)} != the config's {DRAM_TYPES}")

#: the per-action energies a config resolves to, the names ``energy.overrides`` accepts
OVERRIDE_KEYS: dict[str, str] = names.OVERRIDE_KEYS


# --------------------------------------------------------------------------- technology scaling

#: Dynamic-energy factor relative to 45 nm (Stillmaker & Baas 2017 via hwcomponents, 0.8 V).
#: Between nodes: linear in nm; outside 7..130 nm: times sqrt(node ratio), as hwcomponents does.
TECH_ENERGY_FACTOR: dict[float, float] = {
    130: 3.068, 90: 1.897, 65: 1.241, 45: 1.0, 32: 0.659, 20: 0.221, 16: 0.174, 14: 0.139,
    10: 0.118, 7: 0.094,
}
#: Area factor relative to 45 nm (same source, AREA_SCALING row of 45 nm); outside the range:
#: times the node ratio, as hwcomponents does.
TECH_AREA_FACTOR: dict[float, float] = {
    130: 6.4, 90: 2.8, 65: 1.5, 45: 1.0, 32: 0.46, 20: 0.21, 16: 0.19, 14: 0.17, 10: 0.1, 7: 0.059,
}
TECH_SOURCE = STILLMAKER

# --------------------------------------------------------------------------- area entries

#: Area primitives (µm²) for the area proxy.
AREA: dict[str, Entry] = {
    "mult": Entry(6350.0, 40, ALADDIN + ": 32x32-bit multiplier 6350 µm²", (32, 32)),
    "add": Entry(278.0, 40, ALADDIN + ": 32-bit adder 278 µm²", (32,)),
    "reg": Entry(5.98, 40, ALADDIN + ": register 5.98 µm² per bit", (1,)),
    "shift": Entry(250.0, 40, ALADDIN + ": 32-bit shifter 250 µm²", (32,)),
    "compare": Entry(71.0, 40, ALADDIN + ": 32-bit comparator 71 µm²", (32,)),
    # 6T bit cell of Intel's 45 nm process (Mistry et al., IEDM 2007), 0.346 µm², divided by
    # an assumed array efficiency of 0.5 for decoders, sense amplifiers and I/O
    "sram_bit": Entry(0.346 / 0.5, 45, "Mistry et al., IEDM 2007, Intel 45 nm 6T cell 0.346 µm² "
                      "(from the paper's abstract, not re-checked here) / assumed array "
                      "efficiency 0.5", (1,)),
}

# --------------------------------------------------------------------------- numeric formats

#: Requantization parameters per output channel: gemmlowp/TFLite's int32 fixed-point
#: multiplier, and a shift (TFLite keeps it in an int32; 8 bits hold its -31..31 range).
REQUANT_MULTIPLIER_BITS = 32
REQUANT_SHIFT_BITS = 8
REQUANT_SOURCE = ("gemmlowp / TFLite output stage: int32 fixed-point multiplier, rounding right "
                  "shift, output zero-point, clamp (TFLite OpData: per_channel_output_multiplier "
                  "and per_channel_output_shift arrays)")

#: Integer Newton iterations per power-function evaluation, measured on isqrt (reference/
#: energy.md: uint8 mean 2.4 / max 4, uint32 mean 4.0 / max 6, counting the final check);
#: PowerQuant (Yvinec et al., ICLR 2023, §3.3): "2 steps for low bit, 4 for int32".
NEWTON_ITERATIONS = {8: (2.4, 4), 32: (4.0, 6)}   # bits -> (mean, max)
NEWTON_SOURCE = "reference/energy.md (isqrt iteration counts); PowerQuant §3.3"
