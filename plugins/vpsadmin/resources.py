"""Cluster resources for the v1.22 users (pure: pandas frames in, a plan out; no Airflow, no I/O).

Does what the runbook's `releases/v2.0/assign_cluster_resources.rb` does (research/vpsadmin.md
§4.5): for every user x environment x resource a `user_cluster_resources` row whose value is the
sum of the user's `cluster_resource_uses` there, raised to a minimum; a use per VPS and resource
from its configs and IP addresses, and per top-level NAS dataset from its quota. It differs:

- the CPU configs are matched as `cpu-<N>c-<limit>` (what the script and the v1.22 config names
  use); the runbook text's `cpu-(\\d+)-\\d+` matches none of them (RUNBOOK_CPU_PATTERN);
- it can run again: a VPS or NAS dataset that already has its uses is not translated again, the
  missing user_cluster_resources rows are inserted, existing ones are only ever raised (never
  lowered: an allocation made since is kept), so a second run changes nothing;
- the minimums come from a parameter, per environment label, not from a constant in the script.

As in the script, a resource a VPS has no config for gets no use (and its dataset's refquota is
left alone), matched configs are deleted from the VPS (the last one by `order` wins when two
match the same resource), and a NAS dataset without a quota property counts 0 MiB. Users and
VPSes in `hard_delete` are out of scope, as the API's default scopes leave them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from airlift.errors import StepError
from vpsadmin.environments import DEFAULT_MINIMUMS, RESOURCES  # MINIMUMS: the script's MINIMUM[nil]

# (resource, pattern the whole config name must match, amount per unit N: MiB or count).
CONFIG_RULES = (
    ("memory", r"ram-vswap-(\d+)g-swap-0g", 1024),
    ("swap", r"swap-(\d+)g", 1024),
    ("cpu", r"cpu-(\d+)c-\d+", 1),
    ("diskspace", r"hdd-(\d+)g", 1024),
)
# What the runbook's text says for CPU; kept to document (and test) that it matches nothing.
RUNBOOK_CPU_PATTERN = r"cpu-(\d+)-\d+"


# (class_name, table_name) of the objects a use is registered on.
VPS_OBJECT = ("Vps", "vps")
DATASET_IN_POOL_OBJECT = ("DatasetInPool", "dataset_in_pools")

USE_COLUMNS = ["user_id", "environment_id", "resource", "class_name", "table_name", "row_id", "value"]


def property_int(text) -> int | None:
    """An integer dataset property as stored: `serialize :value` keeps a YAML dump
    ("--- 61440\n...\n"); a bare number is read as well. None/empty: None."""
    if text is None:
        return None
    body = str(text).strip()
    if body.startswith("---"):
        body = body[3:].split("\n...", 1)[0].strip()
    return int(body) if body else None


def property_text(value: int) -> str:
    """What Rails writes for an integer property value (YAML.dump)."""
    return f"--- {int(value)}\n...\n"


class ResourceError(StepError, ValueError):
    """The database or the parameter cannot be translated; the message says what to fix."""


# -- configs --------------------------------------------------------------------------------
def config_resources(vps_configs: pd.DataFrame) -> pd.DataFrame:
    """The resource configs among vps_configs (id, vps_id, order, name): one row per matched
    config with its resource and value (MiB or count). Unmatched configs are left out."""
    matched = []
    for resource, pattern, unit in CONFIG_RULES:
        number = vps_configs["name"].str.extract(f"^{pattern}$", expand=False)
        hit = vps_configs[number.notna()].assign(resource=resource,
                                                 value=number[number.notna()].astype("int64") * unit)
        matched.append(hit)
    columns = ["id", "vps_id", "order", "name", "resource", "value"]
    return pd.concat(matched, ignore_index=True)[columns] if matched else pd.DataFrame(columns=columns)


# -- minimums -------------------------------------------------------------------------------
def check_minimums(minimums, environment_labels) -> list[str]:
    """Problems with the `resource_minimums` param: {"default": {...}, "<label>": {...}}."""
    if not isinstance(minimums, dict):
        return [f"resource_minimums must be a mapping, got {minimums!r}"]
    errors = []
    for key, values in minimums.items():
        if key != "default" and key not in environment_labels:
            errors.append(f"resource_minimums: no environment labelled {key!r} "
                          f"(known: {', '.join(sorted(environment_labels))})")
        if not isinstance(values, dict):
            errors.append(f"resource_minimums[{key!r}] must be a mapping of resource to amount")
            continue
        for resource, amount in values.items():
            if resource not in RESOURCES:
                errors.append(f"resource_minimums[{key!r}]: unknown resource {resource!r} "
                              f"(known: {', '.join(RESOURCES)})")
            elif isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
                errors.append(f"resource_minimums[{key!r}][{resource!r}] must be an integer >= 0, got {amount!r}")
    return errors


def minimums_frame(environments: pd.DataFrame, minimums: dict | None) -> pd.DataFrame:
    """environment_id, resource, minimum: DEFAULT_MINIMUMS, then the param's "default",
    then the param's entry for the environment's label."""
    minimums = {} if minimums is None else minimums
    errors = check_minimums(minimums, set(environments["label"]))
    if errors:
        raise ResourceError("; ".join(errors))
    rows = []
    for env_id, label in zip(environments["id"], environments["label"], strict=True):
        merged = {**DEFAULT_MINIMUMS, **minimums.get("default", {}), **minimums.get(label, {})}
        rows += [(int(env_id), resource, int(merged[resource])) for resource in RESOURCES]
    return pd.DataFrame(rows, columns=["environment_id", "resource", "minimum"])


# -- the plan -------------------------------------------------------------------------------
@dataclass
class ResourcePlan:
    new_uses: pd.DataFrame  # USE_COLUMNS
    deleted_configs: pd.DataFrame  # id, vps_id, name (vps_has_config rows)
    refquotas: pd.DataFrame  # dataset_in_pool_id, value, current (+ the input's other columns, e.g. id)
    user_resources: pd.DataFrame  # user_id, environment_id, resource, value, current (NaN: no row yet)
    counts: dict = field(default_factory=dict)

    @property
    def missing_user_resources(self) -> pd.DataFrame:
        return self.user_resources[self.user_resources["current"].isna()]

    @property
    def raised_user_resources(self) -> pd.DataFrame:
        ur = self.user_resources
        return ur[ur["current"].notna() & (ur["current"].fillna(-1) < ur["value"])]

    @property
    def changes(self) -> int:
        return (len(self.new_uses) + len(self.deleted_configs) + len(self.refquotas)
                + len(self.missing_user_resources) + len(self.raised_user_resources))

    def summary(self) -> dict:
        return {**self.counts,
                "uses_to_insert": len(self.new_uses),
                "configs_to_delete": len(self.deleted_configs),
                "refquotas_to_set": len(self.refquotas),
                "user_resources_to_insert": len(self.missing_user_resources),
                "user_resources_to_raise": len(self.raised_user_resources)}

    def sample(self, n: int = 5) -> list[str]:
        """A few of each kind of change, as lines for the log."""
        lines = [f"use: user {r.user_id} env {r.environment_id} {r.resource} = {r.value} on "
                 f"{r.class_name} {r.row_id}" for r in self.new_uses.head(n).itertuples()]
        lines += [f"delete vps_has_config {r.id}: VPS {r.vps_id} {r.name}"
                  for r in self.deleted_configs.head(n).itertuples()]
        lines += [f"refquota of dataset_in_pool {r.dataset_in_pool_id}: {r.current} -> {r.value}"
                  for r in self.refquotas.head(n).itertuples()]
        for label, frame in (("new", self.missing_user_resources), ("raise", self.raised_user_resources)):
            lines += [f"user_cluster_resource ({label}): user {r.user_id} env {r.environment_id} "
                      f"{r.resource} = {r.value}" for r in frame.head(n).itertuples()]
        return lines


def plan_assignment(*, users: pd.DataFrame, environments: pd.DataFrame, vpses: pd.DataFrame,
                    vps_configs: pd.DataFrame, ip_counts: pd.DataFrame, nas_datasets: pd.DataFrame,
                    refquotas: pd.DataFrame, user_resources: pd.DataFrame, uses: pd.DataFrame,
                    minimums: dict | None = None) -> ResourcePlan:
    """What to write so that every user has cluster resources.

    users: user_id (in scope). environments: id, label. vpses: vps_id, user_id, environment_id
    (of its node), dataset_in_pool_id. vps_configs: id (vps_has_config), vps_id, order, name.
    ip_counts: vps_id, ip_v, n. nas_datasets (on primary pools): dataset_in_pool_id, user_id,
    environment_id, ancestry, quota (MiB or None). refquotas: dataset_in_pool_id, value (other
    columns, e.g. the property's id, are carried into the plan).
    user_resources (existing): user_id, environment_id, resource, value. uses (existing):
    class_name, row_id, user_id, environment_id, resource, value, confirmed (optional; only
    confirmed = 1 counts towards the totals, as UserClusterResource#used sums them).
    """
    minimum = minimums_frame(environments, minimums)
    env_ids = set(environments["id"])
    in_scope = vpses[vpses["user_id"].isin(users["user_id"])]
    homeless = in_scope[~in_scope["environment_id"].isin(env_ids)]
    if len(homeless):
        raise ResourceError(f"{len(homeless)} VPS(es) are on nodes in no environment (servers.environment_id "
                            f"{sorted(set(homeless['environment_id']))}), e.g. VPS "
                            f"{homeless['vps_id'].head(5).tolist()}: populate servers first")

    # Objects that already have uses were translated by an earlier run.
    vps_done = set(uses.loc[uses["class_name"] == VPS_OBJECT[0], "row_id"])
    dip_done = set(uses.loc[uses["class_name"] == DATASET_IN_POOL_OBJECT[0], "row_id"])
    todo = in_scope[~in_scope["vps_id"].isin(vps_done)]

    matched = config_resources(vps_configs[vps_configs["vps_id"].isin(todo["vps_id"])])
    from_configs = (matched.sort_values(["vps_id", "order", "id"])
                    .drop_duplicates(["vps_id", "resource"], keep="last")[["vps_id", "resource", "value"]])
    ips = (ip_counts[ip_counts["vps_id"].isin(todo["vps_id"])]
           .pivot_table(index="vps_id", columns="ip_v", values="n", aggfunc="sum")
           .reindex(index=todo["vps_id"], columns=[4, 6], fill_value=0).fillna(0).astype("int64"))
    from_ips = (ips.rename(columns={4: "ipv4", 6: "ipv6"}).rename_axis(columns="resource")
                .stack().rename("value").reset_index())
    vps_uses = pd.concat([from_configs, from_ips], ignore_index=True).merge(
        todo[["vps_id", "user_id", "environment_id", "dataset_in_pool_id"]], on="vps_id")
    disk = vps_uses["resource"] == "diskspace"
    no_dataset = vps_uses[disk & vps_uses["dataset_in_pool_id"].isna()]
    if len(no_dataset):
        raise ResourceError(f"{len(no_dataset)} VPS(es) with a hdd config have no dataset_in_pool, "
                            f"e.g. {no_dataset['vps_id'].head(5).tolist()}")
    vps_uses["class_name"] = disk.map({True: DATASET_IN_POOL_OBJECT[0], False: VPS_OBJECT[0]})
    vps_uses["table_name"] = disk.map({True: DATASET_IN_POOL_OBJECT[1], False: VPS_OBJECT[1]})
    vps_uses["row_id"] = vps_uses["vps_id"].where(~disk, vps_uses["dataset_in_pool_id"])

    nas = nas_datasets[(nas_datasets["ancestry"].isna() | (nas_datasets["ancestry"] == ""))
                       & nas_datasets["user_id"].isin(users["user_id"])
                       & nas_datasets["environment_id"].isin(env_ids)
                       & ~nas_datasets["dataset_in_pool_id"].isin(dip_done)]
    nas_uses = nas.assign(resource="diskspace", class_name=DATASET_IN_POOL_OBJECT[0],
                          table_name=DATASET_IN_POOL_OBJECT[1], row_id=nas["dataset_in_pool_id"],
                          value=nas["quota"].fillna(0))
    new_uses = pd.concat([vps_uses[USE_COLUMNS], nas_uses[USE_COLUMNS]], ignore_index=True)
    new_uses = new_uses.astype({c: "int64" for c in ("user_id", "environment_id", "row_id", "value")})

    # The VPS dataset's refquota follows its diskspace (only where the property row exists).
    disk_uses = new_uses[(new_uses["resource"] == "diskspace") & new_uses["row_id"].isin(todo["dataset_in_pool_id"])]
    refquota_changes = (disk_uses[["row_id", "value"]].rename(columns={"row_id": "dataset_in_pool_id"})
                        .merge(refquotas.rename(columns={"value": "current"}), on="dataset_in_pool_id"))
    refquota_changes = refquota_changes[refquota_changes["current"] != refquota_changes["value"]]

    # Totals from every use (old and new), raised to the minimum; existing rows never lowered.
    keys = ["user_id", "environment_id", "resource"]
    counted = uses[uses["confirmed"] == 1] if "confirmed" in uses else uses
    all_uses = pd.concat([counted[keys + ["value"]], new_uses[keys + ["value"]]], ignore_index=True)
    totals = all_uses.groupby(keys, as_index=False)["value"].sum()
    grid = (users[["user_id"]].merge(environments[["id"]].rename(columns={"id": "environment_id"}), how="cross")
            .merge(pd.DataFrame({"resource": RESOURCES}), how="cross"))
    grid = (grid.merge(totals, on=keys, how="left").merge(minimum, on=["environment_id", "resource"])
            .merge(user_resources[keys + ["value"]].rename(columns={"value": "current"}), on=keys, how="left"))
    wanted = grid["value"].fillna(0).clip(lower=grid["minimum"])
    grid["value"] = wanted.where(grid["current"].fillna(-1) < wanted, grid["current"]).astype("int64")

    counts = {"users": len(users), "environments": len(environments),
              "vpses_to_translate": len(todo), "vpses_already_translated": len(in_scope) - len(todo),
              "nas_datasets_to_translate": len(nas),
              "nas_datasets_already_translated": int(nas_datasets["dataset_in_pool_id"].isin(dip_done).sum())}
    return ResourcePlan(new_uses=new_uses, deleted_configs=matched[["id", "vps_id", "name"]].reset_index(drop=True),
                        refquotas=refquota_changes.reset_index(drop=True),
                        user_resources=grid[keys + ["value", "current", "minimum"]], counts=counts)
