#!/bin/sh
# Entry point of the example's gateway and worker containers (docker-compose.yml).
# The simulator writes its credentials to the shared volume (kis-async sim --env-file); load
# them, point the URLs at the simulator's service name instead of the 0.0.0.0 it listens on,
# and run the command.
set -e
ENV_FILE="${KIS_SIM_ENV_FILE:-/shared/sim.env}"
tries=0
until [ -s "$ENV_FILE" ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 120 ]; then
        echo "no simulator credentials in $ENV_FILE after 60 s" >&2
        exit 1
    fi
    sleep 0.5
done
set -a
. "$ENV_FILE"
set +a
SIM_HOST="${KIS_SIM_HOST:-sim}:${KIS_SIM_PORT:-8080}"
export KIS_REST_URL="http://$SIM_HOST" KIS_WS_URL="ws://$SIM_HOST/tryitout"
exec "$@"
