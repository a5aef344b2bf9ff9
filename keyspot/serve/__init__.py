"""Serving the model: one request path (handler), two hosts.

handler    request body -> features -> predict -> JSON answer; runs in both hosts
tfserving  the SageMaker container's predict: TensorFlow Serving's REST API
convert    SavedModel -> float TFLite, run in a process of its own
app        the WSGI app: /ping, /invocations, the page at /
server     gunicorn around the app: `keyspot serve`

`keyspot serve`'s predict is keyspot.tflite_runner on the LiteRT
interpreter, in-process: it imports without TensorFlow and invokes this size
of model in well under a millisecond. By default the model is the float
TFLite conversion of models/saved_model, the SavedModel that the SageMaker
endpoint serves, so both hosts answer with the same probabilities (to float
rounding); `--int8` serves models/model_int8.tflite, the numbers the
microcontroller computes.
"""
