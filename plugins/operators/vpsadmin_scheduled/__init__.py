"""Operators of the scheduled vpsAdmin 2.0 DAGs that replace the cluster's cron jobs
(runbook: "Cron jobs"): lifetimes.py for vpsadmin_lifetimes, report.py for
vpsadmin_daily_report."""
