"""Packaging for, and deployment to, Amazon SageMaker.

`package` builds model.tar.gz and needs no AWS; `sagemaker` uploads and
deploys it and imports boto3, so import it only when deploying.
"""

from keyspot.errors import UserError


class DeployError(UserError, RuntimeError):
    """Packaging or deployment cannot go on; the message says what to fix."""
