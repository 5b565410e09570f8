"""Operators of the Synnefo v0.12 -> v0.13 upgrade (DAG synnefo_upgrade_v013), one module per
part of the runbook; common.py holds what several use (the base step, database dumps,
services)."""
