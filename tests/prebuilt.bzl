"""The genrule that runs a fixture's tool once into a tar file (tests/prebuilt.py)."""

def prebuilt_tar(name, tool):
    """`<name less _tar>.tar`, the tar file `tool OUT.tar` writes; the tool's log lines are shown only if it fails.

    Args:
      name: the genrule's name, ending in `_tar`; tests list it in their data and pass its label to prebuilt.extract,
        which finds the tar file by it.
      tool: a py_binary whose main is prebuilt.tool_main.
    """
    if not name.endswith("_tar"):
        fail("prebuilt_tar's name must end in _tar: " + name)
    native.genrule(
        name = name,
        testonly = True,
        visibility = ["//tests:__subpackages__"],
        outs = [name[:-len("_tar")] + ".tar"],
        cmd = "log=$$(mktemp) && if $(execpath %s) $@ >$$log 2>&1; then rm $$log; " % tool +
              "else cat $$log; rm $$log; exit 1; fi",
        exec_tools = [tool],
    )
