"""Multirun sweeps: each job's result or error in its run dir (jobs.py), and a summary of all of them at the
end (summary.py). Nothing is imported here: a job's entry point must not load the summary's training stack."""
