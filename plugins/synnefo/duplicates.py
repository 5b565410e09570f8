"""Users who become one user in Synnefo 0.13, across Astakos, Cyclades and Pithos, and what
becomes of each of their accounts (pure: pandas frames in, frames and text out).

In 0.12 Cyclades and Pithos know a user by the email as registered, case included, and
Astakos never stopped two registrations differing in case, nor the same email twice (once
active, once inactive) (research synnefo.md §1, "Identity semantics"). 0.13 is case-blind:
Astakos sets username = email.lower() and its uuid catalog lower-cases the name it is asked
for (§2, "Email→UUID mapping"), so every spelling of one email ends as one user.

A group is an email stripped of surrounding whitespace and lower-cased (`key`). It needs a
decision when
- Astakos has more than one user in it (im migration 0016 stops to ask which to keep, §1);
- Cyclades has more than one spelling in it (cyclades-astakos-migrate-013 --validate fails, §2);
- Pithos has more than one account in it (the uuid migration would give two account nodes one
  path, §3); or
- its spellings differ by more than case (surrounding whitespace), which the case-blind
  tools and the catalog still take for different users.
A spelling that differs only in case between two services (Astakos kpap@, Cyclades KPap@) needs
nothing: the catalog maps both to the one uuid.

The survivor of a group:
1. one of its Astakos users if it has any, otherwise one of its spellings;
2. the one with the most resources: VMs + networks + its Pithos account, counted on its exact
   spelling (the caller passes the rows to count: all of them, deleted ones included, as the
   Cyclades tools move them all);
3. then the latest last_login (never logged in comes last);
4. then the lowest Astakos id;
5. then the lower-case spelling, then the first in code-point order (groups without Astakos users).
is_active plays no part (an old inactive registration can hold the VMs); the approver sees it.

The others:
- Astakos: every other user of the group is deleted (delete_astakos_users.py, runbook 2.1);
- Cyclades: the target is the survivor's spelling lower-cased, which --merge-user writes and
  the catalog maps to the survivor; the VMs and networks of every other spelling are reassigned
  to it. A whitespace variant is not matched by --merge-user's ILIKE: it needs an UPDATE by its
  exact value;
- Pithos: the target is the survivor's own account, else its lower-case spelling, else the first
  in code-point order; every other account is merged into it and then deleted (runbook 6.2:
  merge, then delete, so no file is lost). A lone account keeps its spelling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

USER_COLUMNS = ["key", "spelling", "astakos_id", "uuid", "is_active", "last_login", "date_joined",
                "vms", "networks", "pithos", "resources", "duplicate"]
MOVE_COLUMNS = ["key", "service", "account", "action", "target", "vms", "networks"]
DECISION_COLUMNS = ["email", "survivor", "survivor_id", "survivor_uuid", "survivor_active", "rule",
                    "astakos_deleted", "cyclades_target", "cyclades_merged", "vms_moved", "networks_moved",
                    "pithos_target", "pithos_merged"]


@dataclass
class Reconciliation:
    users: pd.DataFrame  # every account of every service, one row each (all_users)
    decisions: pd.DataFrame  # one row per group that needs a decision
    moves: pd.DataFrame  # one row per account in those groups: keep, delete or merge into target

    def summary(self) -> dict[str, int]:
        m = self.moves
        merged = m[m["action"] == "merge"]
        return {"users": int(self.users["astakos_id"].notna().sum()),
                "groups": len(self.decisions),
                "astakos_deleted": int(((m["service"] == "astakos") & (m["action"] == "delete")).sum()),
                "cyclades_spellings_merged": int((merged["service"] == "cyclades").sum()),
                "vms_moved": int(merged["vms"].sum()), "networks_moved": int(merged["networks"].sum()),
                "pithos_accounts_merged": int((merged["service"] == "pithos").sum())}


def read_accounts_csv(source) -> pd.DataFrame:
    """A frame of one of the reads in include/sql/synnefo/s2/find-duplicates.sql from its CSV
    (COPY ... TO STDOUT (FORMAT csv, HEADER)), parsed by pyarrow (multi-threaded, several times
    pandas' own parser): emails, owners, accounts and capacities (beyond a float's precision) stay
    strings, NULL (COPY's unquoted empty
    field) is NA while an empty string (quoted) stays "", booleans from t/f, epoch seconds as
    UTC times."""
    import pyarrow as pa
    from pyarrow import csv

    table = csv.read_csv(source, convert_options=csv.ConvertOptions(
        column_types={column: pa.string() for column in ("email", "userid", "account", "uuid", "username", "resource",
                                                         "capacity")},
        strings_can_be_null=True, quoted_strings_can_be_null=False, null_values=[""],
        true_values=["t"], false_values=["f"]))
    frame = table.to_pandas()
    for column in ("last_login", "date_joined"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame

def reconcile(astakos: pd.DataFrame, vms: pd.DataFrame, networks: pd.DataFrame,
              pithos: pd.DataFrame) -> Reconciliation:
    """all_users, then decide."""
    users = all_users(astakos, vms, networks, pithos)
    decisions, moves = decide(users)
    return Reconciliation(users, decisions, moves)


def all_users(astakos: pd.DataFrame, vms: pd.DataFrame, networks: pd.DataFrame,
              pithos: pd.DataFrame) -> pd.DataFrame:
    """One frame of every account of the three services, with its group.

    astakos: id, email, last_login, and if known is_active, date_joined, uuid; vms and
    networks: userid, one row per VM / network (NULL for public networks), or one per owner
    with their number in `count` (a GROUP BY userid); pithos: account, one row per account node.

    Every Astakos user is one row; a Cyclades or Pithos spelling no Astakos user has is one row
    of its own (astakos_id NA). vms, networks and pithos count what the row's exact spelling
    holds; `duplicate` marks the rows of the groups that need a decision.
    """
    identifiers = pd.concat([astakos["email"], vms["userid"], networks["userid"], pithos["account"]],
                            ignore_index=True)
    # Every distinct spelling once, so the string work is done once per spelling.
    codes, spellings = pd.factorize(identifiers)
    a_codes, vm_codes, net_codes, p_codes = np.split(codes, np.cumsum([len(astakos), len(vms), len(networks)]))

    def per_spelling(c: np.ndarray, frame: pd.DataFrame | None = None) -> np.ndarray:
        known = c >= 0
        weights = frame["count"].to_numpy()[known] if frame is not None and "count" in frame else None
        return np.bincount(c[known], weights=weights, minlength=len(spellings)).astype("int64")

    vm_n, net_n = per_spelling(vm_codes, vms), per_spelling(net_codes, networks)
    p_n, a_n = per_spelling(p_codes), per_spelling(a_codes)
    stripped = spellings.str.strip()
    keys = stripped.str.lower()
    key_codes, key_values = pd.factorize(keys.where(keys != ""))

    def per_key(spelling_weights: np.ndarray) -> np.ndarray:
        grouped = key_codes >= 0
        return np.bincount(key_codes[grouped], weights=spelling_weights[grouped], minlength=len(key_values))

    in_cyclades = (vm_n + net_n) > 0
    duplicate_key = ((per_key(a_n) > 1) | (per_key(in_cyclades) > 1) | (per_key(p_n > 0) > 1)
                     | ((per_key(np.ones(len(spellings))) > 1) & (per_key(stripped != spellings) > 0)))

    # One row per Astakos user, then one per spelling no Astakos user has.
    others = np.flatnonzero(a_n == 0)
    spelling_codes = np.concatenate([a_codes, others])
    astakos_rows = np.concatenate([np.arange(len(astakos)), np.full(len(others), -1)])
    known = spelling_codes >= 0
    at = np.where(known, spelling_codes, 0)
    vms_held, networks_held = np.where(known, vm_n[at], 0), np.where(known, net_n[at], 0)
    pithos_held = known & (p_n[at] > 0)
    users = pd.DataFrame({
        "key": _take(key_values, np.where(known, key_codes[at], -1)),
        "spelling": _take(spellings, spelling_codes),
        "astakos_id": _astakos_column(astakos, "id", "Int64", astakos_rows),
        "uuid": _astakos_column(astakos, "uuid", "str", astakos_rows),
        "is_active": _astakos_column(astakos, "is_active", "boolean", astakos_rows),
        "last_login": _astakos_column(astakos, "last_login", "datetime64[ns]", astakos_rows),
        "date_joined": _astakos_column(astakos, "date_joined", "datetime64[ns]", astakos_rows),
        "vms": vms_held, "networks": networks_held, "pithos": pithos_held,
        "resources": vms_held + networks_held + pithos_held,
        "duplicate": known & np.where(key_codes[at] >= 0, duplicate_key[key_codes[at]], False)})
    return users[USER_COLUMNS]


def _take(values: pd.Index, codes: np.ndarray):
    """values[codes], NA where a code is -1."""
    return values.take(codes, allow_fill=True, fill_value=None).array


def _astakos_column(astakos: pd.DataFrame, name: str, dtype: str, rows: np.ndarray):
    """Column `name` of the Astakos rows `rows` (-1: NA); all NA if the frame has no such column."""
    if name not in astakos:
        return pd.Series(None, index=range(len(rows)), dtype=dtype).array
    if dtype.startswith("datetime"):
        values = pd.to_datetime(astakos[name]).array
    else:
        values = pd.array(astakos[name], dtype=dtype)
    return values.take(rows, allow_fill=True)


def decide(users: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(decisions, moves) for the groups all_users marked `duplicate` (see the module's rules)."""
    group = users[users["duplicate"]]
    has_astakos = group["astakos_id"].notna().groupby(group["key"]).transform("any")
    candidates = group[group["astakos_id"].notna() | ~has_astakos].assign(
        lower_case=lambda f: f["spelling"] == f["key"], has_astakos=has_astakos)
    ranked = candidates.sort_values(["key", "resources", "last_login", "astakos_id", "lower_case", "spelling"],
                                    ascending=[True, False, False, True, False, True], na_position="last")
    first = ranked.drop_duplicates("key")
    runner_up = ranked[ranked.duplicated("key")].drop_duplicates("key")
    survivors = first.merge(runner_up[["key", "resources", "last_login", "astakos_id"]], on="key", how="left",
                            suffixes=("", "_next"))
    survivors["rule"] = _rule(survivors)
    survivors["target"] = survivors["spelling"].str.lower()
    moves = pd.concat([_astakos_moves(group, survivors), _cyclades_moves(group, survivors),
                       _pithos_moves(group, survivors)], ignore_index=True)
    return _decisions(survivors, moves), moves[MOVE_COLUMNS]


