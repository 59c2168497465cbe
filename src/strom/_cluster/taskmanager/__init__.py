"""TaskManager side: the TaskExecutor process and the process launcher."""
