"""``lab build``: train, check for XNNPACK, prune, convert, verify → artifacts + manifest (cached).

Progress goes to stderr; the summary table (or, with ``--json``, the manifest) to stdout.
Exit codes: 0 built or found in the cache; 1 the build failed; 2 bad options, dataset or model
file, or a model the XNNPACK check rejects (each problem on its own stderr line).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from host.cli.context import lab_context
from host.cli.options import JsonOpt, VariantsOpt
from host.errors import ModelCheckError

if TYPE_CHECKING:
    from host.builder import BuildResult, BuildSpec, CheckReport

__all__ = ["register", "build_table"]


def build_table(result: BuildResult) -> Table:
    """The summary of a build: per file its size, ops, DENSIFY ops, 1x1 sparsity and accuracies
    (how each file stores its filters is in the manifest: ``--json``)."""
    from host.report import _format as f

    m = result.manifest
    accuracy = m["accuracy"]
    dataset = m["dataset"]
    state = "from cache" if result.cached else f"built in {m['timings_s']['total']:.1f} s"
    caption = f"build {result.build_id} ({state})\n{escape(str(result.dir))}\ndataset {escape(dataset['name'])}"
    if not dataset["accuracy_meaningful"]:
        caption += " (synthetic: accuracy means nothing)"
    table = Table(title="lab build", caption=caption)
    table.add_column("file", no_wrap=True)
    for header in ("size", "ops", "DENSIFY"):
        table.add_column(header, justify="right")
    table.add_column("1x1 sparsity", no_wrap=True)
    for header in ("Keras acc", "TFLite acc"):
        table.add_column(header, justify="right")
    for name, entry in m["files"].items():
        base = (entry.get("variant") or {}).get("base", name)  # builds before variants had dense and pruned
        table.add_row(
            escape(entry["path"]),
            f.size(entry["size_bytes"]),
            str(len(entry["ops"])),
            str(entry["densify"]["count"]),
            " ".join(f.percent(c["sparsity"]) for c in entry["conv1x1"]) or f.DASH,
            f.percent(accuracy.get(f"keras_{base}")),
            f.percent((accuracy.get("tflite") or {}).get(name, accuracy.get(f"tflite_{name}"))),
        )
    return table


def _print_check(report: CheckReport, out: Console) -> None:
    count = len(report.problems)
    out.print(
        f"XNNPACK sparse-inference check of {escape(report.model)}: {count} problem{'s' if count != 1 else ''}",
        highlight=False,
        soft_wrap=True,
    )
    for problem in report.problems:
        where = f" ({escape(problem.layer)})" if problem.layer else ""
        fixable = " [fixable with --fix]" if problem.fixable else ""
        line = f"  ✗ {problem.rule}{where}{escape(fixable)}: {escape(problem.message)}"
        out.print(line, highlight=False, soft_wrap=True)


def _check_only(spec: BuildSpec, json_: bool, out: Console, err: Console) -> None:
    from host.builder import check_spec

    report = check_spec(spec)
    if json_:
        document: dict[str, Any] = {
            "model": report.model,
            "ok": report.ok,
            "fixed": report.fixed,
            "problems": [
                {"rule": p.rule, "layer": p.layer, "message": p.message, "fixable": p.fixable} for p in report.problems
            ],
            "problems_before_fix": [
                {"rule": p.rule, "layer": p.layer, "message": p.message} for p in report.problems_before_fix
            ],
        }
        typer.echo(json.dumps(document, indent=2))
    elif report.ok:
        fixed = f" after --fix ({', '.join(report.fixed)})" if report.fixed else ""
        message = f"ok: {escape(report.model)} can use XNNPACK's sparse inference{fixed}"
        out.print(message, highlight=False, soft_wrap=True)
    else:
        _print_check(report, out)
        if all(p.fixable for p in report.problems):
            hint = "run with --fix to rebuild the model with keepdims=True and the same weights"
            err.print(hint, highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(ModelCheckError.exit_code)


@contextmanager
def _model_check_errors(err: Console) -> Iterator[None]:
    """Prints every problem of a rejected model, one per line, then exits 2."""
    try:
        yield
    except ModelCheckError as exc:
        problems = exc.problems or [str(exc)]
        if len(problems) == 1:
            err.print(f"error: {escape(problems[0])}", highlight=False, soft_wrap=True)
        else:
            header = f"error: the model breaks {len(problems)} rules of XNNPACK's sparse inference:"
            err.print(header, highlight=False, soft_wrap=True)
            for problem in problems:
                err.print(f"  - {escape(problem)}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def build_command(
    ctx: typer.Context,
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="cifar10, synthetic, synthetic:N, npz:PATH or images:DIR.")
    ] = "cifar10",
    recipe: Annotated[str, typer.Option("--recipe", help="Built-in model recipe (when no --model).")] = "xnnpack-cnn",
    model: Annotated[
        Path | None, typer.Option("--model", "-m", help="A tf_keras model (.keras, .h5 or SavedModel folder).")
    ] = None,
    fix: Annotated[
        bool,
        typer.Option("--fix", help="Rebuild a model whose only problem is GlobalAveragePooling2D(keepdims=False)."),
    ] = False,
    check_only: Annotated[
        bool, typer.Option("--check-only", help="Only run the XNNPACK sparse-inference check (no data, no training).")
    ] = False,
    quick: Annotated[
        bool, typer.Option("--quick", help="At most 5,000 training samples and one epoch per phase.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when the cache has this build.")] = False,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Dense training epochs (guide: 10).")] = None,
    prune_epochs: Annotated[
        int | None, typer.Option("--prune-epochs", help="Epochs to reach the final sparsity (guide: 5).")
    ] = None,
    fine_tune_epochs: Annotated[
        int | None, typer.Option("--fine-tune-epochs", help="Epochs of training with pruning (guide: 15).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Batch size (guide: 128).")] = None,
    sparsity: Annotated[
        float | None,
        typer.Option("--sparsity", help="Final sparsity of the 1x1 convolutions, in (0, 1) (guide: 0.75)."),
    ] = None,
    initial_sparsity: Annotated[
        float | None, typer.Option("--initial-sparsity", help="Sparsity when pruning starts (guide: 0.25).")
    ] = None,
    subset: Annotated[
        int | None, typer.Option("--subset", help="Use at most N training samples (validation/test N/5).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for data, shuffling and initial weights.")] = 0,
    variants: VariantsOpt = "dense,pruned",
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            envvar="LAB_BUILD_BACKEND",
            help="Where to build: docker (the builder image), local, or auto (docker when an engine answers "
            "and has the builder image, else local).",
        ),
    ] = "auto",
    json_: JsonOpt = False,
) -> None:
    """Train the guide's CNN (or --model), prune it for XNNPACK, convert dense and pruned to TFLite.

    Writes LAB_HOME/artifacts/<build id>/ with dense.tflite, pruned.tflite (and each --variants
    file) and manifest.json.

    The same options again reuse that folder at once; --force rebuilds.

    Exit codes: 0 ok, 1 the build failed, 2 bad input or a model the XNNPACK check rejects.
    """
    from host.builder import BuildSpec
    from host.builder.docker import build_with_backend

    spec = BuildSpec(
        dataset=dataset,
        recipe=recipe,
        model_path=model,
        epochs=epochs,
        prune_epochs=prune_epochs,
        fine_tune_epochs=fine_tune_epochs,
        batch_size=batch_size,
        initial_sparsity=initial_sparsity,
        final_sparsity=sparsity,
        subset=subset,
        seed=seed,
        quick=quick,
        fix=fix,
        variants=tuple(variants.split(",")),
    )
    out, err = Console(), Console(stderr=True)
    with _model_check_errors(err):
        if check_only:
            _check_only(spec, json_, out, err)
            return
        from host.cli.render.progress import RichBuildProgress

        with RichBuildProgress(err) as progress:
            result = build_with_backend(spec, lab_context(ctx).home, backend=backend, force=force, progress=progress)
    if json_:
        typer.echo(json.dumps(result.manifest, indent=2))
        return
    if result.cached:
        err.print(f"cached: {escape(str(result.dir))} (--force rebuilds)", highlight=False, soft_wrap=True)
    for name, reason in result.failed_variants.items():
        err.print(f"variant {name} not built: {escape(reason)}", highlight=False, soft_wrap=True)
    out.print(build_table(result))


def register(app: typer.Typer) -> None:
    """Adds ``lab build``."""
    app.command("build")(build_command)
