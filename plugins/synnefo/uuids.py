"""Runbook part 6 planned (pure): what Cyclades and Pithos need before their user ids become
Astakos uuids, and the per-user quota settings rewritten to uuids.

0.12 services know a user by the email "case as registered"; 0.13 Astakos by a uuid, found
from the lower-cased email (username = email.lower(), shared research synnefo.md §1, §2). So:
- Cyclades: the spellings of one email are merged into its lower-case form
  (`cyclades-astakos-migrate-013 --merge-user`: every row, deleted ones too), and ids no
  Astakos user has are deleted (`--delete-user`, exact spelling): validation refuses case
  duplicates, and `--migrate-users` prints `ERROR` for every id it cannot map;
- Pithos: the accounts of one email are merged into one (`pithos-manage-accounts
  --merge-accounts`, the lower-case spelling if there is one) and then deleted; two spellings
  left would map to one uuid and break the unique account path in `pithos-migrate`. The
  largest quota of the group is carried to the survivor (0 is unlimited in 0.12 Pithos, a
  spelling without a quota row has the default), since the merge moves files, not quotas;
- VMS_USER_QUOTA and NETWORKS_USER_QUOTA keyed by uuid: the largest limit among a user's
  spellings, a spelling Cyclades knows without an entry counting at the default (merging never
  takes resources away); entries of users Astakos does not know are dropped and reported.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


def is_email(user_id: str) -> bool:
    return "@" in user_id


@dataclass
class CycladesPlan:
    merges: list[str] = field(default_factory=list)    # `--merge-user` arguments (lower-case emails)
    deletes: list[str] = field(default_factory=list)   # `--delete-user` arguments (exact spellings)
    migrate: list[str] = field(default_factory=list)   # emails `--migrate-users` maps to uuids


def cyclades_plan(ids: list[str], usernames: set[str]) -> CycladesPlan:
    """`ids`: the distinct Cyclades user ids (VMs, networks, keys; deleted rows too);
    `usernames`: the Astakos usernames (lower-cased emails) that have a uuid."""
    spellings: dict[str, set[str]] = defaultdict(set)
    for user_id in ids:
        if user_id and is_email(user_id):
            spellings[user_id.lower()].add(user_id)
    plan = CycladesPlan()
    for email, group in sorted(spellings.items()):
        if email not in usernames:
            plan.deletes += sorted(group)
            continue
        if len(group) > 1:
            plan.merges.append(email)
        plan.migrate.append(email)
    return plan


@dataclass
class PithosMerge:
    source: str
    target: str


@dataclass
class PithosPlan:
    merges: list[PithosMerge] = field(default_factory=list)  # merge source into target, then delete source
    quotas: dict[str, str] = field(default_factory=dict)      # target account -> its new 'quota' policy value


def pithos_plan(quotas: dict[str, str | None], default: int) -> PithosPlan:
    """`quotas`: every Pithos account with its 'quota' policy value (None: no row, the default
    `default` applies). Groups by lower-cased name."""
    groups: dict[str, list[str]] = defaultdict(list)
    for account in quotas:
        groups[account.lower()].append(account)
    plan = PithosPlan()
    for name, accounts in sorted(groups.items()):
        if len(accounts) < 2:
            continue
        target = name if name in accounts else sorted(accounts)[0]
        plan.merges += [PithosMerge(a, target) for a in sorted(accounts) if a != target]
        limits = [default if quotas[a] is None else int(quotas[a]) for a in accounts]
        wanted = "0" if 0 in limits else str(max(limits))
        now = quotas[target]
        if wanted != (now if now is not None else str(default)):
            plan.quotas[target] = wanted
    return plan


@dataclass
class UserQuotaSettings:
    values: dict[str, dict[str, int]]                          # setting -> {uuid: limit}
    dropped: dict[str, list[str]] = field(default_factory=dict)  # setting -> keys no Astakos user has


def user_quota_settings(settings: dict[str, dict[str, int]], defaults: dict[str, int], uuids: dict[str, str],
                        cyclades_ids: list[str]) -> UserQuotaSettings:
    """VMS_USER_QUOTA / NETWORKS_USER_QUOTA ({setting: {key: limit}}) keyed by uuid.
    `defaults`: {setting: the 0.12 default (MAX_VMS_PER_USER, ...)}; `uuids`: {lower-cased
    email: uuid}; `cyclades_ids`: the ids Cyclades holds now. Keys already uuids stay."""
    known_uuids = set(uuids.values())
    spellings: dict[str, set[str]] = defaultdict(set)
    for user_id in cyclades_ids:
        if user_id and is_email(user_id):
            spellings[user_id.lower()].add(user_id)
    result = UserQuotaSettings({})
    for setting, entries in settings.items():
        by_uuid: dict[str, list[int]] = defaultdict(list)
        dropped = []
        for key, limit in entries.items():
            if key in known_uuids:
                by_uuid[key].append(int(limit))
            elif is_email(key) and key.lower() in uuids:
                uuid = uuids[key.lower()]
                by_uuid[uuid].append(int(limit))
                if spellings[key.lower()] - set(entries):  # a spelling without an entry: the default
                    by_uuid[uuid].append(int(defaults[setting]))
            else:
                dropped.append(key)
        result.values[setting] = {uuid: max(limits) for uuid, limits in sorted(by_uuid.items())}
        if dropped:
            result.dropped[setting] = sorted(dropped)
    return result
