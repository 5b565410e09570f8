"""Synnefo v0.13 upgrade: the pure logic of the DAG (no Airflow, no I/O): users who are one
person across Astakos, Cyclades and Pithos (duplicates), and the quota export files, the
`user-set-initial-quota --from-file` input and the `astakos-quota --verify` output (quotas)."""
