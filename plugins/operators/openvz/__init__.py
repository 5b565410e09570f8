"""Operators of the OpenVZ Legacy -> vpsAdminOS runbook (dags/openvz_to_vpsadminos.py): one
module per part of the page: the node pair (nodes.py), each container before the review
(container.py), the converter's stages (vz6_convert.py), ZFS streams (zfs_send.py), and what
happens after the move (move.py)."""
