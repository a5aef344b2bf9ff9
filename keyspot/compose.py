"""Compose conf/ with Hydra into the dict that params.yaml holds.

DVC does the same on `dvc exp run` (hydra enabled in .dvc/config); this is
for `make params`, the tests and anyone who edits conf/ by hand.
"""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

from keyspot.errors import UserError


class ComposeError(UserError, ValueError):
    """An override names no key or group of conf/, or cannot be parsed."""


def compose(conf_dir: Path | str = "conf", overrides: list[str] | None = None) -> dict:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base=None):
            cfg = hydra_compose(config_name="config", overrides=list(overrides or []))
        return OmegaConf.to_container(cfg, resolve=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise ComposeError(_one_line(str(err))) from None


def _one_line(message: str) -> str:
    """Hydra's multi-line messages as one line, without its search-path listing:
    "Could not find 'model/nonexistent'; available options in 'model': cnn, ..."."""
    lines = [line.strip().rstrip(".") for line in message.splitlines()
             if line.strip() and not line.strip().startswith(("provider=", "Config search path"))]
    out, options = [], []
    for line in lines:
        if out and out[-1].lower().startswith("available options") and not line.endswith(":"):
            options.append(line)
        else:
            out.append(line.rstrip(":") if line.lower().startswith("available options") else line)
    text = "; ".join(out)
    return f"{text}: {', '.join(options)}" if options else text


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
