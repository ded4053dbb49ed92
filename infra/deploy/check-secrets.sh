#!/bin/sh
# The init-secrets step of infra/deploy/docker-compose.yml: refuse to start the stack while any secret still
# holds the placeholder of infra/deploy/.env.example ("change-me...").
#
# Every service depends on this one-shot job (condition: service_completed_successfully), so a copied
# but unedited infra/deploy/.env stops `docker compose up` before MinIO, Kafka, Milvus or the app start.
# compose passes the secrets to it as environment variables (the values compose will really use,
# infra/deploy/.env or the shell's). It names the variables to change, never their values. Exit status:
# 0 all set, 1 a placeholder remains. Runs in any POSIX sh (busybox included):
#
#   LOOKALIKE_API_TOKEN=change-me sh infra/deploy/check-secrets.sh    # exits 1 and names LOOKALIKE_API_TOKEN
set -eu

placeholders=$(env | grep -i 'change-me' | cut -d= -f1 | sort -u || true)
if [ -n "$placeholders" ]; then
    echo "refusing to start: these secrets still hold the 'change-me' placeholder of infra/deploy/.env.example:" >&2
    for name in $placeholders; do
        echo "  $name" >&2
    done
    echo "set a real value for each in infra/deploy/.env, then run docker compose up again" >&2
    exit 1
fi
echo "secrets: no 'change-me' placeholder left"
