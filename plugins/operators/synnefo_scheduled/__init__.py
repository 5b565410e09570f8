"""Operators of the scheduled Synnefo DAGs (synnefo_project_control)."""
