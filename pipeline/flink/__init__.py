"""Running the DAG's Beam steps on Apache Flink through Beam's portable runner.

`artifacts` gets Beam's Flink job server from Maven by its coordinates and checks every jar against a lock;
`job_server` starts ONE job server for a whole `recommender run` (Flink embedded in its JVM, or a cluster's
JobManager), points every Beam step at it and stops it when the run ends, whatever the outcome.
"""
