"""Every analytic but funnels as one SQL query (sqlglot trees), for any dialect.

Each module builds a query whose rows are the analytic's small aggregate (counts
per point, per channel combination, per overlap region...); the runners
(``segcore.query.runners``) run it on an engine (:mod:`segcore.engine.sql.engines`)
and shape it with the same function as the Polars result. Membership at an
instant always comes from :class:`segcore.engine.sql.compiler.Compiler` (one place
for each rule of the semantics).
"""
