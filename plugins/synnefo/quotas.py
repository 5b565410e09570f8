"""Quotas from the 0.12 services into Astakos 0.13 (runbook steps 7 and 8; pure: text and frames
in, frames and text out).

- The export files (research synnefo.md §4), parsed strictly: one line per user and resource,
  `<user> <resource> <capacity> 0 10**30 10**30`, single spaces; `pithos-export-quota` writes
  only pithos+.diskspace, `cyclades-export-quota` only cyclades.vm and cyclades.network.private.
  A line that is not exactly that raises QuotaFileError with the file, the line number and the
  line (user-set-initial-quota would print `Invalid line format` and go on, exit 0).
- The user is a uuid, or still an email where the uuid migration did not rewrite it (Pithos
  accounts unknown to Astakos; Cyclades settings keys not replaced by hand, runbook 6.3).
  user-set-initial-quota matches uuids only, so an email is resolved here the way 0.13 resolves
  one: lower-cased, against the username (0.13 sets username = email.lower(), §1).
  Users found in neither way are reported, not imported.
- Pithos 0 meant unlimited (§1 "quota 0 means unlimited"); in Astakos a capacity of 0 is zero
  and there is no unlimited, so it becomes a capacity too large to be reached: by default the
  quotaholder's own QH_PRACTICALLY_INFINITE, 10**32 (§4; the runbook's note in step 5 asks for a
  value "too large to be reached").
- The plan is written as the `--from-file` input (§4: `<user> <resource name> <capacity>
  <quantity> <import_limit> <export_limit>`, split on single spaces, users by uuid).
- compare_quotas checks what Astakos holds after the import against the plan;
  parse_verify reads `snf-manage astakos-quota --verify`.

Capacities are Python ints (object columns): 10**32 does not fit in int64.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from airlift.errors import StepError
from synnefo.duplicates import joined

PITHOS_RESOURCE = "pithos+.diskspace"
CYCLADES_RESOURCES = ("cyclades.vm", "cyclades.network.private")
# The import and export limits the exporters write (§4, str(10**30)); quantity is always 0.
EXPORT_LIMIT = 10**30
# synnefo.lib.quotaholder.QH_PRACTICALLY_INFINITE (§4): what Pithos' 0 (unlimited) becomes.
QH_PRACTICALLY_INFINITE = 10**32

_TAIL = rf"0 {EXPORT_LIMIT} {EXPORT_LIMIT}"
PITHOS_LINE = rf"\S+ pithos\+\.diskspace \d+ {_TAIL}"
CYCLADES_LINE = rf"\S+ (?:cyclades\.vm|cyclades\.network\.private) \d+ {_TAIL}"
FROM_FILE_LINE = r"\S+ \S+ \d+ \d+ \d+ \d+"
FIELDS = ["user", "resource", "capacity", "quantity", "import_limit", "export_limit"]
QUOTA_COLUMNS = ["user", "resource", "capacity", "file", "line"]
PLAN_COLUMNS = ["uuid", "resource", "capacity", "unlimited", "user", "file", "line"]


class QuotaFileError(StepError, ValueError):
    """A line of a quota file that is not in the format; names the file, the line number and the line."""

    def __init__(self, file: str, number: int, line: str, expected: str):
        self.file, self.number, self.line = file, number, line
        super().__init__(f"{file}, line {number}: not `{expected}`: {line!r}")


class VerifyOutputError(StepError, ValueError):
    """`astakos-quota --verify` printed something this parser does not know."""


def parse_pithos_export(text: str, file: str = "pithos-quota.txt") -> pd.DataFrame:
    """`snf-manage pithos-export-quota` output: user, resource, capacity, file, line (its number)."""
    frame = _parse(text, file, PITHOS_LINE, f"<account> {PITHOS_RESOURCE} <bytes> 0 10**30 10**30")
    return frame[QUOTA_COLUMNS]


def parse_cyclades_export(text: str, file: str = "cyclades-quota.txt") -> pd.DataFrame:
    """`snf-manage cyclades-export-quota` output: user, resource, capacity, file, line."""
    frame = _parse(text, file, CYCLADES_LINE, "<user> cyclades.vm|cyclades.network.private <n> 0 10**30 10**30")
    return frame[QUOTA_COLUMNS]


def parse_from_file(text: str, file: str = "initial-quota.txt") -> pd.DataFrame:
    """A `user-set-initial-quota --from-file` input: the six fields (numbers as ints), file, line."""
    return _parse(text, file, FROM_FILE_LINE, "<user> <resource> <capacity> <quantity> <import_limit> <export_limit>")


def _parse(text: str, file: str, pattern: str, expected: str) -> pd.DataFrame:
    lines = text.split("\n")
    if lines[-1] == "":  # the newline that ends the last line
        lines.pop()
    valid = pd.Series(lines, dtype="str").str.fullmatch(pattern).to_numpy(dtype=bool)
    if not valid.all():
        bad = int(np.argmin(valid))
        raise QuotaFileError(file, bad + 1, lines[bad], expected)
    if not lines:
        frame = pd.DataFrame({name: pd.Series(dtype="str") for name in FIELDS})
    else:
        # Every line is now six fields split by single spaces: the C reader takes them as they are.
        frame = pd.read_csv(io.StringIO(text), sep=" ", header=None, names=FIELDS, dtype="str",
                            quoting=csv.QUOTE_NONE, na_filter=False, skip_blank_lines=False, engine="c")
    for name in FIELDS[2:]:
        frame[name] = _ints(frame[name])
    frame["file"] = file
    frame["line"] = np.arange(1, len(frame) + 1)
    return frame


def _ints(digits: pd.Series) -> pd.Series:
    """Decimal digit strings as Python ints, exact however long."""
    if len(digits) and digits.str.len().max() > 18:
        return digits.map(int).astype(object)
    return digits.astype("int64").astype(object)


@dataclass
class QuotaPlan:
    plan: pd.DataFrame  # uuid, resource, capacity (what to import), unlimited (was Pithos 0), user, file, line
    unknown: pd.DataFrame  # export lines whose user Astakos does not have: user, resource, capacity, file, line, why
    conflicts: pd.DataFrame  # (uuid, resource) given by several lines: uuid, resource, users, capacities, chosen

    def summary(self) -> dict[str, int]:
        return {"planned": len(self.plan), "unlimited": int(self.plan["unlimited"].sum()),
                "unknown": len(self.unknown), "conflicts": len(self.conflicts)}


def plan_initial_quotas(astakos: pd.DataFrame, *exports: pd.DataFrame,
                        unlimited: int = QH_PRACTICALLY_INFINITE) -> QuotaPlan:
    """The parsed export files joined with the Astakos users (uuid, email, and username if read
    from a 0.13 database: else the lower-cased email stands for it). Pithos 0 becomes `unlimited`.
    Several lines for one user and resource (an email and its uuid, or two spellings) keep the
    largest capacity and are listed in `conflicts`."""
    quotas = pd.concat(exports, ignore_index=True) if exports else pd.DataFrame(columns=QUOTA_COLUMNS)
    quotas["uuid"], quotas["why"] = _resolve(astakos, quotas["user"])
    unknown = quotas[quotas["why"].notna()][QUOTA_COLUMNS + ["why"]].reset_index(drop=True)
    known = quotas[quotas["why"].isna()]
    was_zero = (known["resource"] == PITHOS_RESOURCE) & (known["capacity"] == 0)
    known = known.assign(capacity=known["capacity"].where(~was_zero, unlimited), unlimited=was_zero)
    repeated = known.duplicated(["uuid", "resource"], keep=False)
    once, several = known[~repeated], known[repeated]
    # Python ints compare exactly: the largest capacity first, then the first line.
    ranked = several.sort_values(["uuid", "resource", "capacity"], ascending=[True, True, False], kind="stable")
    chosen = ranked.drop_duplicates(["uuid", "resource"])
    by = [ranked["uuid"], ranked["resource"]]
    conflicts = pd.DataFrame({"users": joined(ranked["user"], by),
                              "capacities": joined(ranked["capacity"].astype(str), by),
                              "chosen": chosen.set_index(["uuid", "resource"])["capacity"]}).reset_index()
    plan = pd.concat([once, chosen]).sort_index(ignore_index=True)  # in the order of the files' lines
    return QuotaPlan(plan[PLAN_COLUMNS], unknown, conflicts)


def _resolve(astakos: pd.DataFrame, users: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(uuid, why not) per export user: its uuid if Astakos has it as a uuid or as a username."""
    uuid = np.full(len(users), None, dtype=object)
    why = np.full(len(users), None, dtype=object)
    # The few export users are hashed, the many Astakos uuids looked up in them.
    is_uuid = _isin(users, astakos["uuid"][_isin(astakos["uuid"], users)])
    uuid[is_uuid] = users.to_numpy()[is_uuid]
    names = users[~is_uuid].str.lower()
    if len(names):
        usernames = astakos["username"] if "username" in astakos else astakos["email"].str.lower()
        wanted = astakos[_isin(usernames, names)].assign(name=usernames)
        counts = wanted["name"].value_counts()
        single = wanted[wanted["name"].map(counts) == 1].set_index("name")["uuid"]
        found = names.map(single)
        rest = np.flatnonzero(~is_uuid)
        seen = names.map(counts).fillna(0).to_numpy()
        uuid[rest] = found.to_numpy(dtype=object)
        why[rest] = np.select([seen == 0, seen > 1, found.isna()],
                              ["not in Astakos", "its email is shared by several Astakos users (duplicates)",
                               "its Astakos user has no uuid"], default=None)
    return uuid, why


