"""The features and train stages as SageMaker jobs, running the same keyspot code.

`backend.features=sagemaker` runs keyspot.features.extract.run in a processing job,
`backend.train=sagemaker` runs keyspot.train.run in a training job (managed
spot, checkpoints in S3). The local side (stages/features.py, stages/train.py)
uploads the inputs, starts the job, follows it and puts its outputs where a
local run puts them: the same files, with the same bytes (but for one, see
training.py).

Local side:  config (params.sagemaker checked), sourcedir (the code the job
             runs), s3_store (content-addressed uploads, downloads),
             lifecycle + cloudwatch (create, follow, stop), processing and
             training (one stage each).
Job side:    contract (the container's paths), train_entry, process_entry;
             folder_tar is shared. These import nothing but keyspot and what
             keyspot's own code needs.
"""

from keyspot.errors import UserError


class JobError(UserError, ValueError):
    """A SageMaker job cannot start or did not succeed; the message says why and
    what to do; a UserError, so that stage.main reports it in one line."""


def printer(stage: str):
    """Progress lines of a stage, as `<stage>: <line>`, at once (DVC shows them as they come)."""
    return lambda line: print(f"{stage}: {line}", flush=True)
