"""The cluster crontab: the runbook's jobs disabled for the upgrade, then the jobs for 2.0;
a site's own jobs untouched, and no whole cron line in what is reported."""

from __future__ import annotations

import pytest

from lab.vpsadmin.world import CLUSTER_CRONTAB
from vpsadmin import crontab

SITE_JOB = "15 2 * * * mysqldump -ubackup -pS3cret-Pw vpsadmin | gzip > /root/nightly.sql.gz"
CRONTAB = f"""\
# cluster jobs
MAILTO=root
*/5 * * * * php /var/www/vpsadmin/cron_mailer.php
# 0 1 * * * already commented out
@daily ruby /opt/vpsadmind/daily_report.rb
{SITE_JOB}
0 4 * * * /usr/local/bin/cron_mailer.php.bak --not-the-job
"""


def test_only_the_runbooks_jobs_are_disabled():
    text, changes = crontab.disable_runbook_jobs(CRONTAB)
    assert changes == ["disable cron_mailer.php (*/5 * * * *)", "disable daily_report.rb (@daily)"]
    lines = text.splitlines()
    assert "MAILTO=root" in lines and "# cluster jobs" in lines
    assert "#airlift-disabled# @daily ruby /opt/vpsadmind/daily_report.rb" in lines
    assert crontab.active_jobs(text) == [SITE_JOB, "0 4 * * * /usr/local/bin/cron_mailer.php.bak --not-the-job"]
    assert not any("S3cret" in change for change in changes)


def test_disabling_twice_changes_nothing():
    once, _ = crontab.disable_runbook_jobs(CRONTAB)
    twice, changes = crontab.disable_runbook_jobs(once)
    assert twice == once and changes == []


@pytest.mark.parametrize(("line", "job"), [
    ("*/10 * * * * ruby /opt/vpsadmind/bin/savetransfers.rb", "savetransfers.rb"),
    ("@hourly php cron_delete.php", "cron_delete.php"),
    ("# 0 1 * * * ruby backup.rb", None),
    ("MAILTO=root", None),
    ("0 1 * * * ruby /opt/site/backup.rb.old", None),
])
def test_runbook_jobs_are_recognised_by_their_script(line, job):
    assert crontab.runbook_job(line) == job


def test_crontab_for_2_0_from_the_disabled_cluster_crontab():
    disabled, _ = crontab.disable_runbook_jobs(CLUSTER_CRONTAB + SITE_JOB + "\n")
    new, changes = crontab.replace_for_v2(disabled)
    assert crontab.active_jobs(new) == ["*/10 * * * * ruby /opt/vpsadmind/bin/savetransfers.rb", SITE_JOB]
    assert len(changes) == 6
    for job in ("backup.rb", "cron_delete.php", "cron_mailer.php", "cron_nonpayers.php", "daily_report.rb"):
        line = next(line for line in new.splitlines() if job in line and not line.startswith("# replaced"))
        assert line.startswith(crontab.REPLACED)
    assert crontab.replace_for_v2(new) == (new, [])
    assert not [c for c in changes if any(w in c for w in (" php ", " ruby ", "/opt/", "/var/"))], \
        "no command line in the report"


def test_a_site_that_keeps_the_lifetimes_in_cron_gets_the_rake_jobs_once():
    from vpsadmin.lifetimes import runbook_cron_lines

    rake_jobs = runbook_cron_lines()
    disabled, _ = crontab.disable_runbook_jobs(CLUSTER_CRONTAB + SITE_JOB + "\n")
    new, changes = crontab.replace_for_v2(disabled, rake_jobs=rake_jobs)
    active = crontab.active_jobs(new)
    assert active == ["*/10 * * * * ruby /opt/vpsadmind/bin/savetransfers.rb", SITE_JOB, *rake_jobs]
    assert all("EXECUTE=yes" in job for job in rake_jobs if "lifetimes:progress" in job), \
        "the runbook's progress lines lack EXECUTE=yes: as written they change nothing"
    assert "replace cron_delete.php (0 3 * * *) by the rake jobs at the end of this crontab" in changes
    assert crontab.replace_for_v2(new, rake_jobs=rake_jobs) == (new, [])


def test_airflow_scheduling_takes_over_rake_jobs_a_site_had_in_cron():
    from vpsadmin.lifetimes import runbook_cron_lines

    in_cron, _ = crontab.replace_for_v2(CLUSTER_CRONTAB, rake_jobs=runbook_cron_lines())
    new, changes = crontab.replace_for_v2(in_cron)
    assert crontab.active_jobs(new) == ["*/10 * * * * ruby /opt/vpsadmind/bin/savetransfers.rb"]
    assert sum(c.startswith("replace rake vpsadmin:lifetimes:") for c in changes) == 6
    assert "replace rake vpsadmin:mail_daily_report (0 7 * * *) by Airflow DAG vpsadmin_daily_report" in changes
    assert crontab.replace_for_v2(new) == (new, [])