def _isin(values: pd.Series, candidates: pd.Series) -> np.ndarray:
    """values.isin(candidates) for text, by Arrow's hash set: pandas' own isin on Arrow-backed
    strings first turns every candidate into a Python object (a second for 1M uuids)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def arrow(series: pd.Series) -> pa.Array:
        return pa.array(series.astype("str"), type=pa.large_string(), from_pandas=True)

    return pc.is_in(arrow(values), value_set=arrow(candidates)).to_numpy(zero_copy_only=False)


def from_file_text(plan: pd.DataFrame) -> str:
    """The plan as `user-set-initial-quota --from-file` input: the export files' own format,
    quantity 0 and 10**30 limits, one line per uuid and resource."""
    if plan.empty:
        return ""
    bad = plan["uuid"].isna() | plan["uuid"].str.contains(r"\s|^$", regex=True)
    if bad.any():
        raise StepError(f"{int(bad.sum())} planned quota(s) have no usable uuid, e.g. {plan[bad].iloc[0].to_dict()}")
    lines = plan["uuid"] + " " + plan["resource"] + " " + plan["capacity"].astype(str) + f" {_TAIL}"
    return "\n".join(lines.tolist()) + "\n"


def compare_quotas(plan: pd.DataFrame, actual: pd.DataFrame) -> pd.DataFrame:
    """Where Astakos (actual: uuid, resource, capacity as read back, e.g. from
    im_astakosuserquota or `astakos-quota --list`) is not what the plan says: uuid, resource,
    planned, actual (NA when missing), problem (missing | differs). Rows not in the plan are
    other users' business and left out."""
    held = actual[["uuid", "resource", "capacity"]].rename(columns={"capacity": "actual"})
    both = plan[["uuid", "resource", "capacity"]].rename(columns={"capacity": "planned"}).merge(
        held, on=["uuid", "resource"], how="left")
    present = both["actual"].notna()
    both["actual"] = both["actual"].astype(object).where(~present, both["actual"][present].map(_int))
    differs = present & (both["actual"] != both["planned"])
    both["problem"] = np.select([~present, differs], ["missing", "differs"], default=None)
    return both[both["problem"].notna()].reset_index(drop=True)


