"""Synnefo 0.12 -> 0.13 in the lab (issue 11), so far its databases: `snf_apps` (Astakos and
Cyclades, Django) and `snf_pithos` (the Pithos backend) on the lab's PostgreSQL
(lab/core/postgres.py), seeded with the mess the upgrade has to clean up.

- schema/: the 0.12 tables the upgrade reads and writes;
- world.py: seeds them (`seed`), copies a seeded pair (`copy`), drops them (`destroy`).

Not yet a product of lab/core/products.py: its nodes, snf-manage and settings files come
later. This module stays light (no database driver imported), so the core can import it.
"""

from __future__ import annotations

from pathlib import Path

from lab.core.config import LabConfig

__all__ = ["databases_record", "destroy_world", "seed_world"]


def databases_record(cfg: LabConfig) -> Path:
    """The file that says which Synnefo databases a lab has, and on which server: written
    before they are created, removed once they are dropped."""
    return cfg.root / "synnefo-databases.json"


def seed_world(cfg: LabConfig, **options) -> dict:
    """A fresh 0.12 world's databases for this lab (lab/synnefo/world.py, `options` go there)."""
    from lab.synnefo import world

    return world.seed(cfg, **options)


def destroy_world(cfg: LabConfig) -> None:
    """Drop the lab's Synnefo databases; nothing to do, and no server to reach, when the lab
    never had any."""
    if not databases_record(cfg).exists():
        return
    from lab.synnefo import world

    world.destroy(cfg)
