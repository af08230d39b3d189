#!/bin/sh
echo "edge_ssl: 'bazel coverage' needs Bazel's remote coverage tools, which this offline build does not fetch." >&2
exit 1