def _rule(s: pd.DataFrame) -> np.ndarray:
    """Which step of the rule chose the survivor over the runner-up."""
    alone = s["resources_next"].isna()
    later = s["last_login"].notna() & (s["last_login_next"].isna() | (s["last_login"] > s["last_login_next"]))
    lower_id = s["astakos_id"].notna() & s["astakos_id_next"].notna() & (s["astakos_id"] < s["astakos_id_next"])
    return np.select(
        [alone & s["has_astakos"], alone, s["resources"] > s["resources_next"], later.fillna(False),
         lower_id.fillna(False), s["lower_case"]],
        ["only Astakos user", "only account", "most resources", "latest login", "lowest id", "lower-case spelling"],
        default="first spelling")


def _astakos_moves(group: pd.DataFrame, survivors: pd.DataFrame) -> pd.DataFrame:
    users = group[group["astakos_id"].notna()].merge(survivors[["key", "astakos_id"]], on="key",
                                                     suffixes=("", "_survivor"))
    keep = users["astakos_id"] == users["astakos_id_survivor"]
    return pd.DataFrame({"key": users["key"], "service": "astakos", "account": users["astakos_id"].astype(str),
                         "action": np.where(keep.fillna(False), "keep", "delete"),
                         "target": users["astakos_id_survivor"].astype(str), "vms": 0, "networks": 0})


