"""The Synnefo hosts as 0.12.5 left them (lab/synnefo/nodes.py) and their tools: the settings
files, dpkg's status and dpkg-query, apt-get's 0.13 packages (with the runbook's
install-packages.sh), and the runbook's step-2 scripts on the Astakos host. One started lab
for the module; a test that changes a host changes one no other test looks at, and the
deletions work on a copy of snf_apps."""

from __future__ import annotations

import uuid

import pytest

from airlift.sql import INCLUDE_DIR
from lab.core import postgres
from lab.core.nodes import run_in_node
from lab.core.topology import host
from lab.synnefo.tools import snf_common
from tests.helpers import started_lab

pytestmark = pytest.mark.lab

INSTALL = INCLUDE_DIR / "scripts" / "synnefo" / "s3" / "install-packages.sh"
PACKAGES = {
    "astakos": ["snf-common", "snf-webproject", "snf-astakos-app"],
    "cyclades": ["snf-common", "snf-webproject", "snf-pithos-backend", "snf-cyclades-app"],
    "pithos": ["snf-common", "snf-webproject", "snf-pithos-backend", "snf-pithos-app", "snf-pithos-webclient"],
    "ganeti1": ["snf-common", "snf-cyclades-gtools", "snf-pithos-backend"],
    "ganeti2": ["snf-common", "snf-cyclades-gtools", "snf-pithos-backend"],
}
SERVICES = {"astakos": ["gunicorn", "apache2"], "cyclades": ["gunicorn", "snf-dispatcher", "apache2", "memcached"],
            "pithos": ["gunicorn", "apache2"], "ganeti1": ["ganeti", "snf-ganeti-eventd"],
            "ganeti2": ["ganeti", "snf-ganeti-eventd"]}
QUERY = "dpkg-query -W -f '${db:Status-Abbrev}|${Version}' "


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with started_lab(tmp_path_factory.mktemp("snf"), world="synnefo", scale=1) as lab:
        yield lab


@pytest.fixture(scope="module")
def ssh(lab):
    """The DAGs' hook on the lab's `synnefo_ssh` (started_lab exported the connections)."""
    from hooks.synnefo import SynnefoHook

    hook = SynnefoHook()
    yield hook
    hook.close()


def sh(lab, node: str, command: str, stdin: str | None = None):
    result = run_in_node(lab.node_root(node), command, stdin=stdin.encode() if stdin is not None else None)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def versions(lab, node: str) -> dict[str, str]:
    status = (lab.node_root(node) / "var/lib/dpkg/status").read_text()
    return {p: snf_common.installed_version(p, str(lab.node_root(node) / "var/lib/dpkg/status"))
            for p in PACKAGES[node] + ["snf-quotaholder-app"] if f"Package: {p}\n" in status}


def running(lab, node: str, service: str) -> bool:
    return sh(lab, node, f"service {service} status")[0] == 0


# -- the hosts at 0.12.5 -----------------------------------------------------------------------
def test_settings_files_are_python_and_name_the_world_databases(lab, ssh):
    info = lab.info
    settings = {}
    for node in ("astakos", "cyclades", "pithos", "ganeti1"):
        directory = lab.node_root(node) / "etc/synnefo"
        for path in sorted(directory.glob("*.conf")):
            compile(path.read_text(), str(path), "exec")
        settings[node] = snf_common.load_settings(str(directory))
    for node in ("astakos", "cyclades", "pithos"):
        db = settings[node]["DATABASES"]["default"]
        assert db["ENGINE"] == "django.db.backends.postgresql_psycopg2" and db["NAME"] == info["snf_apps"]
        assert snf_common.apps_db(settings[node]).value("SELECT count(*) FROM auth_user") == \
            str(info["counts"]["astakos_users"])
        mode = (lab.node_root(node) / "etc/synnefo/10-snf-webproject-database.conf").stat().st_mode & 0o777
        assert mode == 0o640
    assert "DATABASES" not in settings["ganeti1"]  # no Django on a Ganeti node
    for node, name in (("pithos", "PITHOS_BACKEND_DB_CONNECTION"), ("cyclades", "BACKEND_DB_CONNECTION")):
        url = settings[node][name]
        assert url.startswith("postgresql://") and url.endswith("/" + info["snf_pithos"])
        assert snf_common.url_db(url).value("SELECT count(*) FROM nodes WHERE parent = 0 AND node <> 0") == \
            str(info["counts"]["pithos_accounts"])
    cyclades = settings["cyclades"]
    assert cyclades["ASTAKOS_URL"] == "https://astakos/im/authenticate"
    assert (cyclades["MAX_VMS_PER_USER"], cyclades["MAX_NETWORKS_PER_USER"]) == (3, 5)
    assert {k: cyclades[k] for k in ("VMS_USER_QUOTA", "NETWORKS_USER_QUOTA")} == info["cyclades_user_quota"]
    assert (settings["pithos"]["PITHOS_BACKEND_QUOTA"], settings["pithos"]["PITHOS_AUTHENTICATION_USERS"]) == \
        (50 * 1024 ** 3, {})
    assert {"ASTAKOS_DEFAULT_FROM_EMAIL", "ASTAKOS_DEFAULT_ADMIN_EMAIL"} <= set(settings["astakos"])
    api = lab.node_root("cyclades") / "etc/synnefo/20-snf-cyclades-app-api.conf"
    assert api.stat().st_mode & 0o777 == 0o644
    # Over SSH, as the DAG reads them.
    assert ssh.settings_files(host("cyclades").address)["/etc/synnefo/20-snf-cyclades-app-api.conf"] == \
        api.read_text()


