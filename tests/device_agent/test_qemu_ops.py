"""Per-kernel instruction counts on the arm64 emulated device: `lab bench --ops` → store → `lab compare --ops`.

The guide's CNN dense and pruned (built with TensorFlow + tfmot as in test_qemu.py), benchmarked with
``--ops`` on an emulated device started with ``--arch arm64`` (real QEMU, the real plugin): the
pruned model's 1x1 convolutions leave XNNPACK's dense GEMM kernels for its sparse ones (spmm),
and the rest of the kernels stay put.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from device_agent.errors import OutputParseError
from device_agent.output import KernelProfile, KernelRow, format_kernels, parse
from device_agent.qemu.counter import open_block_counter
from device_agent.qemu.kernels import UNKNOWN, FunctionTable, attribute, read_maps
from device_agent.qemu import Userland, default_dest, prepare
from host.cli.main import app
from host.store import open_store

# tfmot's own import-time warning, not the lab's.
pytestmark = pytest.mark.filterwarnings("ignore:distutils Version classes are deprecated:DeprecationWarning")

SPARSE = re.compile(r"spmm")
DENSE_GEMM = re.compile(r"gemm")  # xnn_f32_gemm… and xnn_f32_igemm…: what dense 1x1 convolutions run


@pytest.fixture(scope="module")
def userland() -> Userland:
    return prepare(default_dest(), progress=lambda line: None)  # rebuilds the plugin when its source changed


@pytest.fixture(scope="module")
def guide_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.device_agent.test_qemu import _build_tflite

    folder = tmp_path_factory.mktemp("ops-models")
    paths = {}
    for name, sparsity in (("dense", 0.0), ("pruned", 0.75)):
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(_build_tflite(sparsity))
    return paths


def _lab(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["--db", db_url, *args])


def _kernels(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (group,) = document["ops"]["groups"]
    return {row["name"]: row for row in group["rows"]}


@pytest.mark.qemu
@pytest.mark.tf
def test_bench_ops_stores_kernels_and_compare_shows_the_sparse_path(
    userland: Userland,
    guide_models: dict[str, Path],
    emulated_device_factory: Callable[..., Any],
    tmp_path: Path,
) -> None:
    device = emulated_device_factory(extra_args=("--arch", "arm64"))
    db_url = f"sqlite:///{tmp_path / 'lab.db'}"
    runs = {}
    for name in ("dense", "pruned"):
        done = _lab(
            db_url, "bench", str(guide_models[name]), "--device", device.serial, "--ops", "--trials", "2",
            "--runs", "5", "--warmup", "1", "--json",
        )  # fmt: skip
        assert done.exit_code == 0, done.output[-3000:]
        runs[name] = json.loads(done.stdout)["run_id"]

    with open_store(db_url) as store:
        (dense_group,) = store.op_groups([runs["dense"]])
        assert len(dense_group.trials) == 2
        kernels = dense_group.trials[0]["kernel"]
        assert kernels and all(k.instructions is not None and k.instructions > 0 for k in kernels)
        assert any(DENSE_GEMM.search(k.name) for k in kernels)
        assert not any(SPARSE.search(k.name) for k in kernels)
        trial = store.load_trials(runs["pruned"])[0]
        assert trial.result is not None and trial.result.kernels is not None
        assert not any("op profiling requested but absent" in w for w in trial.result.warnings)

    compared = _lab(db_url, "compare", str(runs["dense"]), str(runs["pruned"]), "--ops", "--json")
    assert compared.exit_code == 0, compared.output
    rows = _kernels(json.loads(compared.stdout))
    sparse = [r for name, r in rows.items() if SPARSE.search(name)]
    assert sparse and all(r["a"] is None and r["b"] > 0 and r["matched_by"] == "only in B" for r in sparse)
    dense_gemm = sum(r["a"] or 0 for name, r in rows.items() if DENSE_GEMM.search(name))
    pruned_gemm = sum(r["b"] or 0 for name, r in rows.items() if DENSE_GEMM.search(name))
    assert pruned_gemm < 0.5 * dense_gemm, (dense_gemm, pruned_gemm)  # the 1x1 convolutions left GEMM
    # XNNPACK's sparse path runs the whole subgraph in CHW layout, so the depthwise convolutions
    # change kernels too (dwconv → dwconv2d_chw); everything outside XNNPACK's kernels stays put.
    assert any(r["b"] is None for name, r in rows.items() if "dwconv_minmax" in name)
    assert any(r["a"] is None for name, r in rows.items() if "dwconv2d_chw" in name)
    steady = [r for name, r in rows.items() if r["a"] and r["b"] and not name.startswith(("xnn_", "pthreadpool_"))]
    assert len(steady) >= 5, "\n".join(f"{n} {r['a']} {r['b']}" for n, r in rows.items())
    for row in steady:
        assert row["b"] == pytest.approx(row["a"], rel=0.01), row
        assert row["matched_by"] == "function" and not row["beyond_noise"], row
    # sorted by contribution to the total change, largest first
    group = json.loads(compared.stdout)["ops"]["groups"][0]
    changes = [abs((r["b"] or 0) - (r["a"] or 0)) for r in group["rows"]]
    assert changes == sorted(changes, reverse=True)
    assert group["total_b"] < 0.7 * group["total_a"]

    table = _lab(db_url, "compare", str(runs["dense"]), str(runs["pruned"]), "--ops")
    assert "instructions per inference, per kernel" in table.stdout and "only in B" in table.stdout

    report = _lab(db_url, "report")
    assert report.exit_code == 0, report.output
    assert "top kernels by instructions per inference" in report.stdout and "spmm" in report.stdout


@pytest.mark.qemu
@pytest.mark.tf
def test_the_plugins_kernel_table_parses(userland: Userland, guide_models: dict[str, Path]) -> None:
    """The runner's own table straight from QEMU: rows sum to the total, the end line matches."""
    import os
    import subprocess

    argv, env = userland.bench_command(
        [f"--graph={guide_models['pruned']}", "--num_runs=3", "--min_secs=0", "--warmup_runs=1", "--enable_op_profiling=true"]
    )
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    result = parse(done.stdout)
    assert result.kernels is not None and not result.kernels.truncated
    assert result.kernels.runs == 3 and result.kernels.label == "emulated, qemu-user neoverse-n1"
    total = sum(r.instructions for r in result.kernels.rows)
    assert total == pytest.approx(result.kernels.total, rel=0.001)
    assert any(SPARSE.search(r.function) for r in result.kernels.rows)
    assert result.instructions is not None  # the per-inference line is still there


