#!/usr/bin/env bash
# Validates what can be validated without a Docker engine or a Kubernetes cluster:
# docker-compose.yml against the Compose Specification's JSON schema, and the
# Kubernetes manifests in packaging/k8s against Kubernetes' own schemas (strict:
# unknown fields are errors). The validators are pinned PyPI packages, installed once
# into target/packaging-tools.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=target/packaging-tools
pins=(check-jsonschema==0.39.0 kubernetes-validate==1.37.0)
if ! "$tools/bin/pip" freeze 2>/dev/null | grep -qx "${pins[0]}" \
    || ! "$tools/bin/pip" freeze 2>/dev/null | grep -qx "${pins[1]}"; then
    python3 -m venv "$tools"
    "$tools/bin/pip" install -q --disable-pip-version-check "${pins[@]}"
fi

echo "== docker-compose.yml against the Compose Specification"
"$tools/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
echo "== packaging/k8s against Kubernetes 1.37's schemas"
"$tools/bin/kubernetes-validate" --strict --quiet -k 1.37.0 packaging/k8s/*.yaml
echo "packaging validated"