def test_dpkg_has_each_role_s_0_12_packages_and_the_services_run(lab):
    for node, packages in PACKAGES.items():
        assert versions(lab, node) == dict.fromkeys(packages, "0.12.5-1"), node
        assert sh(lab, node, QUERY + packages[-1]) == (0, "ii |0.12.5-1", "")
        for service in SERVICES[node]:
            assert running(lab, node, service), (node, service)
    status, out, err = sh(lab, "astakos", QUERY + "snf-quotaholder-app")
    assert (status, out, err) == (1, "", "dpkg-query: no packages found matching snf-quotaholder-app\n")


# -- apt-get and the runbook's 3.1 ------------------------------------------------------------
def test_apt_get_installs_0_13_starts_the_services_and_a_second_run_changes_nothing(lab):
    node = "pithos"
    assert sh(lab, node, "service gunicorn stop")[0] == 0
    status, out, err = sh(lab, node, "DEBIAN_FRONTEND=noninteractive apt-get install -y kamaki "
                                     + " ".join(PACKAGES[node]))
    assert status == 0, err
    assert "Setting up snf-pithos-app (0.13.0-1) ..." in out.splitlines()
    assert versions(lab, node) == dict.fromkeys(PACKAGES[node], "0.13.0-1")
    assert running(lab, node, "gunicorn")  # the package started it: the runbook stops it again
    status_file = (lab.node_root(node) / "var/lib/dpkg/status").read_bytes()
    settings = (lab.node_root(node) / "etc/synnefo/20-snf-pithos-app-settings.conf").read_bytes()
    status, out, _ = sh(lab, node, "apt-get install -y " + " ".join(PACKAGES[node]))
    assert status == 0
    assert [line for line in out.splitlines() if "newest" in line] == \
        [f"{p} is already the newest version." for p in PACKAGES[node]]
    assert (lab.node_root(node) / "var/lib/dpkg/status").read_bytes() == status_file
    # The admin's settings file is kept (dpkg keeps a changed conffile).
    assert (lab.node_root(node) / "etc/synnefo/20-snf-pithos-app-settings.conf").read_bytes() == settings


def test_apt_get_refuses_an_unknown_package_or_an_unanswered_question_and_changes_nothing(lab):
    node = "ganeti2"
    before = (lab.node_root(node) / "var/lib/dpkg/status").read_bytes()
    assert sh(lab, node, "service snf-ganeti-eventd stop")[0] == 0
    status, _, err = sh(lab, node, "DEBIAN_FRONTEND=noninteractive apt-get install -y snf-common no-such-package")
    assert (status, err) == (100, "E: Unable to locate package no-such-package\n")
    status, out, _ = sh(lab, node, "apt-get install snf-cyclades-gtools", stdin="")
    assert status == 1 and out.splitlines()[-1] == "Do you want to continue [Y/n]? Abort."
    assert (lab.node_root(node) / "var/lib/dpkg/status").read_bytes() == before
    assert not running(lab, node, "snf-ganeti-eventd")


