"""CPU and wall seconds of every Xu & Strohmer job of a configuration, run one after the other in this process
(torch imported once, one thread each, as the job server runs them), so the stage's cost can be read off on a
shared machine where wall-clock times are inflated by other load.

    PYTHONPATH=src python benchmarks/xs_stage_cost.py --configfile my_config.yaml --out /tmp/xs_cost

The config must have an `xs:` block (schema defaults are filled in as the workflow does).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import yaml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    from snakemake.utils import validate

    torch.set_num_threads(1)
    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load(args.configfile.read_text())
    validate(config, str(root / "config" / "schema.yaml"))
    xs = config["xs"]
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    from unlearnbench.artifacts.xs import images as xs_images, plots as xs_plots
    from unlearnbench.datasets import prepare_dataset
    from unlearnbench.datasets.tabular import prepare_tabular_source
    from unlearnbench.artifacts.xs.tabular import run_tabular

    costs = {}

    def timed(name, call):
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        costs[name] = {"wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(time.process_time() - c0, 2)}
        print(name, costs[name], flush=True)

    images = {}
    for part in ("trajectories", "barycenter"):
        source = xs[part]["source"]
        if source != "celeba" and source not in images:
            images[source] = prepare_dataset(source, out / "sources" / source, download_dir=out / "downloads",
                                             mirror=config.get("data", {}).get("mirror"))
    folds = []
    for name, ds in xs["tabular"]["datasets"].items():
        table = out / f"{ds['source']}.csv"
        timed(f"source {ds['source']}", lambda: prepare_tabular_source(
            table=str(table), manifest=str(out / f"{ds['source']}.json"), source=ds["source"], mirror=None,
            download_dir=str(out / "downloads")))
        settings = {k: v for k, v in xs["tabular"].items() if k != "datasets"} | {"protected": ds["protected"]}
        for fold in range(settings["folds"]):
            folds.append(str(out / f"{name}_fold{fold}.csv"))
            timed(f"tabular {name} fold {fold}", lambda: run_tabular(
                table=str(table), frontier_csv=folds[-1], dataset=name, source=ds["source"], fold=fold,
                settings=settings, threads=1))
    timed("trajectories", lambda: xs_images.trajectories(
        source=str(images.get(xs["trajectories"]["source"])), trajectories_csv=str(out / "t.csv"),
        references=str(out / "t.json"), settings=xs["trajectories"]))
    timed("densities", lambda: xs_images.densities(densities_npz=str(out / "d.npz"), settings=xs["densities"]))
    timed("barycenter", lambda: xs_images.barycenter_images(
        images_npz=str(out / "b.npz"), settings=xs["barycenter"], source=str(images.get(xs["barycenter"]["source"]))))
    timed("figures and table", lambda: (
        xs_plots.frontier_figure(frontiers=folds, labels={}, pdf=str(out / "f.pdf"), png=str(out / "f.png")),
        xs_plots.frontier_table(frontiers=folds, table=str(out / "t.tex"), labels={}, budgets=xs["tabular"]["budgets"]),
        xs_plots.trajectory_figure(trajectories_csv=str(out / "t.csv"), references=str(out / "t.json"),
                                   pdf=str(out / "tr.pdf"), png=str(out / "tr.png")),
        xs_plots.density_figure(densities_npz=str(out / "d.npz"), pdf=str(out / "d.pdf"), png=str(out / "d.png")),
        xs_plots.barycenter_figure(images_npz=str(out / "b.npz"), pdf=str(out / "b.pdf"), png=str(out / "b.png"))))
    total = {k: round(sum(c[k] for c in costs.values()), 2) for k in ("wall_s", "cpu_s")}
    print(json.dumps({"jobs": costs, "total": total, "load_average": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