def _cyclades_moves(group: pd.DataFrame, survivors: pd.DataFrame) -> pd.DataFrame:
    owners = group[(group["vms"] + group["networks"]) > 0].drop_duplicates("spelling")
    owners = owners.merge(survivors[["key", "target"]], on="key")
    several = owners.groupby("key")["spelling"].transform("size") > 1
    # --merge-user rewrites every spelling to the lower-case one; one spelling that only
    # differs in case is mapped by the catalog as it is.
    merge = (owners["spelling"] != owners["target"]) & (several | (owners["spelling"].str.lower() != owners["target"]))
    return pd.DataFrame({"key": owners["key"], "service": "cyclades", "account": owners["spelling"],
                         "action": np.where(merge, "merge", "keep"), "target": owners["target"],
                         "vms": owners["vms"], "networks": owners["networks"]})


def _pithos_moves(group: pd.DataFrame, survivors: pd.DataFrame) -> pd.DataFrame:
    accounts = group[group["pithos"]].drop_duplicates("spelling").merge(
        survivors[["key", "spelling", "target"]], on="key", suffixes=("", "_survivor"))
    accounts = accounts.assign(own=accounts["spelling"] == accounts["spelling_survivor"],
                               lower=accounts["spelling"] == accounts["target"])
    ranked = accounts.sort_values(["key", "own", "lower", "spelling"], ascending=[True, False, False, True])
    dest = ranked.drop_duplicates("key").set_index("key")["spelling"]
    accounts["dest"] = accounts["key"].map(dest)
    merge = accounts["spelling"] != accounts["dest"]
    return pd.DataFrame({"key": accounts["key"], "service": "pithos", "account": accounts["spelling"],
                         "action": np.where(merge, "merge", "keep"), "target": accounts["dest"],
                         "vms": 0, "networks": 0})


def _shown(spellings: pd.Series) -> pd.Series:
    """A spelling as the reports show it: quoted when surrounding whitespace would hide a difference."""
    return spellings.where(spellings == spellings.str.strip(), "'" + spellings + "'")