def test_install_packages_script_installs_the_role_s_packages_and_then_reports_done(lab, ssh):
    node, address = "cyclades", host("cyclades").address
    script = INSTALL.read_text()
    api = (lab.node_root(node) / "etc/synnefo/20-snf-cyclades-app-api.conf").read_bytes()
    for service in ("gunicorn", "snf-dispatcher"):
        assert sh(lab, node, f"service {service} stop")[0] == 0
    check = ssh.run_script(address, script, ["--check", "cyclades", "0.13"], check=False)
    assert (check.exit_status, check.stdout) == (10, (
        "apt-get install snf-common snf-webproject snf-pithos-backend snf-cyclades-app (now: snf-common 0.12.5-1, "
        "snf-webproject 0.12.5-1, snf-pithos-backend 0.12.5-1, snf-cyclades-app 0.12.5-1)\n"))
    assert ssh.run_script(address, script, ["cyclades", "0.13"]).exit_status == 0
    assert versions(lab, node) == dict.fromkeys(PACKAGES[node], "0.13.0-1")
    assert ssh.run_script(address, script, ["--check", "cyclades", "0.13"], check=False).exit_status == 0
    assert running(lab, node, "gunicorn") and running(lab, node, "snf-dispatcher")
    # 0.13's new conffiles are added, the existing ones kept; all still Python.
    quotas = lab.node_root(node) / "etc/synnefo/20-snf-cyclades-app-quotas.conf"
    assert "#CYCLADES_USE_QUOTAHOLDER = False" in quotas.read_text()
    assert (lab.node_root(node) / "etc/synnefo/20-snf-cyclades-app-api.conf").read_bytes() == api
    assert "CYCLADES_USE_QUOTAHOLDER" not in snf_common.load_settings(str(quotas.parent))


# -- the runbook's step 2 on the Astakos host ---------------------------------------------------
def _duplicates(lab) -> dict[int, str]:
    """{Astakos user id: email} of the world's case-insensitive duplicates."""
    people = {u["id"]: u["email"] for p in lab.info["people"].values() for u in p["astakos"]}
    return {i: people[i] for ids in lab.info["duplicates"]["astakos"].values() for i in ids}


def test_find_lists_exactly_the_astakos_duplicates(lab):
    status, out, err = sh(lab, "astakos", "find_astakos_users_with_conflicting_emails.py")
    assert (status, err) == (0, "id email (is_active, creation date)\n")
    listed = {}
    for line in out.splitlines():
        user_id, rest = line.split(": ", 1)
        email, flags = rest.split(" (", 1)
        assert flags.split(", ")[0] in ("True", "False") and flags.endswith(")")
        listed[int(user_id)] = email
    assert listed == _duplicates(lab)


@pytest.fixture
def apps_copy(lab):
    """The astakos host's settings in /tmp/settings-copy, naming a copy of snf_apps."""
    server, name = lab.info["server"], f"{lab.info['snf_apps']}_{uuid.uuid4().hex[:6]}"
    postgres.copy_database(server, lab.info["snf_apps"], name)
    copy = lab.node_root("astakos") / "tmp/settings-copy"
    copy.mkdir()
    for path in (lab.node_root("astakos") / "etc/synnefo").glob("*.conf"):
        (copy / path.name).write_text(path.read_text().replace(repr(lab.info["snf_apps"]), repr(name)))
    try:
        yield name
    finally:
        postgres.drop_database(server, name)


def test_delete_removes_the_duplicates_only_when_told_yes(lab, ssh, apps_copy):
    server, env = lab.info["server"], "SYNNEFO_SETTINGS_DIR=/tmp/settings-copy "

    def users():
        return postgres.query(server, apps_copy, "SELECT u.id, a.user_ptr_id FROM auth_user u "
                                                 "FULL JOIN im_astakosuser a ON a.user_ptr_id = u.id ORDER BY 1")

    before = users()
    # Keep the first user of each email, delete the others.
    doomed = [i for ids in lab.info["duplicates"]["astakos"].values() for i in sorted(ids)[1:]]
    emails = _duplicates(lab)
    args = " ".join(map(str, doomed))
    status, out, _ = sh(lab, "astakos", env + f"delete_astakos_users.py {args}", stdin="no\n")
    assert status == 0 and "Execute? (yes/no): " in out and out.splitlines()[-1] == "Cancelled"
    assert [line.split(" (")[0] for line in out.splitlines() if line[:1].isdigit()] == \
        [f"{i}: {emails[i]}" for i in doomed]
    status, _, err = sh(lab, "astakos", env + f"delete_astakos_users.py {args} 999999", stdin="yes\n")
    assert status == 1 and err.splitlines()[-1] == \
        "astakos.im.models.DoesNotExist: AstakosUser matching query does not exist."
    assert users() == before
    # As the DAG runs it: over SSH, `yes` on stdin.
    result = ssh.run(host("astakos").address, env + f"delete_astakos_users.py {args}", stdin="yes\n")
    assert [line for line in result.stdout.splitlines() if line.startswith("deleting ")] == \
        [f"deleting {i}: {emails[i]}" for i in doomed]
    assert users() == [row for row in before if row[0] not in doomed]
    found = ssh.run(host("astakos").address, env + "find_astakos_users_with_conflicting_emails.py")
    assert found.stdout == "\n"
