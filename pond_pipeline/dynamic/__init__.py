"""Dynamic nodes: the factory registry and the resolution of any path to its content."""
