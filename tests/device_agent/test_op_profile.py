"""benchmark_model's per-op profile: the parser against the real op-profiling samples and their bad forms."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

import device_agent.op_profile as op_profile
from device_agent.errors import OutputParseError
from device_agent.op_profile import NodeTypeRow, OpProfile, OpRow, TopOp, find_op_profile, parse_op_profile

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmark_model"
RISCV = "05-meta-tflite-riscv64-op-profiling.txt"  # TFLite 2.8: initialization + regular runs
README = "06-tf-readme-op-profiling-old-avg-wording.txt"  # old layout: tables with no heading
CUT = "09-tf42507-android-2020-peak-memory-op-profiling-start.txt"  # cut after the init header row
WITHOUT_PROFILE = [
    "01-ti-am57x-tflite1.12-nostats.txt",
    "02-ti-am62x-tflite2.18-cpu-info-prefix.txt",
    "03-ti-am62x-tflite2.18-xnnpack-partial.txt",
    "04-ti-am62x-tflite2.20-percentiles-sci.txt",
    "14-tf50641-linux-2021-FAIL-unsupported-op-version.txt",
    "19-tf61946-linux-x86-2023-info-prefix-memdelta.txt",
    "24-ti-am62x-tflite2.20-xnnpack-partial-percentiles.txt",
]


def load(name: str) -> str:
    """A fixture's text without its leading ``# source:`` line (provenance, not tool output)."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    first, _, rest = text.partition("\n")
    if not first.startswith("# source:"):
        raise ValueError(f"{name}: the first line should be '# source: …', got {first!r}")
    return rest


def replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) < 1:
        raise ValueError(f"{old!r} not in the text")
    return text.replace(old, new, 1)


def cut_after(text: str, marker: str, keep: int = 0) -> str:
    """``text`` up to the end of the line holding ``marker``, plus ``keep`` characters of the next line."""
    end = text.index("\n", text.index(marker)) + 1
    return text[: end + keep]


# --- the real samples ---------------------------------------------------------------------------


def test_riscv_sample_regular_runs() -> None:
    profile = parse_op_profile(load(RISCV))
    runs = profile.runs
    assert runs is not None
    assert (profile.truncated, profile.warnings, runs.truncated, runs.warnings) == (False, (), False, ())
    assert len(runs.ops) == runs.nodes_executed == 31
    assert [op.index for op in runs.ops] == list(range(31))
    assert runs.ops[0] == OpRow(
        index=0, node_type="CONV_2D", name="[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0", first_ms=87.754,
        avg_ms=60.957, percent=2.066, cdf_percent=2.066, mem_kb=0.0, times_called=1, start_ms=0.066,
    )  # fmt: skip
    assert runs.ops[27] == OpRow(
        index=27, node_type="AVERAGE_POOL_2D", name="[MobilenetV1/Logits/AvgPool_1a/AvgPool]:27", first_ms=0.828,
        avg_ms=0.869, percent=0.029, cdf_percent=99.578, mem_kb=0.0, times_called=1, start_ms=2936.930,
    )  # fmt: skip
    assert runs.ops[-1] == OpRow(
        index=30, node_type="SOFTMAX", name="[MobilenetV1/Predictions/Reshape_1]:30", first_ms=0.230,
        avg_ms=0.233, percent=0.008, cdf_percent=100.0, mem_kb=0.0, times_called=1, start_ms=2950.011,
    )  # fmt: skip
    assert sum(op.node_type == "CONV_2D" for op in runs.ops) == 15
    assert sum(op.node_type == "DEPTHWISE_CONV_2D" for op in runs.ops) == 13
    # The name's ":N" suffix is the node index, which here is the run-order position.
    assert all(op.name.endswith(f"]:{op.index}") for op in runs.ops)
    assert [t.index for t in runs.top_by_time] == [10, 16, 20, 18, 22, 6, 14, 26, 2, 12]
    assert runs.top_by_time[0] == TopOp(index=10, name="[MobilenetV1/MobilenetV1/Conv2d_5_pointwise/Relu6]:10")
    assert all(runs.ops[t.index].name == t.name for t in runs.top_by_time if t.index is not None)
    assert runs.node_types == (
        NodeTypeRow("CONV_2D", 15, 2651.853, 89.897, 89.897, 0.0, 15),
        NodeTypeRow("DEPTHWISE_CONV_2D", 13, 296.919, 10.065, 99.962, 0.0, 13),
        NodeTypeRow("AVERAGE_POOL_2D", 1, 0.869, 0.029, 99.992, 0.0, 1),
        NodeTypeRow("SOFTMAX", 1, 0.232, 0.008, 99.999, 0.0, 1),
        NodeTypeRow("SQUEEZE", 1, 0.016, 0.001, 100.0, 0.0, 1),
    )
    assert sum(t.count for t in runs.node_types) == len(runs.ops)


