"""``bench synth``: write the synthetic dataset, or a preview grid of identities x yaws."""

from __future__ import annotations

from pathlib import Path

import click

from .params import POSITIVE, SEED


@click.command()
@click.argument("out", required=False, type=click.Path(path_type=Path))
@click.option("--preset", "preset_name", type=click.Choice(["small", "full"]), default="small",
              show_default=True, help="Sizes: small (tests, CPU demo) or full (the real sets').")
@click.option("--identities", type=POSITIVE, default=None,
              help="Training identities (overrides the preset).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--force", is_flag=True,
              help="Replace OUT if it already holds a synthetic dataset.")
@click.option("--workers", type=POSITIVE, default=None,
              help="Worker processes (default: the CPU count, at most 8).")
@click.option("--preview", type=click.Path(path_type=Path), default=None,
              help="Write a PNG grid of identities x yaws to this file instead.")
@click.option("--preview-identities", type=POSITIVE, default=5, show_default=True)
def synth(out, preset_name, identities, seed, force, workers, preview, preview_identities):
    """Generate a synthetic 3D face dataset in the CFP, IJB-A and manifest formats into OUT,
    or only a preview grid: two uses, one at a time.

    \b
        bench synth OUT [--preset small|full] [--identities N] [--seed S] [--force]
        bench synth --preview FILE.png [--preview-identities N] [--seed S]

    Same seed, same bytes. Layout: OUT/synth.json, OUT/train/metadata.csv, OUT/cfp/...,
    OUT/ijba/... (see bench/synth/__init__.py).
    """
    from ..synth import generate, preset, render_preview

    changes = {"seed": seed}
    if identities is not None:
        changes["train.identities"] = identities
    config = preset(preset_name, **changes)
    if preview is not None:
        if out is not None:
            raise click.UsageError("give either OUT or --preview FILE.png, not both")
        from ..fileio import check_output_file

        check_output_file(preview, what="--preview")
        path = render_preview(preview, config, identities=preview_identities)
        click.echo(f"wrote preview {path}")
        return
    if out is None:
        raise click.UsageError("give an output folder OUT (or --preview FILE.png)")
    summary = generate(out, config, force=force, workers=workers, progress=True,
                       preset_name=preset_name, force_name="--force")
    counts = summary["counts"]
    click.echo(
        f"wrote {counts['images']} images ({summary['bytes'] / 1e6:.1f} MB) to {summary['path']} "
        f"in {summary['seconds']:.1f} s: train {counts['train']['identities']} identities / "
        f"{counts['train']['images']} images, CFP {counts['cfp']['identities']} identities, "
        f"IJB-A {counts['ijba']['subjects']} subjects / {counts['ijba']['images']} images")
