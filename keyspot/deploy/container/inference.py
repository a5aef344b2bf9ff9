"""Request handling for the SageMaker TensorFlow Serving container.

The container calls handler(data, context) for each POST /invocations. The
request goes through keyspot.serve.handler.handle, the same code that
`keyspot serve` runs, with TensorFlow Serving (context.rest_uri) as the model.
A request it cannot serve raises; the container answers that with a JSON
{"error": ...} (as a 500: its error status is not ours to choose).
"""

import json
import os
import sys
from pathlib import Path

CODE_DIR = Path(__file__).resolve().parent
# The keyspot copy next to this file, not any other keyspot on the path.
sys.path.insert(0, str(CODE_DIR))

from keyspot.features import FeatureSpec  # noqa: E402
from keyspot.serve import tfserving  # noqa: E402
from keyspot.serve.handler import DEFAULT_MAX_CLIP_SECONDS, handle  # noqa: E402

SPEC = FeatureSpec.load(CODE_DIR / "spec.json")
MAX_CLIP_SECONDS = float(os.environ.get("KEYSPOT_MAX_CLIP_SECONDS", DEFAULT_MAX_CLIP_SECONDS))


def handler(data, context):
    body = data.read() if hasattr(data, "read") else data
    if isinstance(body, str):
        body = body.encode("utf-8")
    content_type = getattr(context, "request_content_type", None) or "application/json"
    answer = handle(body, content_type, SPEC, tfserving.predictor(context.rest_uri),
                    max_clip_seconds=MAX_CLIP_SECONDS)
    return json.dumps(answer), "application/json"
