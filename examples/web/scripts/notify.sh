echo "pipeline ${CONVEYOR_RUN:-run} finished; notifying the team"
