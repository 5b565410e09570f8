"""The vpsAdmin 2.0 API over HTTPS, as the lab's API host serves it.

It listens while the API node's /var/lib/lab/services/vpsadmin-api says "running" (the thin
simulator writes it, with {"address", "port"} in /var/lib/lab/vpsadmin-api.json; default
127.0.1.2:9292) and answers HaveAPI-shaped JSON: {"status": true, "response": {...},
"message": null, "errors": null}, errors with status false and a message. HTTP basic auth
with a member of m_level >= 90 (admin); passwords are checked as the API's md5 provider does,
md5(login + password) against members.m_pass.

It speaks TLS only (the admin's password comes with every request), with the lab's server
certificate (lab/core/tls.py); clients check it against the lab's CA (LabConfig.tls_ca), as
the `vpsadmin_api` connection of `lab env` says.

Resources (API 5d85ee934, lib/vpsadmin/api/resources/integrity_*.rb):
  GET  /  and  GET /v1/                       version information
  POST /v1/integrity_checks                   {"integrity_check": {"storage", "vps",
                                               "skip_maintenance", "node"}} -> the new check
  GET  /v1/integrity_checks[/<id>]            (index: integrity_check[status|user|limit|offset])
  GET  /v1/integrity_objects?integrity_object[integrity_check]=<id>&...
  GET  /v1/integrity_facts?integrity_fact[integrity_check]=<id>&integrity_fact[status]=false
       (also node, class_name, integrity_object, name, severity, limit, offset)
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from lab.vpsadmin import integrity

log = logging.getLogger(__name__)

VERSION = "2.0.0"
DEFAULT_ADDRESS, DEFAULT_PORT = "127.0.1.2", 9292
CHECK_STATUS = ("pending", "integral", "broken")
OBJECT_STATUS = ("undetermined", "integral", "broken")
FACT_STATUS = ("false", "true")
SEVERITY = ("low", "normal", "high")
# integrity_checks rows with the login of the user who started each (m_nick)
CHECK_ROWS = "SELECT c.*, m.m_nick FROM integrity_checks c LEFT JOIN members m ON m.m_id = c.user_id"


class ApiError(Exception):
    def __init__(self, http_status: int, message: str):
        super().__init__(message)
        self.http_status, self.message = http_status, message


def _dt(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


class VpsadminApi:
    """The request logic, one MySQL connection per request."""

    def __init__(self, mysql_kwargs: dict, db_name: str):
        self.mysql_kwargs, self.db_name = mysql_kwargs, db_name

    def connect(self):
        import MySQLdb

        conn = MySQLdb.connect(db=self.db_name, charset="utf8", **self.mysql_kwargs)
        conn.cursor().execute("SET SESSION sql_mode = ''")
        return conn

    @staticmethod
    def rows(conn, sql: str, params=None) -> list[dict]:
        import MySQLdb.cursors

        cur = conn.cursor(MySQLdb.cursors.DictCursor)
        cur.execute(sql, params)
        return list(cur.fetchall())

    def authenticate(self, conn, header: str | None) -> dict:
        if not header or not header.startswith("Basic "):
            raise ApiError(401, "Action requires user to authenticate")
        try:
            login, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError as e:
            raise ApiError(401, "Action requires user to authenticate") from e
        users = self.rows(conn, "SELECT * FROM members WHERE m_nick = %s", (login,))
        crypted = hashlib.md5((login + password).encode()).hexdigest()
        if not users or users[0]["m_pass"] != crypted:
            raise ApiError(401, "Action requires user to authenticate")
        return users[0]

    def route(self, method: str, path: str, query: dict, body: dict, auth: str | None) -> dict:
        parts = [p for p in path.split("/") if p]
        if method == "GET" and parts in ([], ["v1"]):
            return self.versions()
        if not parts or parts[0] != "v1" or len(parts) < 2:
            raise ApiError(404, "Action not found")
        conn = self.connect()
        try:
            user = self.authenticate(conn, auth)
            if int(user["m_level"]) < 90:
                raise ApiError(403, "Access forbidden")
            resource, rest = parts[1], parts[2:]
            if resource == "integrity_checks":
                if method == "POST" and not rest:
                    return self.create_check(conn, user, body.get("integrity_check") or {})
                if method == "GET" and not rest:
                    return {"integrity_checks": self.checks(conn, query)}
                if method == "GET" and len(rest) == 1 and rest[0].isdigit():
                    found = self.rows(conn, f"{CHECK_ROWS} WHERE c.id = %s", (int(rest[0]),))
                    if not found:
                        raise ApiError(404, f"object IntegrityCheck = {rest[0]} not found")
                    return {"integrity_check": self.check(found[0])}
            if resource == "integrity_facts" and method == "GET" and not rest:
                return {"integrity_facts": self.facts(conn, query, "integrity_fact")}
            if resource == "integrity_objects" and method == "GET" and not rest:
                return {"integrity_objects": self.objects(conn, query)}
            raise ApiError(404, "Action not found")
        finally:
            conn.close()

    def versions(self) -> dict:
        return {"versions": {"1": {"resources": ["integrity_check", "integrity_fact",
                                                 "integrity_object"]}},
                "default": 1, "api_version": VERSION}

    # -- integrity_check ---------------------------------------------------------------------
    def create_check(self, conn, user: dict, params: dict) -> dict:
        def flag(name):
            value = params.get(name)
            return value in (True, 1, "1", "true", "yes")

        node = params.get("node")
        if node is not None:
            if not str(node).isdigit() or not self.rows(
                    conn, "SELECT server_id FROM servers WHERE server_id = %s", (int(node),)):
                raise ApiError(400, "input parameters not valid")
            node = int(node)
        try:
            check_id = integrity.schedule(conn, user["m_id"], storage=flag("storage"),
                                          vps=flag("vps"), skip_maintenance=flag("skip_maintenance"),
                                          node_id=node)
        except integrity.ResourceLocked as e:
            raise ApiError(400, f"Resource is locked: {e}") from e
        return {"integrity_check": self.check(self.rows(conn, f"{CHECK_ROWS} WHERE c.id = %s", (check_id,))[0])}

    def checks(self, conn, query: dict) -> list[dict]:
        """IntegrityCheck#Index: newest first, by status and user (an id), limit and offset."""
        args = self._input(query, "integrity_check")
        where, params = [], []
        try:
            if "status" in args:
                where.append("c.status = %s")
                params.append(CHECK_STATUS.index(args["status"]))
            if "user" in args:
                where.append("c.user_id = %s")
                params.append(int(args["user"]))
            limit, offset = int(args.get("limit", 1000000)), int(args.get("offset", 0))
        except ValueError as e:
            raise ApiError(400, "input parameters not valid") from e
        return [self.check(r) for r in self.rows(conn, f"""
            {CHECK_ROWS} {'WHERE ' + ' AND '.join(where) if where else ''}
            ORDER BY c.id DESC LIMIT %s OFFSET %s""", (*params, limit, offset))]

    @staticmethod
    def check(row: dict) -> dict:
        out = {k: row[k] for k in ("id", "checked_objects", "integral_objects", "broken_objects",
                                   "checked_facts", "true_facts", "false_facts")}
        # a resource with value_label :login, as HaveAPI shows it: its id and its label
        out.update(status=CHECK_STATUS[row["status"]],
                   user={"id": row["user_id"], "login": row.get("m_nick")},
                   created_at=_dt(row["created_at"]), updated_at=_dt(row["updated_at"]),
                   finished_at=_dt(row["finished_at"]))
        return out

    # -- integrity_fact / integrity_object -----------------------------------------------------
    @staticmethod
    def _input(query: dict, namespace: str) -> dict:
        """HaveAPI query parameters: namespace[name]=value (plain name= accepted too)."""
        out = {}
        for key, values in query.items():
            name = key[len(namespace) + 1:-1] if key.startswith(namespace + "[") and key.endswith("]") else key
            out[name] = values[-1]
        return out

    def facts(self, conn, query: dict, namespace: str) -> list[dict]:
        args = self._input(query, namespace)
        where, params = [], []
        for name, column, convert in (
                ("integrity_check", "o.integrity_check_id", int), ("node", "o.node_id", int),
                ("class_name", "o.class_name", str), ("integrity_object", "f.integrity_object_id", int),
                ("name", "f.name", str), ("status", "f.status", FACT_STATUS.index),
                ("severity", "f.severity", SEVERITY.index)):
            if name in args:
                try:
                    value = convert(args[name])
                except ValueError as e:
                    raise ApiError(400, "input parameters not valid") from e
                where.append(f"{column} = %s")
                params.append(value)
        limit = int(args.get("limit", 1000000))
        offset = int(args.get("offset", 0))
        rows = self.rows(conn, f"""
            SELECT f.*, o.class_name, o.row_id, o.node_id, o.integrity_check_id FROM integrity_facts f
            INNER JOIN integrity_objects o ON o.id = f.integrity_object_id
            {'WHERE ' + ' AND '.join(where) if where else ''}
            ORDER BY f.id LIMIT %s OFFSET %s""", (*params, limit, offset))
        return [{"id": r["id"],
                 "integrity_object": {"id": r["integrity_object_id"], "class_name": r["class_name"],
                                      "row_id": r["row_id"], "node_id": r["node_id"]},
                 "name": r["name"], "expected_value": r["expected_value"],
                 "actual_value": r["actual_value"], "status": FACT_STATUS[r["status"]],
                 "severity": SEVERITY[r["severity"]], "message": r["message"],
                 "created_at": _dt(r["created_at"])} for r in rows]

    def objects(self, conn, query: dict) -> list[dict]:
        args = self._input(query, "integrity_object")
        where, params = [], []
        for name, column in (("integrity_check", "integrity_check_id"), ("node", "node_id"),
                             ("class_name", "class_name"), ("row_id", "row_id")):
            if name in args:
                where.append(f"{column} = %s")
                params.append(args[name])
        if "status" in args:
            where.append("status = %s")
            params.append(OBJECT_STATUS.index(args["status"]))
        rows = self.rows(conn, f"SELECT * FROM integrity_objects "
                               f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id", params)
        return [{"id": r["id"], "integrity_check": {"id": r["integrity_check_id"]},
                 "node": {"id": r["node_id"]}, "class_name": r["class_name"], "row_id": r["row_id"],
                 "parent": {"id": int(r["ancestry"].split("/")[-1])} if r["ancestry"] else None,
                 "status": OBJECT_STATUS[r["status"]], "checked_facts": r["checked_facts"],
                 "true_facts": r["true_facts"], "false_facts": r["false_facts"],
                 "created_at": _dt(r["created_at"]), "updated_at": _dt(r["updated_at"])}
                for r in rows]


def _handler(api: VpsadminApi):
    class Handler(BaseHTTPRequestHandler):
        server_version = "thin"

        def log_message(self, fmt, *args):
            log.debug("api: " + fmt, *args)

        def reply(self, http_status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(http_status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def serve(self, method: str) -> None:
            url = urlparse(self.path)
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                if not isinstance(body, dict):
                    raise ApiError(400, "Bad JSON syntax")
                response = api.route(method, url.path, parse_qs(url.query), body,
                                     self.headers.get("Authorization"))
            except ValueError:
                self.reply(400, {"status": False, "response": None, "message": "Bad JSON syntax",
                                 "errors": None})
            except ApiError as e:
                self.reply(e.http_status, {"status": False, "response": None, "message": e.message,
                                           "errors": None})
            except Exception as e:  # the real API answers 500 with the exception's message
                log.exception("api %s %s", method, self.path)
                self.reply(500, {"status": False, "response": None,
                                 "message": f"Server error occurred: {e}", "errors": None})
            else:
                self.reply(200, {"status": True, "response": response, "message": None,
                                 "errors": None})

        def do_GET(self):
            self.serve("GET")

        def do_POST(self):
            self.serve("POST")

    return Handler


class TlsHttpServer(ThreadingHTTPServer):
    """HTTP over TLS. The handshake runs in the request's own thread: in accept() a client that
    stalls it would hold up every other client."""

    def __init__(self, address: tuple[str, int], handler, cert_file: Path, key_file: Path):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        super().__init__(address, handler)
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def finish_request(self, request, client_address) -> None:
        try:
            request.do_handshake()
        except OSError as e:  # ssl.SSLError: plain HTTP, or a client that does not trust the lab's CA
            log.info("vpsadmin-api: no TLS handshake with %s: %s", client_address[0], e)
            return
        super().finish_request(request, client_address)


class ApiServer(threading.Thread):
    """Follows the API node's vpsadmin-api service: listens while it runs."""

    def __init__(self, node_root: Path, mysql_kwargs: dict, db_name: str,
                 stopping: threading.Event, cert_file: Path, key_file: Path):
        super().__init__(name="vpsadmin-api", daemon=True)
        self.node_root, self.stopping = Path(node_root), stopping
        self.cert_file, self.key_file = cert_file, key_file
        self.api = VpsadminApi(mysql_kwargs, db_name)
        self.httpd: TlsHttpServer | None = None
        self.bound: tuple[str, int] | None = None

    def wanted(self) -> tuple[str, int] | None:
        state = self.node_root / "var/lib/lab/services/vpsadmin-api"
        if not state.exists() or state.read_text().strip() != "running":
            return None
        try:
            conf = json.loads((self.node_root / "var/lib/lab/vpsadmin-api.json").read_text())
        except (FileNotFoundError, ValueError):
            conf = {}
        return str(conf.get("address") or DEFAULT_ADDRESS), int(conf.get("port") or DEFAULT_PORT)

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            wanted = self.wanted()
            if wanted != self.bound:
                self.close()
                if wanted:
                    try:
                        self.httpd = TlsHttpServer(wanted, _handler(self.api), self.cert_file, self.key_file)
                    except OSError as e:  # also ssl.SSLError, or no certificate files (a lab made before TLS)
                        log.warning("vpsadmin-api cannot listen on %s:%s: %s", *wanted, e)
                        continue
                    self.httpd.daemon_threads = True
                    threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
                    self.bound = wanted
                    log.info("vpsadmin-api listening on %s:%s", *wanted)
        self.close()

    def close(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            log.info("vpsadmin-api stopped")
        self.httpd, self.bound = None, None
