"""The cluster crontab: disabled for the upgrade, then the jobs for 2.0."""

from __future__ import annotations

from lab.vpsadmin.world import CLUSTER_CRONTAB
from vpsadmin import crontab

CRONTAB = """\
# cluster jobs
MAILTO=root
*/5 * * * * php /var/www/vpsadmin/cron_mailer.php
# 0 1 * * * already commented out
@daily ruby /opt/vpsadmind/daily_report.rb
"""


def test_disable_all_comments_jobs_only():
    text, disabled = crontab.disable_all(CRONTAB)
    assert disabled == ["*/5 * * * * php /var/www/vpsadmin/cron_mailer.php",
                        "@daily ruby /opt/vpsadmind/daily_report.rb"]
    lines = text.splitlines()
    assert "MAILTO=root" in lines and "# cluster jobs" in lines
    assert "#airlift-disabled# @daily ruby /opt/vpsadmind/daily_report.rb" in lines
    assert crontab.active_jobs(text) == []


def test_disable_all_twice_changes_nothing():
    once, _ = crontab.disable_all(CRONTAB)
    twice, disabled = crontab.disable_all(once)
    assert twice == once and disabled == []


def test_crontab_for_2_0_from_the_disabled_cluster_crontab():
    disabled, _ = crontab.disable_all(CLUSTER_CRONTAB)
    new, changes = crontab.replace_for_v2(disabled)
    assert crontab.active_jobs(new) == ["*/10 * * * * ruby /opt/vpsadmind/bin/savetransfers.rb"]
    assert len(changes) == 6
    for job in ("backup.rb", "cron_delete.php", "cron_mailer.php", "cron_nonpayers.php", "daily_report.rb"):
        line = next(line for line in new.splitlines() if job in line and not line.startswith("# replaced"))
        assert line.startswith(crontab.REPLACED)
    assert crontab.replace_for_v2(new) == (new, [])
