"""Hardware configs: frozen dataclasses, YAML / SCALE-Sim .cfg loading, validation."""
from accelsim.config.hw import (
    DATAFLOWS,
    ENERGY_TABLES,
    AccumulatorWarning,
    EnergySpec,
    HwConfig,
    Memory,
    PeArray,
    Precision,
    QuantSupport,
)
from accelsim.config.load import find_hw, load_hw, parse_yaml
from accelsim.config.scalesim_cfg import hw_from_scalesim_cfg
from accelsim.config.validate import hw_from_dict

__all__ = [
    "DATAFLOWS", "ENERGY_TABLES", "AccumulatorWarning", "EnergySpec", "HwConfig", "Memory",
    "PeArray", "Precision", "QuantSupport", "find_hw", "hw_from_dict", "hw_from_scalesim_cfg",
    "load_hw", "parse_yaml",
]
