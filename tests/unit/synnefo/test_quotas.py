"""Quota export files, the initial-quota plan, the --from-file input and astakos-quota --verify
(plugins/synnefo/quotas.py)."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from synnefo import quotas as q

INF = "1000000000000000000000000000000"  # str(10**30), as the exporters write it
U1, U2, U3 = ("5e8c1a0e-0000-4000-8000-00000000000" + str(i) for i in (1, 2, 3))
ASTAKOS = pd.DataFrame({"id": [1, 2, 3, 4], "uuid": [U1, U2, U3, None],
                        "email": ["KPap@grnet.gr", "maria@x.org", "twin@x.org", "nouuid@x.org"],
                        "username": ["kpap@grnet.gr", "maria@x.org", "twin@x.org", "nouuid@x.org"]})


def pithos_line(user: str, value: int | str) -> str:
    return f"{user} pithos+.diskspace {value} 0 {INF} {INF}\n"


def test_pithos_export_fields_and_line_numbers():
    frame = q.parse_pithos_export(pithos_line(U1, 10737418240) + pithos_line("kpap@grnet.gr", 0), "p.txt")
    assert frame[["user", "resource", "capacity", "file", "line"]].values.tolist() == [
        [U1, "pithos+.diskspace", 10737418240, "p.txt", 1], ["kpap@grnet.gr", "pithos+.diskspace", 0, "p.txt", 2]]
    assert q.parse_pithos_export("").empty


def test_cyclades_export():
    text = f"{U1} cyclades.vm 5 0 {INF} {INF}\n{U1} cyclades.network.private 0 0 {INF} {INF}\n"
    frame = q.parse_cyclades_export(text)
    assert frame[["resource", "capacity"]].values.tolist() == [["cyclades.vm", 5], ["cyclades.network.private", 0]]


@pytest.mark.parametrize("bad", [
    f"{U2}  pithos+.diskspace 5 0 {INF} {INF}",  # two spaces: seven fields to split(' ')
    "",  # a blank line
    f"{U2} pithos+.diskspace 5 0 0 0",  # the pre-rc7 limits (research §7, dd56628f0)
    f"{U2} pithos+.diskspace 5 0 {INF} {INF}\r",  # CRLF
    f"{U2} pithos.diskspace 5 0 {INF} {INF}",  # the 0.14 resource name
    f"{U2} pithos+.diskspace -5 0 {INF} {INF}",
    f"{U2} pithos+.diskspace 5.0 0 {INF} {INF}",
    f"{U2} cyclades.vm 5 0 {INF} {INF}",  # not this file's resource
])
def test_a_malformed_line_names_file_number_and_line(bad):
    text = pithos_line(U1, 1) + bad + "\n" + pithos_line(U3, 3)
    with pytest.raises(q.QuotaFileError) as caught:
        q.parse_pithos_export(text, "/tmp/pithos-quota.txt")
    assert isinstance(caught.value, ValueError)
    assert (caught.value.file, caught.value.number, caught.value.line) == ("/tmp/pithos-quota.txt", 2, bad)
    assert str(caught.value).startswith("/tmp/pithos-quota.txt, line 2: not `")
    assert repr(bad) in str(caught.value)


def test_pithos_zero_is_unlimited_in_astakos():
    pithos = q.parse_pithos_export(pithos_line(U1, 0) + pithos_line(U2, 5368709120))
    cyclades = q.parse_cyclades_export(f"{U1} cyclades.vm 0 0 {INF} {INF}\n")
    plan = q.plan_initial_quotas(ASTAKOS, pithos, cyclades).plan
    by = {(u, r): (c, unl) for u, r, c, unl in plan[["uuid", "resource", "capacity", "unlimited"]].values.tolist()}
    assert by == {(U1, "pithos+.diskspace"): (10**32, True), (U2, "pithos+.diskspace"): (5368709120, False),
                  (U1, "cyclades.vm"): (0, False)}  # Cyclades 0 VMs is zero VMs
    finite = q.plan_initial_quotas(ASTAKOS, pithos, unlimited=2**50).plan
    assert finite.loc[finite["uuid"] == U1, "capacity"].tolist() == [2**50]


def test_emails_resolve_through_the_username():
    # user-set-initial-quota matches uuids only: an email left in the export becomes the uuid of
    # the user whose username (0.13: the lower-cased email) it is.
    text = pithos_line("KPAP@grnet.gr", 7) + pithos_line(U3, 5)
    result = q.plan_initial_quotas(ASTAKOS, q.parse_pithos_export(text, "p.txt"))
    assert result.plan[["uuid", "capacity", "user", "line"]].values.tolist() == [
        [U1, 7, "KPAP@grnet.gr", 1], [U3, 5, U3, 2]]
    assert result.unknown.empty


def test_unknown_users():
    text = (pithos_line("ghost@x.org", 1) + pithos_line("nouuid@x.org", 3) + pithos_line("U2", 4))
    result = q.plan_initial_quotas(ASTAKOS, q.parse_pithos_export(text, "p.txt"))
    assert result.plan.empty
    assert result.unknown[["user", "line", "why"]].values.tolist() == [
        ["ghost@x.org", 1, "not in Astakos"], ["nouuid@x.org", 2, "its Astakos user has no uuid"],
        ["U2", 3, "not in Astakos"]]
    assert result.summary() == {"planned": 0, "unlimited": 0, "unknown": 3, "conflicts": 0}


def test_an_email_two_astakos_users_share_is_unknown():
    # Before the 0.13 migration (no username column yet) the lower-cased email stands for it.
    astakos = pd.DataFrame({"id": [3, 5], "uuid": [U3, "u5"], "email": ["twin@x.org", "Twin@x.org"]})
    result = q.plan_initial_quotas(astakos, q.parse_pithos_export(pithos_line("TWIN@x.org", 1)))
    assert result.unknown["why"].tolist() == ["its email is shared by several Astakos users (duplicates)"]


def test_several_lines_for_one_user_keep_the_largest():
    cyclades = q.parse_cyclades_export(f"{U1} cyclades.vm 3 0 {INF} {INF}\nkpap@grnet.gr cyclades.vm 5 0 {INF} {INF}\n"
                                       f"KPap@grnet.gr cyclades.vm 4 0 {INF} {INF}\n")
    result = q.plan_initial_quotas(ASTAKOS, cyclades)
    assert result.plan[["uuid", "capacity", "line"]].values.tolist() == [[U1, 5, 2]]
    assert result.conflicts.to_dict("records") == [
        {"uuid": U1, "resource": "cyclades.vm", "users": f"kpap@grnet.gr, KPap@grnet.gr, {U1}",
         "capacities": "5, 4, 3", "chosen": 5}]


def test_from_file_round_trip():
    pithos = q.parse_pithos_export(pithos_line(U2, 0) + pithos_line(U1, 123))
    cyclades = q.parse_cyclades_export(f"{U1} cyclades.network.private 2 0 {INF} {INF}\n")
    plan = q.plan_initial_quotas(ASTAKOS, pithos, cyclades).plan
    text = q.from_file_text(plan)
    # In the order of the export files' lines; Pithos' 0 is now the practically infinite.
    assert text.splitlines()[0] == f"{U2} pithos+.diskspace {10**32} 0 {INF} {INF}"
    assert all(len(line.split(" ")) == 6 for line in text.rstrip("\n").split("\n")) and text.endswith("\n")
    back = q.parse_from_file(text)
    assert back[["user", "resource", "capacity"]].values.tolist() == \
        plan[["uuid", "resource", "capacity"]].values.tolist()
    assert back["capacity"].tolist() == [10**32, 123, 2]
    assert set(back["quantity"]) == {0} and set(back["import_limit"]) == set(back["export_limit"]) == {10**30}
    assert q.from_file_text(plan.iloc[:0]) == ""


def test_from_file_refuses_a_line_the_command_would_skip():
    plan = pd.DataFrame({"uuid": ["a b"], "resource": ["cyclades.vm"], "capacity": [1]})
    with pytest.raises(q.StepError, match="no usable uuid"):
        q.from_file_text(plan)


def test_compare_after_import():
    plan = pd.DataFrame({"uuid": [U1, U1, U2], "resource": ["cyclades.vm", "pithos+.diskspace", "cyclades.vm"],
                         "capacity": [5, 10**32, 2]})
    actual = pd.DataFrame({"uuid": [U1, U1, U3], "resource": ["cyclades.vm", "pithos+.diskspace", "cyclades.vm"],
                           "capacity": [Decimal("5"), "99999999999999999999999999999999", 7]})
    differences = q.compare_quotas(plan, actual)
    assert differences[["uuid", "resource", "planned", "problem"]].values.tolist() == [
        [U1, "pithos+.diskspace", 10**32, "differs"], [U2, "cyclades.vm", 2, "missing"]]
    assert differences["actual"].iloc[0] == 10**32 - 1 and pd.isna(differences["actual"].iloc[1])
    assert q.compare_quotas(plan.iloc[:1], actual).empty


QH_INF = "100000000000000000000000000000000L"


def values(capacity: str) -> str:
    return f"QuotaValues(quantity=0, capacity={capacity}, import_limit={QH_INF}, export_limit={QH_INF})"


VERIFY = f"""Calculating all quotas...
Users not registered in quotaholder:
Kostas Papadopoulos (KPap@grnet.gr)
Maria (Mary) P. (maria@x.org)

