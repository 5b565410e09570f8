"""synnefo.uuids: part 6 planned from what Cyclades, Pithos and Astakos hold."""

from synnefo.uuids import PithosMerge, cyclades_plan, pithos_plan, user_quota_settings

GiB = 1024**3


def test_cyclades_spellings_are_merged_and_unknown_ids_deleted():
    ids = ["Alice@cs.example", "alice@cs.example", "Ivan@arch.example", "ghost@old.example", "Ghost@old.example",
           "3f9a1c2e-uuid-already", None, ""]
    plan = cyclades_plan(ids, {"alice@cs.example", "ivan@arch.example"})
    assert plan.merges == ["alice@cs.example"]  # Ivan@ alone is no duplicate: migrate maps it as it is
    assert plan.deletes == ["Ghost@old.example", "ghost@old.example"]
    assert plan.migrate == ["alice@cs.example", "ivan@arch.example"]


def test_pithos_duplicates_merge_into_the_lower_case_account_carrying_the_largest_quota():
    quotas = {"Alice@x": str(20 * GiB), "alice@x": None,           # default (50 GiB) is larger: nothing to carry
              "Bob@x": "0", "bob@x": str(10 * GiB),               # 0: unlimited wins
              "Nomad@x": None, "nomad@x": "0",                     # the survivor already unlimited
              "ERIN@x": str(30 * GiB), "Erin@x": None,            # no lower-case spelling: the first sorted
              "solo@x": "5"}
    plan = pithos_plan(quotas, default=50 * GiB)
    assert plan.merges == [PithosMerge("Alice@x", "alice@x"), PithosMerge("Bob@x", "bob@x"),
                           PithosMerge("Erin@x", "ERIN@x"), PithosMerge("Nomad@x", "nomad@x")]
    assert plan.quotas == {"bob@x": "0", "ERIN@x": str(50 * GiB)}


def test_user_quota_settings_are_keyed_by_uuid_with_the_largest_limit():
    settings = {"VMS_USER_QUOTA": {"Alice@x": 5, "alice@x": 8, "ghost@x": 6, "uuid-ivan": 4},
                "NETWORKS_USER_QUOTA": {"Bob@x": 2}}
    uuids = {"alice@x": "uuid-alice", "bob@x": "uuid-bob", "ivan@x": "uuid-ivan"}
    # Cyclades knows bob as bob@x (merged) without an entry of its own: the default 5 counts
    result = user_quota_settings(settings, {"VMS_USER_QUOTA": 3, "NETWORKS_USER_QUOTA": 5}, uuids,
                                 ["alice@x", "bob@x", "ghost@x"])
    assert result.values == {"VMS_USER_QUOTA": {"uuid-alice": 8, "uuid-ivan": 4},
                             "NETWORKS_USER_QUOTA": {"uuid-bob": 5}}
    assert result.dropped == {"VMS_USER_QUOTA": ["ghost@x"]}
    again = user_quota_settings(result.values, {"VMS_USER_QUOTA": 3, "NETWORKS_USER_QUOTA": 5}, uuids, [])
    assert again.values == result.values and again.dropped == {}
