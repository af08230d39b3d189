"""The absl binaries (`python -m edge_ssl.cli.<name>`).

Importing this package, which Python does before any binary's own imports, hides the libraries' log lines unless
`--tf_logs` asks for them (`edge_ssl.library_logs`): it has to happen before TensorFlow loads.
"""

from edge_ssl import library_logs

library_logs.hide_unless_asked()