No quotas for {U1} (kpap@grnet.gr) in quotaholder.
Quotas differ for {U2} (maria@x.org):
Quotas according to quotaholder:
{{u'cyclades.vm': {values("2L")}, u'pithos+.diskspace': {values("5368709120L")}}}
Quotas according to astakos:
{{u'cyclades.vm': {values("Decimal('5')")}, u'pithos+.diskspace': {values("5368709120L")}, u'cyclades.cpu': {values("6L")}}}

Quotas differ for 2 users.
"""


def test_verify_output_as_differences():
    found = q.parse_verify(VERIFY)
    assert found[["uuid", "user", "problem", "resource", "field"]].fillna("-").values.tolist() == [
        ["-", "KPap@grnet.gr", "not registered", "-", "-"],
        ["-", "maria@x.org", "not registered", "-", "-"],
        [U1, "kpap@grnet.gr", "no quotas", "-", "-"],
        [U2, "maria@x.org", "differs", "cyclades.cpu", "capacity"],
        [U2, "maria@x.org", "differs", "cyclades.vm", "capacity"]]
    assert found[["quotaholder", "astakos"]].iloc[3:].fillna("-").values.tolist() == [["-", 6], [2, 5]]


def test_verify_in_sync_is_empty():
    assert q.parse_verify("Calculating all quotas...\n").empty
    assert list(q.parse_verify("").columns) == q.VERIFY_COLUMNS


@pytest.mark.parametrize("change, message", [
    (("Quotas differ for 2 users.", "Quotas differ for 3 users."), "reports 3 users differing, its output lists 2"),
    (("No quotas for", "No quota for"), "line 6: unexpected 'No quota for"),
    (("u'cyclades.vm': QuotaValues(quantity=0, capacity=2L", "u'cyclades.vm': QuotaValues(quantity=0, capacity=x"),
     "line 9: unreadable quotas"),
])
def test_verify_output_it_does_not_know_raises(change, message):
    with pytest.raises(q.VerifyOutputError, match=message.replace("(", r"\(")):
        q.parse_verify(VERIFY.replace(*change))
