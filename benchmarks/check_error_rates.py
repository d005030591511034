"""`lab check`'s error rates across independent sessions: false alarms, and the smallest slowdown it catches.

    # 1. collect: N sessions, each a fresh emulated device and a fresh `lab bench` of every model
    python benchmarks/check_error_rates.py collect OUT_DIR [--sessions 220] [--hog-every 3] [--arch x86_64]
    python benchmarks/check_error_rates.py collect OUT_DIR --arch arm64 --sessions 12 --runs 5 --warmup 1
    # 2. evaluate: the current gate (host.report.check_run) on disjoint pairs of sessions
    python benchmarks/check_error_rates.py evaluate OUT_DIR [--metric time|instructions]

What a CI user relies on is one `lab bench` run compared with another made later, by another
process, on a machine whose load has changed in between. So each *session* here is what a CI job
does: a fresh emulated device process (`lab emulator start`), one `lab bench MODELS -s SERIAL`
with lab's default settings (5 trials of 100 invokes per model, interleaved), stored in
OUT_DIR/sessions.db, then the device is stopped. With ``--hog-every K`` every K-th session runs a
CPU-bound busy loop beside it, as another job on a shared CI box would (K=3 gives pairs of
quiet→quiet, hog→quiet and quiet→hog in equal numbers). Each session appends one line to
OUT_DIR/sessions.jsonl (index, run id, hog, 1-minute load average before and after, wall time,
lab bench's exit code); rerunning ``collect`` goes on up to ``--sessions``.

Models (made once with TensorFlow into OUT_DIR/models, seeded): a chain of identical 3x3
convolutions (16 channels, 10x10, ReLU; 230,400 multiply-adds each). M has 100 of them and
M+3%, M+5%, M+10% are M followed by 3, 5 and 10 more, so the extra work is exactly that share of
the layers' arithmetic and nothing else changes (fixed costs — input, output, the invoke call —
and caches can move the time ratio a little; evaluate prints the measured one). Each kernel is scaled so
its layer keeps the activations' spread, so no chain underflows to slow subnormal floats.
M takes about 0.5 ms per inference on a 2-core x86_64 machine. With ``--arch arm64`` (the emulated
device running LiteRT under QEMU, counting instructions) M has 200 layers and M+0.5% one more.

``evaluate`` pairs sessions 2k and 2k+1 (in collection order, failed sessions left out), so no
session is used twice. For each pair it saves, into a fresh temporary store, session 2k's M trials
as the baseline run and session 2k+1's M trials (A/A) or M+x% trials renamed to M's file name (as
a changed model would be) as candidate runs, and asks ``host.report.check_run`` — the gate of the
checkout this script is run from — whether each candidate regressed (exit code 1). It prints the
false-alarm rate with an exact one-sided 95% upper bound, the detection rate of each slowdown with
its 95% interval and measured size, the smallest slowdown caught 95% of the time, the same split by
load (hog or not on each side), and how stable each per-trial statistic of M is across sessions.

The sessions run the lab of the checkout this script lives in (its folder goes first on their
PYTHONPATH, and they run in OUT_DIR, so no other checkout shadows it); ``evaluate`` uses the gate of
whatever ``host`` its interpreter imports — run it from the checkout whose gate you are judging.

Time, on a 2-core x86_64 machine: an x86_64 session takes about 11 s, so 220 sessions take about
45 minutes. Under QEMU with instruction counting one invoke of the arm64 M takes about 0.37 s, so
with lab bench's defaults (5 trials × (10 + 100) invokes per model) an arm64 session takes 8.5
minutes: collect arm64 with ``--runs 5 --warmup 1`` (about 70 s a session; instruction counts are
exact, and the gate compares their medians). Evaluation takes seconds.
Needs TensorFlow (the `build` extra) to make the models, and an adb server (started if none answers).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from host.records import Trial
    from host.store import Store

CODE_ROOT = Path(__file__).resolve().parents[1]  # the lab the sessions run: this script's checkout
CHANNELS, SIDE = 16, 10  # each layer: a 3x3 convolution on a 10x10x16 tensor
BASE_LAYERS = {"x86_64": 100, "arm64": 200}
EXTRA_LAYERS = {"x86_64": (0, 3, 5, 10), "arm64": (0, 1)}
ARCH_METRIC = {"x86_64": "time", "arm64": "instructions"}
TARGETS = {"time": (0.01, 0.95), "instructions": (0.0, 1.0)}  # (false alarms at most, detection at least)
DETECTED = 0.95  # "the minimal slowdown detected": the smallest detected at least this often
MAX_CONSECUTIVE_FAILURES = 5
BENCH_OPTIONS = ("runs", "warmup", "trials")  # lab bench options a collection may set (default: lab bench's)
SETTINGS_FILE, SESSIONS_FILE, STORE_FILE = "collection.json", "sessions.jsonl", "sessions.db"


class ScriptError(Exception):
    """Bad input, or a collection that cannot go on: printed as one line, exit status 2."""


# ---------------------------------------------------------------------------------------------
# Models


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str  # file name: m.tflite, m+3.tflite, ...
    layers: int
    nominal_pct: float  # extra layers as a share of M's


def model_specs(arch: str) -> list[ModelSpec]:
    base = BASE_LAYERS[arch]
    specs = []
    for extra in EXTRA_LAYERS[arch]:
        pct = 100.0 * extra / base
        specs.append(ModelSpec("m.tflite" if extra == 0 else f"m+{pct:g}.tflite", base + extra, pct))
    return specs


def _kernels(count: int) -> list[Any]:
    """``count`` seeded 3x3 kernels; each scaled so its layer's ReLU output has the spread of the input
    (uniform in ±0.5, like the runner's inputs), however deep in the chain."""
    import numpy as np
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).uniform(-0.5, 0.5, (1, SIDE, SIDE, CHANNELS)).astype(np.float32))
    target = float(tf.math.reduce_std(x))
    kernels = []
    for i in range(count):
        kernel = tf.random.stateless_normal([3, 3, CHANNELS, CHANNELS], seed=(i, 1))
        kernel *= target / float(tf.math.reduce_std(tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME"))))
        x = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME"))
        kernels.append(kernel)
    return kernels


def _convert(kernels: Sequence[Any]) -> bytes:
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, SIDE, SIDE, CHANNELS], tf.float32)])
    def chain(x: tf.Tensor) -> tf.Tensor:
        for kernel in kernels:
            x = tf.nn.relu(tf.nn.conv2d(x, kernel, strides=1, padding="SAME"))
        return x

    owner = tf.Module()
    owner.chain = chain
    return tf.lite.TFLiteConverter.from_concrete_functions([chain.get_concrete_function()], owner).convert()


