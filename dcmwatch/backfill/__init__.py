"""Backfills: `dcmwatch process` over folders, manifests or S3 prefixes, on a local pool or Dask.

The same per-file core as the daemon (`pipeline.process_bytes`), run in batches of paths by an
engine (the in-process spawn pool, or a Dask distributed cluster), with a driver that lists
lazily, keeps a bounded window of batches in flight and journals every input. `driver` has the
loop, `batch` the worker side, `engine` the two engines, `cli` the glue to `dcmwatch process`.
"""
