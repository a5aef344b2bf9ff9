"""The SageMaker processing job's entry point: keyspot.features.extract.run under the container contract.

The job's entrypoint (processing.ENTRYPOINT) unpacks the sourcedir, installs
its requirements.txt and runs `python3 -m keyspot.sagemaker_jobs.process_entry`
(see contract.py for the paths).

Inputs:   /opt/ml/processing/input/params/params.yaml   the params the stage read
          /opt/ml/processing/input/raw/raw.tar           data/raw
Output:   /opt/ml/processing/output/features/           what data/features holds locally
"""

from __future__ import annotations

import os
import sys

from keyspot.sagemaker_jobs import contract


def main(env=os.environ) -> int:
    paths = contract.ProcessingPaths.from_env(env)

    def body() -> None:
        from keyspot import params as params_mod
        from keyspot.features import extract

        work = contract.work_dir(paths.input_dir)
        params = params_mod.load(contract.input_folder(paths.input_dir / "params", "params", work) / "params.yaml")
        raw = contract.input_folder(paths.input_dir / "raw", "raw", work)
        paths.output_dir.mkdir(parents=True, exist_ok=True)  # SageMaker makes it; a test root may not
        counts = extract.run(params, raw, paths.output_dir / "features")
        print("features: " + ", ".join(f"{split} {n}" for split, n in counts.items()), flush=True)

    return contract.run("features", body, paths.message_file)


if __name__ == "__main__":
    sys.exit(main())
