"""Upgrading the web interface (runbook: "Upgrading the web interface", "Proxy for snapshot
downloads"): the checkout update is a script (NodeScriptOperator), the download proxy is
common.WebMountsOperator; config.php is here."""

from __future__ import annotations

from collections.abc import Sequence

from operators.runbook_step import RunbookStepOperator
from operators.vpsadmin_upgrade.common import NodeFileEditOperator
from vpsadmin import configs


class WebConfigOperator(NodeFileEditOperator):
    """API_URL and ENV_VPS_PRODUCTION_ID (the id of the environment labelled
    `production_environment`) in config.php of the web interface, replaced in place when
    present; the 1.22 file is kept as config.php.v1.22. An empty `api_url`: where the upgrade
    started the API (connection vpsadmin_api)."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "api_url", "production_environment",
                                      "web_root")

    def __init__(self, *, api_url: str, production_environment: str, web_root: str, **kwargs):
        super().__init__(**kwargs)
        self.api_url, self.production_environment, self.web_root = api_url, production_environment, web_root

    def path(self) -> str:
        return f"{self.web_root.rstrip('/')}/config.php"

    def transform(self, text: str) -> str:
        envs = {e["label"]: e["id"] for e in self.db.environments()}
        if self.production_environment not in envs:
            raise ValueError(f"no environment labelled {self.production_environment!r}")
        return configs.php_defines(text, {"API_URL": self.api_url or self.api.base_url,
                                          "ENV_VPS_PRODUCTION_ID": int(envs[self.production_environment])})
