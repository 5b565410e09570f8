"""synnefo.settings: settings files edited in place, valid Python before and after."""

import pytest

from synnefo import settings

CONF = """\
## Pithos settings
# PITHOS_USER_CATALOG_URL = 'https://accounts.example.synnefo.org/user_catalogs/'
PITHOS_BACKEND_QUOTA = 50*1024**3
PITHOS_USE_QUOTAHOLDER = False  # until the accounts are uuids
PITHOS_AUTHENTICATION_USERS = {
    'user@example.org': '0000',
}
ASTAKOS_LOGIN_REDIRECT = 'https://old/'
"""


def run(values=None, remove=(), secret=(), text=CONF):
    return settings.edit(text, "/etc/synnefo/20-snf-pithos-app-settings.conf", values, remove, secret)


def test_values_replace_in_place_and_missing_ones_are_appended():
    edit = run({"PITHOS_USE_QUOTAHOLDER": True, "PITHOS_USER_CATALOG_URL": "https://astakos/user_catalogs",
                "PITHOS_AUTHENTICATION_USERS": {}})
    assert edit.changed == ["PITHOS_USE_QUOTAHOLDER", "PITHOS_USER_CATALOG_URL", "PITHOS_AUTHENTICATION_USERS"]
    assert "PITHOS_USE_QUOTAHOLDER = True  # until the accounts are uuids\n" in edit.text
    assert "PITHOS_AUTHENTICATION_USERS = {}\n" in edit.text and "'user@example.org'" not in edit.text
    assert edit.text.endswith("PITHOS_USER_CATALOG_URL = 'https://astakos/user_catalogs'\n")
    # the commented example stays a comment; the rest is untouched
    assert "# PITHOS_USER_CATALOG_URL = 'https://accounts" in edit.text
    assert "PITHOS_BACKEND_QUOTA = 50*1024**3\n" in edit.text
    values = settings.current(edit.text, "f")
    assert values["PITHOS_USE_QUOTAHOLDER"] is True and values["PITHOS_AUTHENTICATION_USERS"] == {}


def test_a_second_edit_changes_nothing():
    wanted = {"PITHOS_USE_QUOTAHOLDER": True, "PITHOS_USER_CATALOG_URL": "https://astakos/user_catalogs"}
    first = run(wanted, remove=("ASTAKOS_LOGIN_REDIRECT",))
    second = run(wanted, remove=("ASTAKOS_LOGIN_REDIRECT",), text=first.text)
    assert second.changed == [] and second.text == first.text


def test_remove_comments_the_assignment_out():
    edit = run(remove=("ASTAKOS_LOGIN_REDIRECT", "NOT_THERE"))
    assert edit.changed == ["ASTAKOS_LOGIN_REDIRECT"]
    assert "#ASTAKOS_LOGIN_REDIRECT = 'https://old/'\n" in edit.text
    assert "ASTAKOS_LOGIN_REDIRECT" not in settings.current(edit.text, "f")


def test_an_expression_that_is_not_a_literal_is_replaced_when_set():
    edit = run({"PITHOS_BACKEND_QUOTA": 5 * 1024**3})
    assert "PITHOS_BACKEND_QUOTA = 5368709120\n" in edit.text


def test_values_with_quotes_and_newlines_stay_python():
    edit = run({"SERVER_EMAIL": "it's \"ops\"\nx", "ADMINS": (("Ops", "ops@example.org"),)})
    assert settings.current(edit.text, "f")["SERVER_EMAIL"] == "it's \"ops\"\nx"
    assert settings.current(edit.text, "f")["ADMINS"] == (("Ops", "ops@example.org"),)


def test_a_file_that_is_not_python_is_refused_with_its_line():
    broken = CONF + "PITHOS_USER_LOGIN_URL = https://astakos/login\n"
    with pytest.raises(settings.SettingsFileError, match=r"line 9: not valid Python"):
        run({"PITHOS_USE_QUOTAHOLDER": True}, text=broken)


@pytest.mark.parametrize("name, value", [("lower", 1), ("X; import os", 1), ("URL", object())])
def test_bad_names_and_values_are_refused(name, value):
    with pytest.raises(settings.SettingsFileError):
        run({name: value})


def test_secrets_are_masked_in_plan_lines():
    edit = run({"PITHOS_QUOTAHOLDER_TOKEN": "s3cret"}, secret=("PITHOS_QUOTAHOLDER_TOKEN",))
    assert edit.secret == {"PITHOS_QUOTAHOLDER_TOKEN"}
    assert settings.shown("PITHOS_QUOTAHOLDER_TOKEN", "s3cret", edit.secret) == "PITHOS_QUOTAHOLDER_TOKEN = ***"
    assert settings.shown("X", "a") == "X = 'a'"


def test_integer_arithmetic_is_read_without_running_the_file():
    values = settings.current("A = 50*1024**3\nB = -2 + 3\nC = 2**1000000\nD = open('x')\nE = 'a' * 3\n", "f")
    assert values == {"A": 50 * 1024**3, "B": 1}