def joined(items: pd.Series, by: pd.Series) -> pd.Series:
    """The items of each group joined by ", " (a groupby sum of strings: no Python call per group)."""
    return (items + ", ").groupby(by).sum().str[:-2]


def _decisions(survivors: pd.DataFrame, moves: pd.DataFrame) -> pd.DataFrame:
    def listed(service: str, action: str) -> pd.Series:
        chosen = moves[(moves["service"] == service) & (moves["action"] == action)]
        # Astakos ids in numeric order, spellings in code-point order.
        chosen = chosen.sort_values("account", key=lambda a: a.astype("int64") if service == "astakos" else a)
        return joined(_shown(chosen["account"]), chosen["key"])

    merged = moves[(moves["service"] == "cyclades") & (moves["action"] == "merge")]
    moved = merged.groupby("key")[["vms", "networks"]].sum()
    pithos_merged = listed("pithos", "merge")
    targets = moves[moves["service"] == "pithos"].drop_duplicates("key").set_index("key")["target"]
    d = survivors.set_index("key")
    decisions = pd.DataFrame({
        "email": d.index, "survivor": _shown(d["spelling"]).to_numpy(), "survivor_id": d["astakos_id"].to_numpy(),
        "survivor_uuid": d["uuid"].to_numpy(), "survivor_active": d["is_active"].to_numpy(),
        "rule": d["rule"].to_numpy(),
        "astakos_deleted": listed("astakos", "delete").reindex(d.index).to_numpy(),
        "cyclades_target": d["target"].where(d.index.isin(moved.index)).to_numpy(),
        "cyclades_merged": listed("cyclades", "merge").reindex(d.index).to_numpy(),
        "vms_moved": moved["vms"].reindex(d.index, fill_value=0).to_numpy(),
        "networks_moved": moved["networks"].reindex(d.index, fill_value=0).to_numpy(),
        "pithos_target": targets.where(targets.index.isin(pithos_merged.index)).reindex(d.index).to_numpy(),
        "pithos_merged": pithos_merged.reindex(d.index).to_numpy()})
    decisions["survivor_id"] = decisions["survivor_id"].astype("Int64")
    # Text columns as pandas' string dtype whatever numpy built them as (object arrays with
    # None): string arithmetic on them then works the same with or without pyarrow.
    text = ["email", "survivor", "survivor_uuid", "rule", "astakos_deleted", "cyclades_target", "cyclades_merged",
            "pithos_target", "pithos_merged"]
    decisions[text] = decisions[text].astype("str")
    return decisions[DECISION_COLUMNS].reset_index(drop=True)


def approval_markdown(decisions: pd.DataFrame, limit: int = 20) -> str:
    """A short table for the approver: one row per group, the first `limit` of them."""
    if decisions.empty:
        return "No duplicate users: nothing to merge or delete."
    deleted = decisions["astakos_deleted"].str.count(", ").add(1).sum()
    merged = decisions["pithos_merged"].str.count(", ").add(1).sum()
    lines = [f"{len(decisions)} users with duplicate accounts keep one each: delete {int(deleted)} Astakos users, "
             f"reassign {decisions['vms_moved'].sum()} VMs and {decisions['networks_moved'].sum()} networks, "
             f"merge {int(merged)} Pithos accounts.", ""]
    d = decisions.head(limit)
    keep = ("#" + d["survivor_id"].astype(str) + " ").where(d["survivor_id"].notna(), "(no Astakos user) ") + d["survivor"]
    cyclades = (d["cyclades_merged"] + " → " + d["cyclades_target"] + " (VMs " + d["vms_moved"].astype(str)
                + ", networks " + d["networks_moved"].astype(str) + ")")
    pithos = d["pithos_merged"] + " → " + d["pithos_target"]
    cells = pd.DataFrame({"email": d["email"], "keep": keep, "why": d["rule"],
                          "delete in Astakos": "#" + d["astakos_deleted"].str.replace(", ", ", #"),
                          "Cyclades: reassign": cyclades, "Pithos: merge, then delete": pithos}).fillna("")
    cells = cells.apply(lambda column: column.str.replace("|", "\\|", regex=False))
    lines += ["| " + " | ".join(cells.columns) + " |", "|" + "---|" * len(cells.columns)]
    lines += ("| " + cells.iloc[:, 0].str.cat(cells.iloc[:, 1:], sep=" | ") + " |").tolist()
    if len(decisions) > limit:
        lines.append(f"... and {len(decisions) - limit} more (see the CSV report)")
    return "\n".join(lines)


def report_csv(decisions: pd.DataFrame) -> str:
    """The decisions as CSV, every group and column."""
    return decisions.to_csv(index=False, lineterminator="\n")
