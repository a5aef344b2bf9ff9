"""C code generation for the firmware: the int8 model, labels and feature spec."""

from keyspot.export.c_model import ExportError, export, generate

__all__ = ["ExportError", "export", "generate"]
