"""RPC between the JobManager and TaskManagers: typed messages over a transport."""
