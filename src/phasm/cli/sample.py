"""``phasm sample``: a design of experiments (optionally adaptive) over a Dask cluster into a store."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from phasm.cli.common import Settings, console, fail, parse_params


def sample_command(
    target: str = typer.Argument(..., help="module:function or file.py:function (a phasm.surrogate or a plain function)."),
    space: list[str] = typer.Option(..., "--space", "-s",
                                    help="NAME=LOW:HIGH, NAME=LOW:HIGH:log or NAME=VALUE (fixed); repeatable."),
    n: int = typer.Option(..., "--n", "-n", help="Design size (original calls)."),
    method: str = typer.Option("sobol", "--method", "-m", help="sobol | lhs | grid | random."),
    store: Optional[Path] = typer.Option(None, "--store", help="Capture store (default: the surrogate's store, "
                                                                 "else captures/<function>.h5)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w",
                                          help="Local worker processes (default: one per core; 0: no Dask, this process)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler."),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="slurm | pbs | sge | lsf | htcondor | moab | oar "
                                                                  "(dask-jobqueue), scaled to --workers jobs."),
    cluster_opt: list[str] = typer.Option([], "--cluster-opt", help="KEY=VALUE for the dask-jobqueue cluster "
                                                                     "(cores=32, memory=64GB, queue=..., walltime=...)."),
    seed: int = typer.Option(0, help="Seed of the design."),
    batch_rows: Optional[int] = typer.Option(None, "--batch-rows", help="Design rows per Dask task."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Rerun rows that failed in an earlier run."),
    adaptive: int = typer.Option(0, "--adaptive", help="Adaptive rounds after the design (0: none)."),
    adaptive_batch: Optional[int] = typer.Option(None, "--adaptive-batch", help="Rows per adaptive round (default n/4)."),
    rel: Optional[float] = typer.Option(None, "--rel", help="Adaptive: tolerance, relative error per call."),
    abs_: Optional[float] = typer.Option(None, "--abs", help="Adaptive: tolerance, absolute error per call."),
    max_miss_rate: float = typer.Option(0.01, "--max-miss-rate", help="Adaptive: the gate's bound on misses."),
    backend: str = typer.Option("ensemble", "--backend", help="Adaptive: backend trained each round."),
    param: list[str] = typer.Option([], "--param", "-p", help="Adaptive: backend parameter KEY=VALUE, repeatable."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Adaptive: save the last model folder here."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run a function over a design of experiments on Dask and capture every call into its store."""
    from phasm.discover.examples import load_target
    from phasm.errors import PhasmError
    from phasm.sampling import Space, sample
    from phasm.surrogate.wrapper import Surrogate

    if sum(x is not None for x in (scheduler, cluster)) > 1:
        fail("give one of --scheduler ADDRESS or --cluster KIND")
    try:
        fn = load_target(target)
        parsed = Space.from_strings(space)
        if store is None and not (isinstance(fn, Surrogate) and fn.store_path is not None):
            store = Path("captures") / f"{target.partition(':')[2]}.h5"
        tolerance = None
        if rel is not None or abs_ is not None:
            from phasm.gate.tolerance import Tolerance

            tolerance = Tolerance(rel=rel, abs=abs_, max_miss_rate=max_miss_rate)
        train_params = {"backend": backend, **parse_params(param)}
        if backend == "ensemble":
            train_params.setdefault("member", "torch")
        result = sample(fn, parsed, n, method, store=store, workers=workers, scheduler=scheduler, cluster=cluster,
                        cluster_options=parse_params(cluster_opt), seed=seed, batch_rows=batch_rows,
                        retry_failed=retry_failed, progress=not quiet, adaptive=adaptive, adaptive_batch=adaptive_batch,
                        tolerance=tolerance, train_params=train_params)
    except (PhasmError, ValueError, TypeError, OSError) as exc:
        if Settings.debug:  # `phasm --debug`: the traceback, as every command shows it
            raise
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    console.print(result.summary())
    if result.rounds:
        from rich.table import Table

        t = Table(title="adaptive rounds")
        for col in ("round", "original calls", "fallback over the space", "certified", "miss bound", "validation rel p99"):
            t.add_column(col)
        for r in result.rounds:
            p99 = max((v.get("rel_p99", float("nan")) for v in r.validation.values()), default=float("nan"))
            t.add_row(str(r.round), str(r.calls), f"{r.fallback_rate:.1%}", "yes" if r.certified else "no",
                      f"{r.miss_rate_bound:.2%}", f"{p99:.2%}")
        console.print(t)
        if out is not None and result.model is not None:
            result.model.save(out)
            console.print(f"model written to [bold]{out}[/]")
    if result.pending:
        raise typer.Exit(code=2)


def register(app: typer.Typer) -> None:
    app.command(name="sample")(sample_command)
