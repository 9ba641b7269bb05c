"""The spec: pydantic models (one module per lifecycle stage) and a loader with positions."""
