"""Serving: publish model versions from the lake into Redis (`publish`, reading with `lake_rows`,
loading with `bulk_load`), the read API over Redis (`api`), and GDPR erasure (`erasure`)."""
