"""Puts keyspot's config schema (keyspot/schema.py) into Hydra's ConfigStore.

Hydra imports every module of the `hydra_plugins` namespace when it looks
for plugins, and `dvc exp run` has it look in the repository root
(hydra.plugins_path) before composing conf/ into params.yaml. So DVC's
composition checks keys and types against the same schema as
`keyspot compose` does, without keyspot being a plugin of anything.
"""

from keyspot import schema

schema.register()
