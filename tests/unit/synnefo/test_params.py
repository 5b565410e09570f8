"""The trigger parameters of synnefo_upgrade_v013: every problem listed at once, before
anything changes; what passes is safe to quote into a shell."""

from __future__ import annotations

import pytest

from airlift.params import ParamError
from synnefo.params import DEFAULT_SERVICES, check, service_hosts

DATABASES = {"snf_apps": {"server": "127.0.0.1", "port": 5432, "user": "synnefo", "database": "snf_apps"},
             "snf_pithos": {"server": "db.example.org", "port": 5432, "user": "synnefo", "database": "snf_pithos"}}
GOOD = {"astakos_host": "accounts.example.org", "cyclades_host": "127.0.1.52", "pithos_host": "pithos",
        "ganeti_nodes": ["ganeti1", "ganeti2"], "db_host": "", "backup_dir": "/var/backups/synnefo/",
        "services": DEFAULT_SERVICES}


def test_good_params_give_the_settings():
    settings = check(GOOD, DATABASES)
    assert settings["hosts"] == {"astakos": "accounts.example.org", "cyclades": "127.0.1.52", "pithos": "pithos"}
    assert settings["db_host"] == "accounts.example.org"  # empty: pg_dump runs on the Astakos host
    assert settings["backup_dir"] == "/var/backups/synnefo"
    assert [h["server_name"] for h in service_hosts(settings)] == ["astakos", "cyclades", "pithos"]
    assert service_hosts(settings)[1]["services"] == ["gunicorn", "snf-dispatcher", "apache2"]


def test_every_problem_is_listed_at_once():
    bad = {**GOOD, "astakos_host": "accounts;reboot", "ganeti_nodes": ["ok", "$(id)"], "backup_dir": "/var/../etc",
           "services": {"astakos": ["gunicorn", "apache2 && rm -rf /"], "dns": ["bind9"]}}
    databases = {"snf_apps": {**DATABASES["snf_apps"], "database": "snf_apps; DROP", "port": "5432"}}
    with pytest.raises(ParamError) as caught:
        check(bad, databases)
    message = str(caught.value)
    for expected in ("astakos_host 'accounts;reboot'", "ganeti_nodes[1] '$(id)'", "backup_dir '/var/../etc'",
                     "services {", "snf_apps database 'snf_apps; DROP'", "snf_apps port '5432'",
                     "no snf_pithos database"):
        assert expected in message, expected


def test_a_host_with_a_newline_is_refused():
    with pytest.raises(ParamError, match="pithos_host"):
        check({**GOOD, "pithos_host": "pithos\n"}, DATABASES)


def test_package_hosts_name_every_host_by_its_role():
    from synnefo.params import package_hosts

    hosts = package_hosts(check(GOOD, DATABASES))
    assert [(h["server_name"], h["role"]) for h in hosts] == [
        ("astakos", "astakos"), ("cyclades", "cyclades"), ("pithos", "pithos"), ("ganeti1", "ganeti"),
        ("ganeti2", "ganeti")]
    assert hosts[3]["address"] == "ganeti1"


def test_urls_default_to_the_hosts_and_settings_values_are_checked():
    settings = check(GOOD, DATABASES)
    assert settings["astakos_url"] == "https://accounts.example.org"
    assert settings["cyclades_url"] == "https://127.0.1.52"
    assert (settings["server_email"], settings["admins"]) == ("", [])
    given = check({**GOOD, "astakos_url": "https://accounts.example.org:8443/", "server_email": "ops@example.org",
                   "admins": [["Ops Team", "ops@example.org"]]}, DATABASES)
    assert given["astakos_url"] == "https://accounts.example.org:8443"
    assert given["admins"] == [["Ops Team", "ops@example.org"]]


@pytest.mark.parametrize("key, value", [
    ("astakos_url", "https://accounts.example.org/'; import os #"), ("astakos_url", "ftp://x"),
    ("cyclades_url", "https://a b"), ("server_email", "ops@example.org\nBcc: x"), ("admins", [["Ops", "not-mail"]]),
    ("admins", [["Ops\n", "ops@example.org"]]), ("admins", "ops@example.org")])
def test_bad_settings_values_are_refused(key, value):
    with pytest.raises(ParamError, match=key):
        check({**GOOD, key: value}, DATABASES)
