"""Show what `accelsim validate` says about broken hardware configs.

Writes each case below to a temporary directory, runs `python -m accelsim.cli validate FILE`
on it (or, while the CLI does not exist, load_hw in-process with the CLI's output format) and
prints a Markdown table: | case | exit status | message |.

tests/test_config.py imports CASES from here, so the table and the tests cover the same files.

    python tools/broken_configs.py
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import NamedTuple

REPO_ROOT = Path(__file__).resolve().parents[1]

_ARRAY = "pe_array:\n  rows: 16\n  cols: 16\n  dataflow: weight_stationary\n"
_PRECISION = "precision:\n  weight_bits: 8\n  activation_bits: 8\n"
VALID = "name: ok\n" + _ARRAY + _PRECISION


def _with(old: str, new: str) -> str:
    """The valid config with one line (or block) changed."""
    assert old in VALID, old
    return VALID.replace(old, new)


# The keys accelsim reads from SCALE-Sim's r32x32_ws_calc.cfg (reference/scalesim/), verbatim.
CFG = """[general]
run_name = r32x32_ws_calc

[architecture_presets]
ArrayHeight:    32
ArrayWidth:     32
IfmapSramSzkB:   64
FilterSramSzkB:  64
OfmapSramSzkB:   64
Bandwidth : 10
Dataflow : ws

