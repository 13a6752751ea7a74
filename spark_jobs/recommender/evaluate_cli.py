"""`audotics evaluate`: tune, fit and score ALS on an interactions file, beside the popularity
baseline, and print one JSON object (progress goes to stderr)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

import click
import pyarrow.parquet as pq

from audotics.settings import Settings, get_settings
from spark_jobs.recommender import spark_data, spark_evaluation
from spark_jobs.recommender.data import FILE_FORMATS, index_interactions, read_interactions_file
from spark_jobs.recommender.engines import ALSParams, engine_name, make_engine
from spark_jobs.recommender.evaluation import evaluate_with_baseline
from spark_jobs.recommender.ranking import factor_scorer
from spark_jobs.recommender.splits import parse_split
from spark_jobs.recommender.tuning import random_search

log = logging.getLogger(__name__)


def evaluate_file(
    settings: Settings,
    path: str,
    *,
    file_format: str,
    split_spec: str,
    k: int,
    seed: int,
    engine: str | None = None,
    trials: int | None = None,
    budget_seconds: float | None = None,
) -> dict[str, Any]:
    """The evaluation report of one file: model and baseline metrics, params, timings. The
    implicit engine reads, splits and scores in numpy; Spark does all of it in Spark."""
    name = engine_name(settings, _rows(path, file_format), engine)
    als = make_engine(name, settings)
    defaults = replace(ALSParams.from_settings(settings), seed=seed)
    trials = settings.recommender_tuning_trials if trials is None else trials
    budget_seconds = budget_seconds or settings.recommender_tuning_budget_seconds
    if name == "spark":
        data = spark_data.index_interactions(
            spark_data.read_interactions_file(als.spark, path, file_format), source=path
        )
        split = spark_data.parse_split(split_spec, seed)(data)
        sizes = (data.size, data.n_users, data.n_items, split.train.size, split.test.size)
        carve = spark_data.parse_split(split_spec, seed + 1)
        tuning = spark_evaluation.tune(
            als, split.train, carve, defaults, k=k, trials=trials, budget_seconds=budget_seconds
        )
        model = als.fit(split.train, tuning.best)
        results = spark_evaluation.evaluate_with_baseline(model, split, k)
    else:
        data = index_interactions(read_interactions_file(path, file_format), source=path)
        split = parse_split(split_spec, seed)(data)
        sizes = (len(data), data.n_users, data.n_items, len(split.train), len(split.test))
        tuning = random_search(
            als, split.train, parse_split(split_spec, seed + 1), defaults,
            k=k, trials=trials, budget_seconds=budget_seconds,
        )  # fmt: skip
        model = als.fit(split.train.matrix(), tuning.best)
        results = evaluate_with_baseline(
            factor_scorer(model.user_factors, model.item_factors), split, k
        )
    interactions, users, items, train, test = sizes
    log.info(
        "%s: %d interactions, %d users, %d items; %d train / %d test; engine %s fit in %.2fs "
        "with %s", path, *sizes, name, model.fit_seconds, tuning.best,
    )  # fmt: skip
    report: dict[str, Any] = {
        "engine": name,
        "split": split_spec,
        "k": k,
        "seed": seed,
        "interactions": interactions,
        "users": users,
        "items": items,
        "train_interactions": train,
        "test_interactions": test,
        "users_evaluated": int(results["model"].pop("users")),
        "params": tuning.best.as_dict(),
        "tuning": tuning.summary(),
        "fit_seconds": round(model.fit_seconds, 3),
    }
    results["baseline"].pop("users")
    for side, metrics in results.items():
        report.update({f"{side}.{name}": round(value, 6) for name, value in metrics.items()})
    return report


def _rows(path: str, file_format: str) -> int:
    """The file's rows, for the engine choice (`auto`), without reading its values: the
    Parquet footer, or the lines of a text file (the header included: close enough)."""
    if file_format == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    with open(path, "rb") as lines:
        return sum(1 for _ in lines)


@click.command("evaluate")
@click.option(
    "--interactions",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="user_id,item_id[,weight][,timestamp] (csv with header, parquet) or u.data.",
)
@click.option("--format", "file_format", type=click.Choice(FILE_FORMATS), default="csv")
@click.option("--k", type=int, default=None, help="Metric cutoff [setting recommender_k].")
@click.option(
    "--split",
    "split_spec",
    default="stratified:0.75",
    show_default=True,
    help="stratified:<train share per user> or temporal:<test days at the end>.",
)
@click.option("--seed", type=int, default=None, help="[setting recommender_seed]")
@click.option(
    "--engine",
    type=click.Choice(["auto", "implicit", "spark"]),
    default=None,
    help="[setting recommender_engine]",
)
@click.option("--trials", type=int, default=None, help="Tuning trials, 0 to skip tuning.")
@click.option("--budget-seconds", type=float, default=None, help="Tuning time budget.")
def evaluate_command(
    path: str,
    file_format: str,
    k: int | None,
    split_spec: str,
    seed: int | None,
    engine: str | None,
    trials: int | None,
    budget_seconds: float | None,
) -> None:
    """Evaluate ALS against the popularity baseline on an interactions file (JSON on stdout)."""
    settings = get_settings()
    report = evaluate_file(
        settings,
        path,
        file_format=file_format,
        split_spec=split_spec,
        k=k or settings.recommender_k,
        seed=settings.recommender_seed if seed is None else seed,
        engine=engine,
        trials=trials,
        budget_seconds=budget_seconds,
    )
    click.echo(json.dumps(report))
