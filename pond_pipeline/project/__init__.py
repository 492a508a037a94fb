"""``pond.yaml`` and the pond: the file's models (``pond_yaml``), the pipeline it declares
(``pipeline``), reconciling the pond with it (``apply``) and writing produced content
back into the pond (``materialize``)."""
