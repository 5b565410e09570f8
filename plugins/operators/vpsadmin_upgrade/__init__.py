"""Operators of the vpsAdmin v1.22 -> v2.0 upgrade (DAG vpsadmin_upgrade_v2), one module per
section: the Graph view's group `<group>` is `<group>.py` here; common.py holds what several
sections use."""
