"""Generic runbook-step operators: probe, then change only what the probe found.

Every step returns (and so pushes to XCom) a small record the section report reads:
{"step", "dry_run", "changes": [exact commands or SQL], "applied": bool, ...}. In plan mode
(`dry_run`) the probe runs and the changes are only logged.
"""

from __future__ import annotations

import re
import shlex

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airlift import sql
from airlift.connections import VPSADMIN_DB, VPSADMIN_SSH
from airlift.remote import NodeCommandError


def step_record(step: str, dry_run: bool, changes: list[str], applied: bool, **details) -> dict:
    return {"step": step, "dry_run": bool(dry_run), "changes": changes, "applied": applied, **details}


class SqlStepOperator(BaseOperator):
    """A database step from include/sql/vpsadmin/<sql_file>: `probe` counts the rows to change
    (`to_change`), `sample` (optional) shows some, `apply` changes them in one transaction;
    the probe must read 0 afterwards."""

    template_fields = ("dry_run", "enabled")
    ui_color = "#e8f4fd"

    def __init__(self, *, sql_file: str, step: str, dry_run=True, enabled=True,
                 mysql_conn_id: str = VPSADMIN_DB, **kwargs):
        super().__init__(**kwargs)
        self.sql_file, self.step, self.dry_run, self.mysql_conn_id = sql_file, step, dry_run, mysql_conn_id
        self.enabled = enabled

    def execute(self, context) -> dict:
        from hooks.vpsadmin_db import VpsAdminDbHook

        if not self.enabled:
            self.log.info("%s: switched off by its parameter", self.step)
            return step_record(self.step, self.dry_run, [], False, enabled=False)

        hook = VpsAdminDbHook(self.mysql_conn_id)
        statements = sql.load(f"vpsadmin/{self.sql_file}")
        to_change = int(hook.rows(statements["probe"])[0]["to_change"])
        if not to_change:
            self.log.info("%s: nothing to change", self.step)
            return step_record(self.step, self.dry_run, [], False, rows=0)
        if "sample" in statements:
            for row in hook.rows(statements["sample"]):
                self.log.info("%s: %s", self.step, row)
        apply = statements["apply"]
        if self.dry_run:
            self.log.info("%s: plan: %d row(s) would change with:\n%s", self.step, to_change, apply)
            return step_record(self.step, True, [apply], False, rows=to_change)
        affected = hook.execute_in_transaction([(apply, None)])[0]
        left = int(hook.rows(statements["probe"])[0]["to_change"])
        if left:
            raise AirflowFailException(f"{self.step}: {left} row(s) still need a change after:\n{apply}")
        self.log.info("%s: changed %d row(s)", self.step, affected)
        return step_record(self.step, False, [apply], True, rows=affected)


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(command: str, item: dict) -> str:
    """`{key}` in a shell snippet becomes the shell-quoted value of item[key] (e.g. a pool's
    `{filesystem}`); other braces (`${VAR}`) are left alone."""
    return _PLACEHOLDER.sub(lambda m: shlex.quote(str(item[m.group(1)])) if m.group(1) in item else m.group(0),
                            command)


class NodeStepOperator(BaseOperator):
    """A step on one node: `check` (a shell snippet) exits 0 when the node is already done;
    otherwise `apply` runs, and `check` must pass afterwards. Map it over the inventory with
    `.partial(..., map_index_template="{{ task.node['server_name'] }}").expand(node=...)`;
    the node dict needs `server_name` and `address`; `{key}` in the snippets is replaced by
    the quoted value of node[key] (see `fill`)."""

    template_fields = ("node", "dry_run")
    ui_color = "#fdf3e8"

    def __init__(self, *, node, check: str, apply: str, step: str, dry_run=True,
                 ssh_conn_id: str = VPSADMIN_SSH, apply_timeout: float = 600, **kwargs):
        super().__init__(**kwargs)
        self.node, self.check, self.apply, self.step = node, check, apply, step
        self.dry_run, self.ssh_conn_id, self.apply_timeout = dry_run, ssh_conn_id, apply_timeout

    def execute(self, context) -> dict:
        from hooks.node import NodeHook

        hook = NodeHook(self.ssh_conn_id)
        name, address = self.node["server_name"], self.node["address"]
        self.check, self.apply = fill(self.check, self.node), fill(self.apply, self.node)
        try:
            if hook.run(address, self.check, check=False).ok:
                self.log.info("%s on %s: already done (`%s`)", self.step, name, self.check)
                return step_record(self.step, self.dry_run, [], False, node=name)
            change = f"{name}: {self.apply}"
            if self.dry_run:
                self.log.info("%s: plan: would run on %s: %s", self.step, name, self.apply)
                return step_record(self.step, True, [change], False, node=name)
            hook.run(address, self.apply, timeout=self.apply_timeout, log_output=True)
            after = hook.run(address, self.check, check=False)
            if not after.ok:
                raise AirflowFailException(
                    f"{self.step} on {name}: `{self.check}` still fails after `{self.apply}`:\n{after.tail()}")
        except NodeCommandError as exc:
            raise AirflowFailException(f"{self.step} on {name}: {exc}") from exc
        finally:
            hook.close()
        return step_record(self.step, False, [change], True, node=name)


