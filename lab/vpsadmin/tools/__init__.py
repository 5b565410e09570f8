"""The vpsAdmin-specific node-tool simulators: `rake` (the vpsAdmin API's rake tasks),
`vpsadmindctl` (talks to the lab's vpsAdmind 2.0) and `thin` (starts and stops the vpsAdmin
API). Like the core simulators (lab/core/tools/) they import lab/core/tools/toolbox.py and
are installed next to it on every node."""

from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parent
# Tool name on the node's PATH -> the simulator here that answers to it.
TOOLS = {
    "rake": "rake.py",
    "vpsadmindctl": "vpsadmindctl.py",
    "thin": "thin.py",
}
