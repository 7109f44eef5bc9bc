"""The model-serving service: a PyTorch model behind a FastAPI app.

Kept free of imports: ``python -m <package>.healthcheck`` imports this file first and
must stay fast and dependency-free.
"""

__version__ = "0.1.0"