class NodeScriptOperator(BaseOperator):
    """A step done by include/scripts/<script> on one node. The script's contract: with
    `--check` first it changes nothing, exits 0 when there is nothing to do, or exits 10 and
    prints the changes it would make (one per line); without it, it makes them. Anything
    else is an error. After a real run, `--check` must exit 0. `args` may hold `{key}`
    placeholders filled from the node dict (see `fill`)."""

    template_fields = ("node", "dry_run")
    ui_color = "#fdf3e8"
    PENDING = 10

    def __init__(self, *, node, script: str, args: list[str], step: str, dry_run=True,
                 ssh_conn_id: str = VPSADMIN_SSH, timeout: float = 3600, **kwargs):
        super().__init__(**kwargs)
        self.node, self.script, self.args, self.step = node, script, args, step
        self.dry_run, self.ssh_conn_id, self.timeout = dry_run, ssh_conn_id, timeout

    def execute(self, context) -> dict:
        from hooks.node import NodeHook

        hook = NodeHook(self.ssh_conn_id)
        name, address = self.node["server_name"], self.node["address"]
        args = [_PLACEHOLDER.sub(lambda m: str(self.node[m.group(1)]), a) for a in self.args]
        try:
            changes = self._check(hook, address, name, args)
            if not changes:
                self.log.info("%s on %s: nothing to do", self.step, name)
                return step_record(self.step, self.dry_run, [], False, node=name)
            self.log.info("%s on %s: %s:\n%s", self.step, name, "plan" if self.dry_run else "changing",
                          "\n".join(changes))
            if self.dry_run:
                return step_record(self.step, True, changes, False, node=name)
            hook.run_script(address, self.script, args, timeout=self.timeout, log_output=True)
            left = self._check(hook, address, name, args)
            if left:
                raise AirflowFailException(f"{self.step} on {name}: still to do after {self.script}:\n"
                                           + "\n".join(left[:20]))
        except NodeCommandError as exc:
            raise AirflowFailException(f"{self.step} on {name}: {exc}") from exc
        finally:
            hook.close()
        return step_record(self.step, False, changes, True, node=name)

    def _check(self, hook, address: str, name: str, args: list[str]) -> list[str]:
        result = hook.run_script(address, self.script, ["--check", *args], check=False, timeout=self.timeout)
        if result.exit_status == 0:
            return []
        if result.exit_status == self.PENDING:
            return [line for line in result.stdout.splitlines() if line.strip()]
        raise NodeCommandError(result)


class GateOperator(ApprovalOperator):
    """ApprovalOperator that an unattended lab run can switch off with the DAG param
    `require_approval = false` (logged as such). Never approves on timeout: no defaults."""

    def execute(self, context):
        if not context["params"].get("require_approval", True):
            self.log.warning("approval gate switched off by require_approval=false: proceeding")
            return {"chosen_options": ["Approve"], "params_input": {}, "gate": "switched off"}
        return super().execute(context)


class SectionReportOperator(BaseOperator):
    """Ends a section: collects the step records of `task_ids` and logs what was (or in plan
    mode would be) changed. Runs when nothing upstream failed."""

    template_fields = ("section",)

    def __init__(self, *, section: str, task_ids: list[str], **kwargs):
        kwargs.setdefault("trigger_rule", "none_failed")
        super().__init__(**kwargs)
        self.section, self.report_task_ids = section, task_ids

    def execute(self, context) -> dict:
        ti = context["ti"]
        lines, total = [], 0
        for task_id in self.report_task_ids:
            records = ti.xcom_pull(task_ids=task_id, map_indexes=None, default=None)
            if records is None:
                continue
            for record in records if isinstance(records, list) else [records]:
                if not isinstance(record, dict) or "step" not in record:
                    continue
                for change in record["changes"]:
                    total += 1
                    state = "applied" if record["applied"] else "planned"
                    lines.append(f"[{record['step']}] {state}: {change}")
        dry_run = context["params"].get("dry_run", True)
        header = f"{self.section}: {total} change(s) {'planned (dry run)' if dry_run else 'made'}"
        self.log.info("%s\n%s", header, "\n".join(lines) or "nothing to change")
        return {"section": self.section, "dry_run": dry_run, "changes": total, "lines": lines}
