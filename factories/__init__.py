"""Built-in factories. Each registers under the ``pond.factories`` entry-point group."""
