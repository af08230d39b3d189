"""The genrule that runs a fixture's tool once into a tar file (tests/prebuilt.py)."""

def prebuilt_tar(name, tool, out):
    """`out`, the tar file `tool OUT.tar` writes; the tool's log lines are shown only if it fails.

    Args:
      name: the genrule's name, which tests list in their data.
      tool: a py_binary whose main is prebuilt.tool_main.
      out: the tar file's name.
    """
    native.genrule(
        name = name,
        testonly = True,
        visibility = ["//tests:__subpackages__"],
        outs = [out],
        cmd = "log=$$(mktemp) && if $(execpath %s) $@ >$$log 2>&1; then rm $$log; " % tool +
              "else cat $$log; rm $$log; exit 1; fi",
        exec_tools = [tool],
    )