def _int(value) -> int:
    """A capacity as read back: int, Decimal, or text (`astakos-quota --list` prints str())."""
    return int(str(value).strip().removesuffix("L").split(".")[0]) if not isinstance(value, int) else value


# -- astakos-quota --verify --------------------------------------------------------------------
# Research §5 gives the lines; what a `Quotas differ` block holds (two dict reprs, quotaholder's
# then Astakos') is read from 0.13's astakos-quota.py print_verify and endpoints/qh.py QuotaValues.
VERIFY_COLUMNS = ["uuid", "user", "problem", "resource", "field", "quotaholder", "astakos"]
_NOT_REGISTERED = "Users not registered in quotaholder:"
_NO_QUOTAS = r"No quotas for (?P<uuid>\S+) \((?P<user>.*)\) in quotaholder\."
_DIFFER = r"Quotas differ for (?P<uuid>\S+) \((?P<user>.*)\):"
_TOTAL = r"Quotas differ for (?P<n>\d+) users\."
_SIDES = {"Quotas according to quotaholder:": "quotaholder", "Quotas according to astakos:": "astakos"}
# A dict {resource: QuotaValues(...)} as Python 2 prints it: u'' keys, L or Decimal('') numbers.
QUOTA_FIELDS = ("quantity", "capacity", "import_limit", "export_limit")
_VALUES = (r"u?'(?P<resource>[^']+)': QuotaValues\("
           + ", ".join(rf"{f}=(?:Decimal\(')?(?P<{f}>-?\d+)(?:'\))?L?" for f in QUOTA_FIELDS) + r"\)")


