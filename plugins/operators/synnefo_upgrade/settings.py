"""Runbook part 3's settings (3.3-3.6), part 5's ASTAKOS_SERVICES and part 6's switches: the
/etc/synnefo/*.conf files of each host edited in place (synnefo/settings.py: Python literals,
the file valid before and after, a setting already right left alone).

A setting is edited in the last file that assigns it (Synnefo executes the files in name
order, the last assignment wins), else added to the file the runbook names. Every settings
file of a host must parse before anything is written: one that does not already breaks every
snf-manage command, and is for a person to fix.

Tokens (the shared quotaholder token, the services' tokens from `service-list`) are masked in
the logs, shown as *** in plans, and never go to XCom.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from airlift.errors import StepError
from operators.runbook_step import Plan
from operators.synnefo_upgrade.common import SynnefoStepOperator
from synnefo import settings as conf

ASTAKOS_CONF = "/etc/synnefo/20-snf-astakos-app-settings.conf"
CYCLADES_QUOTAS_CONF = "/etc/synnefo/20-snf-cyclades-app-quotas.conf"
CYCLADES_API_CONF = "/etc/synnefo/20-snf-cyclades-app-api.conf"
CYCLADES_VMAPI_CONF = "/etc/synnefo/20-snf-cyclades-app-vmapi.conf"
PITHOS_CONF = "/etc/synnefo/20-snf-pithos-app-settings.conf"
# The runbook's memcached backend for VMAPI (3.5): memcached on the Cyclades host itself.
VMAPI_CACHE_BACKEND = "memcached://127.0.0.1:11211/?timeout=3600"
SERVICE_ROW = re.compile(r"^\s*(\d+)\|(\d+)\|([^|]*)\|([^|]*)\|([^|]*)\|")


@dataclass
class Target:
    """What one host's settings must say."""

    role: str
    default_file: str
    values: dict = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    secret: tuple[str, ...] = ()


class SettingsOperator(SynnefoStepOperator):
    """Settings files edited in place on one or more hosts (subclasses say what: targets())."""

    def targets(self, context, files: dict[str, dict[str, str]]) -> list[Target]:
        """What each host's settings must say, given its files now ({role: {path: text}});
        hosts in the order they are written."""
        raise NotImplementedError

    roles: Sequence[str] = ()  # the hosts whose files targets() reads

    def read(self, role: str) -> dict[str, str]:
        files = self.nodes.settings_files(self.settings["hosts"][role])
        for path, text in files.items():
            conf.parse(text, f"{role}:{path}")  # a file Synnefo cannot read stops the step here
        return files

    def probe(self, context) -> Plan:
        files = {role: self.read(role) for role in self.roles}
        changes, written = [], {}
        for target in self.targets(context, files):
            if target.role not in files:
                files[target.role] = self.read(target.role)
            for path, edit in self._edits(target, files[target.role]).items():
                # a later target of the same file edits this one's result, not the file as read
                files[target.role][path] = edit.text
                written[target.role, path] = edit
                for name in edit.changed:
                    line = (f"comment out {name}" if name in target.remove
                            else conf.shown(name, target.values[name], edit.secret))
                    changes.append(f"{target.role}: {path}: {line}")
        return Plan(changes, work=[(role, path, edit) for (role, path), edit in written.items()])

    @staticmethod
    def _edits(target: Target, files: dict[str, str]) -> dict[str, conf.Edit]:
        by_file: dict[str, dict] = {}
        for name, value in target.values.items():
            home = next((p for p in sorted(files, reverse=True) if name in _assigned(files[p], p)), target.default_file)
            by_file.setdefault(home, {})[name] = value
        removed: dict[str, list[str]] = {}
        for name in target.remove:
            for path in files:
                if name in _assigned(files[path], path):
                    removed.setdefault(path, []).append(name)
        edits = {}
        for path in sorted(set(by_file) | set(removed)):
            edit = conf.edit(files.get(path, ""), path, by_file.get(path), tuple(removed.get(path, ())),
                             target.secret)
            if edit.changed:
                edits[path] = edit
        return edits

    def apply(self, context, plan: Plan) -> dict:
        for role, path, edit in plan.work:
            self.nodes.write_settings_file(self.settings["hosts"][role], path, edit.text)
        return {"files": sorted({f"{role}:{path}" for role, path, _ in plan.work})}

    @staticmethod
    def masked(value: str) -> str:
        from airflow.sdk.log import mask_secret

        if value:
            mask_secret(value)
        return value


