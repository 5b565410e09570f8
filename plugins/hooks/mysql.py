"""MySqlTimeoutsHook: the provider's MySqlHook with connect, read and write timeouts, from the
connection's extra or these defaults. Every MySQL connection of the project goes through it
(VpsAdminDbHook, the SQL-file steps)."""

from __future__ import annotations

from airflow.providers.mysql.hooks.mysql import MySqlHook


class MySqlTimeoutsHook(MySqlHook):
    # Without them a hung server (or a network that silently drops packets) blocks a task
    # forever; with them the call fails with an OperationalError, which Airflow retries. The
    # read timeout bounds one statement: raise it in the extra for tables that take longer to
    # convert (db.innodb's ALTER TABLE).
    TIMEOUTS = {"connect_timeout": 30, "read_timeout": 3600, "write_timeout": 600}

    def _get_conn_config_mysql_client(self, conn) -> dict:
        config = super()._get_conn_config_mysql_client(conn)
        for name, default in self.TIMEOUTS.items():
            value = conn.extra_dejson.get(name, default)
            if isinstance(value, bool) or not str(value).isdigit() or int(value) <= 0:
                raise ValueError(f"{name} {value!r} in the extra of connection {conn.conn_id} is not a positive "
                                 "whole number of seconds")
            config[name] = int(value)
        return config
