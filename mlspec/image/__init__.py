"""Docker images: build through the Engine API, and the model server."""
