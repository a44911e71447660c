"""The test kit: one simulator of golang-migrate logs for the tests, the benchmarks and sample_logs/.

* `gofmt`: Go's duration and time formats (`616.265µs`, RFC3339Nano, the `-verbose` prefix).
* `envelopes`: each shipper's record around a physical line (Docker, Fluent Bit, CRI, logcli, CloudWatch in
  its forms, slog, migrate-lens/v1, bare text), its identifiers, deterministic file writing.
* `migrate`: what one migrate process prints against a database's state (`Migrate.simulate`).
* `fleet`: `Fleet`, runs placed by hand for the analysis tests; the benchmark fleet's services and names.
* `corpus`: the ingest benchmark's Fluent Bit corpus.
* `pods`: Kubernetes Job pods running migrate, shipped by Fluent Bit, in the shapes tests/bench.py measures.
* `shipping`: a fleet's runs carried into files by its shippers (sample_logs/generate.py).
* `captures`: the real captures in tests/fixtures/real-migrate-logs and their index.

Nothing here imports pytest or the pipeline: sample_logs/generate.py and the benchmarks run it as scripts.
"""
