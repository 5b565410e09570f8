#!/usr/bin/python3
"""`snf-manage` of Synnefo 0.13 (Django 1.2's manage.py with Synnefo's settings) for a lab
node: the commands the upgrade runbook uses, acting on the real tables (shared research
synnefo.md §2-§6). Standard library only.

A command exists on a node when the package that ships it is installed there at 0.13 (dpkg's
status file); otherwise Django's `Unknown command`. Every command first reads the settings
(/etc/synnefo/*.conf, Python): one that does not run fails every command.
"""

import importlib

if __package__:  # imported on the host (lab.synnefo.tools.snf_manage)
    from lab.core.tools import toolbox
    from lab.synnefo.tools import snf_common
else:  # run as a program: toolbox.py and the component modules are next to it
    import snf_common
    import toolbox

# Command -> (package that ships it, module here, function). A function takes (argv,
# settings), prints what the real command prints, returns the exit status (None: 0) and
# raises snf_common.CommandError for Django's `Error: ...`.
COMMANDS = {
    "syncdb": ("snf-webproject", "snf_astakos", "syncdb"),
    "migrate": ("snf-webproject", "snf_astakos", "migrate"),
    "service-list": ("snf-astakos-app", "snf_astakos", "service_list"),
    "service-update": ("snf-astakos-app", "snf_astakos", "service_update"),
    "astakos-init": ("snf-astakos-app", "snf_astakos", "astakos_init"),
    "user-list": ("snf-astakos-app", "snf_astakos", "user_list"),
    "user-show": ("snf-astakos-app", "snf_astakos", "user_show"),
    "user-set-initial-quota": ("snf-astakos-app", "snf_astakos", "user_set_initial_quota"),
    "astakos-quota": ("snf-astakos-app", "snf_astakos", "astakos_quota"),
    "project-control": ("snf-astakos-app", "snf_astakos", "project_control"),
    "cyclades-astakos-migrate-013": ("snf-cyclades-app", "snf_cyclades", "astakos_migrate_013"),
    "cyclades-export-quota": ("snf-cyclades-app", "snf_cyclades", "export_quota"),
    "cyclades-reset-usage": ("snf-cyclades-app", "snf_cyclades", "reset_usage"),
    "pithos-manage-accounts": ("snf-pithos-app", "snf_pithos", "manage_accounts"),
    "pithos-export-quota": ("snf-pithos-app", "snf_pithos", "export_quota"),
    "pithos-usage": ("snf-pithos-app", "snf_pithos", "usage"),
}
RELEASE = "0.13"


def snf_manage(args):
    if not args or args[0] in ("help", "-h", "--help"):
        toolbox.out("Usage: snf-manage subcommand [options] [args]\n\nAvailable subcommands:")
        for name in sorted(COMMANDS):
            toolbox.out(f"  {name}")
        return 0
    name = args[0]
    entry = COMMANDS.get(name)
    if entry is None or snf_common.release_of(snf_common.installed_version(entry[0])) != RELEASE:
        toolbox.err(f"Unknown command: {name!r}\nType 'snf-manage help' for usage.")
        return 1
    _package, module_name, function = entry
    module = importlib.import_module(f"{__package__}.{module_name}" if __package__ else module_name)
    return snf_common.run_command(lambda settings: getattr(module, function)(args[1:], settings))


if __name__ == "__main__":
    toolbox.main({"snf-manage": snf_manage, "snf_manage": snf_manage})