def test_riscv_sample_keeps_the_initialization_profile_apart() -> None:
    profile = parse_op_profile(load(RISCV))
    assert profile.init is not None and profile.runs is not None
    assert profile.init.ops == (
        OpRow(
            index=0, node_type="AllocateTensors", name="AllocateTensors/0", first_ms=1.356, avg_ms=1.356,
            percent=100.0, cdf_percent=100.0, mem_kb=0.0, times_called=1, start_ms=0.0,
        ),
    )  # fmt: skip
    assert profile.init.top_by_time == (TopOp(index=0, name="AllocateTensors/0"),)
    assert profile.init.node_types == (NodeTypeRow("AllocateTensors", 1, 1.356, 100.0, 100.0, 0.0, 1),)
    assert profile.init.nodes_executed == 1
    assert not profile.init.truncated
    assert "AllocateTensors" not in {op.node_type for op in profile.runs.ops}


def test_readme_sample_old_layout_without_headings() -> None:
    profile = parse_op_profile(load(README))
    assert profile.init is None
    runs = profile.runs
    assert runs is not None
    assert (profile.truncated, profile.warnings) == (False, ())
    assert len(runs.ops) == runs.nodes_executed == 31
    assert runs.ops[0] == OpRow(
        index=0, node_type="CONV_2D", name="[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]", first_ms=4.269,
        avg_ms=4.269, percent=0.107, cdf_percent=0.107, mem_kb=0.0, times_called=0, start_ms=0.0,
    )  # fmt: skip
    assert runs.ops[29].node_type == "RESHAPE"
    assert runs.ops[-1] == OpRow(
        index=30, node_type="SOFTMAX", name="[MobilenetV1/Predictions/Softmax]", first_ms=0.029,
        avg_ms=0.029, percent=0.001, cdf_percent=1.993, mem_kb=0.0, times_called=0, start_ms=79.443,
    )  # fmt: skip
    # Old names carry no ":N": the top rows are matched to Run Order by type, name and times.
    assert [t.index for t in runs.top_by_time] == [6, 2, 26, 10, 18, 20, 22, 16, 14, 0]
    assert runs.node_types[0] == NodeTypeRow("CONV_2D", 15, 1.406, 89.27, 89.27, 0.0, 0)
    assert runs.node_types[-1] == NodeTypeRow("AVERAGE_POOL_2D", 1, 0.0, 0.0, 100.0, 0.0, 0)
    assert [t.node_type for t in runs.node_types] == [
        "CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX", "RESHAPE", "AVERAGE_POOL_2D",
    ]  # fmt: skip


def test_cut_sample_gives_a_truncated_initialization_profile_and_no_runs() -> None:
    profile = parse_op_profile(load(CUT))
    assert profile.runs is None
    assert profile.init is not None
    assert profile.init.ops == () and profile.init.truncated
    assert profile.truncated
    assert profile.warnings == (
        "the initialization profile is truncated: the output ends in the 'Run Order' table after 0 rows",
        "no 'Operator-wise Profiling Info for Regular Benchmark Runs' profile, only the initialization one",
    )


# --- absent -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WITHOUT_PROFILE)
def test_output_without_profile_is_none(name: str) -> None:
    text = load(name)
    assert find_op_profile(text) is None
    with pytest.raises(OutputParseError, match=r"no op profile .*--enable_op_profiling=true"):
        parse_op_profile(text)


def test_unrelated_banner_is_not_a_profile() -> None:
    text = "STARTING!\n============================== Something else ==============================\n\tfoo\tbar\n"
    assert find_op_profile(text) is None
    assert find_op_profile("") is None


# --- columns read by header name ----------------------------------------------------------------


def shuffle_columns(text: str, order: list[int]) -> str:
    """Every table line's cells (after its prefix) reordered: header and rows alike."""
    lines = []
    for line in text.split("\n"):
        prefix, tab, rest = line.partition("\t")
        if tab:
            cells = rest.split("\t")
            line = prefix + "".join("\t" + cells[i] for i in order if i < len(cells))
        lines.append(line)
    return "\n".join(lines)


