"""The membership service (``segcore serve``, docs/service.md).

- :mod:`segcore.service.memberships`: saved segments' members materialized per (data
  version, catalog version, instant), and the entered/exited log the sync feed reads;
- :mod:`segcore.service.state`: the service's own SQLite database (snapshots, the log,
  last syncs, token use);
- :mod:`segcore.service.limits`: request size and rate limits;
- :mod:`segcore.service.app`: the FastAPI application (needs the ``service`` extra).

Only ``app`` imports FastAPI: the dashboard and the ingest command use the others.
"""
