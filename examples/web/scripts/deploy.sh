set -e
test -f coverage/summary.json || { echo "coverage report missing: unit artifacts not restored" >&2; exit 1; }
echo "deploying commit ${CONVEYOR_COMMIT:-unknown} to $1"
