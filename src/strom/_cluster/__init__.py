"""Distributed runtime: JobManager, TaskManager processes and the RPC between them.

The embedded MiniCluster (:mod:`strom._cluster.minicluster`) runs a JobManager in the
client process and TaskManager processes on this machine; the same TaskManager and
channel code is meant to run later inside Ray actors, with the transport as the seam.
"""
