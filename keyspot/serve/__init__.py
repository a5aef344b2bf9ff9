"""Serving the model: one request path (handler), two hosts.

handler    request body -> features -> predict -> JSON answer; runs in both hosts
tfserving  the SageMaker container's predict: TensorFlow Serving's REST API
runner     `keyspot serve`'s predict: the TFLite model in-process (LiteRT)
convert    SavedModel -> float TFLite, run in a process of its own
app        the WSGI app: /ping, /invocations, the page at /
server     gunicorn around the app: `keyspot serve`
"""