def ensure_models(folder: Path, specs: Sequence[ModelSpec]) -> list[Path]:
    """The model files in ``folder``, made with TensorFlow unless all are there already."""
    paths = [folder / spec.name for spec in specs]
    if all(p.is_file() for p in paths):
        return paths
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        raise ScriptError("TensorFlow is needed to make the models: pip install -e '.[build]'") from None
    print(f"making {len(specs)} models with TensorFlow into {folder} ...", file=sys.stderr, flush=True)
    kernels = _kernels(max(spec.layers for spec in specs))
    folder.mkdir(parents=True, exist_ok=True)
    for spec, path in zip(specs, paths):
        path.write_bytes(_convert(kernels[: spec.layers]))
    return paths


# ---------------------------------------------------------------------------------------------
# Collection


def _option(name: str, value: Any) -> str:
    flag = f"--{name.replace('_', '-')}"
    return f"no {flag}" if value is None else f"{flag} {value}"


def _settings(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The collection's settings, written at its start; a resumed collection must keep them."""
    wanted = {k: getattr(args, k) for k in ("arch", "hog_every") + BENCH_OPTIONS}
    path = out / SETTINGS_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        differ = [_option(k, saved.get(k)) for k in wanted if saved.get(k) != wanted[k]]
        if differ:
            raise ScriptError(f"{out} was collected with {', '.join(differ)}: rerun with those, or use a new OUT_DIR")
        return saved
    settings = wanted | {"models": [dataclasses.asdict(s) for s in model_specs(args.arch)], "code": str(CODE_ROOT)}
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")
    return settings


def read_sessions(out: Path) -> list[dict[str, Any]]:
    path = out / SESSIONS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _lab_env(out: Path) -> dict[str, str]:
    """The environment of every lab process: OUT_DIR's store and home, this checkout's code."""
    path = os.pathsep.join(p for p in (str(CODE_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return os.environ | {
        "LAB_HOME": str(out / "home"),
        "LAB_DB_URL": f"sqlite:///{out / STORE_FILE}",
        "PYTHONPATH": path,
    }


def _lab(out: Path, log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs ``lab ARGS`` (from this checkout; cwd OUT_DIR so no other checkout comes first), stderr to ``log``."""
    with log.open("a") as err:
        err.write(f"$ lab {' '.join(args)}\n")
        err.flush()
        return subprocess.run(
            [sys.executable, "-m", "host.cli", *args], cwd=out, env=_lab_env(out), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=err, text=True, check=False,
        )


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _bench(out: Path, log: Path, models: Sequence[Path], serial: str, extra: Sequence[str]) -> tuple[int, int | None]:
    """``lab bench MODELS -s SERIAL --json``: (exit code, run id or None)."""
    done = _lab(out, log, "bench", *(str(m) for m in models), "-s", serial, "--json", *extra)
    try:
        run_id = json.loads(done.stdout).get("run_id")
    except ValueError:
        run_id = None
    return done.returncode, run_id


def run_session(out: Path, index: int, models: Sequence[Path], hog: bool, settings: dict[str, Any]) -> dict[str, Any]:
    """One session: [busy loop,] fresh emulated device, `lab bench`, stop. Returns its record."""
    log = out / "logs" / f"session-{index:04d}.log"
    log.parent.mkdir(exist_ok=True)
    extra = [f"--{k}={settings[k]}" for k in BENCH_OPTIONS if settings.get(k) is not None]
    record: dict[str, Any] = {
        "index": index, "run_id": None, "hog": hog, "load1_before": os.getloadavg()[0], "load1_after": None,
        "wall_s": None, "exit_code": None, "started_at": datetime.now(timezone.utc).isoformat(), "error": None,
    }
    t0 = time.monotonic()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if hog else None
    try:
        started = _lab(out, log, "emulator", "start", "--arch", settings["arch"], "--json")
        if started.returncode != 0:
            record["error"] = f"emulated device did not start: {_last_line(log)}"
            return record
        serial = json.loads(started.stdout)["serial"]
        try:
            record["exit_code"], record["run_id"] = _bench(out, log, models, serial, extra)
            record["load1_after"] = os.getloadavg()[0]
        finally:
            _lab(out, log, "emulator", "stop", serial)
        if record["exit_code"] != 0:
            record["error"] = f"lab bench exit {record['exit_code']}: {_last_line(log)}"
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
        record["wall_s"] = round(time.monotonic() - t0, 2)
    return record


def collect(out: Path, args: argparse.Namespace) -> None:
    settings = _settings(out, args)
    models = ensure_models(out / "models", [ModelSpec(**m) for m in settings["models"]])
    done = read_sessions(out)
    hog_every = settings["hog_every"]
    print(f"collecting sessions {len(done)}..{args.sessions - 1} into {out} with the lab in {CODE_ROOT}",
          file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop device and busy loop
    failures = 0
    walls = [r["wall_s"] for r in done if r["wall_s"]]
    for index in range(len(done), args.sessions):
        hog = hog_every > 0 and index % hog_every == hog_every - 1
        record = run_session(out, index, models, hog, settings)
        with (out / SESSIONS_FILE).open("a") as f:
            f.write(json.dumps(record) + "\n")
        walls.append(record["wall_s"])
        left_min = statistics.median(walls) * (args.sessions - index - 1) / 60
        print(
            f"session {index + 1}/{args.sessions}{' (hog)' if hog else ''}: run {record['run_id']}, "
            f"exit {record['exit_code']}, {record['wall_s']:.1f} s, load {record['load1_before']:.2f}→"
            f"{record['load1_after'] or 0:.2f}; about {left_min:.0f} min left"
            + (f"; FAILED: {record['error']}" if record["error"] else ""),
            file=sys.stderr, flush=True,
        )
        failures = failures + 1 if record["error"] else 0
        if failures >= MAX_CONSECUTIVE_FAILURES:
            raise ScriptError(f"{failures} sessions in a row failed; the last: {record['error']}")


# ---------------------------------------------------------------------------------------------
# Statistics (pure functions)


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X ≤ k) for X ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def _crossing(f: Callable[[float], float], target: float) -> float:
    """The p in [0, 1] where the decreasing function f crosses ``target`` (bisection)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) > target else (lo, mid)
    return (lo + hi) / 2


def upper_bound(k: int, n: int, alpha: float = 0.05) -> float:
    """Clopper–Pearson one-sided (1 − alpha) upper bound on p after k successes in n trials."""
    return 1.0 if k >= n else _crossing(lambda p: binom_cdf(k, n, p), alpha)


def lower_bound(k: int, n: int, alpha: float = 0.05) -> float:
    """Clopper–Pearson one-sided (1 − alpha) lower bound on p after k successes in n trials."""
    return 0.0 if k <= 0 else _crossing(lambda p: binom_cdf(k - 1, n, p), 1 - alpha)


def cv(values: Sequence[float]) -> float | None:
    """Coefficient of variation (sample std / mean); None for fewer than two values."""
    return statistics.stdev(values) / statistics.fmean(values) if len(values) >= 2 else None


def trimmed_mean(values: Sequence[float], share: float = 0.1) -> float:
    """Mean after dropping ``share`` of the values at each end."""
    ordered = sorted(values)
    cut = int(len(ordered) * share)
    return statistics.fmean(ordered[cut : len(ordered) - cut])


def first_crossing(points: Sequence[tuple[float, float]], target: float) -> float | None:
    """The x where the rate first reaches ``target``, linear between points (x, rate) in order of x; None if never."""
    if points and points[0][1] >= target:
        return points[0][0]
    for (x0, r0), (x1, r1) in zip(points, points[1:]):
        if r0 < target <= r1:
            return x0 + (target - r0) * (x1 - x0) / (r1 - r0)
    return None


# ---------------------------------------------------------------------------------------------
# Evaluation


@dataclasses.dataclass
class Session:
    index: int
    hog: bool
    run_id: int
    trials: dict[str, list[Trial]]  # ok trials by model file name


def _load_sessions(out: Path) -> tuple[list[Session], int]:
    """The sessions whose lab bench succeeded, in collection order, and how many others there were.

    Reads a copy of sessions.db, so that a newer lab (which migrates on open) leaves the collection alone.
    """
    from host.store import open_store

    db = out / STORE_FILE
    if not db.is_file():
        raise ScriptError(f"no {db}: run `collect {out}` first")
    records = read_sessions(out)
    usable = [r for r in records if r["exit_code"] == 0 and r["run_id"] is not None]
    if len(usable) < 2:
        raise ScriptError(f"{out} has {len(usable)} successful sessions; evaluating needs at least 2")
    with tempfile.TemporaryDirectory(prefix="errrates-") as tmp:
        copy = Path(tmp) / STORE_FILE
        with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
            src.backup(dst)
        with open_store(f"sqlite:///{copy}") as store:
            sessions = [
                Session(r["index"], r["hog"], r["run_id"], _by_model(store.load_trials(r["run_id"]))) for r in usable
            ]
    return sessions, len(records) - len(usable)


def _by_model(trials: Sequence[Trial]) -> dict[str, list[Trial]]:
    grouped: dict[str, list[Trial]] = {}
    for t in trials:
        if t.status == "ok" and t.result is not None and t.result.runs is not None:
            grouped.setdefault(t.model.name, []).append(t)
    return grouped


def _save_run(store: Store, trials: Sequence[Trial], name: str) -> int:
    """The trials as a run of their own, their model renamed to ``name`` (as a changed model file would be)."""
    run_id = store.start_run("bench", {"benchmark": "check_error_rates"})
    renamed = [dataclasses.replace(t, run_id=run_id, model=dataclasses.replace(t.model, name=name)) for t in trials]
    store.save_trials(renamed)
    store.finish_run(run_id, "ok")
    return run_id


def judge_pair(base: Session, cand: Session, specs: Sequence[ModelSpec], metric: str, folder: Path) -> dict[str, bool]:
    """Whether the gate raises an alarm for each candidate model of ``cand`` against ``base``'s M."""
    from host.report import check_run
    from host.store import open_store

    m = specs[0].name
    alarms = {}
    with open_store(f"sqlite:///{folder / f'pair-{base.index}-{cand.index}.db'}") as store:
        base_run = _save_run(store, base.trials.get(m, []), m)
        for spec in specs:
            cand_run = _save_run(store, cand.trials.get(spec.name, []), m)
            code = check_run(store, run_id=cand_run, baseline=str(base_run), metric=metric).exit_code
            if code == 2:
                raise ScriptError(
                    f"the gate compared nothing for sessions {base.index} (run {base.run_id}) → {cand.index} "
                    f"(run {cand.run_id}), {spec.name} as {m}; check both runs with `lab check`"
                )
            alarms[spec.name] = code == 1
    return alarms


def _printed(field: str) -> Callable[[Trial], float | None]:
    """A statistic benchmark_model printed for the measured runs, e.g. ``avg_us``."""
    return lambda t: getattr(t.result.runs, field) if t.result and t.result.runs else None


def _trial_value(t: Trial, metric: str) -> float | None:
    """A trial's typical inference: its median invoke time (µs), or its median instruction count."""
    if metric == "instructions":
        return float(t.result.instructions.median) if t.result and t.result.instructions else None
    return _printed("median_us")(t)


def _session_value(trials: Sequence[Trial], value: Callable[[Trial], float | None]) -> float | None:
    values = [v for v in map(value, trials) if v is not None]
    return statistics.median(values) if values else None


def measured_pct(sessions: Sequence[Session], name: str, m: str, metric: str) -> float | None:
    """Median over sessions of (session median of the model's trials) / (the same of M's), as a % change."""
    ratios = []
    for s in sessions:
        a = _session_value(s.trials.get(m, []), lambda t: _trial_value(t, metric))
        b = _session_value(s.trials.get(name, []), lambda t: _trial_value(t, metric))
        if a and b is not None:
            ratios.append(b / a)
    return 100.0 * (statistics.median(ratios) - 1) if ratios else None


STATISTICS: dict[str, Callable[[Trial], float | None]] = {
    "avg (benchmark_model)": _printed("avg_us"),
    "median": _printed("median_us"),
    "p5": _printed("p5_us"),
    "p95": _printed("p95_us"),
    "min": _printed("min_us"),
    "10% trimmed mean (samples)": lambda t: trimmed_mean(t.samples_us) if t.samples_us else None,
    "median (samples)": lambda t: statistics.median(t.samples_us) if t.samples_us else None,
}


def _rate(k: int, n: int) -> str:
    return f"{k}/{n} = {k / n:.1%}" if n else "0/0"


def _cell(k: int, n: int) -> str:
    return f"{k}/{n} ({k / n:.0%})"


def _interval(k: int, n: int) -> str:
    return f"[{lower_bound(k, n, 0.025):.1%}–{upper_bound(k, n, 0.025):.1%}]"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}%"


def _print_machine(out: Path, sessions: Sequence[Session], skipped: int, settings: dict[str, Any]) -> None:
    records = {r["index"]: r for r in read_sessions(out)}
    used = [records[s.index] for s in sessions]
    loads = [v for r in used for v in (r["load1_before"], r["load1_after"]) if v is not None]
    some = next(t for s in sessions for ts in s.trials.values() for t in ts)
    hogs = sum(s.hog for s in sessions)
    every = settings["hog_every"]
    print(f"machine: {some.device.cores} cores, {some.device.soc or 'unknown CPU'}, "
          f"{some.device.abi}{', ' + some.device.emulation if some.device.emulation else ''} (emulated device)")
    print(f"sessions: {len(sessions)} used, {skipped} failed and left out; {used[0]['started_at'][:16]} → "
          f"{used[-1]['started_at'][:16]} UTC; median {statistics.median(r['wall_s'] for r in used):.1f} s each")
    options = " ".join(_option(k, settings[k]) for k in BENCH_OPTIONS if settings.get(k) is not None)
    print(f"per session: {len(sessions[0].trials[some.model.name])} trials × {some.params.runs} invokes per model, "
          f"interleaved (lab bench {options or 'defaults'})")
    print(f"load: 1-minute load average {min(loads):.2f}–{max(loads):.2f} over the sessions; busy loop "
          + (f"in one session of every {every} ({hogs} of {len(sessions)})" if every else "never"))


def _print_rates(pairs: Sequence[tuple[Session, Session]], verdicts: Sequence[dict[str, bool]],
                 specs: Sequence[ModelSpec], sessions: Sequence[Session], metric: str) -> None:
    fa_max, det_min = TARGETS[metric]
    m, levels = specs[0].name, specs[1:]
    n = len(verdicts)
    fa = sum(v[m] for v in verdicts)
    print(f"\nfalse alarms (A/A, M vs M): {_rate(fa, n)}, one-sided 95% upper bound {upper_bound(fa, n):.1%} "
          f"(target ≤ {fa_max:.0%})")
    unit = "instructions" if metric == "instructions" else "median invoke time"
    print(f"detection (target ≥ {det_min:.0%}); measured = median over sessions of the ratio of {unit}:")
    nominal, measured, rates = [0.0], [0.0], [fa / n]  # A/A is the 0% level
    for spec in levels:
        k = sum(v[spec.name] for v in verdicts)
        pct = measured_pct(sessions, spec.name, m, metric)
        nominal.append(spec.nominal_pct)
        measured.append(math.nan if pct is None else pct)
        rates.append(k / n)
        print(f"  {spec.name:<14} nominal +{spec.nominal_pct:g}%, measured {_pct(pct)}: detected "
              f"{_rate(k, n)} {_interval(k, n)}")
    _print_minimal(nominal, measured, rates)
    _print_by_load(pairs, verdicts, specs)


def _print_minimal(nominal: Sequence[float], measured: Sequence[float], rates: Sequence[float]) -> None:
    """The smallest tested level detected ≥ DETECTED of the time, and the linear interpolation between levels."""
    reached = [i for i in range(1, len(rates)) if rates[i] >= DETECTED]
    line = f"minimal slowdown detected ≥ {DETECTED:.0%} of the time: "
    if reached:
        i = reached[0]
        line += f"+{nominal[i]:g}% nominal ({_pct(measured[i])} measured), the smallest level tested that reaches it"
        at = first_crossing(list(zip(nominal, rates)), DETECTED)
        at_measured = first_crossing(list(zip(measured, rates)), DETECTED)
        line += f"; linear interpolation between tested levels: +{at:.2f}% nominal ({_pct(at_measured)} measured)"
    else:
        line += f"none of the levels tested (up to +{nominal[-1]:g}% nominal)"
    print(line)


def _print_by_load(pairs: Sequence[tuple[Session, Session]], verdicts: Sequence[dict[str, bool]],
                   specs: Sequence[ModelSpec]) -> None:
    combos: dict[str, list[dict[str, bool]]] = {}
    for (base, cand), v in zip(pairs, verdicts):
        combos.setdefault(f"{'hog' if base.hog else 'quiet'} → {'hog' if cand.hog else 'quiet'}", []).append(v)
    if len(combos) < 2:
        return
    print("by load (baseline → candidate session; hog: a busy loop ran beside it):")
    print(f"  {'':<14} {'false alarms':>14} " + " ".join(f"{s.name:>14}" for s in specs[1:]))
    for combo in ("quiet → quiet", "hog → quiet", "quiet → hog", "hog → hog"):
        vs = combos.get(combo)
        if vs:
            cells = [_cell(sum(v[s.name] for v in vs), len(vs)) for s in specs]
            print(f"  {combo:<14} {cells[0]:>14} " + " ".join(f"{c:>14}" for c in cells[1:]))


def _print_stability(sessions: Sequence[Session], m: str) -> None:
    print(f"\nstability of {m}'s per-trial statistics across sessions (each session: the median over its trials):")
    print(f"  {'statistic':<28} {'typical µs':>11} {'CV all':>8} {'CV quiet':>9} {'CV hog':>8}")
    for name, stat in STATISTICS.items():
        per = [(s.hog, _session_value(s.trials.get(m, []), stat)) for s in sessions]
        values = [(hog, v) for hog, v in per if v is not None]
        if not values:
            continue
        groups = ([v for _, v in values], [v for hog, v in values if not hog], [v for hog, v in values if hog])
        shown = ["–" if c is None else f"{c:.2%}" for c in map(cv, groups)]
        typical = statistics.median(v for _, v in values)
        print(f"  {name:<28} {typical:>11.1f} {shown[0]:>8} {shown[1]:>9} {shown[2]:>8}")


def _print_instruction_spread(sessions: Sequence[Session], m: str) -> None:
    counts = [v for s in sessions for t in s.trials.get(m, []) if (v := _trial_value(t, "instructions")) is not None]
    if counts:
        print(f"\n{m}: instructions per inference over {len(counts)} trials: {min(counts):,.0f}–{max(counts):,.0f} "
              f"({len(set(counts))} distinct values)")


def evaluate(out: Path, metric: str | None) -> None:
    sessions, skipped = _load_sessions(out)
    settings = json.loads((out / SETTINGS_FILE).read_text())
    metric = metric or ARCH_METRIC[settings["arch"]]
    specs = [ModelSpec(**m) for m in settings["models"]]
    pairs = [(sessions[2 * k], sessions[2 * k + 1]) for k in range(len(sessions) // 2)]
    import host.report

    _print_machine(out, sessions, skipped, settings)
    print(f"gate: check_run from {Path(host.report.__file__).parent} (metric {metric}, lab check's defaults), "
          f"{len(pairs)} disjoint session pairs (2k → 2k+1)")
    with tempfile.TemporaryDirectory(prefix="errrates-eval-") as tmp:
        verdicts = [judge_pair(base, cand, specs, metric, Path(tmp)) for base, cand in pairs]
    _print_rates(pairs, verdicts, specs, sessions, metric)
    if metric == "time":
        _print_stability(sessions, specs[0].name)
    else:
        _print_instruction_spread(sessions, specs[0].name)


# ---------------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    c = commands.add_parser("collect", help="run sessions (fresh emulated device + lab bench) into OUT_DIR")
    c.add_argument("out", type=Path, metavar="OUT_DIR")
    c.add_argument("--sessions", type=int, default=220, help="sessions in all, counting those already there")
    c.add_argument("--hog-every", type=int, default=3, help="run a busy loop beside every K-th session (0: never)")
    c.add_argument("--arch", choices=sorted(BASE_LAYERS), default="x86_64", help="the emulated device's architecture")
    c.add_argument("--runs", type=int, help="lab bench --runs (default: lab bench's)")
    c.add_argument("--warmup", type=int, help="lab bench --warmup (default: lab bench's)")
    c.add_argument("--trials", type=int, help="lab bench --trials (default: lab bench's)")
    e = commands.add_parser("evaluate", help="the gate's error rates over disjoint session pairs")
    e.add_argument("out", type=Path, metavar="OUT_DIR")
    e.add_argument("--metric", choices=sorted(TARGETS), help="default: instructions for arm64, else time")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "collect":
            if args.sessions < 1 or args.hog_every < 0:
                raise ScriptError("--sessions must be at least 1 and --hog-every at least 0")
            collect(args.out.resolve(), args)
        else:
            evaluate(args.out.resolve(), args.metric)
    except ScriptError as exc:
        print(f"check_error_rates: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