def _assigned(text: str, path: str) -> set[str]:
    return set(conf.assignments(conf.parse(text, path)))


def current(files: dict[str, str]) -> dict:
    """The values a host's settings end with (the files in name order, literals only)."""
    values: dict = {}
    for path in sorted(files):
        values.update(conf.current(files[path], path))
    return values


def quotaholder_url(settings: dict) -> str:
    return f"{settings['astakos_url']}/quotaholder/v"


class QuotaSettingsOperator(SettingsOperator):
    """One quotaholder URL and one shared token on every service (runbook 3.3): Astakos's
    QUOTAHOLDER_* and ASTAKOS_QUOTAHOLDER_*, Cyclades's CYCLADES_* (on, its quota enforced by
    the quotaholder), Pithos's PITHOS_* with PITHOS_USE_QUOTAHOLDER False until its accounts
    are uuids (6.4). The token is the one the Astakos host has, or a new random one: written
    there first, so a retry after a partial write takes it from there."""

    roles = ("astakos", "pithos")

    def targets(self, context, files) -> list[Target]:
        token = self.masked(current(files["astakos"]).get("QUOTAHOLDER_TOKEN") or "") or \
            self.masked(secrets.token_urlsafe(24))
        url = quotaholder_url(self.settings)
        return [
            Target("astakos", ASTAKOS_CONF, {"QUOTAHOLDER_URL": url, "QUOTAHOLDER_TOKEN": token,
                                             "ASTAKOS_QUOTAHOLDER_URL": url, "ASTAKOS_QUOTAHOLDER_TOKEN": token},
                   secret=("QUOTAHOLDER_TOKEN", "ASTAKOS_QUOTAHOLDER_TOKEN")),
            Target("cyclades", CYCLADES_QUOTAS_CONF, {"CYCLADES_USE_QUOTAHOLDER": True, "CYCLADES_QUOTAHOLDER_URL": url,
                                                      "CYCLADES_QUOTAHOLDER_TOKEN": token},
                   secret=("CYCLADES_QUOTAHOLDER_TOKEN",)),
            Target("pithos", PITHOS_CONF, {"PITHOS_QUOTAHOLDER_URL": url, "PITHOS_QUOTAHOLDER_TOKEN": token,
                                           "PITHOS_USE_QUOTAHOLDER": self.pithos_uses_quotaholder(files)},
                   secret=("PITHOS_QUOTAHOLDER_TOKEN",)),
        ]

    def pithos_uses_quotaholder(self, files) -> bool:
        """False until 6.4 turned it on: a second run must not turn it off again."""
        pithos = files.get("pithos") or self.read("pithos")
        return bool(current(pithos).get("PITHOS_USE_QUOTAHOLDER", False)) and self.pithos_migrated()

    def pithos_migrated(self) -> bool:
        from operators.synnefo_upgrade.migrate import ALEMBIC_HEAD, alembic_revision

        return alembic_revision(self.db("snf_pithos")) == ALEMBIC_HEAD