def parse_verify(text: str) -> pd.DataFrame:
    """`astakos-quota --verify` output as differences, one row per
    - user not registered in quotaholder (problem "not registered"; user: the email; the
      command prints the real name and email only),
    - user with no quotas there ("no quotas"; uuid, user: the username),
    - resource field that differs ("differs"; quotaholder and astakos values, NA where a side
      has no such resource).
    Empty when quotaholder and Astakos agree. Raises VerifyOutputError on a line it does not
    know or a total that does not match the users listed."""
    lines = pd.Series(text.splitlines(), dtype="str")
    blank = lines.str.strip() == ""
    # The not-registered list runs from its header to the first blank line.
    section = pd.Series(np.where(lines == _NOT_REGISTERED, 1.0, np.where(blank, 0.0, np.nan))).ffill()
    listed = (section == 1) & (lines != _NOT_REGISTERED)
    registered = _extract(lines, listed, r"(?P<name>.*) \((?P<email>[^()]*)\)")
    no_quotas = _extract(lines, lines.str.startswith("No quotas for "), _NO_QUOTAS)
    summary = lines.str.startswith("Quotas differ for ")
    differ = _extract(lines, summary & lines.str.endswith(":"), _DIFFER)
    total = _extract(lines, summary & lines.str.endswith("."), _TOTAL)["n"]
    side = lines.shift(1).map(_SIDES)
    known = (blank | (lines == "Calculating all quotas...") | lines.isin(_SIDES) | (lines == _NOT_REGISTERED)
             | no_quotas["uuid"].notna() | differ["uuid"].notna() | total.notna() | side.notna()
             | registered["email"].notna())
    if not known.all():
        number = int(np.argmin(known.to_numpy()))
        raise VerifyOutputError(f"astakos-quota --verify, line {number + 1}: unexpected {lines[number]!r}")
    users = int(no_quotas["uuid"].notna().sum() + differ["uuid"].notna().sum())
    if total.notna().any() and int(total.dropna().iloc[-1]) != users:
        raise VerifyOutputError(f"astakos-quota --verify reports {total.dropna().iloc[-1]} users differing, "
                                f"its output lists {users}")
    found = [frame for frame in (pd.DataFrame({"user": registered["email"].dropna(), "problem": "not registered"}),
                                 no_quotas.dropna().assign(problem="no quotas"),
                                 _differences(lines, side, differ)) if len(frame)]
    if not found:
        return pd.DataFrame(columns=VERIFY_COLUMNS)
    return pd.concat(found, ignore_index=True).reindex(columns=VERIFY_COLUMNS)


def _extract(lines: pd.Series, candidates: pd.Series, pattern: str) -> pd.DataFrame:
    """The pattern's groups on the candidate lines (the whole line must match), NA elsewhere."""
    return lines[candidates].str.extract(f"^{pattern}$").reindex(lines.index)


def _differences(lines: pd.Series, side: pd.Series, differ: pd.DataFrame) -> pd.DataFrame:
    """The per-resource, per-field differences of the `Quotas differ for` blocks."""
    owner = differ.ffill()
    dicts = lines[side.notna()]
    if dicts.empty:
        return pd.DataFrame(columns=VERIFY_COLUMNS)
    values = dicts.str.extractall(_VALUES)
    # Every QuotaValues( of the line must have been read, and the line be one dict.
    read = values.groupby(level=0).size().reindex(dicts.index, fill_value=0)
    unreadable = (read != dicts.str.count(r"QuotaValues\(")) | ~dicts.str.fullmatch(r"\{.*\}")
    if unreadable.any():
        number = int(unreadable.idxmax())
        raise VerifyOutputError(f"astakos-quota --verify, line {number + 1}: unreadable quotas {lines[number]!r}")
    rows = values.reset_index(level=1, drop=True)
    rows = rows.assign(side=side[rows.index].to_numpy(), uuid=owner["uuid"][rows.index].to_numpy(),
                       user=owner["user"][rows.index].to_numpy())
    long = rows.melt(id_vars=["uuid", "user", "side", "resource"], value_vars=list(QUOTA_FIELDS),
                     var_name="field", value_name="value")
    long["value"] = long["value"].map(int).astype(object)
    keys = ["uuid", "user", "resource", "field"]
    quotaholder, astakos = (long[long["side"] == name].drop(columns="side").rename(columns={"value": name})
                            for name in ("quotaholder", "astakos"))
    both = quotaholder.merge(astakos, on=keys, how="outer")
    one_side = both["quotaholder"].isna() | both["astakos"].isna()
    # A resource only one side has is one difference, its capacity.
    differs = (one_side & (both["field"] == "capacity")) | (~one_side & (both["quotaholder"] != both["astakos"]))
    return both[differs].assign(problem="differs")[VERIFY_COLUMNS]

