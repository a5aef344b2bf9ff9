"""The model as MLflow loads and serves it: a pyfunc LoggedModel, logged
from this file (MLflow's models-from-code), so that loading it runs this
code rather than unpickling an object.

`mlflow.pyfunc.load_model("models:/keyspot-synthetic-ds_cnn_80@candidate")`
gives a model whose `predict` takes a batch of normalised features, shaped
(batch, frames, coefficients, 1) float32 as `spec.json` describes them, and
returns one probability per label: the Keras model the pipeline trained.
The int8 model for the board (`model_int8.tflite`) and the feature spec
(`spec.json`) travel with it as artifacts. The file needs Keras and MLflow
only, not keyspot.
"""

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


class KeywordModel(PythonModel):
    def load_context(self, context) -> None:
        import keras

        self.model = keras.models.load_model(context.artifacts["model.keras"])

    def predict(self, context, model_input: np.ndarray, params: dict | None = None) -> np.ndarray:
        return self.model.predict(np.asarray(model_input, dtype=np.float32), verbose=0)


mlflow.models.set_model(KeywordModel())
