"""Built-in factories. Each registers under the ``pond.factories`` entry-point group.

A factory module imports no other factory: what several of them share (column types,
renaming rules, the join on time, the configs one factory lists for another) lives in
``factories.tabular``.
"""
