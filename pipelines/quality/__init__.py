"""Quality suites: the gate on the suspect list, and the silver suites after a load (Great Expectations)."""