# ---- the per-kernel table's format, and mapping addresses to functions (no QEMU) ----

RUN_OUTPUT = """INFO: STARTING!
INFO: Running benchmark for at least 1 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
INFO: count=1 curr=5000

INFO: Running benchmark for at least 3 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
INFO: count=3 first=4000 curr=4000 min=4000 max=4100 avg=4033.33 std=47

"""
PROFILE = KernelProfile(
    label="emulated, qemu-user neoverse-n1",
    runs=3,
    total=1_234_567.5,
    rows=(
        KernelRow("libpywrap_litert_common.so", "xnn_f32_spmm_minmax_ukernel_32x1__neonfma_pipelined", 1_000_000, 81.0),
        KernelRow("python3.11", "(unknown)", 234_567.5, 19.0),
    ),
)


def _output(lines: list[str]) -> str:
    return RUN_OUTPUT + "".join(f"INFO: {line}\n" for line in lines)


def test_the_kernel_table_round_trips_without_rounding_large_counts() -> None:
    lines = format_kernels(PROFILE)
    assert lines[0] == "Instructions per kernel (emulated, qemu-user neoverse-n1): runs=3 total=1234567.5"
    assert parse(_output(lines)).kernels == PROFILE


def test_kernel_columns_in_an_unexpected_order_are_read_by_name() -> None:
    lines = format_kernels(PROFILE)
    order = [3, 0, 2, 1]  # function, instructions, library, %
    lines[1:-1] = ["\t".join([""] + [line.split("\t")[1:][i] for i in order]) for line in lines[1:-1]]
    assert lines[1] == "\t[function]\t[instructions]\t[library]\t[%]"
    assert parse(_output(lines)).kernels == PROFILE


def test_a_kernel_header_without_a_needed_column_is_an_error_quoting_it() -> None:
    lines = format_kernels(PROFILE)
    lines[1] = "\t[instructions]\t[%]\t[function]"
    with pytest.raises(OutputParseError, match=r"lacks the column 'library'.*\[function\]"):
        parse(_output(lines))


def test_a_cut_kernel_table_keeps_its_rows_and_says_so() -> None:
    result = parse(_output(format_kernels(PROFILE)[:-2]))  # the last row and the end line are gone
    assert result.kernels is not None and result.kernels.truncated
    assert result.kernels.rows == PROFILE.rows[:1]
    assert "the per-kernel instruction table is cut short" in result.warnings


def test_a_malformed_kernel_row_is_an_error_quoting_it() -> None:
    lines = format_kernels(PROFILE)
    lines[2] = lines[2].replace("1000000", "many")
    with pytest.raises(OutputParseError, match="malformed row.*many"):
        parse(_output(lines))


def test_unavailable_kernels_say_why() -> None:
    result = parse(_output(["Instructions per kernel (not emulated): unavailable (no plugin here)"]))
    assert result.kernels is None and result.kernels_unavailable == "no plugin here"


def test_no_block_counter_outside_the_plugin() -> None:
    assert "not running under the lab's QEMU counting plugin" in str(open_block_counter({}))
    assert open_block_counter({"LAB_QEMU_COUNTING": "unavailable: it did not load"}) == "it did not load"


def _nm_functions(path: str) -> dict[str, int]:
    import shutil
    import subprocess

    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) is not installed")
    done = subprocess.run([nm, "--defined-only", path], capture_output=True, text=True, check=True)
    found = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tT":
            found[parts[2]] = int(parts[0], 16)
    return found


def test_function_table_agrees_with_nm_and_maps_runtime_addresses() -> None:
    """LiteRT's own library (the host's build): names as nm reads them, at a load address as in /proc/self/maps."""
    import ai_edge_litert

    library = str(Path(ai_edge_litert.__file__).with_name("libpywrap_litert_common.so"))
    table = FunctionTable(library)
    reference = _nm_functions(library)
    picked = [name for name in reference if name.startswith("xnn_f32_") and "gemm" in name][:5]
    assert picked
    for name in picked:
        assert table.name(reference[name]) == name
    # an executable segment mapped at 0x7f0000000000 + its page offset, as the loader does
    offset, size, delta = next(seg for seg in table.segments if seg[2] and seg[1])
    page = offset & ~0xFFF
    start = 0x7F00_0000_0000 + page + delta
    maps = read_maps(
        f"{start:x}-{start + size + 0x2000:x} r-xp {page:08x} 08:01 1234 {library}\n"
        "7ffff7fc0000-7ffff7fc2000 r-xp 00000000 00:00 0 [vdso]\n"
    )
    assert len(maps) == 1  # [vdso] is no file
    name = picked[0]
    runtime = start - page + (reference[name] - delta)
    totals = attribute({runtime + 4: 100, runtime + 8: 50, 0x10: 7}, maps)
    assert totals == {("libpywrap_litert_common.so", name): 150, (UNKNOWN, UNKNOWN): 7}
