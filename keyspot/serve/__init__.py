"""Request handling for inference, shared by the SageMaker container and the local server."""
