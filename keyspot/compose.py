"""Compose conf/ with Hydra into the dict that params.yaml holds.

DVC does the same on `dvc exp run` (hydra enabled in .dvc/config); this is
for `make params`, the tests and anyone who edits conf/ by hand.
"""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML


def compose(conf_dir: Path | str = "conf", overrides: list[str] | None = None) -> dict:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base=None):
        cfg = hydra_compose(config_name="config", overrides=list(overrides or []))
    return OmegaConf.to_container(cfg, resolve=True)


def write_params(data: dict, path: Path | str = "params.yaml") -> None:
    """Write like DVC does (ruamel, YAML 1.2), so that both agree byte for byte.

    No "generated" header: DVC rewrites the file without one on every
    `dvc exp run`, and a header would show as a change each time."""
    import io

    yaml = YAML()
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(data, out)
    Path(path).write_text(out.getvalue())
