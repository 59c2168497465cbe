"""JobManager side: job status state machine, execution graph, JobMaster."""