@pytest.mark.parametrize(
    "order",
    [
        [8, 3, 0, 2, 1, 6, 5, 4, 7],  # name first
        [7, 6, 5, 4, 3, 2, 1, 0, 8],  # name still last
    ],
)
def test_shuffled_columns_parse_alike(order: list[int]) -> None:
    original = parse_op_profile(load(RISCV))
    shuffled_text = shuffle_columns(load(RISCV), order)
    assert shuffled_text != load(RISCV)
    assert parse_op_profile(shuffled_text) == original


def test_op_table_without_start_column() -> None:
    text = load(README)
    lines = [line.replace("\t  [start]", "", 1) for line in text.split("\n")]
    # Drop the second cell (start) of every row.
    text = "\n".join(
        "\t".join(line.split("\t")[:2] + line.split("\t")[3:]) if "%\t" in line and "[" in line else line
        for line in lines
    )
    profile = parse_op_profile(text)
    assert profile.runs is not None
    assert profile.runs.ops[0].start_ms is None
    assert profile.runs.ops[0].first_ms == 4.269


def test_unknown_column_raises_quoting_the_header() -> None:
    text = replace_once(load(RISCV), "\t  [mem KB]\t[times called]\t[Name]", "\t  [mem MB]\t[times called]\t[Name]")
    with pytest.raises(OutputParseError) as info:
        parse_op_profile(text)
    message = str(info.value)
    assert "cannot map column '[mem MB]' of the 'Run Order' table's header" in message
    assert "[node type]" in message and "\n" not in message
    assert info.value.text.startswith("[node type]")


def test_summary_column_in_an_op_table_raises() -> None:
    text = replace_once(load(README), "[first]", "[count]")
    with pytest.raises(OutputParseError, match=r"cannot map column '\[count\]' of the 'Run Order'"):
        find_op_profile(text)


def test_missing_column_raises() -> None:
    text = shuffle_columns(load(README), [0, 1, 2, 3, 4, 5, 7, 8])  # no [mem KB]
    with pytest.raises(OutputParseError, match=r"'Run Order' table's header lacks mem_kb"):
        parse_op_profile(text)


def test_duplicate_column_raises() -> None:
    text = replace_once(load(README), "[first]", "[avg ms]")
    with pytest.raises(OutputParseError, match=r"column '\[avg ms\]' twice"):
        parse_op_profile(text)


def test_header_missing_after_title_raises() -> None:
    header = next(line for line in load(README).split("\n") if "[node type]" in line)
    text = replace_once(load(README), header, header.replace("\t", "  "))  # tabs turned into spaces
    with pytest.raises(OutputParseError, match=r"expected the tab-separated column header of the 'Run Order' table"):
        parse_op_profile(text)


def test_malformed_row_inside_the_text_raises() -> None:
    text = replace_once(load(RISCV), "   49.870\t", "   forty\t")
    with pytest.raises(OutputParseError, match=r"row does not fit its header .*forty"):
        parse_op_profile(text)


def test_nan_percentages_parse_as_nan() -> None:
    text = replace_once(load(README), "  0.107%\t  0.107%", "  -nan%\t  -nan%")
    profile = parse_op_profile(text)
    assert profile.runs is not None
    assert math.isnan(profile.runs.ops[0].percent) and math.isnan(profile.runs.ops[0].cdf_percent)


# --- truncated ----------------------------------------------------------------------------------


def test_cut_inside_a_row_keeps_the_rows_before_it() -> None:
    text = cut_after(load(RISCV), "Conv2d_5_depthwise/Relu6]:9", keep=40)  # part of row 10
    profile = parse_op_profile(text)
    runs = profile.runs
    assert runs is not None and profile.init is not None
    assert profile.truncated and runs.truncated and not profile.init.truncated
    assert len(runs.ops) == 10
    assert runs.ops[-1].name == "[MobilenetV1/MobilenetV1/Conv2d_5_depthwise/Relu6]:9"
    assert runs.top_by_time == () and runs.node_types == () and runs.nodes_executed is None
    assert runs.warnings[0].startswith(
        "the regular runs profile is truncated: the output ends inside the 'Run Order' table's row 11, cut short"
    )
    assert profile.warnings == runs.warnings


