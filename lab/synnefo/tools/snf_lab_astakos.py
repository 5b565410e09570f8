#!/usr/bin/python3
"""`snf-lab-astakos CALL PATH`: the lab's stand-in for Astakos's HTTP API on the Astakos host.
The other hosts' simulators reach it over SSH (snf_common.astakos_call) with the request as
JSON on stdin ({"token": X-Auth-Token, "body": ...}); it prints {"status": HTTP status,
"data": answer}. Astakos answers only while its web service (gunicorn) runs: 503 otherwise.

Calls (shared research synnefo.md §1 "Quotaholder", §2 "Email->UUID mapping"):
- `user_catalogs`: body {"displaynames": [...]}; the token must be a service's auth_token
  (im_service): none gives 401 "Access denied", another 401 "Invalid X-Auth-Token". Each name
  is matched lower-cased against username (0.13 sets username = lower(email)).
- quotaholder calls (QUOTAHOLDER_CALLS, snf_quotaholder.py): the token must equal this host's
  QUOTAHOLDER_TOKEN, else 403 "invalid token".
"""

import json
import sys

if __package__:
    from lab.core.tools import toolbox
    from lab.synnefo.tools import snf_common
else:
    import snf_common
    import toolbox

WEB_SERVICE = "gunicorn"  # Astakos and the quotaholder run in it


def user_catalogs(settings, token, body):
    db = snf_common.apps_db(settings)
    if not token:
        return 401, "Access denied"
    if not db.value(f"SELECT 1 FROM im_service WHERE auth_token = {snf_common.lit(token)}"):
        return 401, "Invalid X-Auth-Token"
    names = [str(n) for n in body.get("displaynames", [])]
    if not names:
        return 200, {"uuid_catalog": {}, "displayname_catalog": {}}
    wanted = ", ".join(snf_common.lit(n.lower()) for n in names)
    found = dict(db.rows(f"SELECT u.username, a.uuid FROM auth_user u JOIN im_astakosuser a "
                         f"ON a.user_ptr_id = u.id WHERE u.username IN ({wanted}) AND a.uuid IS NOT NULL"))
    catalog = {n: found[n.lower()] for n in names if n.lower() in found}
    return 200, {"uuid_catalog": {u: n.lower() for n, u in catalog.items()}, "displayname_catalog": catalog}


def serve(args):
    if len(args) != 2:
        toolbox.err("usage: snf-lab-astakos CALL PATH  (request JSON on stdin)")
        return 2
    call, _path = args
    request = json.loads(sys.stdin.read() or "{}")
    if toolbox.service_state(WEB_SERVICE) != "running":
        status, data = 503, "Service Unavailable"
    else:
        try:
            settings = snf_common.load_settings()
            if call == "user_catalogs":
                status, data = user_catalogs(settings, request.get("token"), request.get("body") or {})
            else:
                if __package__:
                    from lab.synnefo.tools import snf_quotaholder
                else:
                    import snf_quotaholder
                status, data = snf_quotaholder.call(settings, call, request.get("token"), request.get("body"))
        except (snf_common.SettingsError, snf_common.DatabaseError, snf_common.CommandError) as exc:
            status, data = 500, str(exc)
    toolbox.out(json.dumps({"status": status, "data": data}))
    return 0


if __name__ == "__main__":
    toolbox.main({"snf-lab-astakos": serve, "snf_lab_astakos": serve})
