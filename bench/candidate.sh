#!/usr/bin/env bash
# gatecache as a peers.sh candidate (../shared/bench/README.md): listens on
# 127.0.0.1:$CAND_PORT, proxies to $ORIGIN_URL, caches GET 200 answers for
# 300 s keyed on method + path + every query parameter, one worker (peers.sh
# pins every server to one CPU), in the foreground.
#   ../shared/bench/peers.sh --candidate 'bench/candidate.sh'
set -euo pipefail
: "${CAND_PORT:?run me from peers.sh}" "${ORIGIN_URL:?}" "${CAND_DIR:?}"
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${GATECACHE_BIN:-$top/build/gatecache}
cat >"$CAND_DIR/gatecache.yaml" <<YAML
server:
  listen: "127.0.0.1:$CAND_PORT"
  workers: ${GATECACHE_WORKERS:-1}
  base_path_mappings: [{base_path: "", api: bench, stage: live}]
  limits: { max_connections: 100000 }
apis:
  - id: bench
    resources:
      /{proxy+}:
        GET:
          integration: { type: HTTP_PROXY, uri: "$ORIGIN_URL/{proxy}" }
          cache_key_parameters: ["method.request.querystring.*"]
    stages:
      live:
        cache_cluster_enabled: true
        cache_cluster_size: "1GiB"
        method_settings:
          - { resource_path: "/*", http_method: "*", cache_ttl_in_seconds: 300 }
YAML
exec "$bin" serve -c "$CAND_DIR/gatecache.yaml"
