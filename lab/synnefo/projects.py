"""The world's projects (lab.synnefo.world.PROJECTS) in a migrated snf_apps: 0.12 has none, 0.13's
im migrations create their tables empty, so tests of the project-control DAG seed them here.

Each project is what Astakos 0.13 keeps of an approved one (im/models.py at tag 0.13): a chain
(its id is the project's), the application (owner and applicant its owner, state APPROVED,
the end date), the project (state 1 Active; a terminated one 100 with no name, deactivated,
as Project.terminate() and the sync after it leave it). Owners are found by lower-cased email
(username = lower(email) after im 0016); a project whose owner has no user is skipped.
"""

from __future__ import annotations

import datetime as dt

from lab.core import postgres
from lab.synnefo.world import NOW, PROJECTS

APPROVED, ACTIVE, TERMINATED = 1, 1, 100  # ProjectApplication.APPROVED; Project.APPROVED, TERMINATED
AUTO_ACCEPT, OWNER_ACCEPT = 1, 2  # member join policies; leave: AUTO_ACCEPT


def seed_projects(server: str, dbname: str) -> dict[str, int]:
    """Insert PROJECTS into `dbname` on `server` (a database migrated to 0.13), once: projects
    already there (by application name) are left as they are. Returns {name: project id} of
    the projects the database has (skipped ones are absent)."""
    created = NOW - dt.timedelta(days=90)
    with postgres.connect(server, dbname) as conn, conn.cursor() as cur:
        ids = {}
        for project in PROJECTS:
            cur.execute("SELECT p.id FROM im_project p JOIN im_projectapplication a ON a.id = p.application_id "
                        "WHERE a.name = %s", (project.name,))
            row = cur.fetchone()
            if row:
                ids[project.name] = row[0]
                continue
            cur.execute("SELECT u.id FROM auth_user u JOIN im_astakosuser a ON a.user_ptr_id = u.id "
                        "WHERE lower(u.email) = %s ORDER BY u.is_active DESC, u.id LIMIT 1", (project.owner,))
            owner = cur.fetchone()
            if owner is None:
                continue
            cur.execute("INSERT INTO im_chain DEFAULT VALUES RETURNING chain")
            chain = cur.fetchone()[0]
            cur.execute(
                "INSERT INTO im_projectapplication (applicant_id, state, owner_id, chain, name, homepage, description, "
                "start_date, end_date, member_join_policy, member_leave_policy, issue_date, response_date) "
                "VALUES (%s, %s, %s, %s, %s, NULL, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (owner[0], APPROVED, owner[0], chain, project.name, f"The lab's project {project.name}", created,
                 project.end_date, OWNER_ACCEPT, AUTO_ACCEPT, created, created))
            application = cur.fetchone()[0]
            if project.terminated:
                cur.execute(
                    "INSERT INTO im_project (id, application_id, last_approval_date, deactivation_reason, "
                    "deactivation_date, creation_date, name, is_modified, is_active, state) VALUES "
                    "(%s, %s, %s, 'TERMINATED', %s, %s, NULL, FALSE, FALSE, %s)",
                    (chain, application, created, project.end_date, created, TERMINATED))
            else:
                cur.execute(
                    "INSERT INTO im_project (id, application_id, last_approval_date, creation_date, name, "
                    "is_modified, is_active, state) VALUES (%s, %s, %s, %s, %s, FALSE, TRUE, %s)",
                    (chain, application, created, created, project.name, ACTIVE))
            ids[project.name] = chain
        return ids
