#!/usr/bin/env bash
# System packages and services for the tests; filled in as the project needs them.
set -euo pipefail
