"""Duplicate users across Astakos, Cyclades and Pithos (plugins/synnefo/duplicates.py) on small
hand-made frames."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from synnefo import duplicates as d


def astakos(*rows) -> pd.DataFrame:
    """rows: (id, email, last_login or None[, is_active])."""
    rows = [r if len(r) == 4 else (*r, True) for r in rows]
    frame = pd.DataFrame(rows, columns=["id", "email", "last_login", "is_active"])
    frame["last_login"] = pd.to_datetime(frame["last_login"])
    return frame.assign(uuid=[f"uuid-{i}" for i in frame["id"]])


def owners(*userids) -> pd.DataFrame:
    return pd.DataFrame({"userid": list(userids)}, dtype="str")


def accounts(*names) -> pd.DataFrame:
    return pd.DataFrame({"account": list(names)}, dtype="str")


def run(users, vms=(), networks=(), pithos=()) -> d.Reconciliation:
    return d.reconcile(users, owners(*vms), owners(*networks), accounts(*pithos))


def decision(result: d.Reconciliation, email: str) -> dict:
    rows = result.decisions[result.decisions["email"] == email]
    assert len(rows) == 1, result.decisions
    return rows.iloc[0].to_dict()


def actions(result: d.Reconciliation, service: str) -> dict[str, tuple[str, str]]:
    m = result.moves[result.moves["service"] == service]
    return {a: (act, t) for a, act, t in zip(m["account"], m["action"], m["target"], strict=True)}


def test_most_resources_wins_over_a_later_login():
    # KPap (id 30) holds 2 VMs, a network and its Pithos account (4); kpap (id 40) logged in
    # later but holds 1 VM and its account (2).
    result = run(astakos((30, "KPap@grnet.gr", "2012-01-01"), (40, "kpap@grnet.gr", "2012-12-01")),
                 vms=["KPap@grnet.gr", "KPap@grnet.gr", "kpap@grnet.gr"], networks=["KPap@grnet.gr"],
                 pithos=["KPap@grnet.gr", "kpap@grnet.gr"])
    row = decision(result, "kpap@grnet.gr")
    assert (row["survivor"], row["survivor_id"], row["rule"]) == ("KPap@grnet.gr", 30, "most resources")
    assert row["astakos_deleted"] == "40"
    # Cyclades: --merge-user writes the lower-case spelling; KPap's 2 VMs and network move there.
    assert (row["cyclades_target"], row["cyclades_merged"], row["vms_moved"], row["networks_moved"]) == \
        ("kpap@grnet.gr", "KPap@grnet.gr", 2, 1)
    # Pithos: the survivor's own account stays, the other is merged into it.
    assert (row["pithos_target"], row["pithos_merged"]) == ("KPap@grnet.gr", "kpap@grnet.gr")
    assert actions(result, "astakos") == {"30": ("keep", "30"), "40": ("delete", "30")}
    assert d.approval_markdown(result.decisions).splitlines()[4] == (
        "| kpap@grnet.gr | #30 KPap@grnet.gr | most resources | #40 | KPap@grnet.gr → kpap@grnet.gr "
        "(VMs 2, networks 1) | kpap@grnet.gr → KPap@grnet.gr |")


def test_equal_resources_latest_login_then_lowest_id():
    later = run(astakos((30, "KPap@grnet.gr", "2012-01-01"), (40, "kpap@grnet.gr", "2012-12-01")))
    assert (decision(later, "kpap@grnet.gr")["survivor_id"], decision(later, "kpap@grnet.gr")["rule"]) == \
        (40, "latest login")
    # One never logged in: it comes last.
    never = run(astakos((30, "KPap@grnet.gr", None), (40, "kpap@grnet.gr", "2010-01-01")))
    assert decision(never, "kpap@grnet.gr")["survivor_id"] == 40
    same = run(astakos((41, "KPap@grnet.gr", "2012-01-01"), (40, "kpap@grnet.gr", "2012-01-01"),
                       (39, "KPAP@grnet.gr", None)))
    row = decision(same, "kpap@grnet.gr")
    assert (row["survivor_id"], row["rule"], row["astakos_deleted"]) == (40, "lowest id", "39, 41")


def test_same_email_twice_in_astakos_active_and_inactive():
    # 0.12 only kept (email, is_active) unique: one spelling, two users.
    result = run(astakos((7, "a@x.org", "2011-01-01", False), (8, "a@x.org", "2012-01-01", True)), vms=["a@x.org"])
    row = decision(result, "a@x.org")
    assert (row["survivor_id"], row["survivor_active"], row["astakos_deleted"]) == (8, True, "7")
    assert pd.isna(row["cyclades_merged"])  # one spelling in Cyclades: nothing to move


def test_case_differs_between_services_only_needs_nothing():
    # The uuid catalog lower-cases the name it is asked for: both spellings are one user.
    result = run(astakos((1, "kpap@grnet.gr", None)), vms=["KPap@grnet.gr"], pithos=["KPAP@grnet.gr"])
    assert result.decisions.empty and result.moves.empty
    assert d.approval_markdown(result.decisions) == "No duplicate users: nothing to merge or delete."


def test_duplicate_in_cyclades_only_goes_to_the_one_astakos_user():
    result = run(astakos((1, "kpap@grnet.gr", "2012-01-01")),
                 vms=["KPap@grnet.gr", "KPap@grnet.gr", "kpap@grnet.gr"], pithos=["KPap@grnet.gr"])
    row = decision(result, "kpap@grnet.gr")
    assert (row["survivor_id"], row["rule"]) == (1, "only Astakos user")
    assert (row["cyclades_merged"], row["cyclades_target"], row["vms_moved"]) == ("KPap@grnet.gr", "kpap@grnet.gr", 2)
    assert pd.isna(row["astakos_deleted"]) and pd.isna(row["pithos_merged"])  # one Pithos account: kept
    assert actions(result, "pithos") == {"KPap@grnet.gr": ("keep", "KPap@grnet.gr")}


def test_duplicate_without_any_astakos_user():
    result = run(astakos((1, "other@x.org", None)), vms=["Orphan@y.org", "orphan@y.org", "ORPHAN@y.org"],
                 pithos=["ORPHAN@y.org", "Orphan@y.org"])
    row = decision(result, "orphan@y.org")
    # Each spelling holds 1 resource...: ORPHAN (VM + account) and Orphan (VM + account) tie at 2;
    # no login, no id: the lower-case spelling would win, but it has 1; then code-point order.
    assert (row["survivor"], row["rule"]) == ("ORPHAN@y.org", "first spelling")
    assert pd.isna(row["survivor_id"])
    assert row["cyclades_merged"] == "ORPHAN@y.org, Orphan@y.org" and row["cyclades_target"] == "orphan@y.org"
    assert (row["pithos_target"], row["pithos_merged"]) == ("ORPHAN@y.org", "Orphan@y.org")


def test_whitespace_and_missing_emails():
    users = astakos((1, "kpap@grnet.gr", None), (2, None, None), (3, "", None))
    result = run(users, vms=[" kpap@grnet.gr", None], networks=[None, "kpap@grnet.gr"])
    # The whitespace variant is not matched by the case-blind tools: it is reassigned.
    row = decision(result, "kpap@grnet.gr")
    assert row["cyclades_merged"] == "' kpap@grnet.gr'" and row["vms_moved"] == 1
    assert actions(result, "cyclades") == {" kpap@grnet.gr": ("merge", "kpap@grnet.gr"),
                                           "kpap@grnet.gr": ("keep", "kpap@grnet.gr")}
    # Users with no email belong to no group; public networks (NULL owner) are nobody's.
    assert len(result.decisions) == 1
    assert result.users["key"].isna().sum() == 2 and result.summary()["users"] == 3


def test_all_users_is_one_frame_of_the_three_services():
    result = run(astakos((1, "A@x.org", "2012-01-01")), vms=["A@x.org", "b@x.org"], pithos=["a@x.org"])
    users = result.users.set_index("spelling")
    assert users.loc["A@x.org", ["astakos_id", "vms", "pithos", "resources"]].tolist() == [1, 1, False, 1]
    assert users.loc["a@x.org", ["key", "vms", "pithos", "resources"]].tolist() == ["a@x.org", 0, True, 1]
    assert pd.isna(users.loc["b@x.org", "astakos_id"]) and not users["duplicate"].any()


def test_markdown_is_capped_and_escaped():
    result = run(astakos((1, "a|b@x.org", None), (2, "A|B@x.org", None), (3, "c@x.org", None),
                         (4, "C@x.org", None), (5, "e@x.org", None), (6, "E@x.org", None)))
    text = d.approval_markdown(result.decisions, limit=2)
    lines = text.splitlines()
    assert lines[0] == ("3 users with duplicate accounts keep one each: delete 3 Astakos users, reassign 0 VMs "
                        "and 0 networks, merge 0 Pithos accounts.")
    assert lines[2].startswith("| email | keep |") and len(lines) == 2 + 2 + 2 + 1
    assert lines[-1] == "... and 1 more (see the CSV report)"
    assert lines[4] == "| a\\|b@x.org | #1 a\\|b@x.org | lowest id | #2 |  |  |"


def test_csv_report_has_every_group():
    result = run(astakos((1, "a@x.org", None), (2, "A@x.org", None), (3, "c@x.org", None), (4, "C@x.org", None)))
    back = pd.read_csv(io.StringIO(d.report_csv(result.decisions)))
    assert list(back.columns) == d.DECISION_COLUMNS
    assert back[["email", "survivor_id", "astakos_deleted"]].values.tolist() == [["a@x.org", 1, 2], ["c@x.org", 3, 4]]


@pytest.mark.parametrize("n", [0, 1])
def test_no_groups(n):
    result = run(astakos(*[(i, f"u{i}@x.org", None) for i in range(n)]))
    assert result.decisions.empty and list(result.decisions.columns) == d.DECISION_COLUMNS
    assert result.summary()["groups"] == 0


def test_owners_counted_by_the_database_give_the_same_decisions():
    users = astakos((30, "KPap@grnet.gr", "2012-01-01"), (40, "kpap@grnet.gr", "2012-12-01"))
    rows = d.reconcile(users, owners("KPap@grnet.gr", "KPap@grnet.gr", "kpap@grnet.gr"), owners("KPap@grnet.gr"),
                       accounts())
    counted = d.reconcile(users, pd.DataFrame({"userid": ["KPap@grnet.gr", "kpap@grnet.gr"], "count": [2, 1]}),
                          pd.DataFrame({"userid": ["KPap@grnet.gr"], "count": [1]}), accounts())
    pd.testing.assert_frame_equal(rows.decisions, counted.decisions)
    assert decision(counted, "kpap@grnet.gr")["vms_moved"] == 2