[run_presets]
InterfaceBandwidth: CALC
"""


def cfg_with(old: str, new: str) -> str:
    """The valid .cfg with one line changed."""
    assert old in CFG, old
    return CFG.replace(old, new)


class Case(NamedTuple):
    name: str
    file: str               # file name written in the temp dir
    content: str | bytes | None  # None: do not create it; "<dir>": make a directory
    field: str | None       # field path the message must name
    fragment: str           # a piece of "expected ..., found ..." the message must contain


CASES: list[Case] = [
    Case("string for int", "rows_string.yaml", _with("rows: 16", "rows: sixteen"),
         "pe_array.rows", "found the string 'sixteen'"),
    Case("bool for int", "rows_bool.yaml", _with("rows: 16", "rows: true"),
         "pe_array.rows", "found the boolean true"),
    Case("float for int", "rows_float.yaml", _with("rows: 16", "rows: 16.5"),
         "pe_array.rows", "expected a positive integer; found the float 16.5"),
    Case("zero size", "rows_zero.yaml", _with("rows: 16", "rows: 0"),
         "pe_array.rows", "expected a positive integer; found the integer 0"),
    Case("negative size", "sram_negative.yaml", VALID + "memory:\n  ifmap_sram_kib: -64\n",
         "memory.ifmap_sram_kib", "expected a positive number; found the integer -64"),
    Case("missing required key", "no_rows.yaml", _with("  rows: 16\n", ""),
         "pe_array.rows", "found nothing: the key is missing"),
    Case("missing required section", "no_precision.yaml", _with(_PRECISION, ""),
         "precision", "found nothing: the key is missing"),
    Case("missing name", "no_name.yaml", _with("name: ok\n", ""),
         "name", "expected a non-empty string (required)"),
    Case("unknown key", "unknown.yaml", VALID + "colour: red\n",
         "colour", "found unknown key 'colour'"),
    Case("misspelt section", "pe_aray.yaml", _with("pe_array:", "pe_aray:"),
         "pe_aray", "did you mean 'pe_array'?"),
    Case("misspelt key", "rwos.yaml", _with("rows:", "rwos:"),
         "pe_array.rwos", "did you mean 'rows'?"),
    Case("bad enum value", "dataflow.yaml",
         _with("dataflow: weight_stationary", "dataflow: row_stationary"), "pe_array.dataflow",
         "expected one of weight_stationary, output_stationary, input_stationary (or ws, os, is); "
         "found the string 'row_stationary'"),
    Case("number for enum", "preload.yaml", _with("  dataflow: weight_stationary\n",
         "  dataflow: weight_stationary\n  weight_preload: 2\n"), "pe_array.weight_preload",
         "found the integer 2"),
    Case("YAML syntax error", "syntax.yaml", _with("  rows: 16", "  rows: 16: 32"),
         "line 3, column 11", "expected valid YAML; found a syntax error: mapping values"),
    Case("duplicate key", "duplicate.yaml", _with("  cols: 16\n", "  cols: 16\n  rows: 32\n"),
         "line 5, column 3", "duplicate key 'rows' (first defined on line 3)"),
    Case("empty file", "empty.yaml", "# nothing here\n",
         "(top level)", "found an empty document"),
    Case("list at top level", "list.yaml", "- name: ok\n- rows: 16\n",
         "(top level)", "expected a mapping with keys name, clock_mhz"),
    Case("list for a section", "section_list.yaml", _with(_ARRAY, "pe_array: [16, 16]\n"),
         "pe_array", "expected a mapping with keys rows, cols, dataflow"),
    Case("null section", "section_null.yaml", VALID + "memory:\n",
         "memory", "found null"),
    Case("bit-width 0", "bits_zero.yaml", _with("weight_bits: 8", "weight_bits: 0"),
         "precision.weight_bits", "expected an integer in 1..32; found the integer 0"),
    Case("bit-width 64", "acc_64.yaml", VALID + "  accumulator_bits: 64\n",
         "precision.accumulator_bits", "expected an integer in 1..32; found the integer 64"),
    Case("clock 0", "clock.yaml", VALID + "clock_mhz: 0\n",
         "clock_mhz", "expected a positive number; found the integer 0"),
    Case("tech node with unit", "tech.yaml", VALID + "tech_nm: 28nm\n",
         "tech_nm", "expected a number in (0, 1000]; found the string '28nm'"),
    Case("unknown energy table", "energy.yaml", VALID + "energy:\n  table: horowitz28\n",
         "energy.table", "expected one of horowitz45, accelergy_aladdin40"),
    Case("non-numeric override", "override.yaml",
         VALID + "energy:\n  overrides: {dram_pj_per_bit: lots}\n",
         "energy.overrides.dram_pj_per_bit", "expected a non-negative number; found the string"),
    Case("file does not exist", "missing.yaml", None,
         None, "expected an existing file or a config name"),
    Case("directory", "adir.yaml", "<dir>", None, "expected a file; found a directory"),
    Case("binary file", "binary.yaml", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",
         None, "expected a UTF-8 text file; found byte 0x89 at offset 0"),
    Case("control characters", "control.yaml", "name: a\x00b\n",
         "line 1, column 8", "expected a text file; found unacceptable character #x0000"),
    Case(".cfg bad dataflow", "bad_dataflow.cfg", cfg_with("Dataflow : ws", "Dataflow : rs"),
         "architecture_presets.Dataflow", "expected one of os, ws, is; found the string 'rs'"),
    Case(".cfg missing key", "no_height.cfg", cfg_with("ArrayHeight:    32\n", ""),
         "architecture_presets.ArrayHeight", "found nothing: the key is missing"),
    Case(".cfg zero size", "zero_sram.cfg",
         cfg_with("IfmapSramSzkB:   64", "IfmapSramSzkB:   0"),
         "architecture_presets.IfmapSramSzkB", "expected a positive number; found the integer 0"),
    Case(".cfg duplicate key", "dup.cfg", cfg_with("ArrayWidth:", "ArrayHeight: 8\nArrayWidth:"),
         "line 6", "found a duplicate key 'arrayheight' in [architecture_presets]"),
    Case(".cfg not an INI file", "yaml_as.cfg", VALID,
         "line 1", "expected a SCALE-Sim .cfg (INI) file; found a line before any [section]"),
]

# Valid files, for contrast: exit status 0 (the narrow accumulator only warns).
OK_CASES: list[Case] = [
    Case("valid", "valid.yaml", VALID, None, ""),
    Case("12-bit accumulator (warning)", "acc12.yaml", VALID + "  accumulator_bits: 12\n",
         "precision.accumulator_bits", "narrower than weight_bits + activation_bits"),
]


def write_case(case: Case, directory: Path) -> Path:
    path = directory / case.file
    if case.content == "<dir>":
        path.mkdir()
    elif isinstance(case.content, bytes):
        path.write_bytes(case.content)
    elif case.content is not None:
        path.write_text(case.content, encoding="utf-8")
    return path


def _validate(file: str) -> tuple[int, str]:
    """(exit status, stderr) of `accelsim validate FILE`."""
    if importlib.util.find_spec("accelsim.cli") is not None:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        p = subprocess.run([sys.executable, "-m", "accelsim.cli", "validate", file],
                           capture_output=True, text=True, env=env)
        return p.returncode, (p.stderr.strip() or p.stdout.strip())
    from accelsim.config import load_hw  # the CLI is not there yet: same behaviour in-process
    from accelsim.errors import AccelsimError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            load_hw(file)
        except AccelsimError as e:
            return e.exit_status, f"error: {e}"
    return 0, "\n".join(f"warning: {w.message}" for w in caught) or f"{file}: ok"


def main() -> int:
    rows = ["| case | exit status | message |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)  # relative names keep the messages short
        try:
            for case in CASES + OK_CASES:
                write_case(case, Path("."))
                status, stderr = _validate(case.file)
                message = (" / ".join(stderr.splitlines()) or "(none)").replace("|", "\\|")
                rows.append(f"| {case.name} | {status} | `{message}` |")
        finally:
            os.chdir(cwd)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    sys.exit(main())