class AstakosSettingsOperator(SettingsOperator):
    """Astakos (runbook 3.4): users may change their email; the 0.12 ASTAKOS_DEFAULT_FROM_EMAIL
    and ASTAKOS_DEFAULT_ADMIN_EMAIL become Django's SERVER_EMAIL and ADMINS (the params' values,
    else the old settings' own) and are commented out (0.13 reads them no more)."""

    roles = ("astakos",)

    def targets(self, context, files) -> list[Target]:
        now = current(files["astakos"])
        server_email = self.settings["server_email"] or now.get("SERVER_EMAIL") or now.get("ASTAKOS_DEFAULT_FROM_EMAIL")
        admins = self.settings["admins"] or now.get("ADMINS")
        if not admins and now.get("ASTAKOS_DEFAULT_ADMIN_EMAIL"):
            admins = [["Astakos admin", now["ASTAKOS_DEFAULT_ADMIN_EMAIL"]]]
        if not server_email or not admins:
            raise StepError("no SERVER_EMAIL or ADMINS to set: give the server_email and admins params (the old "
                            "ASTAKOS_DEFAULT_FROM_EMAIL / ASTAKOS_DEFAULT_ADMIN_EMAIL are not set either)")
        return [Target("astakos", ASTAKOS_CONF, {"ASTAKOS_EMAILCHANGE_ENABLED": True, "SERVER_EMAIL": server_email,
                                                 "ADMINS": tuple(tuple(a) for a in admins)},
                       remove=("ASTAKOS_DEFAULT_FROM_EMAIL", "ASTAKOS_DEFAULT_ADMIN_EMAIL"))]


def service_tokens(nodes, astakos_host: str) -> dict[str, str]:
    """{service name: auth token} from `snf-manage service-list -c` on the Astakos host
    (id|order|name|url|auth_token|icon rows)."""
    result = nodes.snf_manage(astakos_host, ["service-list", "-c"], log_output=False)
    tokens = {}
    for line in result.stdout.splitlines():
        m = SERVICE_ROW.match(line)
        if m:
            tokens[m.group(3).strip()] = m.group(5).strip()
    return tokens


class CycladesSettingsOperator(SettingsOperator):
    """Cyclades (runbook 3.5): its service token from `service-list` on the Astakos host, VMAPI's
    memcached backend and base URL (the Cyclades URL exactly, so no redirect happens)."""

    roles = ("cyclades",)

    def targets(self, context, files) -> list[Target]:
        token = self.masked(service_tokens(self.nodes, self.settings["hosts"]["astakos"]).get("cyclades", ""))
        if not token:
            raise StepError("`snf-manage service-list` on the Astakos host lists no token for service cyclades")
        return [
            Target("cyclades", CYCLADES_API_CONF, {"CYCLADES_ASTAKOS_SERVICE_TOKEN": token},
                   secret=("CYCLADES_ASTAKOS_SERVICE_TOKEN",)),
            Target("cyclades", CYCLADES_VMAPI_CONF, {"VMAPI_CACHE_BACKEND": VMAPI_CACHE_BACKEND,
                                                     "VMAPI_BASE_URL": self.settings["cyclades_url"]}),
        ]


class PithosSettingsOperator(SettingsOperator):
    """Pithos (runbook 3.6): the user catalog, feedback and login URLs of Astakos (quoted: the
    runbook's unquoted values break every command), and PITHOS_SERVICE_TOKEN, which the
    runbook never mentions but 6.4's account migration and 9.1's usage reset need: the token
    of service pithos+ (or pithos, before part 5 renames it) from `service-list`."""

    roles = ("pithos",)

    def targets(self, context, files) -> list[Target]:
        tokens = service_tokens(self.nodes, self.settings["hosts"]["astakos"])
        token = self.masked(tokens.get("pithos+") or tokens.get("pithos") or "")
        if not token:
            raise StepError("`snf-manage service-list` on the Astakos host lists no token for service pithos+ "
                            "(or pithos)")
        base = self.settings["astakos_url"]
        return [Target("pithos", PITHOS_CONF, {
            "PITHOS_USER_CATALOG_URL": f"{base}/user_catalogs/", "PITHOS_USER_FEEDBACK_URL": f"{base}/feedback/",
            "PITHOS_USER_LOGIN_URL": f"{base}/login/", "PITHOS_SERVICE_TOKEN": token},
            secret=("PITHOS_SERVICE_TOKEN",))]


class PithosQuotaholderOnOperator(SettingsOperator):
    """PITHOS_USE_QUOTAHOLDER = True once the Pithos accounts are uuids (runbook 6.4)."""

    roles = ("pithos",)

    def targets(self, context, files) -> list[Target]:
        return [Target("pithos", PITHOS_CONF, {"PITHOS_USE_QUOTAHOLDER": True})]
