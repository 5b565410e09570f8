"""The OpenVZ -> vpsAdminOS node-tool simulators: `osctl` (vpsAdminOS, with the receive side
sshd runs for the osctl-ct-receive user), `gem` and `ruby` (the OpenVZ node's old Ruby and the
gem that installs the converter). `vpsadminos_convert.py` is installed too but linked only by
`gem install vpsadminos-converter`. Like the core simulators they import
lab/core/tools/toolbox.py and are installed next to it on every node."""

from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parent
# Modules the simulators import, from the project itself: the converter keeps its state in
# Ruby's Marshal format, written and read by the same module the DAG reads it with.
LIBRARIES = {"ruby_marshal.py": TOOLS_DIR.parents[2] / "plugins" / "openvz" / "marshal.py"}
# Tool name on the node's PATH -> the simulator here that answers to it.
TOOLS = {
    "osctl": "osctl.py", "osctl-ct-receive": "osctl.py",
    "gem": "rubygems.py", "ruby": "rubygems.py",
}
