#!/usr/bin/env bash
# Node tools and services for the end-to-end tests (sourced by .ci/run; safe to rerun by hand).
set -euo pipefail
echo "== services"
