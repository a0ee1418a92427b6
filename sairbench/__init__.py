"""sairbench: benchmark suite for image inpainting with implicit neural representations."""

__version__ = "0.1.0"

from sairbench.errors import SairbenchError  # noqa: E402
from sairbench.registry import create_model, list_models, register_model  # noqa: E402

__all__ = ["SairbenchError", "create_model", "list_models", "register_model", "__version__"]
