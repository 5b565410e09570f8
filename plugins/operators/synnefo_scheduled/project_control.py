"""The step of DAG synnefo_project_control (runbook part 10): expired projects listed, then
terminated where the run's param allows."""

from __future__ import annotations

from collections.abc import Sequence

from airlift.errors import StepError
from airlift.params import check_hostname, raise_if
from operators.runbook_step import Plan
from operators.synnefo_upgrade.common import SynnefoStepOperator


class ProjectControlOperator(SynnefoStepOperator):
    """`snf-manage project-control --check-expired` on the Astakos host: the projects not
    terminated whose application ended (changes nothing); then, when `terminate` allows,
    `--terminate-expired` as a remote job (a retry never runs it twice; it mails each project's
    owner). The expired projects seen and those terminated go to XCom (`expired`,
    `terminated`). A second run finds none left.

    :param astakos_host: SSH address of the Astakos host. :param terminate: whether expired
    projects are terminated (else only listed)."""

    template_fields: Sequence[str] = (*SynnefoStepOperator.template_fields, "astakos_host", "terminate")

    def __init__(self, *, astakos_host: str, terminate=True, **kwargs):
        kwargs.setdefault("script", "synnefo/snf-manage.sh")
        super().__init__(**kwargs)
        self.astakos_host, self.terminate = astakos_host, terminate

    def host(self) -> str:
        raise_if(check_hostname("astakos_host", self.astakos_host))
        if not isinstance(self.terminate, bool):
            raise StepError(f"terminate {self.terminate!r}: true or false")
        return self.astakos_host

    def expired(self) -> list[dict]:
        from synnefo import projects

        result = self.nodes.snf_manage(self.host(), ["project-control", "--check-expired"], timeout=600)
        return projects.parse(result.stdout)["expired"]

    def probe(self, context) -> Plan:
        expired = self.expired()
        context["ti"].xcom_push(key="expired", value=expired)
        if not expired:
            return Plan(details={"expired": []})
        listed = [f"project {p['id']} {p['name']} ({p['status']}, expired {p['expires']})" for p in expired]
        if not self.terminate:
            self.log.info("%s: %d expired project(s), left as they are (terminate is off):\n%s", self.label,
                          len(expired), "\n".join(listed))
            return Plan(details={"expired": expired})
        return Plan([f"terminate {line}" for line in listed], details={"expired": expired}, work=expired)

    def apply(self, context, plan: Plan) -> dict | None:
        return self.remote_job(context, self.nodes, self.host(), self.script,
                               ["project-control", "--terminate-expired"], plan)

    def job_done(self, context, plan: Plan, result) -> dict:
        from synnefo import projects

        super().job_done(context, plan, result)
        done = projects.parse(result.stdout)
        if done["terminated"] is None:
            raise StepError("project-control --terminate-expired printed no `N projects have been terminated.`")
        context["ti"].xcom_push(key="terminated", value=done["expired"])
        return {"terminated": done["expired"]}