def test_cut_at_a_row_boundary() -> None:
    text = cut_after(load(RISCV), "Conv2d_5_depthwise/Relu6]:9")
    runs = parse_op_profile(text).runs
    assert runs is not None and runs.truncated and len(runs.ops) == 10
    assert runs.warnings == (
        "the regular runs profile is truncated: the output ends in the 'Run Order' table after 10 rows",
    )


def test_cut_between_tables() -> None:
    text = cut_after(load(RISCV), "Number of nodes executed: 31")
    runs = parse_op_profile(text).runs
    assert runs is not None and runs.truncated
    assert len(runs.ops) == 31 and len(runs.top_by_time) == 10 and runs.node_types == ()
    assert runs.nodes_executed == 31
    assert runs.warnings == (
        "the regular runs profile is truncated: the output ends after its 'Top by Computation Time' table",
    )


def test_cut_inside_the_node_type_summary() -> None:
    text = cut_after(load(README), "DEPTHWISE_CONV_2D\t       13", keep=10)
    runs = parse_op_profile(text).runs
    assert runs is not None and runs.truncated
    assert [t.node_type for t in runs.node_types] == ["CONV_2D", "DEPTHWISE_CONV_2D"]


def test_cut_at_a_table_title() -> None:
    text = cut_after(load(README), "Top by Computation Time")
    runs = parse_op_profile(text).runs
    assert runs is not None and runs.truncated and len(runs.ops) == 31
    assert "at the 'Top by Computation Time' table's title" in runs.warnings[0]


def test_top_op_missing_from_run_order_has_no_index() -> None:
    text = load(README)
    top = text.index("Top by Computation Time")
    text = text[:top] + replace_once(text[top:], "Conv2d_3_pointwise/Relu6]", "Conv2d_3_pointwise/Renamed]")
    runs = parse_op_profile(text).runs
    assert runs is not None
    assert runs.top_by_time[0] == TopOp(index=None, name="[MobilenetV1/MobilenetV1/Conv2d_3_pointwise/Renamed]")
    assert runs.top_by_time[1].index == 2


def test_row_count_differing_from_nodes_executed_warns() -> None:
    text = replace_once(load(README), "Number of nodes executed: 31", "Number of nodes executed: 32")
    profile = parse_op_profile(text)
    assert not profile.truncated
    assert profile.warnings == ("the regular runs profile's Run Order table has 31 rows but 'Number of nodes executed: 32'",)


def test_a_second_regular_profile_is_left_out_with_a_warning() -> None:
    text = load(RISCV)
    runs_part = text[text.index("Operator-wise Profiling Info for Regular Benchmark Runs:") :]
    second = runs_part.replace("CONV_2D", "FULLY_CONNECTED")
    profile = parse_op_profile(text + "\n" + second)
    assert profile == OpProfile(
        runs=parse_op_profile(text).runs,
        init=parse_op_profile(text).init,
        warnings=("a further regular runs profile (another subgraph?) was left out",),
    )


# --- prefixes and line endings ------------------------------------------------------------------


def prefix_lines(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.split("\n"))


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda t: prefix_lines(t, "INFO: "), id="INFO-every-line"),
        pytest.param(lambda t: "\n".join(line if line[:1] in ("\t", "") else "INFO: " + line
                                         for line in t.split("\n")), id="INFO-on-non-row-lines"),
        pytest.param(lambda t: prefix_lines(t, "08-20 10:15:02.123  4567  4567 I tflite  : "), id="logcat-threadtime"),
        pytest.param(lambda t: prefix_lines(t, "I/tflite  ( 4567): "), id="logcat-brief"),
        pytest.param(lambda t: prefix_lines(t, "    "), id="indented"),
        pytest.param(lambda t: t.replace("\n", "\r\n"), id="crlf"),
    ],
)  # fmt: skip
def test_prefixes_and_line_endings_parse_alike(transform: Callable[[str], str]) -> None:
    for name in (RISCV, README):
        text = load(name)
        changed = transform(text)
        assert changed != text
        assert parse_op_profile(changed) == parse_op_profile(text)


def test_exports() -> None:
    assert sorted(op_profile.__all__) == sorted(
        ["OpRow", "TopOp", "NodeTypeRow", "ProfileTables", "OpProfile", "find_op_profile", "parse_op_profile"]
    )
    assert all(hasattr(op_profile, name) for name in op_profile.__all__)
