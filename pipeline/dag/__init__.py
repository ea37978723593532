"""The DAG as a whole: stage settings per machine, the status tables, schedule windows."""
